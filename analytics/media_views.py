"""Which content sells: the media page (items, by price, by chatter), an item's page and the
CSV. Thin: parse the query string, call a selector, render.

One template per page with a partial (``media-body``) that htmx swaps when the range, a
filter, the sort, the view or the page changes; every link also works without JavaScript.
"""

from __future__ import annotations

import csv
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from analytics import media_selectors as ms
from analytics.forms import MediaForm, RangeForm
from analytics.periods import PRESETS
from crm.csv_safe import row_neutralise
from crm.errors import NotFoundError
from crm.models import Membership
from crm.views.pages import AuthenticatedRequest, _membership_or_404

TEMPLATE = "analytics/media.html"
ITEM_TEMPLATE = "analytics/media_item.html"
STATE_KEYS = ("range", "from", "to", "type", "list", "label", "sort", "view")
# The items table's columns: (sort key or "", heading, title).
COLUMNS = [
    ("sent_free", "Sent free", "Times sent in a free message"),
    ("previewed", "Previews", "Times shown as the free preview of a PPV: not an offer"),
    ("offered", "Offered", "Times offered as pay-per-view"),
    ("bought", "Bought", "Offers that were unlocked"),
    ("conversion", "Conversion", "Bought ÷ offered"),
    ("revenue", "Revenue", "What fans paid for its offers, shared among a message's paid items"),
    ("revenue_per_offer", "Per offer", "Revenue ÷ offered"),
]
CSV_HEADER = [
    "vault_item_id",
    "type",
    "created",
    "labels",
    "sent_free",
    "previewed",
    "offered",
    "bought",
    "conversion",
    "revenue_cents",
    "revenue_per_offer_cents",
]


def _query(request: AuthenticatedRequest, **changes: str) -> str:
    """The page's query string with some values changed ("" removes one); the page number
    goes back to 1 unless it is one of the changes."""
    query = QueryDict(mutable=True)
    for key in (*STATE_KEYS, "page"):
        value = changes.get(key, "" if key == "page" else request.GET.get(key, ""))[:100]
        if value:
            query[key] = value
    return query.urlencode()


def _scope(form: MediaForm) -> ms.MediaScope:
    sort, descending = form.sort_order()
    return ms.MediaScope(
        period=form.period(), sort=sort, descending=descending, **form.item_filters()
    )


def _sort_links(request: AuthenticatedRequest, form: MediaForm) -> list[dict[str, Any]]:
    current, descending = form.sort_order()
    links = []
    for key, heading, title in COLUMNS:
        on = key == current
        # A click on the sorted column turns it round; another column sorts highest first.
        target = key if on and descending else f"-{key}"
        links.append(
            {
                "key": key,
                "heading": heading,
                "title": title,
                "query": _query(request, sort=target),
                "on": on,
                "aria": ("descending" if descending else "ascending") if on else "none",
            }
        )
    return links


def _context(
    request: AuthenticatedRequest, membership: Membership, form: MediaForm
) -> dict[str, Any]:
    account = membership.account
    scope = _scope(form)
    view = form.view_name()
    context: dict[str, Any] = {
        "membership": membership,
        "account": account,
        "form": form,
        "view": view,
        "period": scope.period,
        "range_key": form.range_key(scope.period),
        "range_errors": [
            e for errors in getattr(form, "range_form", form).errors.values() for e in errors
        ],
        "range_links": [
            (str(d), f"{d} days", _query(request, range=str(d), **{"from": "", "to": ""}))
            for d in PRESETS
        ]
        + [("all", "All time", _query(request, range="all", **{"from": "", "to": ""}))],
        "view_links": [
            (v, text, _query(request, view=v if v != "items" else ""))
            for v, text in (("items", "Items"), ("prices", "By price"), ("chatters", "By chatter"))
        ],
        "state_query": _query(request),
        "filters": form.item_filters(),
        "lists": ms.vault_lists(account_id=account.pk),
        "labels": ms.vault_labels(account_id=account.pk),
        "types": form.fields["type"].choices,  # type: ignore[attr-defined]
        "sort_value": request.GET.get("sort", "")[:40],
    }
    if view == "items":
        items = ms.media_items(membership=membership, scope=scope, page=form.page_number())
        context.update(
            items=items,
            columns=_sort_links(request, form),
            prev_query=_query(request, page=str(items.page - 1)) if items.page > 1 else "",
            next_query=(
                _query(request, page=str(items.page + 1)) if items.page < items.pages else ""
            ),
        )
    else:
        by = "price" if view == "prices" else "chatter"
        context["breakdown"] = ms.media_breakdown(membership=membership, scope=scope, by=by)
    return context


@login_required
@require_GET
def media_page(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    form = MediaForm(request.GET, zone_name=membership.account.time_zone)
    context = _context(request, membership, form)
    target = request.htmx.target if request.htmx else None
    template = f"{TEMPLATE}#media-body" if target == "media-body" else TEMPLATE
    return render(request, template, context)


@login_required
@require_GET
def media_item_page(request: AuthenticatedRequest, account_id: int, item_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    try:
        item = ms.media_item_get(membership=membership, item_id=item_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    form = MediaForm(request.GET, zone_name=membership.account.time_zone)
    scope = _scope(form)
    context = {
        "membership": membership,
        "account": membership.account,
        "item": item,
        "form": form,
        "period": scope.period,
        "range_key": form.range_key(scope.period),
        "range_links": [
            (str(d), f"{d} days", _query(request, range=str(d), **{"from": "", "to": ""}))
            for d in PRESETS
        ]
        + [("all", "All time", _query(request, range="all", **{"from": "", "to": ""}))],
        "state_query": _query(request),
        "back_query": _query(request),
        "figures": ms.media_item_figures(membership=membership, scope=scope, item_id=item.pk),
        "prices": ms.media_item_breakdown(
            membership=membership, scope=scope, item_id=item.pk, by="price"
        ),
        "chatters": ms.media_item_breakdown(
            membership=membership, scope=scope, item_id=item.pk, by="chatter"
        ),
    }
    return render(request, ITEM_TEMPLATE, context)


@login_required
@require_GET
def media_top(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The analytics page's "top media by revenue" for its range: loaded by htmx after the
    page (counted live, it should not hold the page's roll-up figures back)."""
    membership = _membership_or_404(request, account_id)
    form = RangeForm(request.GET, zone_name=membership.account.time_zone)
    period = form.period()
    query = QueryDict(mutable=True)
    for key in ("range", "from", "to"):
        if value := request.GET.get(key, "")[:100]:
            query[key] = value
    context = {
        "account": membership.account,
        "period": period,
        "range_key": form.range_key(period),
        "state_query": query.urlencode(),
        "top_media": ms.top_media(account_id=account_id, period=period),
    }
    return render(request, "analytics/analytics.html#top-media", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


@login_required
@require_GET
def media_export(request: AuthenticatedRequest, account_id: int) -> StreamingHttpResponse:
    """Every matching item with its figures, in the page's order, as CSV."""
    membership = _membership_or_404(request, account_id)
    form = MediaForm(request.GET, zone_name=membership.account.time_zone)
    scope = _scope(form)
    rows = ms.media_items_all(membership=membership, scope=scope)
    writer = csv.writer(_Echo())
    period = scope.period
    span = "all-time" if period is None else f"{period.first_day}-{period.last_day}"

    def lines() -> Any:
        yield writer.writerow(CSV_HEADER)
        for r in rows:
            figures = ms.figures_dict(r.figures)
            yield writer.writerow(
                row_neutralise(
                    [
                        r.item_id,
                        r.media_type,
                        r.platform_created_at.date().isoformat(),
                        " ".join(r.labels),
                        *(figures[k] for k in CSV_HEADER[4:]),
                    ]
                )
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="media-{account_id}-{span}.csv"'
    return response
