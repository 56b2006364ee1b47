"""The analytics page, its CSV exports and sales reassignment. Thin: parse, call, render.

One template (``analytics/analytics.html``) with partials: htmx asks for ``analytics-body``
(range or grouping changed) or ``attribution`` (its pages, a reassignment); anything else gets
the whole page, so every link and form works without JavaScript too.
"""

from __future__ import annotations

import csv
from typing import Any

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.views.decorators.http import require_GET, require_POST

from analytics import charts, exports, selectors, services
from analytics.forms import RangeForm, ReassignForm
from analytics.models import AttributionRule
from analytics.periods import Period
from crm import selectors as crm_selectors
from crm.csv_safe import row_neutralise
from crm.errors import ApplicationError
from crm.models import CreatorAccount, Fan, Membership
from crm.views.pages import AuthenticatedRequest, _membership_or_404

TEMPLATE = "analytics/analytics.html"
KIND_LABELS = {"subscription": "Subscriptions", "tip": "Tips", "ppv": "Pay-per-view"}
FAN_LABELS = {"new": "New fans", "active": "Active fans"}


def _state_query(request: AuthenticatedRequest, **changes: str) -> str:
    """The page's query string (range, dates, grouping) with some values changed."""
    query = QueryDict(mutable=True)
    for key in ("range", "from", "to", "interval"):
        value = changes.get(key, request.GET.get(key, ""))
        if value:
            query[key] = value
    return query.urlencode()


def fan_link(account_id: int, fan: Fan) -> str:
    """The fan's conversation in the inbox, or their page when they have none."""
    conversation = getattr(fan, "conversation", None)
    if conversation is not None:
        return reverse("inbox_thread", args=[account_id, conversation.pk])
    return reverse("fan_detail", args=[account_id, fan.pk])


def _fan_name(fan: Fan) -> str:
    return fan.display_name or fan.username


def _attribution_context(
    request: AuthenticatedRequest, membership: Membership, period: Period
) -> dict[str, Any]:
    account = membership.account
    try:
        page = max(int(request.GET.get("apage", "1")), 1)
    except ValueError:
        page = 1
    rows, has_next = selectors.attributed_purchases(account=account, period=period, page=page)
    fans = selectors.fans_by_id(account=account, ids={r.fan_id for r in rows})
    members = list(crm_selectors.members_for_account(user=request.user, account_id=account.pk))
    people = {m.user_id: m.user.get_username() for m in members}
    credited = {u for r in rows for u in (r.credited_to_id, r.rule_user_id) if u is not None}
    if credited - set(people):  # former members
        people.update(selectors.usernames(ids=credited - set(people)))
    items = [
        {
            "row": r,
            "fan": fans.get(r.fan_id),
            "fan_url": fan_link(account.pk, fans[r.fan_id]) if r.fan_id in fans else "",
            "credited_to": people.get(r.credited_to_id) if r.credited_to_id else None,
            "rule_user": people.get(r.rule_user_id) if r.rule_user_id else None,
        }
        for r in rows
    ]
    context: dict[str, Any] = {
        "attribution_rows": items,
        "attribution_page": page,
        "attribution_next": page + 1 if has_next else None,
        "attribution_prev": page - 1 if page > 1 else None,
        "can_reassign": membership.can_manage_members,
        "credit_changes": selectors.credit_changes(account=account),
    }
    if membership.can_manage_members:
        # One <select> for every row: rendered once here, not once per row in the template.
        context["assign_options"] = format_html_join(
            "",
            '<option value="{}">{}</option>',
            [
                ("rule", "Back to the rule"),
                ("none", "Nobody (unattributed)"),
                *((m.user_id, f"{m.user.get_username()} ({m.role})") for m in members),
            ],
        )
    return context


def _page_context(
    request: AuthenticatedRequest, membership: Membership, form: RangeForm
) -> dict[str, Any]:
    account: CreatorAccount = membership.account
    period = form.period()
    interval = form.grouping()
    report = selectors.report_compute(account=account, period=period, interval=interval)
    services.rollups_refresh_request(freshness=report.freshness)
    now = timezone.now()
    top = report.top_fans
    return {
        "membership": membership,
        "account": account,
        "form": form,
        "range_key": form.range_key(period),
        "period": period,
        "interval": interval,
        "report": report,
        "state_query": _state_query(request),
        "interval_links": [
            (i, _state_query(request, interval=i)) for i in ("day", "week", "month")
        ],
        "range_links": [
            (str(d), f"{d} days", _state_query(request, range=str(d), **{"from": "", "to": ""}))
            for d in (7, 30, 90)
        ],
        "revenue_chart": charts.column_chart(
            report.series["revenue"],
            interval=interval,
            stacked=("subscription", "tip", "ppv"),
            labels=KIND_LABELS,
            label=f"Revenue by {interval}, stacked by kind",
        ),
        "fans_chart": charts.column_chart(
            report.series["fans"],
            interval=interval,
            stacked=("new",),
            labels=FAN_LABELS,
            line_key="active",
            label=f"New fans (bars) and active fans (line) by {interval}",
        ),
        "top_fan_bars": charts.hbars(
            [
                (
                    _fan_name(f),
                    f.lifetime_spend_cents,
                    fan_link(account.pk, f),
                    f"@{f.username}",
                )
                for f in top
            ]
        ),
        "spend_bars": charts.hbars([(label, n, "", "") for label, n in report.spend_bands]),
        "expiring": [
            (f, fan_link(account.pk, f))
            for f in selectors.fans_expiring(account_id=account.pk, now=now)
        ],
        "lapsed": [
            (f, fan_link(account.pk, f))
            for f in selectors.fans_lapsed_spenders(account_id=account.pk, now=now)
        ],
        "big_spender_cents": settings.ANALYTICS_BIG_SPENDER_CENTS,
        "tip_hours": settings.ANALYTICS_TIP_ATTRIBUTION_HOURS,
        "rules": AttributionRule.choices,
        "campaign_window_days": settings.ANALYTICS_CAMPAIGN_WINDOW_DAYS,
        "campaigns": selectors.campaign_rows(account_id=account.pk, period=period),
        **_attribution_context(request, membership, period),
    }


@login_required
@require_GET
def analytics_page(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    form = RangeForm(request.GET, zone_name=membership.account.time_zone)
    target = request.htmx.target if request.htmx else None
    if target == "attribution":
        context = {
            "membership": membership,
            "account": membership.account,
            "state_query": _state_query(request),
            **_attribution_context(request, membership, form.period()),
        }
        return render(request, f"{TEMPLATE}#attribution", context)
    context = _page_context(request, membership, form)
    template = f"{TEMPLATE}#analytics-body" if target == "analytics-body" else TEMPLATE
    return render(request, template, context)


@login_required
@require_GET
def analytics_export(request: AuthenticatedRequest, account_id: int, table: str) -> HttpResponse:
    """``kpis``, ``chatters`` or ``top-fans`` of the page's range as CSV."""
    membership = _membership_or_404(request, account_id)
    if table not in exports.TABLES:
        raise Http404("No such table.")
    account = membership.account
    form = RangeForm(request.GET, zone_name=account.time_zone)
    period = form.period()
    report = selectors.report_compute(
        account=account, period=period, interval=form.grouping(), with_fans=table == "top-fans"
    )
    services.rollups_refresh_request(freshness=report.freshness)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"analytics-{account.pk}-{table}-{period.first_day}-{period.last_day}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response)
    for line in exports.TABLES[table](report):
        writer.writerow(row_neutralise(line))
    return response


@login_required
@require_POST
def purchase_reassign(
    request: AuthenticatedRequest, account_id: int, purchase_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    form = ReassignForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            user_id, back_to_rule = form.target()
            services.purchase_credit_reassign(
                actor=request.user,
                account_id=account_id,
                purchase_id=purchase_id,
                credited_to_id=user_id,
                reason=form.cleaned_data["reason"] or "",
                back_to_rule=back_to_rule,
            )
        except ApplicationError as exc:
            if exc.status_code == 404:
                raise Http404(exc.message) from exc
            error = exc.message
            for messages in exc.fields.values():
                error = f"{error} {' '.join(messages)}"
        except ValidationError:
            error = "Choose a member."
    else:
        error = "Choose whom to credit and say why."
    if request.htmx:
        range_form = RangeForm(request.GET, zone_name=membership.account.time_zone)
        context = {
            "membership": membership,
            "account": membership.account,
            "state_query": _state_query(request),
            "reassign_error": error,
            "reassign_purchase": purchase_id,
            **_attribution_context(request, membership, range_form.period()),
        }
        return render(request, f"{TEMPLATE}#attribution", context, status=422 if error else 200)
    if error:
        flash.error(request, error)
    else:
        flash.success(request, "Sale reassigned; every figure now follows it.")
    url = reverse("analytics", args=[account_id])
    query = _state_query(request)
    return redirect(f"{url}?{query}#attribution" if query else f"{url}#attribution")
