"""JSON API for shifts, the clock and worked time (``/api/crm/…``): the same services and the
same scoping as the pages (crm/shifts.py, crm/worktime.py); errors are ``{code, detail}``."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from crm import shifts, worktime
from crm.errors import NotFoundError
from crm.models import SHIFT_MAX_MINUTES, ShiftTemplate, WorkSession
from crm.serializers import CursorPageSerializer, error_responses
from crm.shift_schedule import Occurrence

SHIFT_INVALID = "validation_error, invalid_shift, invalid_member, shift_overlap"
EDIT_ERRORS = {
    400: SHIFT_INVALID,
    403: "permission_denied (chatters)",
    404: "account_not_found, shift_not_found",
}


def _actor(request: Request) -> User:
    return cast(User, request.user)


def _params(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    params = serializer_class(data=data)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


# --- Serializers ------------------------------------------------------------------------------


class ShiftOccurrenceSerializer(serializers.Serializer):
    """One scheduled shift: a one-off (``shift_id``), or a weekly shift's occurrence on a local
    day (``weekly_shift_id`` and ``occurrence_date``; with ``shift_id`` too when that day was
    moved)."""

    key = serializers.CharField()
    account_id = serializers.IntegerField()
    membership_id = serializers.IntegerField()
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    shift_id = serializers.IntegerField(allow_null=True)
    weekly_shift_id = serializers.IntegerField(allow_null=True, source="template_id")
    occurrence_date = serializers.DateField(allow_null=True)


class PeriodParamsSerializer(serializers.Serializer):
    start = serializers.DateTimeField(help_text="From (inclusive), with its offset.")
    end = serializers.DateTimeField(help_text="To (exclusive); at most 62 days after start.")
    member = serializers.IntegerField(
        required=False, allow_null=True, default=None, help_text="One membership id only."
    )


class ShiftWriteSerializer(serializers.Serializer):
    membership = serializers.IntegerField(help_text="The member's membership id.")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class ShiftSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    membership = serializers.IntegerField(source="membership_id")
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()
    weekly_shift_id = serializers.IntegerField(allow_null=True, source="template_id")
    occurrence_date = serializers.DateField(allow_null=True)
    cancelled = serializers.BooleanField()


class WeeklyShiftSerializer(serializers.ModelSerializer):
    membership = serializers.IntegerField(source="membership_id")
    weekday = serializers.IntegerField(
        min_value=0, max_value=6, help_text="0 = Monday … 6 = Sunday."
    )
    start_time = serializers.TimeField(help_text="Local wall-clock time (account's zone).")
    duration_minutes = serializers.IntegerField(min_value=1, max_value=SHIFT_MAX_MINUTES)
    active_until = serializers.DateField(required=False, allow_null=True, default=None)

    class Meta:
        model = ShiftTemplate
        fields = [
            "id",
            "membership",
            "weekday",
            "start_time",
            "duration_minutes",
            "active_from",
            "active_until",
        ]
        read_only_fields = ["id"]


class WeeklyShiftDaySerializer(serializers.Serializer):
    cancel = serializers.BooleanField(default=False, help_text="Cancel that day.")
    starts_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    ends_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class MemberWeekRowSerializer(serializers.Serializer):
    account_id = serializers.IntegerField(source="membership.account_id")
    membership_id = serializers.IntegerField(source="membership.pk")
    time_zone = serializers.CharField(source="membership.account.time_zone")
    week = serializers.CharField()
    shifts = serializers.SerializerMethodField()
    total_hours = serializers.FloatField()

    def get_shifts(self, row: Any) -> list[dict[str, Any]]:
        occurrences = [o for day in row.days for o in day]
        return ShiftOccurrenceSerializer(occurrences, many=True).data  # type: ignore[return-value]


class MemberWeekSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    week = serializers.CharField(source="week_label")
    accounts = MemberWeekRowSerializer(many=True, source="rows")


class ClockSerializer(serializers.Serializer):
    clocked_in = serializers.BooleanField()
    work_session_id = serializers.IntegerField(allow_null=True)
    started_at = serializers.DateTimeField(allow_null=True)
    worked_seconds = serializers.IntegerField(help_text="In the open session so far.")
    may_clock_in = serializers.BooleanField()
    shift_only_access = serializers.BooleanField(help_text="The rule applies to this member.")
    next_shift_starts_at = serializers.DateTimeField(allow_null=True)


class WorkSessionSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")

    class Meta:
        model = WorkSession
        fields = [
            "id",
            "user_id",
            "username",
            "started_at",
            "ended_at",
            "end_reason",
            "last_activity_at",
        ]


class WorkedTotalSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    worked_seconds = serializers.IntegerField()
    sessions = serializers.IntegerField()


class WorkedTimeSerializer(CursorPageSerializer):
    totals = WorkedTotalSerializer(many=True, help_text="Per member, over the whole period.")
    results = WorkSessionSerializer(many=True, help_text="One page of sessions, by start.")


class WorkedTimeParamsSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    user = serializers.IntegerField(required=False, allow_null=True, default=None)
    cursor = serializers.CharField(required=False, default="", max_length=64)
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=200)


class ClockOutSerializer(serializers.Serializer):
    user = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Another member's user id (owners and managers).",
    )


def _clock_data(state: worktime.ClockState) -> dict[str, Any]:
    return {
        "clocked_in": state.clocked_in,
        "work_session_id": state.session.pk if state.session else None,
        "started_at": state.session.started_at if state.session else None,
        "worked_seconds": state.worked_seconds,
        "may_clock_in": state.may_clock_in,
        "shift_only_access": state.access.restricted,
        "next_shift_starts_at": state.access.next.starts_at if state.access.next else None,
    }


# --- Views ------------------------------------------------------------------------------------


class AccountShiftsApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_shifts_list",
        summary="An account's shifts in a period (everyone's for owners and managers)",
        description="One-off shifts and weekly shifts' occurrences, by start. A chatter sees "
        "their own.",
        parameters=[PeriodParamsSerializer],
        responses={
            200: ShiftOccurrenceSerializer(many=True),
            **error_responses({400: "validation_error, invalid_period", 404: "account_not_found"}),
        },
    )
    def get(self, request: Request, account_id: int) -> Response:
        data = _params(PeriodParamsSerializer, request.query_params)
        occurrences: list[Occurrence] = shifts.shifts_for_period(
            user=request.user,
            account_id=account_id,
            start=data["start"],
            end=data["end"],
            membership_id=data["member"],
        )
        return Response(ShiftOccurrenceSerializer(occurrences, many=True).data)

    @extend_schema(
        operation_id="crm_accounts_shifts_create",
        summary="Add a one-off shift (owners and managers)",
        request=ShiftWriteSerializer,
        responses={201: ShiftSerializer, **error_responses(EDIT_ERRORS)},
    )
    def post(self, request: Request, account_id: int) -> Response:
        data = _params(ShiftWriteSerializer, request.data)
        shift = shifts.shift_create(
            actor=_actor(request),
            account_id=account_id,
            membership_id=data["membership"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
        )
        return Response(ShiftSerializer(shift).data, status=status.HTTP_201_CREATED)


class AccountShiftDetailApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_shifts_update",
        summary="Change a one-off shift, or a moved day of a weekly one (owners and managers)",
        request=ShiftWriteSerializer,
        responses={200: ShiftSerializer, **error_responses(EDIT_ERRORS)},
    )
    def put(self, request: Request, account_id: int, shift_id: int) -> Response:
        data = _params(ShiftWriteSerializer, request.data)
        shift = shifts.shift_update(
            actor=_actor(request),
            account_id=account_id,
            shift_id=shift_id,
            membership_id=data["membership"],
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
        )
        return Response(ShiftSerializer(shift).data)

    @extend_schema(
        operation_id="crm_accounts_shifts_delete",
        summary="Delete a one-off shift, or undo a weekly shift's one-day change",
        request=None,
        responses={204: None, **error_responses(EDIT_ERRORS)},
    )
    def delete(self, request: Request, account_id: int, shift_id: int) -> Response:
        shifts.shift_delete(actor=_actor(request), account_id=account_id, shift_id=shift_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountWeeklyShiftsApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_weekly_shifts_list",
        summary="An account's weekly shifts (a chatter: their own)",
        responses={
            200: WeeklyShiftSerializer(many=True),
            **error_responses({404: "account_not_found"}),
        },
    )
    def get(self, request: Request, account_id: int) -> Response:
        templates = shifts.shift_templates_for_account(user=request.user, account_id=account_id)
        return Response(WeeklyShiftSerializer(templates, many=True).data)

    @extend_schema(
        operation_id="crm_accounts_weekly_shifts_create",
        summary="Add a weekly shift (owners and managers)",
        description="Every ``weekday`` from ``active_from`` (moved to the first such day) to "
        "``active_until``, at ``start_time`` local for ``duration_minutes`` of wall-clock time.",
        request=WeeklyShiftSerializer,
        responses={201: WeeklyShiftSerializer, **error_responses(EDIT_ERRORS)},
    )
    def post(self, request: Request, account_id: int) -> Response:
        data = _params(WeeklyShiftSerializer, request.data)
        template = shifts.shift_template_create(
            actor=_actor(request),
            account_id=account_id,
            membership_id=data["membership_id"],
            weekday=data["weekday"],
            start_time=data["start_time"],
            duration_minutes=data["duration_minutes"],
            active_from=data["active_from"],
            active_until=data["active_until"],
        )
        return Response(WeeklyShiftSerializer(template).data, status=status.HTTP_201_CREATED)


class AccountWeeklyShiftDetailApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_weekly_shifts_update",
        summary="Change a weekly shift, every week (owners and managers)",
        request=WeeklyShiftSerializer,
        responses={200: WeeklyShiftSerializer, **error_responses(EDIT_ERRORS)},
    )
    def put(self, request: Request, account_id: int, weekly_shift_id: int) -> Response:
        data = _params(WeeklyShiftSerializer, request.data)
        template = shifts.shift_template_update(
            actor=_actor(request),
            account_id=account_id,
            template_id=weekly_shift_id,
            membership_id=data["membership_id"],
            weekday=data["weekday"],
            start_time=data["start_time"],
            duration_minutes=data["duration_minutes"],
            active_from=data["active_from"],
            active_until=data["active_until"],
        )
        return Response(WeeklyShiftSerializer(template).data)

    @extend_schema(
        operation_id="crm_accounts_weekly_shifts_delete",
        summary="Delete a weekly shift, every week, with its one-day changes",
        request=None,
        responses={204: None, **error_responses(EDIT_ERRORS)},
    )
    def delete(self, request: Request, account_id: int, weekly_shift_id: int) -> Response:
        shifts.shift_template_delete(
            actor=_actor(request), account_id=account_id, template_id=weekly_shift_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AccountWeeklyShiftDayApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_weekly_shifts_day",
        summary="Move or cancel one day of a weekly shift (owners and managers)",
        request=WeeklyShiftDaySerializer,
        responses={200: ShiftSerializer, **error_responses(EDIT_ERRORS)},
    )
    def put(self, request: Request, account_id: int, weekly_shift_id: int, day: str) -> Response:
        try:
            occurrence_date = date.fromisoformat(day[:10])
        except ValueError as exc:
            raise NotFoundError("No such day.", code="shift_not_found") from exc
        data = _params(WeeklyShiftDaySerializer, request.data)
        shift = shifts.shift_occurrence_change(
            actor=_actor(request),
            account_id=account_id,
            template_id=weekly_shift_id,
            occurrence_date=occurrence_date,
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            cancel=data["cancel"],
        )
        return Response(ShiftSerializer(shift).data)


class MyShiftsApi(APIView):
    @extend_schema(
        operation_id="crm_shifts_mine",
        summary="A member's week on each of their accounts (mine, or ?member= for managers)",
        parameters=[
            OpenApiParameter("week", str, description="ISO week, e.g. 2026-W10 (default: now)."),
            OpenApiParameter("member", int, description="Another member's user id."),
        ],
        responses={200: MemberWeekSerializer, **error_responses({404: "member_not_found"})},
    )
    def get(self, request: Request) -> Response:
        member = request.query_params.get("member", "")[:20]
        week = shifts.member_week_get(
            viewer=request.user,
            user_id=int(member) if member.isdigit() else None,
            week=request.query_params.get("week", "")[:16],
        )
        data = MemberWeekSerializer(week).data
        return Response(data)


class ClockApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_clock",
        summary="My clock on an account: clocked in or not, worked so far, next shift",
        responses={200: ClockSerializer, **error_responses({404: "account_not_found"})},
    )
    def get(self, request: Request, account_id: int) -> Response:
        state = worktime.clock_state_get(user=request.user, account_id=account_id)
        return Response(_clock_data(state))


class ClockInApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_clock_in",
        summary="Clock in on an account (my open session if I already am)",
        description="On a shift-only account a chatter outside their shift ± grace gets 403 "
        "``off_shift`` with ``next_shift_starts_at``.",
        request=None,
        responses={
            200: ClockSerializer,
            **error_responses({403: "off_shift", 404: "account_not_found"}),
        },
    )
    def post(self, request: Request, account_id: int) -> Response:
        worktime.work_session_clock_in(actor=_actor(request), account_id=account_id)
        state = worktime.clock_state_get(user=request.user, account_id=account_id)
        return Response(_clock_data(state))


class ClockOutApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_clock_out",
        summary="Clock out (me, or a member: owners and managers)",
        request=ClockOutSerializer,
        responses={
            200: WorkSessionSerializer,
            204: None,
            **error_responses({403: "permission_denied", 404: "account_not_found"}),
        },
    )
    def post(self, request: Request, account_id: int) -> Response:
        data = _params(ClockOutSerializer, request.data)
        session = worktime.work_session_clock_out(
            actor=_actor(request), account_id=account_id, user_id=data["user"]
        )
        if session is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(WorkSessionSerializer(session).data)


class WorkedTimeApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_worked_time",
        summary="Worked time on an account for a period: totals per member and the sessions",
        description="Owners and managers see everyone's (or ``user``'s); a chatter their own. "
        "Totals are clipped to the period; an open session counts to now. Sessions come by "
        "start, one cursor page at a time.",
        parameters=[WorkedTimeParamsSerializer],
        responses={
            200: WorkedTimeSerializer,
            **error_responses(
                {400: "validation_error, invalid_period, invalid_cursor", 404: "account_not_found"}
            ),
        },
    )
    def get(self, request: Request, account_id: int) -> Response:
        data = _params(WorkedTimeParamsSerializer, request.query_params)
        worked = worktime.worked_time_get(
            actor=request.user,
            account_id=account_id,
            start=data["start"],
            end=data["end"],
            user_id=data["user"],
            cursor=data["cursor"],
            limit=data["limit"],
        )
        next_url = None
        if worked.next_cursor is not None:
            next_url = replace_query_param(
                request.build_absolute_uri(), "cursor", worked.next_cursor
            )
        return Response(
            {
                "totals": worked.totals,
                "results": WorkSessionSerializer(worked.sessions, many=True).data,
                "next_cursor": worked.next_cursor,
                "next": next_url,
            }
        )
