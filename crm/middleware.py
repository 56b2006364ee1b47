"""Which creator account the user is working on (the account switcher keeps it in the session)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware
from django.utils.functional import SimpleLazyObject

from crm.models import Membership

SESSION_KEY = "current_account_id"


def current_membership(request: HttpRequest) -> Membership | None:
    """The membership for the session's chosen account, else the user's first one."""
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user_id=user.pk).select_related("account")
    chosen = request.session.get(SESSION_KEY)
    if chosen is not None:
        membership = memberships.filter(account_id=chosen).first()
        if membership is not None:
            return membership
    return memberships.order_by("account__display_name", "account_id").first()


@sync_and_async_middleware
def CurrentAccountMiddleware(get_response: Any) -> Any:
    """Sets ``request.current_membership`` lazily: no query unless a page uses it."""

    def attach(request: HttpRequest) -> None:
        request.current_membership = SimpleLazyObject(lambda: current_membership(request))  # type: ignore[attr-defined]

    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            attach(request)
            return await get_response(request)

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        attach(request)
        return get_response(request)

    return middleware
