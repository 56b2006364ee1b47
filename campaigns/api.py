"""Campaigns API: create, launch, pause, resume, cancel, read with progress and results; and
the bulk send (``POST /api/messages/bulk``), a campaign to an explicit list of fans.

Owners and managers only (a chatter gets 403 ``permission_denied``); another account's
campaigns are 404s, and another account's fan ids a 400 ``foreign_fans`` naming them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from campaigns import mass, selectors, services
from campaigns.models import Campaign
from crm.serializers import error_responses
from crm.throttling import UserRedisThrottle

INVALID = "validation_error, invalid_campaign, invalid_rules, invalid_message"


def _actor(request: Request) -> User:
    return cast(User, request.user)


class CampaignCreateSerializer(serializers.Serializer):
    account = serializers.IntegerField(min_value=1)
    name = serializers.CharField(max_length=200)
    text = serializers.CharField(max_length=5000, trim_whitespace=False)
    price_cents = serializers.IntegerField(required=False, default=0, min_value=0)
    media_ids = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=50
    )
    rules = serializers.DictField(
        required=False, default=dict, help_text="A segment's rules (see Rules)."
    )
    fan_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=10_000,
        help_text="An explicit list of fans (the same as rules.fan_ids).",
    )
    segment_id = serializers.IntegerField(required=False, allow_null=True, default=None)
    mode = serializers.ChoiceField(
        choices=Campaign.Mode.choices, required=False, default="individual"
    )
    drain_window_minutes = serializers.IntegerField(required=False, allow_null=True, default=None)
    control_percent = serializers.IntegerField(required=False, default=0, min_value=0, max_value=50)
    scheduled_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    block_banned_words = serializers.ChoiceField(
        choices=Campaign.BannedWords.choices, required=False, default=""
    )
    launch = serializers.BooleanField(
        required=False, default=False, help_text="Launch at once (or at scheduled_at)."
    )


class ProgressSerializer(serializers.Serializer):
    recipients = serializers.IntegerField()
    control = serializers.IntegerField()
    queued = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    withdrawn = serializers.IntegerField()
    held = serializers.IntegerField(
        help_text="Queued messages a paused campaign holds back (they leave on resume)."
    )
    remaining = serializers.IntegerField()
    percent = serializers.IntegerField()
    rate_per_minute = serializers.FloatField()
    seconds_left = serializers.FloatField(allow_null=True)
    failed_reasons = serializers.ListField(child=serializers.DictField())
    mass = serializers.DictField()


class GroupResultsSerializer(serializers.Serializer):
    fans = serializers.IntegerField()
    replied = serializers.IntegerField()
    reply_rate = serializers.FloatField()
    purchases = serializers.IntegerField()
    revenue_cents = serializers.IntegerField()
    revenue_per_fan_cents = serializers.IntegerField(help_text="Rounded to whole cents.")


class ResultsSerializer(serializers.Serializer):
    recipients = GroupResultsSerializer()
    control = GroupResultsSerializer(allow_null=True)
    uplift_per_fan_cents = serializers.IntegerField(
        allow_null=True, help_text="Rounded to whole cents."
    )


class CampaignSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")

    class Meta:
        model = Campaign
        fields = [
            "id",
            "account",
            "name",
            "text",
            "price_cents",
            "media_ids",
            "rules",
            "segment_id",
            "mode",
            "sent_as",
            "state",
            "drain_window_minutes",
            "control_percent",
            "block_banned_words",
            "scheduled_at",
            "launched_at",
            "finished_at",
            "recipients_total",
            "control_total",
            "unlinked_skipped",
            "preflight",
            "created_at",
        ]
        read_only_fields = fields


class CampaignDetailSerializer(CampaignSerializer):
    progress = ProgressSerializer(source="_progress")
    results = ResultsSerializer(source="_results")

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "progress", "results"]
        read_only_fields = fields


class CampaignListParamsSerializer(serializers.Serializer):
    account = serializers.IntegerField(min_value=1)


class CampaignListItemSerializer(CampaignSerializer):
    sent = serializers.IntegerField(source="_counts.sent")
    failed = serializers.IntegerField(source="_counts.failed")
    pending = serializers.IntegerField(source="_counts.pending")

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "sent", "failed", "pending"]
        read_only_fields = fields


class CampaignPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CampaignListItemSerializer(many=True)


def _detail(campaign: Campaign) -> dict[str, Any]:
    campaign._progress = selectors.campaign_progress(campaign=campaign).as_json()  # type: ignore[attr-defined]
    campaign._results = selectors.campaign_results(campaign=campaign).as_json()  # type: ignore[attr-defined]
    return dict(CampaignDetailSerializer(campaign).data)


def _input(data: dict[str, Any]) -> services.CampaignInput:
    rules = dict(data["rules"])
    if data["fan_ids"]:
        rules["fan_ids"] = data["fan_ids"]
    return services.CampaignInput(
        name=data["name"],
        text=data["text"],
        price_cents=data["price_cents"],
        media_ids=tuple(data["media_ids"]),
        rules=rules,
        segment_id=data["segment_id"],
        mode=data["mode"],
        drain_window_minutes=data["drain_window_minutes"],
        control_percent=data["control_percent"],
        scheduled_at=data["scheduled_at"],
        block_banned_words=data["block_banned_words"],
    )


class CampaignListApi(APIView):
    @extend_schema(
        operation_id="campaigns_list",
        summary="An account's campaigns, newest first, with their send counts",
        parameters=[
            CampaignListParamsSerializer,
            OpenApiParameter("limit", int, description="Page size (default 50)."),
            OpenApiParameter("offset", int, description="Rows to skip."),
        ],
        responses={
            200: CampaignPageSerializer,
            **error_responses(
                {
                    400: "validation_error",
                    403: "permission_denied (chatters)",
                    404: "account_not_found",
                }
            ),
        },
    )
    def get(self, request: Request) -> Response:
        params = CampaignListParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        qs = selectors.campaigns_for_account(
            user=request.user, account_id=params.validated_data["account"]
        )
        paginator = LimitOffsetPagination()
        page = cast(list[Campaign], paginator.paginate_queryset(qs, request, view=self) or [])
        counts = selectors.campaigns_send_counts(campaigns=page)
        for campaign in page:
            campaign._counts = counts.get(campaign.pk, selectors.SendCounts())  # type: ignore[attr-defined]
        return paginator.get_paginated_response(CampaignListItemSerializer(page, many=True).data)

    @extend_schema(
        operation_id="campaigns_create",
        summary="Create a campaign (a draft, or launched with launch=true)",
        description="The audience is ``rules`` (see Rules) and/or ``fan_ids``. Fan ids that "
        "are not the account's fans are a 400 ``foreign_fans`` whose ``fan_ids`` lists them.",
        request=CampaignCreateSerializer,
        responses={
            201: CampaignDetailSerializer,
            **error_responses(
                {
                    400: f"{INVALID}, foreign_fans",
                    403: "permission_denied (chatters)",
                    404: "account_not_found",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        params = CampaignCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        campaign = services.campaign_create(
            actor=_actor(request), account_id=data["account"], data=_input(data)
        )
        if data["launch"]:
            campaign = services.campaign_launch(actor=_actor(request), campaign=campaign)
        return Response(_detail(campaign), status=status.HTTP_201_CREATED)


class CampaignDetailApi(APIView):
    @extend_schema(
        operation_id="campaigns_retrieve",
        summary="A campaign with its progress and results",
        responses={200: CampaignDetailSerializer, **error_responses({404: "campaign_not_found"})},
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        mass.campaign_progress_refresh(campaign=campaign)
        return Response(_detail(campaign))


ACTIONS = {
    "launch": services.campaign_launch,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "cancel": services.campaign_cancel,
    "unsend": services.campaign_unsend,
}


class CampaignActionApi(APIView):
    action_name = ""

    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = selectors.campaign_get(user=request.user, campaign_id=campaign_id)
        campaign = ACTIONS[self.action_name](actor=_actor(request), campaign=campaign)
        return Response(_detail(campaign))


def _action_view(
    name: str, summary: str, conflicts: str = "not_launchable, invalid_state"
) -> type[CampaignActionApi]:
    schema = extend_schema(
        operation_id=f"campaigns_{name}",
        summary=summary,
        request=None,
        responses={
            200: CampaignDetailSerializer,
            **error_responses(
                {
                    403: "permission_denied (chatters)",
                    404: "campaign_not_found",
                    409: conflicts,
                }
            ),
        },
    )

    class View(CampaignActionApi):
        action_name = name

        @schema
        def post(self, request: Request, campaign_id: int) -> Response:
            return super().post(request, campaign_id)

    View.__name__ = f"Campaign{name.title()}Api"
    View.__qualname__ = View.__name__
    return View


CampaignLaunchApi = _action_view("launch", "Launch a draft (now, or at its scheduled time)")
CampaignPauseApi = _action_view("pause", "Pause a running campaign (queued messages are held)")
CampaignResumeApi = _action_view("resume", "Resume a paused campaign")
CampaignCancelApi = _action_view(
    "cancel", "Cancel: nothing more is sent; queued messages are withdrawn"
)
CampaignUnsendApi = _action_view(
    "unsend",
    "Unsend a platform mass message while the platform's window lasts (progress.mass."
    "unsend_until); chunks not sent yet are cancelled, sent ones unsent in the background",
    conflicts="not_unsendable (not a mass message, or the window is over), already_unsent",
)


class BulkSendSerializer(serializers.Serializer):
    fan_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=10_000
    )
    text = serializers.CharField(max_length=5000, trim_whitespace=False)
    price_cents = serializers.IntegerField(required=False, default=0, min_value=0)
    media_ids = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=50
    )
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    mode = serializers.ChoiceField(
        choices=Campaign.Mode.choices, required=False, default=Campaign.Mode.INDIVIDUAL
    )


class BulkSendAcceptedSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    total_recipients = serializers.IntegerField()
    estimated_completion_at = serializers.DateTimeField()
    mode = serializers.CharField()


class BulkThrottle(UserRedisThrottle):
    scope = "send"


class BulkSendApi(APIView):
    throttle_classes = [UserRedisThrottle, BulkThrottle]

    @extend_schema(
        operation_id="messages_bulk_send",
        summary="Send one message to a list of fans (creates and launches a campaign)",
        description="Up to 10,000 fan ids of one account (the first id's). Individual mode "
        "by default: one personalised message per fan through the send pipeline. Ids that "
        "are not fans of that account are a 400 ``foreign_fans`` naming them in ``fan_ids``; "
        "unlinked fans are left out (counted in the campaign's ``unlinked_skipped``).",
        request=BulkSendSerializer,
        responses={
            202: BulkSendAcceptedSerializer,
            **error_responses(
                {
                    400: f"{INVALID}, foreign_fans",
                    403: "permission_denied (chatters)",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        params = BulkSendSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        campaign = services.campaign_bulk_send(
            actor=_actor(request),
            fan_ids=data["fan_ids"],
            text=data["text"],
            price_cents=data["price_cents"],
            media_ids=data["media_ids"],
            name=data["name"],
            mode=data["mode"],
        )
        estimate = (campaign.preflight.get("estimates") or {}).get(campaign.send_mode) or {}
        started = campaign.launched_at or timezone.now()
        body = {
            "campaign_id": campaign.pk,
            "total_recipients": campaign.recipients_total,
            "estimated_completion_at": started + timedelta(seconds=estimate.get("seconds", 0)),
            "mode": campaign.send_mode,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)
