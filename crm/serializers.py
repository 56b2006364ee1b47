from __future__ import annotations

from datetime import datetime

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from crm.models import DRAFT_TEXT_MAX_LENGTH, Conversation, Draft, Fan, Membership, Message
from crm.response_targets import ReplyTargets, reply_due
from crm.selectors import INBOX_PAGE_SIZE, INBOX_SORTS, THREAD_PAGE_SIZE


class AccountSerializer(serializers.ModelSerializer):
    """A creator account as seen by one member (serializes their Membership)."""

    id = serializers.IntegerField(source="account.id")
    display_name = serializers.CharField(source="account.display_name")
    platform_account_id = serializers.CharField(source="account.platform_account_id")
    connection_state = serializers.CharField(source="account.connection_state")
    send_rate_per_minute = serializers.IntegerField(source="account.send_rate_per_minute")
    send_min_interval_ms = serializers.IntegerField(source="account.send_min_interval_ms")

    class Meta:
        model = Membership
        fields = [
            "id",
            "display_name",
            "platform_account_id",
            "connection_state",
            "role",
            "send_rate_per_minute",
            "send_min_interval_ms",
        ]
        read_only_fields = fields


class FanSerializer(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")

    class Meta:
        model = Fan
        fields = [
            "id",
            "account",
            "platform_fan_id",
            "username",
            "display_name",
            "email",
            "tags",
            "notes",
            "lifetime_spend_cents",
            "subscription_state",
            "subscribed_at",
            "subscription_expires_at",
            "last_seen_at",
            "updated_at",
        ]
        read_only_fields = fields


class FanListParamsSerializer(serializers.Serializer):
    account = serializers.IntegerField(min_value=1)
    q = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    tag = serializers.CharField(required=False, allow_blank=True, max_length=50, default="")
    subscription_state = serializers.ChoiceField(
        choices=Fan.SubscriptionState.choices, required=False, allow_blank=True, default=""
    )
    sort = serializers.ChoiceField(choices=["spend", "last_seen"], required=False, default="spend")


# --- Errors (the body of every 4xx answer, see crm/api_errors.py) ----------------------------


class ErrorSerializer(serializers.Serializer):
    """Every API error: a stable ``code`` to switch on and a ``detail`` for people; ``errors``
    maps input fields to their messages when the error is about specific fields."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. fan_not_found.")
    detail = serializers.CharField(help_text="What went wrong, for people.")
    retry_after_seconds = serializers.IntegerField(
        required=False, help_text="With code throttled: seconds until the next request may pass."
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        # Added here: a declared ``errors`` field would hide Serializer.errors.
        fields = super().get_fields()
        fields["errors"] = serializers.DictField(
            child=serializers.JSONField(),
            required=False,
            help_text="Per input field, a list of messages (for a list or nested field, "
            "keyed by index or sub-field).",
        )
        return fields


def error_responses(errors: dict[int, str]) -> dict[int, OpenApiResponse]:
    """Schema responses for the given statuses (``{404: "fan_not_found"}``), plus the 401 and
    429 answers every endpoint can give. The description lists the codes a client may see."""
    every = {
        401: "not_authenticated, authentication_failed (missing or bad bearer token)",
        429: "throttled (retry_after_seconds says when to try again)",
    }
    return {
        status: OpenApiResponse(ErrorSerializer, description=f"code: {codes}")
        for status, codes in sorted({**every, **errors}.items())
    }


# --- Cursor pages ------------------------------------------------------------------------------


class CursorPageSerializer(serializers.Serializer):
    """``{results, next_cursor, next}``: pass ``next_cursor`` back as ``cursor`` (or follow
    ``next``) for the following page; both are null on the last page."""

    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.URLField(allow_null=True, help_text="The next page's absolute URL.")


# --- Conversations -----------------------------------------------------------------------------


def _query_flag(help_text: str) -> serializers.BooleanField:
    return serializers.BooleanField(required=False, default=False, help_text=help_text)


class CursorParamsSerializer(serializers.Serializer):
    cursor = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=64,
        help_text="next_cursor of the previous page; empty for the first page.",
    )


class ConversationListParamsSerializer(CursorParamsSerializer):
    account = serializers.IntegerField(min_value=1, help_text="The creator account's id.")
    sort = serializers.ChoiceField(
        choices=list(INBOX_SORTS),
        required=False,
        default="recent",
        help_text="recent: newest activity first; waiting: only conversations where the fan "
        "waits for a reply, longest waiting first.",
    )
    unread = _query_flag("Only conversations with unread messages.")
    waiting = _query_flag("Only conversations where the fan waits for a reply.")
    mine = _query_flag("Only conversations assigned to me.")
    mentions = _query_flag("Only conversations where a note names me that I have not seen.")

    snoozed = _query_flag(
        "Only snoozed conversations. Without it, snoozed ones are left out (a search ``q`` "
        "finds them still)."
    )
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=150,
        default="",
        help_text="Part of the fan's username or display name.",
    )
    tag = serializers.CharField(
        required=False, allow_blank=True, max_length=50, default="", help_text="A fan tag."
    )
    subscription_state = serializers.ChoiceField(
        choices=Fan.SubscriptionState.choices, required=False, allow_blank=True, default=""
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=100, required=False, default=INBOX_PAGE_SIZE
    )


class MessageListParamsSerializer(CursorParamsSerializer):
    limit = serializers.IntegerField(
        min_value=1, max_value=100, required=False, default=THREAD_PAGE_SIZE
    )


class UserBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class FanBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Fan
        fields = [
            "id",
            "platform_fan_id",
            "username",
            "display_name",
            "tags",
            "subscription_state",
            "lifetime_spend_cents",
            "last_seen_at",
        ]
        read_only_fields = fields


class ConversationSerializer(serializers.ModelSerializer):
    """A row of the inbox; ``fan`` and ``assigned_to`` come with the conversation's query."""

    account = serializers.IntegerField(source="account_id")
    fan = FanBriefSerializer()
    assigned_to = UserBriefSerializer(allow_null=True)
    snoozed = serializers.SerializerMethodField(help_text="Snoozed now (see snoozed_until).")
    snoozed_until_reply = serializers.SerializerMethodField(
        help_text="Snoozed with no time: it wakes when the fan writes."
    )
    reply_due_at = serializers.SerializerMethodField(
        help_text="When the first reply is due: waiting_since plus the account's first-reply "
        "target (the VIP one for a fan at or above its spend threshold); overdue once past. "
        "Null when nobody waits."
    )

    class Meta:
        model = Conversation
        fields = [
            "id",
            "account",
            "fan",
            "last_message_at",
            "last_message_preview",
            "last_message_direction",
            "unread_count",
            "waiting_since",
            "reply_due_at",
            "assigned_to",
            "snoozed",
            "snoozed_until",
            "snoozed_until_reply",
            "woke_from_snooze_at",
        ]
        read_only_fields = fields

    def get_snoozed(self, conversation: Conversation) -> bool:
        return conversation.snoozed_at is not None

    def get_snoozed_until_reply(self, conversation: Conversation) -> bool:
        return conversation.snoozed_at is not None and conversation.snoozed_until is None

    def get_reply_due_at(self, conversation: Conversation) -> datetime | None:
        # The list passes its page's targets; a single conversation comes with its account.
        targets = self.context.get("reply_targets")
        if targets is None and Conversation.account.is_cached(conversation):
            targets = ReplyTargets.of(conversation.account)
        due = reply_due(conversation, targets)
        return due.due_at if due is not None else None


class ConversationPageSerializer(CursorPageSerializer):
    results = ConversationSerializer(many=True)


class ThreadMessageSerializer(serializers.ModelSerializer):
    """A message as a thread shows it. ``unlocked``: a pay-per-view message the fan bought."""

    sent_by = UserBriefSerializer(allow_null=True)
    unlocked = serializers.BooleanField()

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "status",
            "text",
            "price_cents",
            "media_ids",
            "unlocked",
            "sender_kind",
            "sent_by",
            "campaign_id",
            "attempts",
            "last_error",
            "queued_at",
            "sent_at",
            "created_at",
        ]
        read_only_fields = fields


class MessagePageSerializer(CursorPageSerializer):
    """One page of a thread, oldest message first; ``next_cursor`` leads to older messages."""

    results = ThreadMessageSerializer(many=True)


class ConversationSendSerializer(serializers.Serializer):
    """The platform's rules (text length, price range, media) are checked by the send
    service, which answers ``invalid_message`` with the fields at fault."""

    text = serializers.CharField(trim_whitespace=False)
    price_cents = serializers.IntegerField(
        required=False,
        default=0,
        help_text="0 for a free message, else 300 to 20000 (pay-per-view, needs media).",
    )
    media_ids = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Raw platform media ids (scripts), at most 50; prefer vault_item_ids.",
    )
    vault_item_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=50,
        help_text="Our vault item ids, sent in this order.",
    )
    preview_item_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=50,
        help_text="Of vault_item_ids, those shown free in a paid message.",
    )
    allow_resend = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Send although the fan already received or bought some of the media "
        "(else 409 media_already_sent).",
    )
    after_message_id = serializers.IntegerField(
        required=False,
        min_value=0,
        help_text="The newest message you had on screen: when the fan or someone else wrote "
        "after it, 409 thread_changed with those messages and nothing is queued.",
    )
    force = serializers.BooleanField(
        required=False, default=False, help_text="Send even if the thread changed or is claimed."
    )
    confirm_banned_words = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Send although the text has banned words (only when the account's policy "
        "allows it: see the 422 banned_words answer's can_send_anyway).",
    )
    confirm_repeated_text = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Send although this text went to many fans in the last hour (422 repeated_text).",
    )


# --- Fans (writes) -----------------------------------------------------------------------------


class FanWriteSerializer(serializers.Serializer):
    """The fields an owner or manager may set on a fan (chatters: tags and notes); PATCH
    takes any subset. The service applies the product's rules (who may change what, tags
    normalised, username and platform id unique per account)."""

    username = serializers.CharField(max_length=150)
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    tags = serializers.ListField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        help_text="Lower-cased, stripped and de-duplicated on save; at most 30 tags of 50 "
        "characters, no commas.",
    )
    notes = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    subscription_state = serializers.ChoiceField(
        choices=Fan.SubscriptionState.choices, required=False
    )
    subscribed_at = serializers.DateTimeField(required=False, allow_null=True)
    subscription_expires_at = serializers.DateTimeField(required=False, allow_null=True)


class FanCreateSerializer(FanWriteSerializer):
    account = serializers.IntegerField(min_value=1, help_text="The creator account's id.")
    platform_fan_id = serializers.CharField(max_length=64, help_text="The platform's user id.")


class FanDeleteParamsSerializer(serializers.Serializer):
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Owners only: delete the fan even with messages or purchases (their history "
        "goes too).",
    )


class MessageQueuedSerializer(serializers.Serializer):
    """The answer to a send: the message is queued; the pipeline sends it at the account's
    rate (``estimated_send_at``). Sends to a disconnected account wait for its reconnection."""

    message_id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Message.Status.choices)
    queued_at = serializers.DateTimeField()
    estimated_send_at = serializers.DateTimeField()
    account_connected = serializers.BooleanField()


# --- Internal notes and composer checks ----------------------------------------------------


class NoteSerializer(serializers.Serializer):
    """An internal note: members of the account see it, the fan never does."""

    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    author = UserBriefSerializer(allow_null=True)
    text = serializers.CharField()
    created_at = serializers.DateTimeField()


class NotePageSerializer(serializers.Serializer):
    results = NoteSerializer(many=True)
    next_cursor = serializers.IntegerField(
        allow_null=True, help_text="Pass as ``before`` for older notes."
    )


class NoteListParamsSerializer(serializers.Serializer):
    before = serializers.IntegerField(
        required=False, min_value=1, default=None, help_text="next_cursor of the previous page."
    )
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False, default=100)


class NoteCreateSerializer(serializers.Serializer):
    # Capped here (twice the note's limit) so an oversized body never reaches parsing; the
    # service answers note_too_long with the real limit.
    text = serializers.CharField(max_length=4000, trim_whitespace=False)


class ComposerSettingsSerializer(serializers.Serializer):
    banned_words = serializers.ListField(
        child=serializers.CharField(max_length=200, allow_blank=True),
        max_length=1000,
        help_text="Words and phrases (up to 4 words, 50 characters), matched as whole words "
        "in any case; at most 300.",
    )
    banned_words_policy = serializers.ChoiceField(
        choices=[("refuse", "refuse"), ("confirm", "confirm")],
        help_text="refuse: never queued; confirm: queued with confirm_banned_words.",
    )
    gateway_banned_words = serializers.ChoiceField(
        choices=[
            ("", ""),
            ("strict_ban", "strict_ban"),
            ("risky", "risky"),
            ("replace_soften", "replace_soften"),
        ],
        allow_blank=True,
        help_text="The gateway's screening of members' messages at send time ('' = none).",
    )


# --- Drafts and snooze -------------------------------------------------------------------------


class DraftSerializer(serializers.ModelSerializer):
    """My own unsent composer text in a conversation (nobody else sees it)."""

    class Meta:
        model = Draft
        fields = ["conversation", "text", "price_cents", "updated_at"]
        read_only_fields = fields


class DraftWriteSerializer(serializers.Serializer):
    """Blank text with no price deletes the draft (204), as an emptied composer does."""

    text = serializers.CharField(
        allow_blank=True,
        trim_whitespace=False,
        max_length=DRAFT_TEXT_MAX_LENGTH,
        help_text=f"At most {DRAFT_TEXT_MAX_LENGTH} characters.",
    )
    price_cents = serializers.IntegerField(
        required=False, default=0, help_text="0, or 300 to 20000 (as a message)."
    )
    composer_since = serializers.DateTimeField(
        required=False,
        allow_null=True,
        default=None,
        help_text="When the client's composer opened: if I have sent in the conversation "
        "since, the save is refused (409 draft_stale), so a late save never brings back "
        "what was sent.",
    )


class SnoozeSerializer(serializers.Serializer):
    """``until`` (ISO 8601 date-time, or a date meaning 09:00; without an offset it is in the
    account's time zone), or ``until_reply: true`` (until the fan writes), or both. A timed
    snooze also wakes when the fan writes."""

    until = serializers.CharField(required=False, allow_blank=True, max_length=40, default="")
    until_reply = serializers.BooleanField(required=False, default=False)


# --- The vault --------------------------------------------------------------------------------
from crm.models import (  # noqa: E402
    VAULT_LABEL_MAX_LENGTH,
    VAULT_LABELS_MAX,
    VaultItem,
    VaultList,
    VaultMediaType,
)


class VaultListParamsSerializer(CursorParamsSerializer):
    cursor = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=200,
        help_text="next_cursor of the previous page; empty for the first page.",
    )
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=100,
        help_text="Part of a label or list name.",
    )
    type = serializers.ChoiceField(
        choices=VaultMediaType.choices, required=False, allow_blank=True, default=""
    )
    list = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text="A vault list's id."
    )
    # A field named like Field.label (the query parameter's name is the API's).
    label = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_blank=True, default="", max_length=VAULT_LABEL_MAX_LENGTH
    )
    gone = serializers.BooleanField(
        required=False, default=False, help_text="Include items removed on the platform."
    )
    sendable = serializers.BooleanField(
        required=False, default=False, help_text="Only items a message may carry now."
    )
    limit = serializers.IntegerField(min_value=1, max_value=200, required=False, default=48)


class VaultListBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = VaultList
        fields = ["id", "platform_list_id", "name", "list_type"]


class VaultItemSerializer(serializers.ModelSerializer):
    """A vault item. ``thumbnail_url`` is the product's own (members only), never the
    platform's signed file URL; null until the sync fetched it."""

    lists = VaultListBriefSerializer(many=True, read_only=True)
    is_sendable = serializers.BooleanField(read_only=True)
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = VaultItem
        fields = [
            "id",
            "platform_media_id",
            "media_type",
            "duration_seconds",
            "platform_created_at",
            "is_ready",
            "has_error",
            "gone_at",
            "is_sendable",
            "likes_count",
            "tips_cents",
            "lists",
            "labels",
            "suggested_price_cents",
            "thumbnail_url",
            "synced_at",
        ]

    def get_thumbnail_url(self, item: VaultItem) -> str | None:
        if not item.thumb_name or item.thumb_fetched_at is None:
            return None
        base = self.context.get("vault_url") or ""
        return f"{base}{item.pk}/thumb?v={int(item.thumb_fetched_at.timestamp())}"


class VaultItemPageSerializer(CursorPageSerializer):
    results = VaultItemSerializer(many=True)


class VaultItemUpdateSerializer(serializers.Serializer):
    labels = serializers.ListField(
        child=serializers.CharField(max_length=200, allow_blank=True),
        required=False,
        max_length=VAULT_LABELS_MAX * 2,
        help_text=f"Replaces the item's labels: at most {VAULT_LABELS_MAX}, each at most "
        f"{VAULT_LABEL_MAX_LENGTH} characters; trimmed, lower-cased, duplicates dropped.",
    )
    suggested_price_cents = serializers.IntegerField(
        required=False, allow_null=True, help_text="300 to 20000, or null for none."
    )
