"""HTML pages: home, account switcher, fans, members, settings. Thin: parse, call, render."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_htmx.middleware import HtmxDetails

from crm import selectors, services
from crm.errors import ApplicationError, NotFoundError
from crm.forms import (
    AccountSwitchForm,
    FanFilterForm,
    FanUpdateForm,
    InvitationCreateForm,
    MembershipRoleForm,
)
from crm.middleware import SESSION_KEY
from crm.models import Fan, Membership

FANS_PER_PAGE = 50


class AuthenticatedRequest(HttpRequest):
    """What the login-required views receive (django-htmx sets ``htmx``)."""

    user: User
    htmx: HtmxDetails


def _membership_or_404(request: AuthenticatedRequest, account_id: int) -> Membership:
    try:
        return selectors.membership_get(user=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    memberships = selectors.memberships_with_fan_counts(user=request.user)
    return render(request, "crm/home.html", {"memberships": memberships})


@login_required
@require_POST
def account_switch(request: AuthenticatedRequest) -> HttpResponse:
    form = AccountSwitchForm(request.POST)
    if not form.is_valid():
        raise Http404("Creator account not found.")
    try:
        # Off shift too: switching shows the account's off-shift page and its clock.
        membership = selectors.membership_get(
            user=request.user, account_id=form.cleaned_data["account_id"], off_shift_ok=True
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    request.session[SESSION_KEY] = membership.account_id
    next_url = form.cleaned_data["next"]
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(next_url)
    return redirect("home")


@login_required
def fan_list(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    filter_form = FanFilterForm(request.GET)
    fans = selectors.fans_for_account(
        user=request.user, account_id=account_id, membership=membership, **filter_form.filters()
    )
    page = Paginator(fans, FANS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "membership": membership,
        "account": membership.account,
        "filter_form": filter_form,
        "page": page,
        "query_string": query.urlencode(),
    }
    template = "crm/fans.html#fan-table" if request.htmx else "crm/fans.html"
    return render(request, template, context)


def _fan_in_account(request: AuthenticatedRequest, account_id: int, fan_id: int) -> Fan:
    try:
        fan = selectors.fan_get(user=request.user, fan_id=fan_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    if fan.account_id != account_id:
        raise Http404("Fan not found.")
    return fan


@login_required
@require_http_methods(["GET", "POST"])
def fan_detail(request: AuthenticatedRequest, account_id: int, fan_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    fan = _fan_in_account(request, account_id, fan_id)
    if request.method == "POST":
        form = FanUpdateForm(request.POST)
        if form.is_valid():
            try:
                services.fan_update(
                    actor=request.user,
                    fan=fan,
                    tags=form.tag_list(),
                    notes=form.cleaned_data["notes"],
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, "Fan saved.")
                return redirect("fan_detail", account_id=account_id, fan_id=fan.pk)
    else:
        form = FanUpdateForm(initial={"tags": ", ".join(fan.tags), "notes": fan.notes})
    context = {
        "membership": membership,
        "account": membership.account,
        "fan": fan,
        "form": form,
        "purchases": selectors.fan_recent_purchases(fan=fan),
        "conversation_id": selectors.fan_conversation_id(fan=fan),
    }
    return render(request, "crm/fan_detail.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def fan_chat(request: AuthenticatedRequest, account_id: int, fan_id: int) -> HttpResponse:
    """Open the fan's thread in the inbox (created empty for a fan who never wrote)."""
    fan = _fan_in_account(request, account_id, fan_id)
    try:
        conversation = services.conversation_open(actor=request.user, fan=fan)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("fan_detail", account_id=account_id, fan_id=fan.pk)
    return redirect("inbox_thread", account_id=account_id, conversation_id=conversation.pk)


def _members_page(
    request: AuthenticatedRequest,
    membership: Membership,
    *,
    invite_form: InvitationCreateForm | None = None,
    invite_link: str = "",
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    """The members page; ``invite_link`` is a new invitation's link, shown in this one answer."""
    context = {
        "membership": membership,
        "account": membership.account,
        "members": selectors.members_for_account(
            user=request.user, account_id=membership.account_id, membership=membership
        ),
        "invitations": selectors.invitations_pending_for_account(
            user=request.user, account_id=membership.account_id, membership=membership
        ),
        "invite_form": invite_form or InvitationCreateForm(),
        "invite_link": invite_link,
        "invite_ttl_days": settings.INVITATION_TTL_DAYS,
        "role_choices": Membership.Role.choices,
        "error": error,
    }
    response = render(request, "crm/members.html", context, status=status)
    if invite_link:
        response["Cache-Control"] = "no-store"  # the link must not stay in any cache
    return response


@login_required
@require_safe
def member_list(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """Members and, for owners and managers, the open invitations. People join only through an
    invitation (crm/views/invitations.py): nothing here looks a username up."""
    membership = _membership_or_404(request, account_id)
    return _members_page(request, membership)


def _member_or_404(
    request: AuthenticatedRequest, account_id: int, membership_id: int
) -> Membership:
    try:
        return selectors.member_get(
            user=request.user, account_id=account_id, membership_id=membership_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
@require_POST
def member_update(
    request: AuthenticatedRequest, account_id: int, membership_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    target = _member_or_404(request, account_id, membership_id)
    form = MembershipRoleForm(request.POST)
    if not form.is_valid():
        return _members_page(request, membership, error="Choose a valid role.", status=400)
    try:
        services.membership_update_role(
            actor=request.user, membership=target, role=form.cleaned_data["role"]
        )
    except ApplicationError as exc:
        return _members_page(request, membership, error=exc.message, status=exc.status_code)
    messages.success(request, f"{target.user.get_username()} is now {target.role}.")
    return redirect("member_list", account_id=account_id)


@login_required
@require_POST
def member_delete(
    request: AuthenticatedRequest, account_id: int, membership_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    target = _member_or_404(request, account_id, membership_id)
    try:
        services.membership_delete(actor=request.user, membership=target)
    except ApplicationError as exc:
        return _members_page(request, membership, error=exc.message, status=exc.status_code)
    messages.success(request, f"Removed {target.user.get_username()}.")
    if target.user_id == request.user.pk:
        return redirect("home")
    return redirect("member_list", account_id=account_id)


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: AuthenticatedRequest) -> HttpResponse:
    """API tokens: create (named; the key is shown in this one answer, never again), list with
    last use, revoke."""
    new_key = ""
    error = ""
    status = 200
    if request.method == "POST":
        action = request.POST.get("action", "create")
        try:
            if action == "revoke":
                token_id = request.POST.get("token_id", "")
                if not token_id.isdigit():
                    raise NotFoundError("No such token.", code="token_not_found")
                token = services.api_token_revoke(user=request.user, token_id=int(token_id))
                messages.success(request, f"Revoked “{token.name}”: it no longer works.")
                return redirect(reverse("settings"))
            _token, new_key = services.api_token_create(
                user=request.user, name=request.POST.get("name", "")
            )
        except ApplicationError as exc:
            error, status = exc.message, exc.status_code
    tokens = selectors.api_tokens_of_user(user=request.user)
    response = render(
        request,
        "crm/settings.html",
        {"tokens": tokens, "new_key": new_key, "error": error},
        status=status,
    )
    if new_key:
        response["Cache-Control"] = "no-store"  # the key must not stay in any cache
    return response
