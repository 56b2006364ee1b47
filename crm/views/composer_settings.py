"""The account's composer checks page: banned words and their policy (owners and managers
change them; every member may read them, since their composer applies them)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from crm import composer_checks
from crm.errors import ApplicationError
from crm.forms import ComposerSettingsForm
from crm.models import Membership
from crm.views.pages import AuthenticatedRequest, _membership_or_404


def _page(
    request: AuthenticatedRequest,
    membership: Membership,
    form: ComposerSettingsForm,
    status: int = 200,
) -> HttpResponse:
    context = {
        "membership": membership,
        "account": membership.account,
        "form": form,
        "can_manage": membership.can_manage_members,
        "max_count": composer_checks.BANNED_WORDS_MAX_COUNT,
        "max_length": composer_checks.BANNED_WORD_MAX_LENGTH,
        "max_words": composer_checks.BANNED_WORD_MAX_WORDS,
    }
    return render(request, "crm/composer_settings.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def composer_settings(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    account = membership.account
    if request.method == "GET":
        form = ComposerSettingsForm(
            initial={
                "banned_words": "\n".join(account.banned_words),
                "banned_words_policy": account.banned_words_policy,
                "gateway_banned_words": account.gateway_banned_words,
            }
        )
        return _page(request, membership, form)
    form = ComposerSettingsForm(request.POST)
    if not form.is_valid():
        return _page(request, membership, form, status=400)
    try:
        composer_checks.composer_settings_update(
            actor=request.user,
            account_id=account_id,
            banned_words=form.banned_word_list(),
            banned_words_policy=form.cleaned_data["banned_words_policy"],
            gateway_banned_words=form.cleaned_data["gateway_banned_words"],
        )
    except ApplicationError as exc:
        for error in exc.fields.get("banned_words", []) or [exc.message]:
            form.add_error("banned_words" if exc.fields else None, error)
        return _page(request, membership, form, status=exc.status_code)
    flash.success(request, "Composer checks saved.")
    return redirect("composer_settings", account_id=account_id)
