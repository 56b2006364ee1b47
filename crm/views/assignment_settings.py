"""The account's assignment and first-reply targets page (owners and managers change them;
every member may read them: their inbox shows the targets)."""

from __future__ import annotations

from decimal import Decimal

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from crm import assignment
from crm.errors import ApplicationError
from crm.forms import AssignmentSettingsForm
from crm.models import Membership
from crm.views.pages import AuthenticatedRequest, _membership_or_404


def _page(
    request: AuthenticatedRequest,
    membership: Membership,
    form: AssignmentSettingsForm,
    status: int = 200,
) -> HttpResponse:
    context = {
        "membership": membership,
        "account": membership.account,
        "form": form,
        "can_manage": membership.can_manage_members,
    }
    return render(request, "crm/assignment_settings.html", context, status=status)


def _minutes(seconds: int) -> Decimal:
    return (Decimal(seconds) / 60).quantize(Decimal("0.1")).normalize()


@login_required
@require_http_methods(["GET", "POST"])
def assignment_settings(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    account = membership.account
    if request.method == "GET":
        form = AssignmentSettingsForm(
            initial={
                "auto_assign": account.auto_assign,
                "auto_assign_cap": account.auto_assign_cap,
                "reply_target": _minutes(account.reply_target_seconds),
                "vip_spend_threshold": Decimal(account.vip_spend_threshold_cents) / 100,
                "vip_reply_target": _minutes(account.vip_reply_target_seconds),
            }
        )
        return _page(request, membership, form)
    form = AssignmentSettingsForm(request.POST)
    if not form.is_valid():
        return _page(request, membership, form, status=400)
    try:
        assignment.assignment_settings_update(
            actor=request.user,
            account_id=account_id,
            auto_assign=form.cleaned_data["auto_assign"],
            auto_assign_cap=form.cleaned_data["auto_assign_cap"],
            reply_target_seconds=form.seconds("reply_target"),
            vip_spend_threshold_cents=form.cents("vip_spend_threshold"),
            vip_reply_target_seconds=form.seconds("vip_reply_target"),
        )
    except ApplicationError as exc:
        if not exc.fields:
            form.add_error(None, exc.message)
        for field, errors in exc.fields.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
        return _page(request, membership, form, status=exc.status_code)
    flash.success(request, "Assignment and reply targets saved.")
    return redirect("assignment_settings", account_id=account_id)
