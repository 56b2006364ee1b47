"""Shift pages: an account's week and its editor, a member's week, the top bar's clock."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm import selectors, shifts, worktime
from crm.errors import ApplicationError, NotFoundError
from crm.forms import ShiftDayForm, ShiftForm, ShiftSettingsForm
from crm.middleware import work_activity_exempt
from crm.models import Membership, Shift, ShiftTemplate
from crm.shift_access import OffShiftError
from crm.shift_schedule import Week, wall_clock_minutes
from crm.views.pages import AuthenticatedRequest
from crm.zones import account_zone

WEEK_PARAM_MAX = 16
# Form fields of the services' error fields.
_FIELD_OF = {
    "membership": "membership",
    "starts_at": "start",
    "ends_at": "end",
    "active_until": "until",
    "duration_minutes": "end",
    "weekday": "day",
}


def _week_param(request: AuthenticatedRequest) -> str:
    return request.GET.get("week", "")[:WEEK_PARAM_MAX]


def _week_url(account_id: int, week: Week | str) -> str:
    return f"{reverse('shift_week', args=[account_id])}?week={week}"


def _done(request: AuthenticatedRequest, url: str, message: str) -> HttpResponse:
    """After a change: the week again (htmx follows HX-Redirect, a plain form a redirect)."""
    messages.success(request, message)
    if request.htmx:
        response = HttpResponse(status=200)
        response["HX-Redirect"] = url
        return response
    return HttpResponseRedirect(url)


@login_required
@require_safe
def shift_week(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The account's week: members as rows and days as columns (``view=hours``: the hours
    as rows with who works in each); coverage gaps and double bookings marked."""
    try:
        week = shifts.shift_week_get(
            user=request.user, account_id=account_id, week=_week_param(request)
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    context = {
        "sw": week,
        "account": week.account,
        "membership": week.membership,
        "view": "hours" if request.GET.get("view") == "hours" and week.can_edit else "members",
        "settings_form": ShiftSettingsForm(
            initial={
                "shift_only_access": week.account.shift_only_access,
                "shift_grace_minutes": week.account.shift_grace_minutes,
            }
        ),
    }
    return render(request, "crm/shifts/week.html", context)


def _members(request: AuthenticatedRequest, account_id: int) -> list[Membership]:
    return list(selectors.members_for_account(user=request.user, account_id=account_id))


def _editor(
    request: AuthenticatedRequest,
    account_id: int,
    *,
    form: Any,
    action: str,
    title: str,
    status: int = 200,
    extra: dict[str, Any] | None = None,
) -> HttpResponse:
    extra = extra or {}
    context = {
        "form": form,
        "action": action,
        "title": title,
        "account_id": account_id,
        "back_url": _week_url(account_id, _week_param(request) or extra.get("week", "")),
        **extra,
    }
    template = "crm/shifts/editor.html#editor" if request.htmx else "crm/shifts/editor.html"
    return render(request, template, context, status=status)


def _form_errors(form: Any, exc: ApplicationError) -> None:
    placed = False
    for name, errors in exc.fields.items():
        field = _FIELD_OF.get(name)
        if field in form.fields:
            for error in errors:
                form.add_error(field, error)
            placed = True
    form.add_error(None, exc.message)
    if not placed and exc.status_code == 404:
        raise Http404(exc.message)


def _manager_or_404(request: AuthenticatedRequest, account_id: int) -> Membership:
    try:
        return selectors.manager_membership_get(
            user=request.user, account_id=account_id, action=shifts.EDIT_ACTION
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:  # a chatter: the schedule is read-only to them
        raise PermissionDenied(exc.message) from exc


def _day_param(value: str) -> date | None:
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


@login_required
@require_http_methods(["GET", "POST"])
def shift_new(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """Add a shift: once, or every week from its day."""
    editor = _manager_or_404(request, account_id)
    zone = account_zone(editor.account)
    members = _members(request, account_id)
    action = reverse("shift_new", args=[account_id])
    if request.method == "GET":
        initial: dict[str, Any] = {
            "day": _day_param(request.GET.get("day", "")),
            "membership": None,
        }
        member = request.GET.get("member", "")[:20]
        if member.isdigit():
            initial["membership"] = int(member)
        form = ShiftForm(initial=initial, members=members)
        return _editor(request, account_id, form=form, action=action, title="Add a shift")
    form = ShiftForm(request.POST, members=members)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["weekly"]:
                shifts.shift_template_create(
                    actor=request.user,
                    account_id=account_id,
                    membership_id=data["membership"],
                    weekday=data["day"].weekday(),
                    start_time=data["start"],
                    duration_minutes=wall_clock_minutes(data["start"], data["end"]),
                    active_from=data["day"],
                    active_until=data["until"],
                )
            else:
                starts_at, ends_at = shifts.local_span(
                    day=data["day"], start=data["start"], end=data["end"], zone=zone
                )
                shifts.shift_create(
                    actor=request.user,
                    account_id=account_id,
                    membership_id=data["membership"],
                    starts_at=starts_at,
                    ends_at=ends_at,
                )
        except ApplicationError as exc:
            _form_errors(form, exc)
        else:
            week = Week.containing(
                datetime.combine(data["day"], data["start"]).replace(tzinfo=zone), zone
            )
            return _done(request, _week_url(account_id, week), "Shift added.")
    return _editor(request, account_id, form=form, action=action, title="Add a shift", status=422)


def _shift_or_404(request: AuthenticatedRequest, account_id: int, shift_id: int) -> Shift:
    try:
        return shifts.shift_get(user=request.user, account_id=account_id, shift_id=shift_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
@require_http_methods(["GET", "POST"])
def shift_edit(request: AuthenticatedRequest, account_id: int, shift_id: int) -> HttpResponse:
    """Change a one-off shift (or one moved day of a weekly shift)."""
    editor = _manager_or_404(request, account_id)
    shift = _shift_or_404(request, account_id, shift_id)
    zone = account_zone(editor.account)
    members = _members(request, account_id)
    action = reverse("shift_edit", args=[account_id, shift_id])
    local_start, local_end = shift.starts_at.astimezone(zone), shift.ends_at.astimezone(zone)
    extra = {"shift": shift, "week": Week.containing(shift.starts_at, zone)}
    if request.method == "GET":
        form = ShiftForm(
            initial={
                "membership": shift.membership_id,
                "day": local_start.date(),
                "start": local_start.time(),
                "end": local_end.time(),
            },
            members=members,
        )
        return _editor(
            request, account_id, form=form, action=action, title="Change the shift", extra=extra
        )
    form = ShiftForm(request.POST, members=members)
    if form.is_valid():
        data = form.cleaned_data
        starts_at, ends_at = shifts.local_span(
            day=data["day"], start=data["start"], end=data["end"], zone=zone
        )
        try:
            shifts.shift_update(
                actor=request.user,
                account_id=account_id,
                shift_id=shift.pk,
                membership_id=data["membership"],
                starts_at=starts_at,
                ends_at=ends_at,
            )
        except ApplicationError as exc:
            _form_errors(form, exc)
        else:
            week = Week.containing(starts_at, zone)
            return _done(request, _week_url(account_id, week), "Shift saved.")
    return _editor(
        request,
        account_id,
        form=form,
        action=action,
        title="Change the shift",
        status=422,
        extra=extra,
    )


@login_required
@require_POST
def shift_delete(request: AuthenticatedRequest, account_id: int, shift_id: int) -> HttpResponse:
    _manager_or_404(request, account_id)
    shift = _shift_or_404(request, account_id, shift_id)
    week = Week.containing(shift.starts_at, account_zone(shift.account))
    shifts.shift_delete(actor=request.user, account_id=account_id, shift_id=shift_id)
    restored = shift.template_id is not None
    return _done(
        request,
        _week_url(account_id, week),
        "The weekly shift's usual time applies again." if restored else "Shift deleted.",
    )


def _template_or_404(
    request: AuthenticatedRequest, account_id: int, template_id: int
) -> ShiftTemplate:
    try:
        return shifts.shift_template_get(
            user=request.user, account_id=account_id, template_id=template_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
@require_http_methods(["GET", "POST"])
def shift_template_edit(
    request: AuthenticatedRequest, account_id: int, template_id: int
) -> HttpResponse:
    """Change a weekly shift, every week; or (``?day=``) one day of it: move or cancel."""
    editor = _manager_or_404(request, account_id)
    template = _template_or_404(request, account_id, template_id)
    zone = account_zone(editor.account)
    members = _members(request, account_id)
    action = reverse("shift_template_edit", args=[account_id, template_id])
    day = _day_param(request.GET.get("day", ""))
    end_naive = datetime.combine(template.active_from, template.start_time)
    end_time = (end_naive + timedelta(minutes=template.duration_minutes)).time()
    week = Week.containing(
        datetime.combine(day or template.active_from, template.start_time).replace(tzinfo=zone),
        zone,
    )
    extra = {
        "template": template,
        "day": day,
        "day_form": ShiftDayForm(initial={"start": template.start_time, "end": end_time}),
        "week": week,
    }
    title = "Change the weekly shift"
    if request.method == "GET":
        form = ShiftForm(
            initial={
                "membership": template.membership_id,
                "day": template.active_from,
                "start": template.start_time,
                "end": end_time,
                "weekly": True,
                "until": template.active_until,
            },
            members=members,
        )
        return _editor(request, account_id, form=form, action=action, title=title, extra=extra)
    form = ShiftForm(request.POST, members=members)
    if form.is_valid():
        data = form.cleaned_data
        try:
            shifts.shift_template_update(
                actor=request.user,
                account_id=account_id,
                template_id=template.pk,
                membership_id=data["membership"],
                weekday=data["day"].weekday(),
                start_time=data["start"],
                duration_minutes=wall_clock_minutes(data["start"], data["end"]),
                active_from=data["day"],
                active_until=data["until"],
            )
        except ApplicationError as exc:
            _form_errors(form, exc)
        else:
            return _done(request, _week_url(account_id, week), "Weekly shift saved.")
    return _editor(
        request, account_id, form=form, action=action, title=title, status=422, extra=extra
    )


@login_required
@require_POST
def shift_template_delete(
    request: AuthenticatedRequest, account_id: int, template_id: int
) -> HttpResponse:
    _manager_or_404(request, account_id)
    _template_or_404(request, account_id, template_id)
    shifts.shift_template_delete(actor=request.user, account_id=account_id, template_id=template_id)
    return _done(
        request, _week_url(account_id, _week_param(request)), "Weekly shift deleted, every week."
    )


@login_required
@require_POST
def shift_template_day(
    request: AuthenticatedRequest, account_id: int, template_id: int, day: str
) -> HttpResponse:
    """One day of a weekly shift: ``cancel=1`` cancels it, else it moves to the given times."""
    editor = _manager_or_404(request, account_id)
    template = _template_or_404(request, account_id, template_id)
    occurrence_date = _day_param(day)
    if occurrence_date is None:
        raise Http404("No such day.")
    zone = account_zone(editor.account)
    week = Week.containing(
        datetime.combine(occurrence_date, template.start_time).replace(tzinfo=zone), zone
    )
    cancel = request.POST.get("cancel") == "1"
    form = ShiftDayForm(request.POST)
    try:
        if cancel:
            shifts.shift_occurrence_change(
                actor=request.user,
                account_id=account_id,
                template_id=template_id,
                occurrence_date=occurrence_date,
                cancel=True,
            )
        elif form.is_valid():
            starts_at, ends_at = shifts.local_span(
                day=occurrence_date,
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                zone=zone,
            )
            shifts.shift_occurrence_change(
                actor=request.user,
                account_id=account_id,
                template_id=template_id,
                occurrence_date=occurrence_date,
                starts_at=starts_at,
                ends_at=ends_at,
            )
        else:
            raise ApplicationError("Give the day's new start and end.", code="invalid_shift")
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        members = _members(request, account_id)
        return _editor(
            request,
            account_id,
            form=ShiftForm(initial={"membership": template.membership_id}, members=members),
            action=reverse("shift_template_edit", args=[account_id, template_id]),
            title="Change the weekly shift",
            status=422,
            extra={"template": template, "day": occurrence_date, "day_form": form, "week": week},
        )
    return _done(
        request,
        _week_url(account_id, week),
        "That day is cancelled." if cancel else "That day is moved.",
    )


@login_required
@require_POST
def shift_settings(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """Shift-only access on or off, and its grace (owners and managers)."""
    _manager_or_404(request, account_id)
    form = ShiftSettingsForm(request.POST)
    url = _week_url(account_id, request.POST.get("week", "")[:WEEK_PARAM_MAX])
    if not form.is_valid():
        messages.error(request, "The grace period is a number of minutes from 0 to 240.")
        return redirect(url)
    shifts.account_shift_settings_update(
        actor=request.user,
        account_id=account_id,
        shift_only_access=form.cleaned_data["shift_only_access"],
        shift_grace_minutes=form.cleaned_data["shift_grace_minutes"],
    )
    messages.success(request, "Shift settings saved.")
    return redirect(url)


@login_required
@require_safe
def member_week(request: AuthenticatedRequest) -> HttpResponse:
    """A member's week on each of their accounts: yours, or (``?member=``, owners and
    managers) a member of an account you run."""
    member = request.GET.get("member", "")[:20]
    try:
        week = shifts.member_week_get(
            viewer=request.user,
            user_id=int(member) if member.isdigit() else None,
            week=_week_param(request),
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    return render(request, "crm/shifts/member_week.html", {"mw": week})


# --- The top bar's clock ----------------------------------------------------------------------


def _clock(
    request: AuthenticatedRequest, account_id: int, *, error: str = "", status: int = 200
) -> HttpResponse:
    try:
        state = worktime.clock_state_get(user=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    return render(
        request,
        "crm/shifts/clock.html#clock",
        {"clock": state, "error": error, "account_id": account_id},
        status=status,
    )


@work_activity_exempt
@login_required
@require_safe
def clock(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The clock for the top bar (polled every minute; the poll is not activity)."""
    return _clock(request, account_id)


def _next_url(request: AuthenticatedRequest) -> str | None:
    next_url = request.POST.get("next", "")[:2000]
    if next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return next_url
    return None


@login_required
@require_POST
def clock_in(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    error = ""
    try:
        worktime.work_session_clock_in(actor=request.user, account_id=account_id)
    except OffShiftError as exc:
        error = exc.message
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    if request.htmx:
        return _clock(request, account_id, error=error, status=422 if error else 200)
    if error:
        messages.error(request, error)
    return HttpResponseRedirect(_next_url(request) or reverse("inbox", args=[account_id]))


@login_required
@require_POST
def clock_out(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    try:
        worktime.work_session_clock_out(actor=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    if request.htmx:
        return _clock(request, account_id)
    messages.success(request, "Clocked out.")
    return HttpResponseRedirect(_next_url(request) or reverse("shift_week", args=[account_id]))
