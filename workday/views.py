"""Workday's pages: message review, my reviews, payroll (with its CSV), the agency overview.
Thin: parse, call one selector or service, render. htmx asks for a page's fragments
(``review-more``, ``review-mark-<id>``, ``overview-tiles``); every link works without it.
"""

from __future__ import annotations

import csv
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.csv_safe import row_neutralise
from crm.errors import ApplicationError, NotFoundError
from crm.selectors import manager_membership_get
from crm.views.pages import AuthenticatedRequest
from workday import selectors, services
from workday.forms import (
    PayrollRangeForm,
    PayRuleForm,
    ReviewFilterForm,
    ReviewMarkForm,
    ReviewSettingsForm,
)

REVIEW_TEMPLATE = "workday/review.html"
OVERVIEW_TEMPLATE = "workday/overview.html"
PAYROLL_TEMPLATE = "workday/payroll.html"


def _refused(request: AuthenticatedRequest, exc: ApplicationError) -> HttpResponse:
    if isinstance(exc, NotFoundError):
        raise Http404(exc.message) from exc
    return render(request, "workday/refused.html", {"error": exc.message}, status=exc.status_code)


# --- Review ------------------------------------------------------------------------------------


@login_required
@require_GET
def review_feed(request: AuthenticatedRequest) -> HttpResponse:
    form = ReviewFilterForm(request.GET)
    try:
        page = selectors.review_feed_page(
            user=request.user, filters=form.filters(), cursor=form.page_cursor()
        )
    except ApplicationError as exc:
        if exc.code == "invalid_cursor":
            return redirect("workday_review")
        return _refused(request, exc)
    query = request.GET.copy()
    query.pop("cursor", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "chatters": selectors.reviewers_chatters(memberships=page.memberships),
        "flags": selectors.FLAGS,
        "repeated_max": settings.COMPOSER_REPEATED_TEXT_MAX_FANS,
    }
    if request.htmx and request.htmx.target == "review-more":
        return render(request, f"{REVIEW_TEMPLATE}#review-rows", context)
    return render(request, REVIEW_TEMPLATE, context)


@login_required
@require_POST
def review_mark(request: AuthenticatedRequest, message_id: int) -> HttpResponse:
    form = ReviewMarkForm(request.POST)
    error = ""
    review = None
    if form.is_valid():
        try:
            review = services.message_review_mark(
                actor=request.user,
                message_id=message_id,
                verdict=form.cleaned_data["verdict"],
                comment=form.cleaned_data["comment"],
            )
        except ApplicationError as exc:
            if isinstance(exc, NotFoundError) or exc.status_code == 403:
                return _refused(request, exc)
            error = exc.message
    else:
        error = "Choose good or needs work; a comment has at most 1,000 characters."
    if not request.htmx:
        back = request.POST.get("next_query", "")[:2000]
        return redirect(f"{reverse('workday_review')}?{back}" if back else "workday_review")
    context = {
        "message_id": message_id,
        "review": review,
        "reviewer": request.user.get_username() if review else "",
        "error": error,
    }
    return render(request, "workday/_mark.html", context, status=422 if error else 200)


@login_required
@require_GET
def my_reviews(request: AuthenticatedRequest) -> HttpResponse:
    cursor = request.GET.get("cursor", "")[:40]
    try:
        page = selectors.my_reviews_page(user=request.user, cursor=cursor)
    except ApplicationError:
        return redirect("workday_my_reviews")
    return render(request, "workday/my_reviews.html", {"page": page})


@login_required
@require_POST
def my_reviews_seen(request: AuthenticatedRequest) -> HttpResponse:
    services.message_reviews_mark_seen(actor=request.user)
    return redirect("workday_my_reviews")


@login_required
@require_GET
def my_reviews_count(request: AuthenticatedRequest) -> HttpResponse:
    """The top bar's count of new marks, loaded by htmx after the page (no query on every
    page's own render)."""
    count = selectors.review_unseen_count(user=request.user)
    return render(request, "workday/_review_count.html", {"count": count})


def _seconds_text(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


@login_required
@require_http_methods(["GET", "POST"])
def review_settings(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    try:
        membership = manager_membership_get(
            user=request.user, account_id=account_id, action="change review settings"
        )
    except ApplicationError as exc:
        return _refused(request, exc)
    current = selectors.review_settings_get(account_id=account_id)
    error = ""
    if request.method == "POST":
        form = ReviewSettingsForm(request.POST)
        if form.is_valid():
            minutes = form.cleaned_data["long_wait_minutes"]
            try:
                services.review_settings_update(
                    actor=request.user,
                    account_id=account_id,
                    min_ppv_price_cents=int(form.cleaned_data["min_ppv_price"] * 100),
                    long_wait_seconds=minutes * 60 if minutes else None,
                )
            except ApplicationError as exc:
                error = exc.message
            else:
                return redirect("workday_review_settings", account_id=account_id)
    else:
        form = ReviewSettingsForm(
            initial={
                "min_ppv_price": Decimal(current.min_ppv_price_cents) / 100,
                "long_wait_minutes": (current.long_wait_seconds // 60)
                if current.long_wait_seconds
                else None,
            }
        )
    context = {
        "membership": membership,
        "account": membership.account,
        "form": form,
        "error": error,
        "reply_target": _seconds_text(membership.account.reply_target_seconds),
    }
    return render(
        request,
        "workday/review_settings.html",
        context,
        status=422 if form.errors or error else 200,
    )


# --- Payroll -----------------------------------------------------------------------------------


def _payroll(
    request: AuthenticatedRequest, account_id: int | None
) -> tuple[PayrollRangeForm, selectors.Payroll]:
    form = PayrollRangeForm(request.GET)
    first, last = form.days()
    if account_id is None:
        payroll = selectors.payroll_for_owner(user=request.user, first_day=first, last_day=last)
    else:
        payroll = selectors.payroll_for_account(
            user=request.user, account_id=account_id, first_day=first, last_day=last
        )
    return form, payroll


@login_required
@require_GET
def payroll_page(request: AuthenticatedRequest, account_id: int | None = None) -> HttpResponse:
    try:
        form, payroll = _payroll(request, account_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    account = payroll.members[0].account_id if payroll.members else None
    context = {
        "form": form,
        "payroll": payroll,
        "account_id": account_id,
        "account_name": payroll.members[0].account_name if account_id and payroll.members else "",
        "query": f"start={payroll.period_first_day}&end={payroll.period_last_day}",
        "any_account": account,
        "total_pay": sum(m.pay_cents for m in payroll.members),
        "total_credited": sum(m.totals.credited_cents for m in payroll.members),
    }
    return render(request, PAYROLL_TEMPLATE, context)


CSV_MEMBER_HEADER = [
    "account", "member", "role", "hours_worked", "messages", "fans_answered",
    "median_response_seconds", "ppv_sent", "ppv_unlocked", "credited_revenue_cents",
    "hourly_rate_cents", "commission_percent", "hourly_pay_cents", "commission_cents",
    "pay_cents",
]  # fmt: skip
CSV_SHIFT_HEADER = [
    "account", "member", "work_session", "started_at", "ended_at", "end_reason",
    "hours_worked", "messages", "fans_answered", "median_response_seconds", "ppv_sent",
    "ppv_unlocked", "credited_revenue_cents",
]  # fmt: skip


@login_required
@require_GET
def payroll_csv(request: AuthenticatedRequest, account_id: int | None = None) -> HttpResponse:
    """The payroll as CSV: one row per member, or with ``detail=shifts`` one per work session
    (and the work outside them); text cells neutralised (``crm.csv_safe``)."""
    try:
        _, payroll = _payroll(request, account_id)
    except ApplicationError as exc:
        return _refused(request, exc)
    shifts = request.GET.get("detail") == "shifts"
    name = f"payroll-{payroll.period_first_day}-{payroll.period_last_day}"
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{name}{"-shifts" if shifts else ""}.csv"'
    )
    writer = csv.writer(response)
    writer.writerow(CSV_SHIFT_HEADER if shifts else CSV_MEMBER_HEADER)
    for m in payroll.members:
        if not shifts:
            t = m.totals
            writer.writerow(row_neutralise([
                m.account_name, m.username, m.role, round(t.worked_hours, 4), t.messages,
                t.fans_answered, t.median_response_seconds, t.ppv_sent, t.ppv_unlocked,
                t.credited_cents, m.hourly_rate_cents, m.commission_percent,
                m.hourly_pay_cents, m.commission_cents, m.pay_cents,
            ]))  # fmt: skip
            continue
        for s in m.shifts:
            writer.writerow(row_neutralise([
                m.account_name, m.username, s.session_id or "outside shifts",
                s.started_at.isoformat() if s.started_at else None,
                s.ended_at.isoformat() if s.ended_at else None, s.end_reason,
                round(s.worked_hours, 4), s.messages, s.fans_answered,
                s.median_response_seconds, s.ppv_sent, s.ppv_unlocked, s.credited_cents,
            ]))  # fmt: skip
    return response


@login_required
@require_POST
def pay_rule_update(request: AuthenticatedRequest, account_id: int, user_id: int) -> HttpResponse:
    form = PayRuleForm(request.POST)
    back = f"{reverse('workday_payroll', args=[account_id])}?{request.GET.urlencode()[:200]}"
    if not form.is_valid():
        return _refused(
            request,
            ApplicationError(
                "An hourly rate from $0 to $1,000 and a commission from 0 to 100 %.",
                code="invalid_pay_rule",
                status_code=422,
            ),
        )
    try:
        services.pay_rule_set(
            actor=request.user,
            account_id=account_id,
            user_id=user_id,
            hourly_rate_cents=int(form.cleaned_data["hourly_rate"] * 100),
            commission_percent=form.cleaned_data["commission_percent"],
        )
    except ApplicationError as exc:
        return _refused(request, exc)
    return redirect(back)


# --- Overview ----------------------------------------------------------------------------------


@login_required
@require_GET
def overview(request: AuthenticatedRequest) -> HttpResponse:
    try:
        tiles = selectors.overview_tiles(user=request.user)
    except ApplicationError as exc:
        return _refused(request, exc)
    context = {"tiles": tiles}
    if request.htmx and request.htmx.target == "overview-tiles":
        return render(request, f"{OVERVIEW_TEMPLATE}#overview-tiles", context)
    return render(request, OVERVIEW_TEMPLATE, context)
