"""Messages API: queue a send, watch its status, list and retry failures, pipeline status."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.models import Message
from crm.selectors import fan_get
from crm.throttling import UserRedisThrottle
from onlyfans import selectors, services


class SendInputSerializer(serializers.Serializer):
    fan_id = serializers.IntegerField(min_value=1)
    text = serializers.CharField(max_length=5000, trim_whitespace=False)
    price_cents = serializers.IntegerField(required=False, default=0, min_value=0)
    media_ids = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=50
    )


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


class SendThrottle(UserRedisThrottle):
    """Sends per user, on top of the general API rate."""

    scope = "send"


class MessageSendApi(APIView):
    throttle_classes = [UserRedisThrottle, SendThrottle]

    def post(self, request: Request) -> Response:
        data = SendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fan = fan_get(user=request.user, fan_id=data.validated_data["fan_id"])
        message = services.message_enqueue(
            fan=fan,
            text=data.validated_data["text"],
            price_cents=data.validated_data["price_cents"],
            media_ids=data.validated_data["media_ids"],
            sent_by_id=request.user.pk,
        )
        estimate = selectors.message_estimated_send_at(message=message)
        return Response(
            {
                "message_id": message.pk,
                "status": message.status,
                "queued_at": message.queued_at,
                "estimated_send_at": max(estimate, timezone.now()),
                "account_connected": message.account.is_connected,
            },
            status=status.HTTP_202_ACCEPTED,
        )


class MessageDetailApi(APIView):
    def get(self, request: Request, message_id: int) -> Response:
        message = selectors.message_get(user=request.user, message_id=message_id)
        return Response(MessageSerializer(message).data)


class MessageRetryApi(APIView):
    def post(self, request: Request, message_id: int) -> Response:
        message = selectors.message_get(user=request.user, message_id=message_id)
        message = services.message_retry(message=message)
        return Response(MessageSerializer(message).data, status=status.HTTP_202_ACCEPTED)


class FailedMessagesApi(APIView):
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
    def get(self, request: Request) -> Response:
        return Response(selectors.pipeline_status(user=request.user))
