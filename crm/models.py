"""The CRM's data model, shared by every app.

Each row that belongs to a creator account carries ``account`` directly, so every read can be
scoped to the accounts a user is a member of with one indexed filter.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Upper


def default_send_rate_per_minute() -> int:
    return int(settings.SEND_RATE_DEFAULT_PER_MINUTE)


def default_send_min_interval_ms() -> int:
    return int(settings.SEND_MIN_INTERVAL_DEFAULT_MS)


# What a new account's composer refuses until its owners change the list: ways off the
# platform (payments and contacts the platform bans and fans get creators reported for) and
# the platform's own prohibited themes. Matched case-insensitively on word boundaries
# (``crm.composer_checks``); the gateway's screening at send time is the last word.
DEFAULT_BANNED_WORDS = (
    "paypal", "venmo", "cashapp", "cash app", "zelle", "western union", "bitcoin",
    "snapchat", "snap me", "telegram", "whatsapp", "kik", "my number", "text me",
    "meet up", "meetup", "in person", "escort",
    "underage", "schoolgirl", "incest", "rape", "bestiality",
)  # fmt: skip


def default_banned_words() -> list[str]:
    return list(DEFAULT_BANNED_WORDS)


class BannedWordsPolicy(models.TextChoices):
    REFUSE = "refuse", "Refuse the message"
    CONFIRM = "confirm", "Ask, and allow “send anyway”"


class GatewayScreening(models.TextChoices):
    OFF = "", "No screening"
    STRICT_BAN = "strict_ban", "Refuse banned words"
    RISKY = "risky", "Refuse risky words too"
    REPLACE_SOFTEN = "replace_soften", "Soften them"


class CreatorAccount(models.Model):
    class ConnectionState(models.TextChoices):
        CONNECTED = "connected", "Connected"
        EXPIRED = "expired", "Expired (reconnect needed)"

    display_name = models.CharField(max_length=200)
    platform_account_id = models.CharField(
        max_length=100, unique=True, help_text="The gateway's id of this account, e.g. acct_123."
    )
    connection_state = models.CharField(
        max_length=20, choices=ConnectionState.choices, default=ConnectionState.CONNECTED
    )
    send_rate_per_minute = models.PositiveIntegerField(
        default=default_send_rate_per_minute,
        help_text="At most this many messages in any 60-second window.",
    )
    send_min_interval_ms = models.PositiveIntegerField(
        default=default_send_min_interval_ms,
        help_text="At least this many milliseconds between two sends.",
    )
    # Days in analytics and schedules are cut in the creator's own time zone.
    time_zone = models.CharField(
        max_length=64, default="UTC", help_text="IANA time zone name, e.g. Europe/Berlin."
    )
    # The composer's checks before queueing (crm.composer_checks); owners and managers set them.
    banned_words = ArrayField(
        models.CharField(max_length=50),
        default=default_banned_words,
        blank=True,
        help_text="Words and short phrases the composer refuses (or asks about).",
    )
    banned_words_policy = models.CharField(
        max_length=10, choices=BannedWordsPolicy.choices, default=BannedWordsPolicy.REFUSE
    )
    # The gateway's screening of chatters' messages at send time ("" = none); see
    # PLATFORM_API.md, Banned words.
    gateway_banned_words = models.CharField(
        max_length=20, choices=GatewayScreening.choices, blank=True, default=""
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(send_rate_per_minute__gte=1), name="account_send_rate_positive"
            ),
            models.CheckConstraint(
                condition=Q(platform_account_id__startswith="acct_"),
                name="account_platform_id_format",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_connected(self) -> bool:
        return self.connection_state == self.ConnectionState.CONNECTED


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MANAGER = "manager", "Manager"
        CHATTER = "chatter", "Chatter"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CHATTER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account_id", "user_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "account"], name="membership_unique_user_account"
            )
        ]
        indexes = [models.Index(fields=["account", "role"], name="membership_account_role")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.account_id}:{self.role}"

    @property
    def can_manage_members(self) -> bool:
        return self.role in (self.Role.OWNER, self.Role.MANAGER)


class FanSearchText(models.Func):
    """What a fan search looks in: the username and the name as one text, so one trigram
    index (``fan_search_trgm``) serves a search of either (``crm.selectors.fans_search``).
    Both columns are NOT NULL, so a plain ``||`` (Concat's COALESCEs would make the indexed
    expression harder to match)."""

    template = "(%(expressions)s)"
    arg_joiner = " || ' ' || "
    output_field = models.TextField()

    def __init__(self) -> None:
        super().__init__("username", "display_name")


class Fan(models.Model):
    class SubscriptionState(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        NEVER = "never", "Never subscribed"

    account = models.ForeignKey(
        CreatorAccount,
        on_delete=models.CASCADE,
        related_name="fans",
        # Every index of the table starts with the account: one on it alone is only cost.
        db_index=False,
    )
    # Null for a fan not linked to the platform yet (imported without an id); the platform sync
    # links them by username. Messages cannot be sent to an unlinked fan.
    platform_fan_id = models.CharField(  # noqa: DJ001
        max_length=64,
        null=True,
        blank=True,
        help_text="The platform's user id of the fan; empty until the fan is linked.",
    )
    username = models.CharField(max_length=150)
    display_name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    tags = ArrayField(models.CharField(max_length=50), default=list, blank=True)
    notes = models.TextField(blank=True)
    lifetime_spend_cents = models.BigIntegerField(default=0)
    subscription_state = models.CharField(
        max_length=20, choices=SubscriptionState.choices, default=SubscriptionState.NEVER
    )
    subscribed_at = models.DateTimeField(null=True, blank=True)
    subscription_expires_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-lifetime_spend_cents", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "platform_fan_id"],
                condition=Q(platform_fan_id__isnull=False),
                name="fan_unique_platform_id",
            ),
            # Usernames are unique case-insensitively (as on the platform): this one index
            # also serves the imports' and the sync's case-insensitive matching.
            models.UniqueConstraint("account", Lower("username"), name="fan_unique_username_ci"),
            models.CheckConstraint(
                condition=Q(lifetime_spend_cents__gte=0), name="fan_spend_non_negative"
            ),
        ]
        indexes = [
            GinIndex(fields=["tags"], name="fan_tags_gin"),
            models.Index(fields=["account", "-lifetime_spend_cents"], name="fan_account_spend"),
            models.Index(fields=["account", "-last_seen_at"], name="fan_account_last_seen"),
            # Substring search of username and name, one trigram index for both (see
            # FanSearchText): each GIN index costs every new fan a pending-list entry and
            # its trigrams, the largest part of an import's time.
            GinIndex(OpClass(Upper(FanSearchText()), name="gin_trgm_ops"), name="fan_search_trgm"),
            # automations: the expiring-soon and expired-N-days-ago scans (a range of end dates).
            models.Index(
                fields=["account", "subscription_expires_at"],
                condition=Q(subscription_expires_at__isnull=False),
                name="fan_account_expires",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def is_linked(self) -> bool:
        return bool(self.platform_fan_id)


def fan_username_candidates(*, username: str, platform_fan_id: str) -> list[str]:
    """Usernames to try for a platform fan, in order: another fan may hold the username
    already (platform usernames change and get reused), so a suffixed one follows."""
    limit = Fan._meta.get_field("username").max_length or 150
    base = (username or f"u{platform_fan_id}")[:limit]
    suffixed = f"{base[: limit - len(platform_fan_id) - 1]}-{platform_fan_id}"
    # The last one cannot collide in practice; it exists so a fan is never lost to a name.
    unique = f"{base[: limit - 9]}-{uuid.uuid4().hex[:8]}"
    return [base, suffixed, unique]


PREVIEW_LENGTH = 140


def message_preview(text: str) -> str:
    """A message's first non-empty line, cut to fit the conversation list."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:PREVIEW_LENGTH]
    return ""


class Conversation(models.Model):
    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="conversations"
    )
    fan = models.OneToOneField(Fan, on_delete=models.CASCADE, related_name="conversation")
    last_message_at = models.DateTimeField(null=True, blank=True)
    # The list shows the last message without reading the messages table (first line, cut).
    last_message_preview = models.CharField(max_length=PREVIEW_LENGTH, blank=True)
    last_message_direction = models.CharField(max_length=3, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    # Since when the fan has been waiting for a reply: the time of their oldest message that
    # no outgoing message has answered yet; null when nobody is waiting.
    waiting_since = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    # Snooze (crm.snooze): out of the list's views from ``snoozed_at`` until ``snoozed_until``
    # (null: until the fan writes, which wakes a timed snooze too); ``woke_from_snooze_at``
    # marks a woken one in the list until someone opens it or it is snoozed again.
    snoozed_at = models.DateTimeField(null=True, blank=True)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    snoozed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    woke_from_snooze_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "fan"], name="conversation_unique_fan"),
            models.CheckConstraint(
                condition=Q(snoozed_until__isnull=True) | Q(snoozed_at__isnull=False),
                name="conversation_snooze_until_needs_snoozed_at",
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "-last_message_at", "-id"], name="conversation_account_recent"
            ),
            models.Index(fields=["assigned_to", "-last_message_at"], name="conversation_assignee"),
            # "Longest waiting first": only conversations someone is waiting in.
            models.Index(
                fields=["account", "waiting_since", "id"],
                condition=Q(waiting_since__isnull=False),
                name="conversation_account_waiting",
            ),
            # The wake task's scan: timed snoozes, soonest first.
            models.Index(
                fields=["snoozed_until"],
                condition=Q(snoozed_until__isnull=False),
                name="conversation_snoozed_until",
            ),
            # The "Snoozed" view of an account.
            models.Index(
                fields=["account", "snoozed_at", "id"],
                condition=Q(snoozed_at__isnull=False),
                name="conversation_account_snoozed",
            ),
        ]

    def __str__(self) -> str:
        return f"conversation {self.pk} (fan {self.fan_id})"


DRAFT_TEXT_MAX_LENGTH = 5000


class Draft(models.Model):
    """What one member has typed in a conversation's composer and not sent (crm.drafts).

    Never shown to anyone but its author; sending or clearing the composer deletes it, and
    drafts untouched for ``DRAFT_TTL_DAYS`` are deleted by a periodic task.
    """

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="drafts", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="drafts", db_index=False
    )
    text = models.TextField(max_length=DRAFT_TEXT_MAX_LENGTH)
    price_cents = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-updated_at", "id"]
        constraints = [
            # Also the index for "my drafts in this account" (the list's marker) by user first.
            models.UniqueConstraint(
                fields=["user", "conversation"], name="draft_unique_user_conversation"
            ),
            models.CheckConstraint(
                condition=Q(price_cents=0) | Q(price_cents__gte=300, price_cents__lte=20000),
                name="draft_price_range",
            ),
        ]
        indexes = [
            models.Index(fields=["user", "account"], name="draft_user_account"),
            models.Index(fields=["updated_at"], name="draft_updated"),
            models.Index(fields=["conversation"], name="draft_conversation"),
        ]

    def __str__(self) -> str:
        return f"draft {self.pk} (user {self.user_id}, conversation {self.conversation_id})"


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", "From fan"
        OUT = "out", "To fan"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        RECEIVED = "received", "Received"

    # Outgoing messages the send pipeline still owes the platform.
    PENDING_STATUSES = (Status.QUEUED, Status.SENDING)

    class SenderKind(models.TextChoices):
        USER = "user", "User"
        CAMPAIGN = "campaign", "Campaign"
        FAN = "fan", "Fan"
        # automations: sent by an automation (a lifecycle message), in the campaign lane.
        AUTOMATION = "automation", "Automation"

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    direction = models.CharField(max_length=3, choices=Direction.choices)
    text = models.TextField(blank=True)
    price_cents = models.PositiveIntegerField(default=0)
    media_ids = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices)
    # NULL until the platform assigns one; uniqueness only applies to known ids.
    platform_message_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sender_kind = models.CharField(max_length=10, choices=SenderKind.choices)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="sent_messages",
    )
    campaign_id = models.BigIntegerField(
        null=True, blank=True, help_text="The campaign that sent it, when sender_kind=campaign."
    )
    # A member's message's normalised text, hashed (crm.composer_checks.text_fingerprint), so
    # "sent the same text to N fans in the last hour" is one index lookup; null otherwise.
    text_fingerprint = models.BigIntegerField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    # When the send task was last published to the broker (the outbox's bookkeeping);
    # null while the message waits in the database backlog.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "platform_message_id"],
                condition=Q(platform_message_id__isnull=False),
                name="message_unique_platform_id",
            ),
            models.CheckConstraint(
                condition=(
                    Q(direction="in", status="received")
                    | Q(direction="out", status__in=["queued", "sending", "sent", "failed"])
                ),
                name="message_status_matches_direction",
            ),
            models.CheckConstraint(
                condition=Q(price_cents=0) | Q(price_cents__gte=300, price_cents__lte=20000),
                name="message_price_range",
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="message_sent_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_thread"),
            # The send pipeline's backlog: an account's unsent messages, oldest first.
            models.Index(
                fields=["account", "id"],
                condition=Q(status__in=["queued", "sending"]),
                name="message_account_pending",
            ),
            # What is on the broker now (the dispatcher's global cap counts these).
            models.Index(
                fields=["dispatched_at"],
                condition=Q(status__in=["queued", "sending"], dispatched_at__isnull=False),
                name="message_on_broker",
            ),
            models.Index(
                fields=["account", "status", "-updated_at"], name="message_account_status"
            ),
            models.Index(fields=["account", "-sent_at"], name="message_account_sent"),
            models.Index(
                fields=["account", "-queued_at"],
                condition=Q(queued_at__isnull=False),
                name="message_account_queued",
            ),
            models.Index(
                fields=["sent_by", "text_fingerprint", "queued_at"],
                condition=Q(text_fingerprint__isnull=False),
                name="message_sender_fingerprint",
            ),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} ({self.direction}, {self.status})"


class Purchase(models.Model):
    class Kind(models.TextChoices):
        TIP = "tip", "Tip"
        PPV = "ppv", "Pay-per-view unlock"
        SUBSCRIPTION = "subscription", "Subscription"

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="purchases")
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="purchases")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount_cents = models.PositiveIntegerField()
    purchased_at = models.DateTimeField()
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="purchases"
    )
    # The platform event or transaction that recorded it, so replays cannot double-count.
    platform_event_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-purchased_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "platform_event_id"],
                condition=Q(platform_event_id__isnull=False),
                name="purchase_unique_event",
            ),
            models.CheckConstraint(
                condition=Q(amount_cents__gt=0), name="purchase_amount_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-purchased_at"], name="purchase_account_time"),
            models.Index(fields=["fan", "-purchased_at"], name="purchase_fan_time"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_cents}c"


class SavedReply(models.Model):
    """A canned answer chatters pick in the composer; owners and managers keep the list."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="saved_replies"
    )
    title = models.CharField(max_length=100)
    text = models.TextField()
    price_cents = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "title"], name="saved_reply_unique_title"),
            models.CheckConstraint(
                condition=Q(price_cents=0) | Q(price_cents__gte=300, price_cents__lte=20000),
                name="saved_reply_price_range",
            ),
        ]

    def __str__(self) -> str:
        return self.title


class ApiToken(models.Model):
    """A user's API token for scripts: several per user, each named, stored only as a hash.

    The key (``fcrm_`` + 40 random characters) is shown once, when it is made; the database
    keeps its SHA-256 (a key this long needs no slow hash) and the first characters for people
    to tell tokens apart. Revoked tokens stay, for the record, and never authenticate.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    key_prefix = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["user", "-created_at"],
                condition=Q(revoked_at__isnull=True),
                name="api_token_user_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Invitation(models.Model):
    """A one-time link that lets one person join an account with a role.

    Owners and managers make them; members are never added by looking a username up. The
    token is shown once, in the link; the database keeps its SHA-256 (like an API key's). A
    link works until it expires, is accepted once, or is revoked; the row stays for the record.
    ``email`` only says who it was meant for (and pre-fills the new account's address).
    """

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="invitations"
    )
    role = models.CharField(
        max_length=20, choices=Membership.Role.choices, default=Membership.Role.CHATTER
    )
    email = models.EmailField(blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    # A token is 256 random bits (43 characters); anything longer is refused before hashing.
    TOKEN_MAX_LENGTH = 64

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=["owner", "manager", "chatter"]), name="invitation_role_valid"
            ),
            models.CheckConstraint(
                condition=Q(accepted_at__isnull=True) | Q(revoked_at__isnull=True),
                name="invitation_accepted_or_revoked",
            ),
        ]
        indexes = [
            # The members page lists an account's pending invitations, newest first.
            models.Index(
                fields=["account", "-created_at"],
                condition=Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_account_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role}@{self.account_id} ({self.pk})"

    @staticmethod
    def token_hash_of(token: str) -> str:
        # SHA-256 as for API keys: a random 256-bit token needs no slow hash.
        return hashlib.sha256(token.encode()).hexdigest()

    def is_open(self, *, now: datetime) -> bool:
        """Whether the link still works: not accepted, not revoked, not expired."""
        return self.accepted_at is None and self.revoked_at is None and now < self.expires_at


class ConversationNote(models.Model):
    """A note members leave in a thread for one another. Never a Message: nothing in the send
    pipeline reads this table, so a note cannot reach the fan (``crm.notes``)."""

    TEXT_MAX_LENGTH = 2000

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="conversation_notes"
    )
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    # Templates tell a note from a message between a thread's items.
    is_note = True

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=~Q(text=""), name="conversation_note_text_not_empty"),
        ]
        indexes = [
            models.Index(
                fields=["conversation", "created_at", "id"], name="conversation_note_thread"
            )
        ]

    def __str__(self) -> str:
        return f"note {self.pk} (conversation {self.conversation_id})"


class NoteMention(models.Model):
    """A member named in a note (``@username``): the conversation shows under their "Mentions"
    until they open it or clear it."""

    note = models.ForeignKey(ConversationNote, on_delete=models.CASCADE, related_name="mentions")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="note_mentions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["note", "user"], name="note_mention_unique_user")
        ]
        indexes = [
            # The "Mentions" filter: a member's open mentions in one account.
            models.Index(
                fields=["user", "account", "conversation"],
                condition=Q(cleared_at__isnull=True),
                name="note_mention_open",
            ),
        ]

    def __str__(self) -> str:
        return f"mention of {self.user_id} in note {self.note_id}"
