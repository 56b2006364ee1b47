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

from crm import collision, composer_checks, drafts, notes, selectors, services, snooze, zones
from crm.errors import NotFoundError
from crm.models import Fan, Membership, Message
from crm.sending import send_pipeline
from crm.serializers import (
    AccountSerializer,
    ComposerSettingsSerializer,
    ConversationListParamsSerializer,
    ConversationPageSerializer,
    ConversationSendSerializer,
    ConversationSerializer,
    DraftSerializer,
    DraftWriteSerializer,
    FanCreateSerializer,
    FanDeleteParamsSerializer,
    FanListParamsSerializer,
    FanSerializer,
    FanWriteSerializer,
    MessageListParamsSerializer,
    MessagePageSerializer,
    MessageQueuedSerializer,
    NoteCreateSerializer,
    NoteListParamsSerializer,
    NotePageSerializer,
    NoteSerializer,
    SnoozeSerializer,
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
            mentions=data["mentions"],
            snoozed=data["snoozed"],
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
        results = ConversationSerializer(
            page.conversations, many=True, context={"reply_targets": page.reply_targets}
        ).data
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
                    409: "thread_changed (messages), thread_claimed (claimed_by), "
                    "media_already_sent (items: vault_item_id, platform_media_id, how, "
                    "price_cents, at)",
                    422: "banned_words (banned_words, can_send_anyway), repeated_text (fans, "
                    "window_minutes), media_not_found, media_gone, media_not_ready "
                    "(vault_item_ids)",
                }
            ),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        data = _params(ConversationSendSerializer, request.data)
        actor = _actor(request)

        def checked_send() -> Message:
            # Inside the guard (which holds the thread's row): checks, then the queue.
            composer_checks.check_before_queue(
                account=conversation.account,
                user_id=actor.pk,
                fan_id=conversation.fan_id,
                text=data["text"],
                confirm_banned_words=data["confirm_banned_words"],
                confirm_repeated_text=data["confirm_repeated_text"],
            )
            return send_pipeline().message_enqueue(
                fan=conversation.fan,
                text=data["text"],
                price_cents=data["price_cents"],
                media_ids=data["media_ids"],
                vault_item_ids=data["vault_item_ids"],
                preview_item_ids=data["preview_item_ids"],
                allow_resend=data["allow_resend"],
                sent_by_id=request.user.pk,
            )

        message = collision.message_send_guarded(
            account_id=conversation.account_id,
            conversation_id=conversation.pk,
            author=actor,
            after_message_id=data.get("after_message_id"),
            force=data["force"],
            send=checked_send,
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


# --- Drafts and snooze ----------------------------------------------------------------------


class ConversationDraftApi(APIView):
    """My own draft in a conversation: nobody else's is ever read or written here."""

    @extend_schema(
        operation_id="crm_conversations_draft_get",
        summary="My draft in the conversation",
        responses={
            200: DraftSerializer,
            **error_responses({404: "conversation_not_found, draft_not_found"}),
        },
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        draft = drafts.draft_get(user=request.user, conversation=conversation)
        if draft is None:
            raise NotFoundError("You have no draft in this conversation.", code="draft_not_found")
        return Response(DraftSerializer(draft).data)

    @extend_schema(
        operation_id="crm_conversations_draft_put",
        summary="Keep my draft in the conversation (blank text deletes it)",
        request=DraftWriteSerializer,
        responses={
            200: DraftSerializer,
            204: OpenApiResponse(description="Blank: the draft is deleted."),
            **error_responses(
                {
                    400: "validation_error, invalid_draft",
                    404: "conversation_not_found",
                    409: "draft_stale",
                }
            ),
        },
    )
    def put(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        data = _params(DraftWriteSerializer, request.data)
        draft = drafts.draft_save(
            actor=_actor(request),
            conversation=conversation,
            text=data["text"],
            price_cents=data["price_cents"],
            composer_since=data["composer_since"],
        )
        if draft is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(DraftSerializer(draft).data)

    @extend_schema(
        operation_id="crm_conversations_draft_delete",
        summary="Delete my draft in the conversation (idempotent)",
        responses={
            204: OpenApiResponse(description="Deleted, or there was none."),
            **error_responses({404: "conversation_not_found"}),
        },
    )
    def delete(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        drafts.draft_delete(actor=_actor(request), conversation=conversation)
        return Response(status=status.HTTP_204_NO_CONTENT)


SNOOZE_INVALID = (
    "validation_error, snooze_time_required, snooze_in_past, snooze_too_far, invalid_snooze_until"
)


class ConversationSnoozeApi(APIView):
    @extend_schema(
        operation_id="crm_conversations_snooze",
        summary="Snooze the conversation until a time or until the fan writes",
        description="A snoozed conversation leaves the list (and its unread and waiting "
        "views) until it wakes; ``GET /api/crm/conversations/?snoozed=true`` lists them. "
        "Snoozing again replaces the earlier snooze.",
        request=SnoozeSerializer,
        responses={
            200: ConversationSerializer,
            **error_responses({400: SNOOZE_INVALID, 404: "conversation_not_found"}),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        data = _params(SnoozeSerializer, request.data)
        until = None
        if data["until"]:
            until = snooze.snooze_until_parse(
                value=data["until"], zone=zones.account_zone(conversation.account)
            )
        snooze.conversation_snooze(
            actor=_actor(request),
            conversation=conversation,
            until=until,
            until_reply=data["until_reply"],
        )
        return Response(ConversationSerializer(conversation).data)

    @extend_schema(
        operation_id="crm_conversations_snooze_delete",
        summary="Unsnooze the conversation (as POST …/unsnooze)",
        request=None,
        responses={200: ConversationSerializer, **error_responses({404: "conversation_not_found"})},
    )
    def delete(self, request: Request, conversation_id: int) -> Response:
        return _unsnooze(request, conversation_id)


def _unsnooze(request: Request, conversation_id: int) -> Response:
    conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
    snooze.conversation_unsnooze(actor=_actor(request), conversation=conversation)
    return Response(ConversationSerializer(conversation).data)


class ConversationUnsnoozeApi(APIView):
    @extend_schema(
        operation_id="crm_conversations_unsnooze",
        summary="Unsnooze the conversation now (idempotent)",
        request=None,
        responses={200: ConversationSerializer, **error_responses({404: "conversation_not_found"})},
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        return _unsnooze(request, conversation_id)


# --- Internal notes ---------------------------------------------------------------------------


class ConversationNotesApi(APIView):
    """Notes members leave for one another in a thread; never sent to the fan."""

    @extend_schema(
        operation_id="crm_conversations_notes_list",
        summary="A conversation's internal notes, newest page first (oldest first within it)",
        parameters=[NoteListParamsSerializer],
        responses={
            200: NotePageSerializer,
            **error_responses({400: "validation_error", 404: "conversation_not_found"}),
        },
    )
    def get(self, request: Request, conversation_id: int) -> Response:
        data = _params(NoteListParamsSerializer, request.query_params)
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        page = notes.notes_for_conversation(
            conversation=conversation, before=data["before"], limit=data["limit"]
        )
        results = NoteSerializer(page.notes, many=True).data
        return Response({"results": results, "next_cursor": page.older_cursor})

    @extend_schema(
        operation_id="crm_conversations_notes_create",
        summary="Add an internal note (``@username`` mentions members of the account)",
        request=NoteCreateSerializer,
        responses={
            201: NoteSerializer,
            **error_responses(
                {
                    400: "validation_error, invalid_note, note_too_long",
                    404: "conversation_not_found",
                }
            ),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        data = _params(NoteCreateSerializer, request.data)
        note = notes.note_create(
            actor=_actor(request), conversation=conversation, text=data["text"]
        )
        return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)


class ConversationMentionsClearApi(APIView):
    @extend_schema(
        operation_id="crm_conversations_mentions_clear",
        summary="Clear my mentions in a conversation (it leaves my Mentions filter)",
        request=None,
        responses={
            200: OpenApiResponse(description="``{cleared: n}``"),
            **error_responses({404: "conversation_not_found"}),
        },
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = selectors.conversation_get(
            user=request.user, conversation_id=conversation_id
        )
        cleared = notes.mentions_clear(actor=_actor(request), conversation=conversation)
        return Response({"cleared": cleared})


# --- Composer checks ------------------------------------------------------------------------


class AccountComposerSettingsApi(APIView):
    @extend_schema(
        operation_id="crm_accounts_composer_settings",
        summary="An account's composer checks (banned words and their policy)",
        responses={200: ComposerSettingsSerializer, **error_responses({404: "account_not_found"})},
    )
    def get(self, request: Request, account_id: int) -> Response:
        account = selectors.membership_get(user=request.user, account_id=account_id).account
        return Response(ComposerSettingsSerializer(account).data)

    @extend_schema(
        operation_id="crm_accounts_composer_settings_update",
        summary="Change an account's composer checks (owners and managers)",
        request=ComposerSettingsSerializer(partial=True),
        responses={
            200: ComposerSettingsSerializer,
            **error_responses(
                {
                    400: "validation_error, invalid_banned_words, invalid_policy",
                    403: "permission_denied (chatters)",
                    404: "account_not_found",
                }
            ),
        },
    )
    def patch(self, request: Request, account_id: int) -> Response:
        params = ComposerSettingsSerializer(data=request.data, partial=True)
        params.is_valid(raise_exception=True)
        account = composer_checks.composer_settings_update(
            actor=_actor(request), account_id=account_id, **params.validated_data
        )
        return Response(ComposerSettingsSerializer(account).data)
