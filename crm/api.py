"""JSON API for creator accounts, fans and the inbox; every read is scoped to the caller's
memberships, and every error is ``{code, detail, errors?}`` (see crm/api_errors.py)."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import APIView

from crm import collision, selectors, services
from crm.models import Fan, Membership
from crm.sending import send_pipeline
from crm.serializers import (
    AccountSerializer,
    ConversationListParamsSerializer,
    ConversationPageSerializer,
    ConversationSendSerializer,
    ConversationSerializer,
    FanCreateSerializer,
    FanDeleteParamsSerializer,
    FanListParamsSerializer,
    FanSerializer,
    FanWriteSerializer,
    MessageListParamsSerializer,
    MessagePageSerializer,
    MessageQueuedSerializer,
    ThreadMessageSerializer,
    error_responses,
)
from crm.throttling import UserRedisThrottle

FAN_INVALID = "validation_error, invalid_fan, invalid_tag, too_many_tags"


def _actor(request: Request) -> User:
    # IsAuthenticated has run: the user is a real one.
    return cast(User, request.user)


def _params(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    params = serializer_class(data=data)
    params.is_valid(raise_exception=True)
    return dict(params.validated_data)


def _cursor_page(request: Request, results: Any, next_cursor: str | None) -> Response:
    next_url = None
    if next_cursor is not None:
        next_url = replace_query_param(request.build_absolute_uri(), "cursor", next_cursor)
    return Response({"results": results, "next_cursor": next_cursor, "next": next_url})


class AccountListApi(ListAPIView):
    serializer_class = AccountSerializer

    @extend_schema(
        summary="My creator accounts, with my role in each",
        responses={200: AccountSerializer(many=True), **error_responses({})},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Membership]:
        return selectors.memberships_for_user(user=self.request.user).order_by(
            "account__display_name", "account_id"
        )


class FanListApi(ListAPIView):
    serializer_class = FanSerializer

    @extend_schema(
        summary="An account's fans",
        parameters=[FanListParamsSerializer],
        responses={
            200: FanSerializer(many=True),
            **error_responses({400: "validation_error", 404: "account_not_found"}),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self) -> QuerySet[Fan]:
        data = _params(FanListParamsSerializer, self.request.query_params)
        return selectors.fans_for_account(
            user=self.request.user,
            account_id=data["account"],
            query=data["q"],
            tag=data["tag"],
            subscription_state=data["subscription_state"],
            sort=data["sort"],
        )

    @extend_schema(
        summary="Add a fan to an account (owners and managers)",
        request=FanCreateSerializer,
        responses={
            201: FanSerializer,
            **error_responses(
                {
                    400: FAN_INVALID,
                    403: "permission_denied (chatters)",
                    404: "account_not_found",
                    409: "duplicate_fan",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = _params(FanCreateSerializer, request.data)
        account_id = data.pop("account")
        fan = services.fan_create(actor=_actor(request), account_id=account_id, **data)
        return Response(FanSerializer(fan).data, status=status.HTTP_201_CREATED)


class FanDetailApi(APIView):
    """A fan of one of my accounts; anyone else's fan is a 404 ``fan_not_found``."""

    @extend_schema(
        summary="One fan",
        responses={200: FanSerializer, **error_responses({404: "fan_not_found"})},
    )
    def get(self, request: Request, fan_id: int) -> Response:
        fan = selectors.fan_get(user=request.user, fan_id=fan_id)
        return Response(FanSerializer(fan).data)

    @extend_schema(
        summary="Change some of a fan's fields (chatters: tags and notes only)",
        description="Owners and managers may change every field below; a chatter who sends "
        "any field but ``tags`` and ``notes`` gets a 403 ``permission_denied`` naming those "
        "fields in ``errors``, and nothing is changed.",
        request=FanWriteSerializer(partial=True),
        responses={
            200: FanSerializer,
            **error_responses(
                {
                    400: FAN_INVALID,
                    403: "permission_denied (chatters changing other fields)",
                    404: "fan_not_found",
                    409: "duplicate_fan",
                }
            ),
        },
    )
    def patch(self, request: Request, fan_id: int) -> Response:
        fan = selectors.fan_get(user=request.user, fan_id=fan_id)
        params = FanWriteSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        fan = services.fan_change(actor=_actor(request), fan=fan, **params.validated_data)
        return Response(FanSerializer(fan).data)

    @extend_schema(
        summary="Delete a fan (owners and managers)",
        description="A fan with messages or purchases is kept (409 ``fan_has_history``) "
        'unless an owner forces it with ``?force=1`` (or ``{"force": true}`` in the body); '
        "forcing deletes their conversation, messages and purchases too.",
        parameters=[FanDeleteParamsSerializer],
        request=FanDeleteParamsSerializer,
        responses={
            204: OpenApiResponse(description="Deleted."),
            **error_responses(
                {
                    400: "validation_error",
                    403: "permission_denied (chatters; managers forcing)",
                    404: "fan_not_found",
                    409: "fan_has_history",
                }
            ),
        },
    )
    def delete(self, request: Request, fan_id: int) -> Response:
        fan = selectors.fan_get(user=request.user, fan_id=fan_id)
        in_query = _params(FanDeleteParamsSerializer, request.query_params)["force"]
        in_body = _params(FanDeleteParamsSerializer, request.data)["force"]
        services.fan_delete(actor=_actor(request), fan=fan, force=in_query or in_body)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Inbox ----------------------------------------------------------------------------------


class ConversationListApi(APIView):
    @extend_schema(
        operation_id="crm_conversations_list",
        summary="An account's conversations (the inbox), one cursor page",
        description="Only conversations with at least one message. Pass ``next_cursor`` back "
        "as ``cursor`` with the same filters for the next page.",
        parameters=[ConversationListParamsSerializer],
        responses={
            200: ConversationPageSerializer,
            **error_responses({400: "validation_error, invalid_cursor", 404: "account_not_found"}),
        },
    )
    def get(self, request: Request) -> Response:
        data = _params(ConversationListParamsSerializer, request.query_params)
        filters = selectors.InboxFilters(
            query=data["q"],
            unread=data["unread"],
            waiting=data["waiting"],
            mine=data["mine"],
            tag=data["tag"],
            subscription_state=data["subscription_state"],
            sort=data["sort"],
        )
        page = selectors.conversations_for_account(
            user=request.user,
            account_id=data["account"],
            filters=filters,
            cursor=data["cursor"],
            limit=data["limit"],
        )
        results = ConversationSerializer(page.conversations, many=True).data
        return _cursor_page(request, results, page.next_cursor)


class ConversationSendThrottle(UserRedisThrottle):
    """Shares the ``send`` budget (and its Redis counter) with ``/api/onlyfans/messages/send``."""

    scope = "send"


class ConversationMessagesApi(APIView):
    def get_throttles(self) -> list[BaseThrottle]:
        throttles = super().get_throttles()
        if self.request.method == "POST":
            throttles.append(ConversationSendThrottle())
        return throttles

    @extend_schema(
        operation_id="crm_conversations_messages_list",
        summary="A conversation's messages, newest page first",
        description="Each page holds up to ``limit`` messages (100 by default), oldest first; "
        "``next_cursor`` leads to the page of older messages.",
        parameters=[MessageListParamsSerializer],
        responses={
            200: MessagePageSerializer,
            **error_responses(
                {400: "validation_error, invalid_cursor", 404: "conversation_not_found"}
            ),
        },
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        data = _params(MessageListParamsSerializer, request.query_params)
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        page = selectors.conversation_messages(
            conversation=conversation, before=data["cursor"], limit=data["limit"]
        )
        results = ThreadMessageSerializer(page.messages, many=True).data
        return _cursor_page(request, results, page.older_cursor)

    @extend_schema(
        operation_id="crm_conversations_messages_send",
        summary="Send a message in the conversation (queued for the send pipeline)",
        description="Answers like ``POST /api/onlyfans/messages/send``: the message is queued "
        "and leaves within the account's send rate.",
        request=ConversationSendSerializer,
        responses={
            202: MessageQueuedSerializer,
            **error_responses(
                {
                    400: "validation_error, invalid_message",
                    404: "conversation_not_found",
                    409: "thread_changed (messages), thread_claimed (claimed_by)",
                }
            ),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        data = _params(ConversationSendSerializer, request.data)
        message = collision.message_send_guarded(
            account_id=conversation.account_id,
            conversation_id=conversation.pk,
            author=_actor(request),
            after_message_id=data.get("after_message_id"),
            force=data["force"],
            send=lambda: send_pipeline().message_enqueue(
                fan=conversation.fan,
                text=data["text"],
                price_cents=data["price_cents"],
                media_ids=data["media_ids"],
                sent_by_id=request.user.pk,
            ),
        )
        message.account = conversation.account  # loaded already; the estimate reads it
        estimate = send_pipeline().message_estimated_send_at(message=message)
        body = {
            "message_id": message.pk,
            "status": message.status,
            "queued_at": message.queued_at,
            "estimated_send_at": max(estimate, timezone.now()),
            "account_connected": conversation.account.is_connected,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class ConversationReadApi(APIView):
    @extend_schema(
        operation_id="crm_conversations_read",
        summary="Mark a conversation read",
        request=None,
        responses={200: ConversationSerializer, **error_responses({404: "conversation_not_found"})},
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        services.conversation_mark_read(actor=_actor(request), conversation=conversation)
        return Response(ConversationSerializer(conversation).data)
