"""Messages API: queue a send, watch its status, list and retry failures, pipeline status."""

from __future__ import annotations

import time
from typing import Any, cast

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from config.redis import redis_client
from crm.collision import message_send_guarded
from crm.composer_checks import check_before_queue
from crm.models import Message
from crm.selectors import fan_conversation_id
from crm.serializers import MessageQueuedSerializer, error_responses
from crm.throttling import UserRedisThrottle
from onlyfans import selectors, services


class SendInputSerializer(serializers.Serializer):
    fan_id = serializers.IntegerField(min_value=1)
    text = serializers.CharField(max_length=5000, trim_whitespace=False)
    price_cents = serializers.IntegerField(required=False, default=0, min_value=0)
    media_ids = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=50
    )
    after_message_id = serializers.IntegerField(required=False, min_value=0)
    force = serializers.BooleanField(required=False, default=False)
    # The composer's checks (crm.composer_checks): 422 banned_words / repeated_text unless
    # confirmed (banned words only where the account's policy allows "send anyway").
    confirm_banned_words = serializers.BooleanField(required=False, default=False)
    confirm_repeated_text = serializers.BooleanField(required=False, default=False)


class MessageSerializer(serializers.ModelSerializer):
    message_id = serializers.IntegerField(source="id")
    fan_id = serializers.IntegerField(source="conversation.fan_id")

    class Meta:
        model = Message
        fields = [
            "message_id",
            "account_id",
            "fan_id",
            "conversation_id",
            "status",
            "attempts",
            "last_error",
            "price_cents",
            "platform_message_id",
            "queued_at",
            "sent_at",
            "updated_at",
        ]


class FailedMessagePageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = MessageSerializer(many=True)


class RateLimitStatusSerializer(serializers.Serializer):
    per_minute = serializers.IntegerField()
    min_interval_ms = serializers.IntegerField()
    tokens_left = serializers.IntegerField()
    next_free_slot_in_seconds = serializers.FloatField()


class AccountPipelineStatusSerializer(serializers.Serializer):
    account_id = serializers.IntegerField()
    display_name = serializers.CharField()
    connection_state = serializers.CharField()
    queued = serializers.IntegerField()
    sending = serializers.IntegerField()
    on_broker = serializers.IntegerField()
    sent_today = serializers.IntegerField()
    failed_today = serializers.IntegerField()
    queued_today = serializers.IntegerField()
    failure_rate_today = serializers.FloatField()
    last_processed_at = serializers.DateTimeField(allow_null=True)
    rate_limit = RateLimitStatusSerializer()


class BrokerStatusSerializer(serializers.Serializer):
    """Approximate SQS counts, shared by every account; null when SQS does not answer."""

    queue_depth = serializers.IntegerField(allow_null=True)
    delayed = serializers.IntegerField(allow_null=True)
    in_flight = serializers.IntegerField(allow_null=True)
    dead_letter = serializers.IntegerField(allow_null=True)


class PipelineStatusSerializer(serializers.Serializer):
    accounts = AccountPipelineStatusSerializer(many=True)
    broker = BrokerStatusSerializer()


class SendThrottle(UserRedisThrottle):
    """Sends per user on top of the general API rate, both counted in one Redis round trip
    (two throttle classes cost two, on the path every send takes).

    The same promise as ``[UserRedisThrottle, SendThrottle]`` in DRF: each request counts
    against both windows, and a refusal waits for the later of the windows it broke.
    """

    scope = "send"

    def allow_request(self, request: Request, view: APIView) -> bool:
        scopes = []
        for scope in ("user", "send"):
            limit, period = self.parse_rate(self.THROTTLE_RATES.get(scope))
            if limit is not None and period is not None:
                scopes.append((scope, limit, period))
        if not scopes:
            return True
        ident = request.user.pk if request.user.is_authenticated else self.get_ident(request)
        now = time.time()
        pipe = redis_client().pipeline(transaction=False)
        windows = []
        for scope, _limit, period in scopes:
            window = int(now // period)
            key = f"throttle:{scope}:{ident}:{window}"
            pipe.incr(key)
            pipe.expire(key, period + 1)
            windows.append(window)
        replies = pipe.execute()
        waits = [
            (window + 1) * period - now
            for (_scope, limit, period), window, count in zip(
                scopes, windows, replies[::2], strict=True
            )
            if count > limit
        ]
        self._wait = max(waits, default=0.0)
        return not waits


class MessageSendApi(APIView):
    throttle_classes = [SendThrottle]

    @extend_schema(
        operation_id="onlyfans_messages_send",
        summary="Send a message to a fan (queued for the send pipeline)",
        request=SendInputSerializer,
        responses={
            202: MessageQueuedSerializer,
            **error_responses(
                {
                    400: "validation_error, invalid_message",
                    404: "fan_not_found",
                    409: "thread_changed (messages), thread_claimed (claimed_by)",
                    422: "banned_words (banned_words, can_send_anyway), repeated_text (fans, "
                    "window_minutes)",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = SendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fan = selectors.send_target_get(user=request.user, fan_id=data.validated_data["fan_id"])

        def send() -> Message:
            # Inside the guard, when there is one (it holds the thread's row): the composer's
            # checks, then the queue.
            check_before_queue(
                account=fan.account,
                user_id=cast(int, request.user.pk),
                fan_id=fan.pk,
                text=data.validated_data["text"],
                confirm_banned_words=data.validated_data["confirm_banned_words"],
                confirm_repeated_text=data.validated_data["confirm_repeated_text"],
            )
            return services.message_enqueue(
                fan=fan,
                text=data.validated_data["text"],
                price_cents=data.validated_data["price_cents"],
                media_ids=data.validated_data["media_ids"],
                sent_by_id=request.user.pk,
            )

        after_message_id = data.validated_data.get("after_message_id")
        if after_message_id is None:
            message = send()
        else:  # the collision guard (crm/collision.py): 409 thread_changed / thread_claimed
            message = message_send_guarded(
                account_id=fan.account_id,
                conversation_id=fan_conversation_id(fan=fan),
                author=cast(User, request.user),  # authenticated: the API's permission
                after_message_id=after_message_id,
                force=data.validated_data["force"],
                send=send,
            )
        message.account = fan.account  # loaded with the fan; the estimate reads it
        estimate = selectors.message_estimated_send_at(message=message)
        return Response(
            {
                "message_id": message.pk,
                "status": message.status,
                "queued_at": message.queued_at,
                "estimated_send_at": max(estimate, timezone.now()),
                "account_connected": fan.account.is_connected,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class MessageDetailApi(APIView):
    @extend_schema(
        operation_id="onlyfans_messages_retrieve",
        summary="A message and its send status",
        responses={200: MessageSerializer, **error_responses({404: "message_not_found"})},
    )
    def get(self, request: Request, message_id: int) -> Response:
        message = selectors.message_get(user=request.user, message_id=message_id)
        return Response(MessageSerializer(message).data)


class MessageRetryApi(APIView):
    @extend_schema(
        operation_id="onlyfans_messages_retry",
        summary="Queue a failed message again (same idempotency key)",
        description="A campaign's message is resent only from its campaign: 409 "
        "``campaign_message`` with its ``campaign_id``. An automation's message withdrawn "
        "before it was sent (the fan or a member wrote first) is not sent again: 409 "
        "``automation_withdrawn``.",
        request=None,
        responses={
            202: MessageSerializer,
            **error_responses(
                {
                    404: "message_not_found",
                    409: "not_failed, campaign_message (campaign_id), automation_withdrawn",
                }
            ),
        },
    )
    def post(self, request: Request, message_id: int) -> Response:
        message = selectors.message_get(user=request.user, message_id=message_id)
        message = services.message_retry(message=message)
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


class FailedMessagesApi(APIView):
    @extend_schema(
        operation_id="onlyfans_messages_failed_list",
        summary="Failed messages, most recently failed first",
        parameters=[
            OpenApiParameter("account", int, description="Only this creator account's."),
            OpenApiParameter("limit", int, description="Page size (default 50)."),
            OpenApiParameter("offset", int, description="Rows to skip."),
        ],
        responses={
            200: FailedMessagePageSerializer,
            **error_responses({400: "validation_error", 404: "account_not_found"}),
        },
    )
    def get(self, request: Request) -> Response:
        account = request.query_params.get("account")
        account_id = None
        if account is not None:
            if not account.isdigit():
                raise serializers.ValidationError({"account": ["Must be an account id."]})
            account_id = selectors.account_get_for_user(
                user=request.user, account_id=int(account)
            ).pk
        qs = selectors.failed_messages(user=request.user, account_id=account_id).select_related(
            "conversation"
        )
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)


class PipelineStatusApi(APIView):
    @extend_schema(
        operation_id="onlyfans_messages_status",
        summary="The send pipeline's figures per account, and the broker's depths",
        responses={200: PipelineStatusSerializer, **error_responses({})},
    )
    def get(self, request: Request) -> Response:
        return Response(selectors.pipeline_status(user=request.user))


WEBHOOK_SCHEMA: dict[str, Any] = {
    "post": {
        "operationId": "onlyfans_webhooks_receive",
        "summary": "Platform webhooks (for the gateway, not for API clients)",
        "description": "Signed with ``Signature`` (hex HMAC-SHA256 of the raw body, the "
        "webhook secret) and deduplicated by a hash of that body (and the platform's ids in "
        "it); ``X-OFAPI-Idempotency-Key`` is not signed and only logged. Events: "
        "messages.received, messages.ppv.unlocked, transactions.new, subscriptions.new, "
        "subscriptions.renewed, accounts.session_expired, accounts.reconnected; others are "
        "recorded and ignored. See onlyfans/webhooks.py for the payloads.",
        "tags": ["onlyfans"],
        "security": [],
        "parameters": [
            {"name": "Signature", "in": "header", "required": True, "schema": {"type": "string"}},
            {
                "name": "X-OFAPI-Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "event": {"type": "string"},
                            "account_id": {"type": "string", "nullable": True},
                            "payload": {"type": "object", "additionalProperties": True},
                        },
                        "required": ["event"],
                    }
                }
            },
        },
        "responses": {
            "200": {
                "description": "status: accepted (handled, or ignored: an unknown account or "
                "event, alike on purpose) or duplicate (this body was seen before)",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "status": {
                                    "type": "string",
                                    "enum": ["accepted", "duplicate"],
                                }
                            },
                        }
                    }
                },
            },
            "400": {"description": "code: malformed_json, invalid_event, invalid_payload"},
            "401": {"description": "code: invalid_signature"},
        },
    }
}


def schema_add_webhook(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the webhook is a plain Django view (it verifies its
    own signature), so the generator cannot see it; document it by hand."""
    result.setdefault("paths", {})["/api/onlyfans/webhooks"] = WEBHOOK_SCHEMA
    return result
