"""The vault library of an account: the grid (search, filters, "more"), our labels and
suggested price edited inline, and the thumbnails, served only to the account's members."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpResponse, HttpResponseNotModified
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.cache import patch_cache_control
from django.utils.http import http_date
from django.views.decorators.http import require_http_methods, require_safe

from crm import vault
from crm.errors import ApplicationError, NotFoundError
from crm.forms import VaultItemForm
from crm.models import VaultMediaType
from crm.views.pages import AuthenticatedRequest, _membership_or_404


def _filters_query(request: AuthenticatedRequest) -> str:
    query = request.GET.copy()
    query.pop("cursor", None)
    return query.urlencode()


@login_required
@require_safe
def vault_library(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The grid, newest first; htmx asks for the grid alone (filters) or the next items
    (``cursor``: the "More" button, appended in place)."""
    membership = _membership_or_404(request, account_id)
    filters = vault.VaultFilters.from_query(request.GET)
    cursor = (request.GET.get("cursor") or "")[: vault.CURSOR_MAX_LENGTH + 1]
    try:
        page = vault.vault_items_for_account(
            user=request.user,
            account_id=account_id,
            filters=filters,
            cursor=cursor or None,
            membership=membership,
        )
    except ApplicationError as exc:  # a cursor we did not make
        return render(
            request,
            "crm/vault/library.html#vault-error",
            {"error": exc.message, "account": membership.account},
            status=400,
        )
    context = {
        "membership": membership,
        "account": membership.account,
        "page": page,
        "filters": filters,
        "query_string": _filters_query(request),
        "can_edit": membership.can_manage_members,
        "first_page": not cursor,
    }
    if request.htmx and cursor:
        return render(request, "crm/vault/library.html#vault-items", context)
    if request.htmx and request.htmx.target == "vault-grid":
        return render(request, "crm/vault/library.html#vault-grid", context)
    context.update(
        lists=vault.vault_lists_for_account(
            user=request.user, account_id=account_id, membership=membership
        ),
        labels=vault.vault_labels_for_account(
            user=request.user, account_id=account_id, membership=membership
        ),
        media_types=VaultMediaType.choices,
    )
    return render(request, "crm/vault/library.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def vault_item_edit(request: AuthenticatedRequest, account_id: int, item_id: int) -> HttpResponse:
    """Our labels and suggested price of one item (owners and managers): the form (htmx: in
    the card), saved by POST; a form with errors comes back with 422 and nothing saved."""
    membership = _membership_or_404(request, account_id)
    try:
        item = vault.vault_item_get(
            user=request.user, account_id=account_id, item_id=item_id, membership=membership
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    if not membership.can_manage_members:
        raise PermissionDenied("Only owners and managers can edit the vault.")
    context = {"account": membership.account, "item": item, "can_edit": True}
    if request.method == "GET" and request.GET.get("cancel") and request.htmx:
        return render(request, "crm/vault/_item.html", context)
    if request.method == "POST":
        form = VaultItemForm(request.POST)
        if form.is_valid():
            try:
                item = vault.vault_item_update(
                    actor=request.user,
                    account_id=account_id,
                    item_id=item.pk,
                    labels=form.cleaned_data["labels"],
                    set_price=True,
                    suggested_price_cents=form.cleaned_data["price"],
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                if not request.htmx:
                    return redirect("vault_library", account_id=account_id)
                item = vault.vault_item_get(
                    user=request.user,
                    account_id=account_id,
                    item_id=item.pk,
                    membership=membership,
                )
                return render(request, "crm/vault/_item.html", {**context, "item": item})
        context["form"] = form
        template = "crm/vault/_item_edit.html" if request.htmx else "crm/vault/item_edit.html"
        return render(request, template, context, status=422)
    price = item.suggested_price_cents
    context["form"] = VaultItemForm(
        initial={
            "labels": ", ".join(item.labels),
            "price": "" if price is None else f"{price / 100:g}",
        }
    )
    template = "crm/vault/_item_edit.html" if request.htmx else "crm/vault/item_edit.html"
    return render(request, template, context)


@login_required
@require_safe
def vault_item_thumb(
    request: AuthenticatedRequest, account_id: int, item_id: int
) -> HttpResponseBase:
    """Our copy of an item's thumbnail, to members of its account only (anything else is a
    404, whether the item exists or not). Private caching: the browser may keep it, a shared
    cache never; the storage name (content-addressed) is the ETag."""
    try:
        name, fetched_at = vault.vault_thumb_for_member(
            user=request.user, account_id=account_id, item_id=item_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    etag = f'"{name.rsplit("/", 1)[-1]}"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponseBase = HttpResponseNotModified()
    else:
        try:
            handle = vault.vault_thumb_storage().open(name, "rb")
        except FileNotFoundError as exc:
            raise Http404("Thumbnail not found.") from exc
        response = FileResponse(handle, content_type="image/jpeg")
    response["ETag"] = etag
    response["Last-Modified"] = http_date(fetched_at.timestamp())
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, private=True, max_age=settings.VAULT_THUMB_CACHE_SECONDS)
    return response
