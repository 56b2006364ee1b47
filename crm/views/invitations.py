"""Invitations: made and revoked on the members page; the one-time link's own page joins.

Every link that does not work (unknown, expired, used, revoked) gets the same page, so a
visitor learns nothing of which it was.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login, password_validation
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from crm import invitations, selectors
from crm.errors import ApplicationError, NotFoundError
from crm.forms import InvitationCreateForm, InvitationSignupForm
from crm.middleware import SESSION_KEY
from crm.models import Invitation, Membership
from crm.views.pages import AuthenticatedRequest, _members_page, _membership_or_404


@login_required
@require_POST
def invitation_create(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    form = InvitationCreateForm(request.POST)
    if not form.is_valid():
        return _members_page(request, membership, invite_form=form, status=400)
    try:
        _invitation, token = invitations.invitation_create(
            actor=request.user,
            account=membership.account,
            role=form.cleaned_data["role"],
            email=form.cleaned_data["email"],
        )
    except ApplicationError as exc:
        for field, errors in exc.fields.items():
            if field in form.fields:
                for error in errors:
                    form.add_error(field, error)
        return _members_page(
            request, membership, invite_form=form, error=exc.message, status=exc.status_code
        )
    link = request.build_absolute_uri(reverse("invitation_accept", args=[token]))
    return _members_page(request, membership, invite_link=link)


@login_required
@require_POST
def invitation_revoke(
    request: AuthenticatedRequest, account_id: int, invitation_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    try:
        invitations.invitation_revoke(
            actor=request.user, account=membership.account, invitation_id=invitation_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        return _members_page(request, membership, error=exc.message, status=exc.status_code)
    messages.success(request, "Invitation revoked: its link no longer works.")
    return redirect("member_list", account_id=account_id)


def _no_trace(response: HttpResponse) -> HttpResponse:
    # The URL is the secret: no cache keeps the page. (The site's Referrer-Policy, same-origin,
    # already keeps it from other sites; "no-referrer" would make browsers post the forms with
    # "Origin: null", which Django's CSRF check refuses.)
    response["Cache-Control"] = "no-store"
    return response


def _invalid_page(request: HttpRequest) -> HttpResponse:
    return _no_trace(
        render(
            request,
            "crm/invitation_invalid.html",
            {"message": selectors.INVITATION_INVALID_MESSAGE},
            status=404,
        )
    )


def _joined(request: HttpRequest, membership: Membership) -> HttpResponse:
    request.session[SESSION_KEY] = membership.account_id
    messages.success(
        request,
        f"Welcome to {membership.account.display_name}: you joined as "
        f"{membership.get_role_display().lower()}.",
    )
    return redirect("inbox", account_id=membership.account_id)


def _accept_page(
    request: HttpRequest,
    invitation: Invitation,
    *,
    already_member: bool,
    signup_form: InvitationSignupForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    if signup_form is None:
        signup_form = InvitationSignupForm(initial={"email": invitation.email})
    context = {
        "invitation": invitation,
        "account": invitation.account,
        "already_member": already_member,
        "signup_form": signup_form,
        "password_help": password_validation.password_validators_help_texts(),
        "login_url": reverse("login") + "?" + urlencode({"next": request.path}),
        "error": error,
    }
    return _no_trace(render(request, "crm/invitation.html", context, status=status))


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The link's page: signed in, a Join button; signed out, log in (and come back here) or
    create an account, then join."""
    try:
        found = selectors.invitation_for_token(user=request.user, token=token)
    except NotFoundError:
        return _invalid_page(request)
    if request.method == "GET" or found.already_member:
        return _accept_page(request, found.invitation, already_member=found.already_member)

    if request.user.is_authenticated:
        try:
            membership = invitations.invitation_accept(token=token, user=request.user)  # type: ignore[arg-type]
        except NotFoundError:
            return _invalid_page(request)
        except ApplicationError as exc:
            return _accept_page(
                request,
                found.invitation,
                already_member=exc.code == "already_member",
                error=exc.message,
                status=exc.status_code,
            )
        return _joined(request, membership)

    form = InvitationSignupForm(request.POST)
    if form.is_valid():
        try:
            membership = invitations.invitation_accept_new_user(
                token=token,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                email=form.cleaned_data["email"],
            )
        except NotFoundError:
            return _invalid_page(request)
        except ApplicationError as exc:
            for field, errors in exc.fields.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
            if not exc.fields:
                form.add_error(None, exc.message)
        else:
            login(request, membership.user, backend="django.contrib.auth.backends.ModelBackend")
            return _joined(request, membership)
    return _accept_page(
        request, found.invitation, already_member=False, signup_form=form, status=400
    )
