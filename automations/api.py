"""Automations API: CRUD and on/off for automations of accounts the user manages, their
figures, and each fan's pending automated messages with cancel.

Owners and managers manage automations (a chatter gets 403 ``permission_denied`` on an
account's list and create, 404 on an automation by id); another account's automation is a
404 ``automation_not_found``. Any member sees a fan's pending runs and may cancel one (as the
fan panel lets them). Errors carry a stable ``code`` (``crm.api_errors``).
"""

from __future__ import annotations

from datetime import time
from typing import Any, cast

from django.contrib.auth.models import User
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automations import figures, selectors, services
from automations.models import Automation, AutomationRun
from automations.runs import automation_run_cancel
from automations.services import DELAY_MAX_SECONDS, TRIGGER_VALUE_MAX, AutomationInput
from crm.selectors import fan_get
from crm.serializers import error_responses

INVALID = "validation_error, invalid_automation, invalid_rules, invalid_message"


def _actor(request: Request) -> User:
    return cast(User, request.user)


class AutomationWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    trigger = serializers.ChoiceField(choices=Automation.Trigger.choices)
    trigger_value = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=max(TRIGGER_VALUE_MAX.values()),
        help_text="N hours (expiring_soon, ppv_not_unlocked), days (expired_days_ago) or "
        "minutes (no_reply); 0 for the event triggers.",
    )
    text = serializers.CharField(
        max_length=5000,
        trim_whitespace=False,
        help_text="{name} and {username}, with fallbacks like {name|babe}.",
    )
    price_cents = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=20000,
        help_text="0 (free) or 300 to 20000; a paid message needs vault_item_ids or media_ids.",
    )
    vault_item_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=50,
        help_text="Media from the account's vault (our ids, in order). Each must be the "
        "account's and ready (not removed on the platform, not processing): refused with "
        "invalid_automation otherwise. Checked again when each message is queued; a run whose "
        "media was removed since is skipped (media_unavailable).",
    )
    media_ids = serializers.ListField(
        child=serializers.CharField(max_length=100),
        required=False,
        default=list,
        max_length=50,
        help_text="Raw platform media ids, sent after the vault items (for scripts).",
    )
    delay_seconds = serializers.IntegerField(
        required=False, default=0, min_value=0, max_value=DELAY_MAX_SECONDS
    )
    delay_spread_seconds = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=DELAY_MAX_SECONDS,
        help_text="Up to this many seconds more, at random per run.",
    )
    rules = serializers.DictField(
        required=False,
        default=dict,
        help_text="Filters as a campaign segment's rules (spend_min_cents, spend_max_cents, "
        "include_tags, exclude_tags, subscription_states, exclude_messaged_within_hours, "
        "exclude_waiting, ...); fan_ids are refused.",
    )
    quiet_hours_start = serializers.TimeField(required=False, allow_null=True, default=None)
    quiet_hours_end = serializers.TimeField(required=False, allow_null=True, default=None)
    control_percent = serializers.IntegerField(required=False, default=0, min_value=0, max_value=50)
    block_banned_words = serializers.ChoiceField(
        choices=Automation.BannedWords.choices, required=False, default=""
    )


class AutomationCreateSerializer(AutomationWriteSerializer):
    account = serializers.IntegerField(min_value=1)
    enabled = serializers.BooleanField(required=False, default=False)


class AutomationUpdateSerializer(AutomationWriteSerializer):
    """Every field optional: what is left out keeps its value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for item in self.fields.values():
            item.required = False
            # No defaults: a field left out must not overwrite the current value.
            item.default = serializers.empty


class ArmSerializer(serializers.Serializer):
    runs = serializers.IntegerField()
    revenue_cents = serializers.IntegerField()


class UpliftSerializer(serializers.Serializer):
    treated_runs = serializers.IntegerField()
    control_runs = serializers.IntegerField()
    treated_revenue_per_fan_cents = serializers.FloatField(allow_null=True)
    control_revenue_per_fan_cents = serializers.FloatField(allow_null=True)
    uplift_per_fan_cents = serializers.FloatField(
        allow_null=True, help_text="Treated minus control revenue per triggered fan."
    )
    interval_95_cents = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="95 % interval [low, high] (Welch, normal approximation); null while "
        "either group has fewer than min_arm_size runs.",
    )
    method = serializers.CharField()
    min_arm_size = serializers.IntegerField()
    verdict = serializers.ChoiceField(
        choices=["no_control", "not_enough_data", "positive", "negative", "unclear"]
    )


class FiguresSerializer(serializers.Serializer):
    triggered = serializers.IntegerField()
    pending = serializers.IntegerField()
    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    held_control = serializers.IntegerField()
    cancelled = serializers.DictField(child=serializers.IntegerField(), help_text="By reason.")
    skipped = serializers.DictField(child=serializers.IntegerField(), help_text="By reason.")
    replied = serializers.IntegerField()
    unlocks = serializers.IntegerField()
    unlock_revenue_cents = serializers.IntegerField()
    revenue_cents = serializers.IntegerField()
    attribution_hours = serializers.IntegerField()
    uplift = UpliftSerializer()


class AutomationSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")

    class Meta:
        model = Automation
        fields = [
            "id",
            "account",
            "name",
            "trigger",
            "trigger_value",
            "text",
            "price_cents",
            "vault_item_ids",
            "media_ids",
            "delay_seconds",
            "delay_spread_seconds",
            "rules",
            "quiet_hours_start",
            "quiet_hours_end",
            "control_percent",
            "block_banned_words",
            "enabled",
            "enabled_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AutomationWithFiguresSerializer(AutomationSerializer):
    figures = FiguresSerializer(source="_figures")

    class Meta(AutomationSerializer.Meta):
        fields = [*AutomationSerializer.Meta.fields, "figures"]
        read_only_fields = fields


class AutomationPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AutomationWithFiguresSerializer(many=True)


class AutomationListParamsSerializer(serializers.Serializer):
    account = serializers.IntegerField(min_value=1)


class PendingRunSerializer(serializers.ModelSerializer):
    automation_name = serializers.CharField(source="automation.name")
    trigger = serializers.CharField(source="automation.trigger")

    class Meta:
        model = AutomationRun
        fields = [
            "id",
            "automation",
            "automation_name",
            "trigger",
            "fan",
            "state",
            "triggered_at",
            "due_at",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    class Meta:
        model = AutomationRun
        fields = ["id", "automation", "fan", "state", "reason", "due_at", "finished_at"]
        read_only_fields = fields


def _with_figures(automations: list[Automation]) -> list[dict[str, Any]]:
    by_id = figures.automations_figures(automations=automations)
    for automation in automations:
        automation._figures = by_id[automation.pk].as_json()  # type: ignore[attr-defined]
    return cast(list[dict[str, Any]], AutomationWithFiguresSerializer(automations, many=True).data)


def _input(data: dict[str, Any]) -> AutomationInput:
    return AutomationInput(
        name=data["name"],
        trigger=data["trigger"],
        trigger_value=data["trigger_value"],
        text=data["text"],
        price_cents=data["price_cents"],
        media_ids=tuple(data["media_ids"]),
        vault_item_ids=tuple(data["vault_item_ids"]),
        delay_seconds=data["delay_seconds"],
        delay_spread_seconds=data["delay_spread_seconds"],
        rules=dict(data["rules"]),
        quiet_hours_start=data["quiet_hours_start"],
        quiet_hours_end=data["quiet_hours_end"],
        control_percent=data["control_percent"],
        block_banned_words=data["block_banned_words"],
    )


def _current(automation: Automation) -> dict[str, Any]:
    quiet: tuple[time | None, time | None] = (
        automation.quiet_hours_start,
        automation.quiet_hours_end,
    )
    return {
        "name": automation.name,
        "trigger": automation.trigger,
        "trigger_value": automation.trigger_value,
        "text": automation.text,
        "price_cents": automation.price_cents,
        "media_ids": list(automation.media_ids),
        "vault_item_ids": list(automation.vault_item_ids),
        "delay_seconds": automation.delay_seconds,
        "delay_spread_seconds": automation.delay_spread_seconds,
        "rules": dict(automation.rules or {}),
        "quiet_hours_start": quiet[0],
        "quiet_hours_end": quiet[1],
        "control_percent": automation.control_percent,
        "block_banned_words": automation.block_banned_words,
    }


_LIST_ERRORS = error_responses(
    {400: "validation_error", 403: "permission_denied (chatters)", 404: "account_not_found"}
)
_DETAIL_ERRORS = error_responses({404: "automation_not_found (another account's, or a chatter)"})


class AutomationListApi(APIView):
    @extend_schema(
        operation_id="automations_list",
        summary="An account's automations with their figures",
        parameters=[
            AutomationListParamsSerializer,
            OpenApiParameter("limit", int, description="Page size (default 50)."),
            OpenApiParameter("offset", int, description="Rows to skip."),
        ],
        responses={200: AutomationPageSerializer, **_LIST_ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = AutomationListParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        qs = selectors.automations_for_account(
            user=request.user, account_id=params.validated_data["account"]
        )
        paginator = LimitOffsetPagination()
        page = cast(list[Automation], paginator.paginate_queryset(qs, request, view=self) or [])
        return paginator.get_paginated_response(_with_figures(page))

    @extend_schema(
        operation_id="automations_create",
        summary="Create an automation (off unless enabled=true)",
        request=AutomationCreateSerializer,
        responses={
            201: AutomationWithFiguresSerializer,
            **error_responses(
                {
                    400: INVALID,
                    403: "permission_denied (chatters)",
                    404: "account_not_found",
                    409: "duplicate_automation (the name is taken)",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        params = AutomationCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        automation = services.automation_create(
            actor=_actor(request),
            account_id=data["account"],
            data=_input(data),
            enabled=data["enabled"],
        )
        return Response(_with_figures([automation])[0], status=status.HTTP_201_CREATED)


class AutomationDetailApi(APIView):
    @extend_schema(
        operation_id="automations_retrieve",
        summary="An automation with its figures",
        responses={200: AutomationWithFiguresSerializer, **_DETAIL_ERRORS},
    )
    def get(self, request: Request, automation_id: int) -> Response:
        automation = selectors.automation_get(user=request.user, automation_id=automation_id)
        return Response(_with_figures([automation])[0])

    @extend_schema(
        operation_id="automations_partial_update",
        summary="Change an automation (fields left out keep their values)",
        request=AutomationUpdateSerializer,
        responses={
            200: AutomationWithFiguresSerializer,
            **error_responses(
                {
                    400: INVALID,
                    404: "automation_not_found",
                    409: "duplicate_automation, trigger_locked (it has run: make a new one)",
                }
            ),
        },
    )
    def patch(self, request: Request, automation_id: int) -> Response:
        automation = selectors.automation_get(user=request.user, automation_id=automation_id)
        params = AutomationUpdateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = {**_current(automation), **params.validated_data}
        automation = services.automation_update(
            actor=_actor(request), automation=automation, data=_input(data)
        )
        return Response(_with_figures([automation])[0])

    @extend_schema(
        operation_id="automations_destroy",
        summary="Delete an automation and its runs (the messages it sent stay)",
        responses={204: None, **_DETAIL_ERRORS},
    )
    def delete(self, request: Request, automation_id: int) -> Response:
        automation = selectors.automation_get(user=request.user, automation_id=automation_id)
        services.automation_delete(actor=_actor(request), automation=automation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AutomationEnableApi(APIView):
    @extend_schema(
        operation_id="automations_enable",
        summary="Turn an automation on (it fires for trigger events from now on)",
        request=None,
        responses={200: AutomationWithFiguresSerializer, **_DETAIL_ERRORS},
    )
    def post(self, request: Request, automation_id: int) -> Response:
        automation = selectors.automation_get(user=request.user, automation_id=automation_id)
        automation = services.automation_enable(actor=_actor(request), automation=automation)
        return Response(_with_figures([automation])[0])


class AutomationDisableApi(APIView):
    @extend_schema(
        operation_id="automations_disable",
        summary="Turn an automation off (its pending runs are cancelled: disabled)",
        request=None,
        responses={200: AutomationWithFiguresSerializer, **_DETAIL_ERRORS},
    )
    def post(self, request: Request, automation_id: int) -> Response:
        automation = selectors.automation_get(user=request.user, automation_id=automation_id)
        automation = services.automation_disable(actor=_actor(request), automation=automation)
        return Response(_with_figures([automation])[0])


class AutomationFiguresApi(APIView):
    @extend_schema(
        operation_id="automations_figures",
        summary="An automation's figures: triggered, sent, cancelled by reason, held out, "
        "replies, unlocks, revenue and the uplift against its control group",
        responses={200: FiguresSerializer, **_DETAIL_ERRORS},
    )
    def get(self, request: Request, automation_id: int) -> Response:
        automation = selectors.automation_get(user=request.user, automation_id=automation_id)
        return Response(figures.automation_figures(automation=automation).as_json())


class FanPendingRunsApi(APIView):
    @extend_schema(
        operation_id="automations_fan_pending",
        summary="A fan's pending automated messages, soonest first (any member)",
        responses={
            200: PendingRunSerializer(many=True),
            **error_responses({404: "fan_not_found"}),
        },
    )
    def get(self, request: Request, fan_id: int) -> Response:
        fan = fan_get(user=request.user, fan_id=fan_id)
        runs = selectors.runs_pending_for_fan(user=request.user, fan=fan)
        return Response(PendingRunSerializer(runs, many=True).data)


class RunCancelApi(APIView):
    @extend_schema(
        operation_id="automations_run_cancel",
        summary="Cancel a pending automated message (reason manual; any member)",
        request=None,
        responses={
            200: RunSerializer,
            **error_responses(
                {
                    404: "automation_run_not_found",
                    409: "not_pending (it went already, or ended)",
                }
            ),
        },
    )
    def post(self, request: Request, run_id: int) -> Response:
        run = selectors.automation_run_get(user=request.user, run_id=run_id)
        run = automation_run_cancel(run=run, by_user=_actor(request))
        return Response(RunSerializer(run).data)
