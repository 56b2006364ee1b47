"""Which creator account the user is working on (the account switcher keeps it in the session)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import sync_and_async_middleware
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import SimpleLazyObject

from crm.models import Membership
from crm.shift_access import OffShiftError
from crm.worktime import work_session_touch

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


# --- Shifts: page activity and the off-shift page (crm/worktime.py, crm/shift_access.py) ----


def work_activity_exempt(view: Any) -> Any:
    """Mark a view whose requests are not the member's activity (the clock's own poll)."""
    view.work_activity_exempt = True
    return view


class WorkActivityMiddleware(MiddlewareMixin):
    """A request to one of an account's pages (``/accounts/<account_id>/…``) is activity of
    a clocked-in member there: one Redis call (``crm.worktime.work_session_touch``); the
    off-shift refusal of a shift-only account is rendered as a page (403) here, whichever
    view or service raised it, and an htmx request is told to reload into it."""

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: dict[str, Any]
    ) -> None:
        account_id = view_kwargs.get("account_id")
        if (
            account_id is None
            or getattr(view_func, "work_activity_exempt", False)
            or not request.user.is_authenticated
        ):
            return None
        work_session_touch(user_id=request.user.pk, account_id=int(account_id))
        return None

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OffShiftError):
            return None
        response = render(
            request,
            "crm/off_shift.html",
            {
                "account": exception.account,
                "access": exception.access,
                "message": exception.message,
                "zone_name": exception.account.time_zone,
            },
            status=403,
        )
        if getattr(request, "htmx", False):
            response["HX-Refresh"] = "true"
        return response
