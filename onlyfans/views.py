"""Pages of the onlyfans app: the fan and vault syncs' status and their buttons."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from crm import selectors
from crm.errors import ApplicationError, NotFoundError
from crm.views.pages import AuthenticatedRequest
from onlyfans.sync import fan_sync_request, fan_syncs_recent
from onlyfans.vault_sync import vault_sync_request, vault_syncs_recent

RUNS_SHOWN = 10


@login_required
@require_http_methods(["GET", "POST"])
def fan_sync(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The account's fan sync: latest run (polled every 2 s while it runs), recent runs, and
    the "Sync now" button for owners and managers (POST)."""
    try:
        membership = selectors.membership_get(user=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    error = ""
    if request.method == "POST":
        try:
            fan_sync_request(actor=request.user, account=membership.account)
        except ApplicationError as exc:
            if exc.status_code == 403:
                raise PermissionDenied(exc.message) from exc
            error = exc.message
        if not request.htmx and not error:
            return redirect("fan_sync", account_id=account_id)
    runs = fan_syncs_recent(user=request.user, account_id=account_id, limit=RUNS_SHOWN)
    context = {
        "account": membership.account,
        "membership": membership,
        "latest": runs[0] if runs else None,
        "runs": runs,
        "can_sync": membership.can_manage_members,
        "error": error,
    }
    template = "onlyfans/fan_sync.html#sync-status" if request.htmx else "onlyfans/fan_sync.html"
    return render(request, template, context, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def vault_sync(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The vault sync's status line on the vault page (polled every 2 s while a run is
    active) and its "Refresh" button for owners and managers (POST)."""
    try:
        membership = selectors.membership_get(user=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    error = ""
    if request.method == "POST":
        try:
            vault_sync_request(actor=request.user, account=membership.account)
        except ApplicationError as exc:
            if exc.status_code == 403:
                raise PermissionDenied(exc.message) from exc
            error = exc.message
        if not request.htmx and not error:
            return redirect("vault_library", account_id=account_id)
    runs = vault_syncs_recent(user=request.user, account_id=account_id, limit=1)
    latest = runs[0] if runs else None
    context = {
        "account": membership.account,
        "latest": latest,
        "can_sync": membership.can_manage_members,
        "error": error,
        # The grid reloads itself once when a run it watched has finished.
        "was_active": request.GET.get("watching") == "1",
    }
    return render(request, "onlyfans/vault_sync.html", context, status=400 if error else 200)
