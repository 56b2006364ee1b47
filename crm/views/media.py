"""Media in the inbox: the composer's vault picker with the open fan's marks, and a
fan's media history (the inbox's fan panel and the fan's page)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from crm import media_send, selectors
from crm.errors import ApplicationError, NotFoundError
from crm.models import VaultMediaType
from crm.vault import VaultFilters, vault_labels_for_account, vault_lists_for_account
from crm.views.pages import AuthenticatedRequest
from crm.zones import account_zone

PICKER_TEMPLATE = "crm/inbox/media_picker.html"
HISTORY_TEMPLATE = "crm/fan_media.html"
PICKER_PAGE_SIZE = 24
PICKER_FILTER_KEYS = ("q", "type", "list", "label")


def _render_in_zone(
    request: AuthenticatedRequest, template: str, context: dict[str, Any], account: Any
) -> HttpResponse:
    """Render with dates in the account's time zone ("bought $25 · 3 Nov" is the account's
    3 November, as on every other page), not the server's."""
    with timezone.override(account_zone(account)):
        return render(request, template, context)


def _picker_query(request: AuthenticatedRequest) -> str:
    """The picker's filters as a query string (no cursor), kept on its "More" link."""
    query = QueryDict(mutable=True)
    for key in PICKER_FILTER_KEYS:
        value = request.GET.get(key, "")[:100]
        if value:
            query[key] = value
    return query.urlencode()


@login_required
@require_GET
def media_picker(
    request: AuthenticatedRequest, account_id: int, conversation_id: int | None = None
) -> HttpResponse:
    """The media picker: for a conversation's composer (each item marked for its fan), or for
    the account (the campaign builder, no marks). The whole dialog body on first open, the
    grid when a filter changes (``part=grid``), the next items on "More" (``cursor``), the
    label filter's choices (``part=labels``, loaded by the dialog after its first page)."""
    conversation = None
    if conversation_id is not None:
        try:
            conversation = selectors.conversation_get(
                user=request.user, conversation_id=conversation_id, account_id=account_id
            )
        except NotFoundError as exc:
            raise Http404(exc.message) from exc
        picker_url = reverse("inbox_media_picker", args=[account_id, conversation_id])
    else:
        picker_url = reverse("media_picker", args=[account_id])
    filters = VaultFilters.from_query(request.GET)
    # Removed and unready items stay visible (disabled, with the reason): a chatter looking
    # for "the one from last week" learns why it cannot go.
    filters = VaultFilters(
        q=filters.q,
        media_type=filters.media_type,
        list_id=filters.list_id,
        label=filters.label,
        include_gone=True,
    )
    if request.GET.get("part") == "labels":
        # The label filter's choices, asked for once the first page is on screen: counting
        # labels reads the whole vault, the first page need not wait for it.
        labels = vault_labels_for_account(user=request.user, account_id=account_id)
        return render(
            request, f"{PICKER_TEMPLATE}#picker-labels", {"labels": labels, "filters": filters}
        )
    cursor = request.GET.get("cursor", "")[:200] or None
    try:
        page = media_send.media_picker_page(
            user=request.user,
            account_id=account_id,
            fan_id=conversation.fan_id if conversation is not None else None,
            filters=filters,
            cursor=cursor,
            limit=PICKER_PAGE_SIZE,
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        if exc.code != "invalid_cursor":
            raise
        return HttpResponse(exc.message, status=400)
    context: dict[str, Any] = {
        "conversation": conversation,
        "fan": conversation.fan if conversation is not None else None,
        "picker_key": conversation.pk if conversation is not None else "account",
        "picker_url": picker_url,
        "account_id": account_id,
        "page": page,
        "filters": filters,
        "query_string": _picker_query(request),
    }
    if cursor:
        template = f"{PICKER_TEMPLATE}#picker-items"
    elif request.GET.get("part") == "grid":
        template = f"{PICKER_TEMPLATE}#picker-grid"
    else:
        template = PICKER_TEMPLATE
        context.update(
            media_types=VaultMediaType.choices,
            lists=vault_lists_for_account(user=request.user, account_id=account_id),
            labels=None,  # loaded after the first page (part=labels)
        )
    if conversation is None:  # the campaign builder: no marks, no dates
        return render(request, template, context)
    return _render_in_zone(request, template, context, conversation.account)


@login_required
@require_GET
def fan_media_history(request: AuthenticatedRequest, account_id: int, fan_id: int) -> HttpResponse:
    """A fan's media history, newest first, a page at a time (a fragment)."""
    try:
        fan = selectors.fan_get(user=request.user, fan_id=fan_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    if fan.account_id != account_id:
        raise Http404("Fan not found.")
    try:
        page = media_send.fan_media_history(
            fan_id=fan.pk, cursor=request.GET.get("cursor", "")[:200]
        )
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=400)
    context = {"fan": fan, "account_id": account_id, "history": page}
    partial = "history-rows" if request.GET.get("cursor") else "history"
    return _render_in_zone(request, f"{HISTORY_TEMPLATE}#{partial}", context, fan.account)
