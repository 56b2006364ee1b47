"""The CRM's data model, shared by every app.

Each row that belongs to a creator account carries ``account`` directly, so every read can be
scoped to the accounts a user is a member of with one indexed filter.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F, Q
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
    # Shifts (crm.worktime.access_allowed): when on, a chatter opens this account's inbox, fans
    # and their APIs and sockets only while clocked in within a scheduled shift ± the grace.
    shift_only_access = models.BooleanField(default=False)
    shift_grace_minutes = models.PositiveSmallIntegerField(
        default=15, help_text="Minutes before and after a shift that still count as on shift."
    )
    # --- Assignment and response targets (crm.assignment, crm.response_targets) ---
    # When on, a fan's message in a conversation nobody clocked in holds goes to a clocked-in
    # chatter of the account with the fewest waiting conversations, below the cap.
    auto_assign = models.BooleanField(default=False)
    auto_assign_cap = models.PositiveSmallIntegerField(
        default=15, help_text="At most this many waiting conversations per chatter."
    )
    # The first reply's target; fans who spent at least the threshold get the VIP one.
    reply_target_seconds = models.PositiveIntegerField(default=300)
    vip_spend_threshold_cents = models.PositiveBigIntegerField(default=10_000)
    vip_reply_target_seconds = models.PositiveIntegerField(default=120)
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
            models.CheckConstraint(
                condition=Q(shift_grace_minutes__lte=240), name="account_shift_grace_range"
            ),
            models.CheckConstraint(
                condition=Q(auto_assign_cap__gte=1, auto_assign_cap__lte=500),
                name="account_auto_assign_cap_range",
            ),
            models.CheckConstraint(
                condition=Q(reply_target_seconds__gte=30, reply_target_seconds__lte=86_400),
                name="account_reply_target_range",
            ),
            models.CheckConstraint(
                condition=Q(vip_reply_target_seconds__gte=30)
                & Q(vip_reply_target_seconds__lte=F("reply_target_seconds")),
                name="account_vip_reply_target_range",
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

    # Who manages an account (campaigns, imports, payroll, shifts, automations): the one list,
    # for filters; ``can_manage_members`` and ``crm.selectors.manager_membership_get`` read it.
    MANAGING_ROLES = (Role.OWNER, Role.MANAGER)

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.CHATTER)
    # The last time a conversation was given to this member (auto or manual): auto-assignment
    # breaks ties by it, least recently assigned first (crm.assignment).
    last_assigned_at = models.DateTimeField(null=True, blank=True)
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
        return self.role in self.MANAGING_ROLES


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
            # Auto-assignment's load count: a member's waiting conversations on an account.
            models.Index(
                fields=["account", "assigned_to"],
                condition=Q(waiting_since__isnull=False),
                name="conversation_assignee_waiting",
            ),
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
    # The sender's open work session on this account when a member queued it (crm.worktime):
    # the shift a message belongs to, for per-shift figures and pay.
    work_session = models.ForeignKey(
        "WorkSession",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="messages",
        db_index=False,
        # DEFAULT NULL in the table, and (Django 5.2) returned by the INSERT: message_enqueue
        # sets it with a subquery and the row's value comes back without another query.
        db_default=None,
    )
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
            models.Index(
                fields=["work_session", "id"],
                condition=Q(work_session__isnull=False),
                name="message_work_session",
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
    # Vault items it attaches, in order; checked again when sent.
    vault_item_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
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


# --- Shifts and worked time (crm.shifts, crm.worktime; docs/shifts.md) -----------------------
#
# A schedule is weekly templates plus one-off shifts; an occurrence of a template is computed
# in the account's time zone, never stored, unless it is overridden: then a Shift row with the
# template and the occurrence's local date replaces it (moved, or cancelled). Worked time
# (WorkSession) is separate from the schedule: it is what pay counts.

SHIFT_MAX_MINUTES = 24 * 60
# A shift of up to 24 wall-clock hours lasts up to 25 real hours on the night clocks go back.
SHIFT_MAX_REAL_DURATION = timedelta(hours=25)


class ShiftTemplate(models.Model):
    """A weekly shift: every ``weekday`` from ``active_from`` to ``active_until`` (inclusive,
    open-ended when null), from ``start_time`` local wall-clock time for ``duration_minutes``
    of wall-clock time (22:00 + 480 min ends at 06:00 local the next day, whatever DST does)."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="shift_templates", db_index=False
    )
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="shift_templates", db_index=False
    )
    # 0 = Monday … 6 = Sunday (datetime.date.weekday()).
    weekday = models.PositiveSmallIntegerField()
    start_time = models.TimeField(help_text="Local wall-clock time in the account's time zone.")
    duration_minutes = models.PositiveIntegerField()
    active_from = models.DateField()
    active_until = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["weekday", "start_time", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(weekday__gte=0, weekday__lte=6), name="shift_template_weekday_range"
            ),
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=1, duration_minutes__lte=SHIFT_MAX_MINUTES),
                name="shift_template_duration_range",
            ),
            models.CheckConstraint(
                condition=Q(active_until__isnull=True) | Q(active_until__gte=F("active_from")),
                name="shift_template_active_order",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "weekday"], name="shift_template_account"),
            models.Index(fields=["membership", "weekday"], name="shift_template_member"),
        ]

    def __str__(self) -> str:
        return f"weekly shift {self.pk} (member {self.membership_id}, day {self.weekday})"


class Shift(models.Model):
    """A one-off shift, or (with ``template`` and ``occurrence_date``) one occurrence of a
    weekly shift overridden: moved to these times, or ``cancelled``. Times are aware UTC."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="shifts", db_index=False
    )
    membership = models.ForeignKey(
        Membership, on_delete=models.CASCADE, related_name="shifts", db_index=False
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    template = models.ForeignKey(
        ShiftTemplate,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="overrides",
        db_index=False,
    )
    # The local date (account time zone) the overridden occurrence started on.
    occurrence_date = models.DateField(null=True, blank=True)
    cancelled = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["starts_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="shift_ends_after_start"
            ),
            models.CheckConstraint(
                condition=Q(ends_at__lte=F("starts_at") + SHIFT_MAX_REAL_DURATION),
                name="shift_max_duration",
            ),
            models.CheckConstraint(
                condition=Q(template__isnull=True, occurrence_date__isnull=True)
                | Q(template__isnull=False, occurrence_date__isnull=False),
                name="shift_override_has_date",
            ),
            models.CheckConstraint(
                condition=Q(cancelled=False) | Q(template__isnull=False),
                name="shift_only_overrides_cancelled",
            ),
            models.UniqueConstraint(
                fields=["template", "occurrence_date"],
                condition=Q(template__isnull=False),
                name="shift_one_override_per_occurrence",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "starts_at"], name="shift_account_starts"),
            models.Index(fields=["membership", "starts_at"], name="shift_member_starts"),
        ]

    def __str__(self) -> str:
        return f"shift {self.pk} (member {self.membership_id})"


class WorkSession(models.Model):
    """Worked time of one member on one account: from clock-in to clock-out (``ended_at`` is
    null while clocked in). It belongs to the user and the account, not the membership, so the
    record outlives a member's removal (pay is owed for it)."""

    class EndReason(models.TextChoices):
        OPEN = "", "Clocked in"
        MANUAL = "manual", "Clocked out"
        IDLE = "idle", "Idle (clocked out automatically)"
        MANAGER = "manager", "Clocked out by a manager"
        ACCESS_REVOKED = "access_revoked", "Removed from the account"
        # Shift-only access: the shift (with its grace) ended while clocked in.
        SHIFT_ENDED = "shift_ended", "Shift ended"

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="work_sessions", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="work_sessions",
        db_index=False,
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(
        max_length=20, choices=EndReason.choices, blank=True, default=EndReason.OPEN
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The last page request, send or socket heartbeat (written at most once a minute); the
    # idle sweep ends a session at this time when it is older than SHIFT_IDLE_MINUTES.
    last_activity_at = models.DateTimeField()

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # One open session per member of an account (a membership is one user of one
            # account); also the index of "who is clocked in here" and of a send's lookup.
            models.UniqueConstraint(
                fields=["account", "user"],
                condition=Q(ended_at__isnull=True),
                name="work_session_one_open",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True, end_reason="")
                | (Q(ended_at__isnull=False) & ~Q(end_reason="")),
                name="work_session_end_reason_iff_ended",
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")),
                name="work_session_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(last_activity_at__gte=F("started_at")),
                name="work_session_activity_after_start",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "started_at"], name="work_session_account_start"),
            models.Index(fields=["user", "started_at"], name="work_session_user_start"),
            # The idle sweep: open sessions, least recently active first.
            models.Index(
                fields=["last_activity_at"],
                condition=Q(ended_at__isnull=True),
                name="work_session_open_activity",
            ),
        ]

    def __str__(self) -> str:
        return f"work session {self.pk} (user {self.user_id}@{self.account_id})"

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


# --- Assignment log (crm.assignment; docs/shifts.md, "Assignment and response targets") ----


class ConversationAssignment(models.Model):
    """One change of a conversation's assignee: who had it, who has it, who decided (a user,
    or nobody for auto-assignment) and why. Written by every assignment, never changed."""

    class Reason(models.TextChoices):
        MANUAL = "manual", "Assigned by hand"
        AUTO_UNASSIGNED = "auto_unassigned", "Auto: nobody was assigned"
        AUTO_OFF_SHIFT = "auto_off_shift", "Auto: the assignee was not clocked in"

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    at = models.DateTimeField()

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            # Automatic changes have no deciding user (a manual one's may be deleted later).
            models.CheckConstraint(
                condition=Q(reason="manual") | Q(by_user__isnull=True),
                name="conversation_assignment_auto_has_no_user",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "-at"], name="conv_assignment_history"),
            models.Index(fields=["account", "-at"], name="conv_assignment_account"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} (conversation {self.conversation_id})"

    @property
    def is_auto(self) -> bool:
        return self.reason != self.Reason.MANUAL


# --- The vault: the creator's media library, what messages carried, what each fan
# got. Mirrored from the platform by ``onlyfans.vault_sync``; labels and suggested prices are
# ours. Platform file URLs are signed and short-lived: none is ever stored here.

VAULT_LABEL_MAX_LENGTH = 40
VAULT_LABELS_MAX = 20


class VaultMediaType(models.TextChoices):
    PHOTO = "photo", "Photo"
    GIF = "gif", "GIF"
    VIDEO = "video", "Video"
    AUDIO = "audio", "Audio"


class VaultList(models.Model):
    """One of the creator's vault lists (the platform's categories), mirrored by the sync.

    A list removed on the platform keeps its row with ``gone_at`` set (items keep their
    membership history); it comes back if the platform lists it again.
    """

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="vault_lists", db_index=False
    )
    platform_list_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    # The platform's own kind of list ("custom", "messages", …): its values are not ours.
    list_type = models.CharField(max_length=50, blank=True)
    photo_count = models.PositiveIntegerField(default=0)
    video_count = models.PositiveIntegerField(default=0)
    gif_count = models.PositiveIntegerField(default=0)
    audio_count = models.PositiveIntegerField(default=0)
    gone_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "platform_list_id"], name="vault_list_unique_platform_id"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def media_count(self) -> int:
        return self.photo_count + self.video_count + self.gif_count + self.audio_count


class VaultItem(models.Model):
    """One media of the creator's vault, as the platform last described it, plus our own
    ``labels`` and ``suggested_price_cents``.

    Never deleted by the sync: an item the platform no longer lists gets ``gone_at`` (messages
    and fan events point at it, ``on_delete=RESTRICT``) and loses it if it comes back. The
    thumbnail is our own small copy in ``VAULT_THUMB_STORAGE`` (``thumb_name``), served by
    the product to members of the account only.
    """

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="vault_items", db_index=False
    )
    # The platform's id, what goes into a message's ``mediaFiles`` (an integer there, text
    # here so it compares with ``Message.media_ids``).
    platform_media_id = models.CharField(max_length=100)
    media_type = models.CharField(max_length=10, choices=VaultMediaType.choices)
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    # The platform's ``createdAt`` (the sync's time when it sends none): the library's order.
    platform_created_at = models.DateTimeField()
    is_ready = models.BooleanField(default=True)
    has_error = models.BooleanField(default=False)
    has_custom_preview = models.BooleanField(default=False)
    likes_count = models.PositiveIntegerField(default=0)
    tips_cents = models.BigIntegerField(default=0)
    lists = models.ManyToManyField(
        VaultList, through="VaultItemList", related_name="items", blank=True
    )
    gone_at = models.DateTimeField(null=True, blank=True)
    # Our copy of the thumbnail: a storage name (never the platform's URL), empty until
    # fetched; ``thumb_fetched_at`` says when.
    thumb_name = models.CharField(max_length=255, blank=True)
    thumb_fetched_at = models.DateTimeField(null=True, blank=True)
    labels = ArrayField(
        models.CharField(max_length=VAULT_LABEL_MAX_LENGTH), default=list, blank=True
    )
    suggested_price_cents = models.PositiveIntegerField(null=True, blank=True)
    # When the platform last listed or returned it (the gone pass compares with this).
    synced_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-platform_created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "platform_media_id"], name="vault_item_unique_platform_id"
            ),
            models.CheckConstraint(
                condition=Q(suggested_price_cents__isnull=True)
                | Q(suggested_price_cents__gte=300, suggested_price_cents__lte=20000),
                name="vault_item_suggested_price_range",
            ),
            models.CheckConstraint(
                condition=Q(tips_cents__gte=0), name="vault_item_tips_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(media_type__in=["photo", "gif", "video", "audio"]),
                name="vault_item_media_type_valid",
            ),
        ]
        indexes = [
            # The library's order (newest first, keyset on these two) and its type filter.
            models.Index(
                fields=["account", "-platform_created_at", "-id"], name="vault_item_account_recent"
            ),
            models.Index(
                fields=["account", "media_type", "-platform_created_at", "-id"],
                name="vault_item_account_type",
            ),
            GinIndex(fields=["labels"], name="vault_item_labels_gin"),
            # The gone pass: an account's present items not seen since the pass began.
            models.Index(
                fields=["account", "synced_at"],
                condition=Q(gone_at__isnull=True),
                name="vault_item_account_present",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.media_type} {self.platform_media_id}"

    @property
    def is_gone(self) -> bool:
        return self.gone_at is not None

    @property
    def is_sendable(self) -> bool:
        """Whether a message may carry it now: present on the platform, processed, no error."""
        return self.gone_at is None and self.is_ready and not self.has_error


class VaultItemList(models.Model):
    """An item's membership of a platform list (the platform's ``listStates`` with
    ``hasMedia``), replaced by the sync each time it sees the item."""

    item = models.ForeignKey(VaultItem, on_delete=models.CASCADE, related_name="+", db_index=False)
    vault_list = models.ForeignKey(
        VaultList, on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "vault_list"], name="vault_item_list_unique")
        ]
        # The list filter: a list's items.
        indexes = [models.Index(fields=["vault_list", "item"], name="vault_item_list_by_list")]

    def __str__(self) -> str:
        return f"item {self.item_id} in list {self.vault_list_id}"


class MessageMedia(models.Model):
    """One media a message carried, in order: the vault item when we know it, and always the
    platform id sent (``Message.media_ids`` stays the raw list the pipeline sends)."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="media", db_index=False
    )
    # Null for a raw platform id that is not (or not yet) a vault item of the account.
    vault_item = models.ForeignKey(
        VaultItem, null=True, blank=True, on_delete=models.RESTRICT, related_name="message_media"
    )
    platform_media_id = models.CharField(max_length=100)
    # Shown free in a pay-per-view message (the platform's ``previews``).
    is_preview = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["message_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["message", "position"], name="message_media_position"),
            models.UniqueConstraint(
                fields=["message", "platform_media_id"], name="message_media_unique_media"
            ),
            models.CheckConstraint(
                condition=~Q(platform_media_id=""), name="message_media_platform_id_not_empty"
            ),
        ]
        indexes = [
            # Per-item figures of an account (what content sells).
            models.Index(fields=["account", "vault_item"], name="message_media_account_item"),
        ]

    def __str__(self) -> str:
        return f"media {self.platform_media_id} of message {self.message_id}"


class FanMediaEvent(models.Model):
    """What one fan got of one media: sent free, offered as pay-per-view, bought.

    The per-fan index behind "already sent / bought" marks and the resend guard. Filled from
    our own sends and purchases (``source=ours``, one row per message, media and kind) and,
    for history from before the product, from each chat's media on the platform
    (``source=platform_history``, one row per fan, media and kind). The unique constraints
    make a re-sync or a replayed purchase a no-op.
    """

    class Kind(models.TextChoices):
        SENT_FREE = "sent_free", "Sent free"
        OFFERED = "offered", "Offered (pay-per-view)"
        BOUGHT = "bought", "Bought"

    class Source(models.TextChoices):
        OURS = "ours", "Sent through the product"
        PLATFORM_HISTORY = "platform_history", "Platform history"
        # A campaign sent as the platform's mass message: no message of ours per fan.
        CAMPAIGN_MASS = "campaign_mass", "Campaign mass message"

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    fan = models.ForeignKey(
        Fan, on_delete=models.CASCADE, related_name="media_events", db_index=False
    )
    # Null when the media is not (or not yet) a vault item; the sync links it when it is.
    vault_item = models.ForeignKey(
        VaultItem, null=True, blank=True, on_delete=models.RESTRICT, related_name="fan_events"
    )
    platform_media_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The message's price for an offer, what the fan paid for a purchase; 0 when sent free.
    price_cents = models.PositiveIntegerField(default=0)
    at = models.DateTimeField()
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The platform's message that carried it, when the platform says (history rows).
    platform_message_id = models.CharField(max_length=64, blank=True)
    source = models.CharField(max_length=20, choices=Source.choices)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Mass mode (``source=campaign_mass``): the campaign and the chunk (one platform mass
    # message) that carried it. Ids, not foreign keys: crm does not depend on campaigns.
    campaign_id = models.BigIntegerField(null=True, blank=True)
    mass_chunk_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["mass_chunk_id", "fan", "platform_media_id", "kind"],
                condition=Q(source="campaign_mass"),
                name="fan_media_event_unique_mass",
            ),
            models.CheckConstraint(
                condition=~Q(source="campaign_mass")
                | Q(campaign_id__isnull=False, mass_chunk_id__isnull=False),
                name="fan_media_event_mass_has_chunk",
            ),
            models.UniqueConstraint(
                fields=["message", "platform_media_id", "kind"],
                condition=Q(source="ours"),
                name="fan_media_event_unique_ours",
            ),
            models.UniqueConstraint(
                fields=["fan", "platform_media_id", "kind"],
                condition=Q(source="platform_history"),
                name="fan_media_event_unique_history",
            ),
            models.CheckConstraint(
                condition=~Q(source="ours") | Q(message__isnull=False),
                name="fan_media_event_ours_has_message",
            ),
            models.CheckConstraint(
                condition=~Q(platform_media_id=""), name="fan_media_event_platform_id_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["sent_free", "offered", "bought"]),
                name="fan_media_event_kind_valid",
            ),
        ]
        indexes = [
            # A fan's marks in the picker and the resend guard.
            models.Index(fields=["fan", "vault_item"], name="fan_media_event_fan_item"),
            # The fan panel's history, newest first.
            models.Index(fields=["fan", "-at", "-id"], name="fan_media_event_fan_recent"),
            # Fans who already got any of some items (the campaign pre-flight's exclusion).
            models.Index(
                fields=["vault_item", "fan"],
                condition=Q(vault_item__isnull=False),
                name="fan_media_event_item_fan",
            ),
            # The sync links history rows to items that arrive later.
            models.Index(
                fields=["account", "platform_media_id"],
                condition=Q(vault_item__isnull=True),
                name="fan_media_event_unlinked",
            ),
            # Mass sends counted from the raw rows (the media page's fallback, the build).
            models.Index(
                fields=["account", "at"],
                condition=Q(source="campaign_mass"),
                name="fan_media_event_mass_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.platform_media_id} to fan {self.fan_id}"


class VaultSync(models.Model):
    """One run of the vault sync for one account (``onlyfans.vault_sync``): its state, where it
    got to (``phase`` with ``offset`` or ``cursor_id``, saved after every page) and what it
    did. Built like ``onlyfans.FanSync``: at most one active run per account, ``step`` claimed
    by one task delivery at a time.

    Phases: the platform's lists, then the items (pages by offset), then ``gone`` (items the
    pass did not see since ``pass_started_at``, each confirmed with the platform before it is
    marked gone, in id order from ``cursor_id``), then each chat's media into
    ``FanMediaEvent`` (linked fans with a conversation, in id order from ``cursor_id``).
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Phase(models.TextChoices):
        LISTS = "lists", "Lists"
        ITEMS = "items", "Items"
        GONE = "gone", "Removed items"
        CHATS = "chats", "Chat media"

    class Trigger(models.TextChoices):
        CONNECT = "connect", "Account connected"
        BUTTON = "button", "Refresh"
        SCHEDULE = "schedule", "Schedule"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="vault_syncs", db_index=False
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.LISTS)
    offset = models.PositiveIntegerField(default=0, help_text="Position in the phase's list.")
    cursor_id = models.BigIntegerField(
        default=0, help_text="Last row done in the phase (gone: item id; chats: fan id)."
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Items the platform has not listed since this time are candidates for "gone".
    pass_started_at = models.DateTimeField(null=True, blank=True)
    lists_seen = models.PositiveIntegerField(default=0)
    items_seen = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    items_updated = models.PositiveIntegerField(default=0)
    items_gone = models.PositiveIntegerField(default=0)
    thumbs_fetched = models.PositiveIntegerField(default=0)
    thumbs_failed = models.PositiveIntegerField(default=0)
    chats_done = models.PositiveIntegerField(default=0)
    events_imported = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    errors_in_row = models.PositiveSmallIntegerField(default=0)
    retry_at = models.DateTimeField(null=True, blank=True)
    last_error_code = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(state__in=["queued", "running"]),
                name="vault_sync_one_active",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["done", "failed"]) | Q(finished_at__isnull=False),
                name="vault_sync_finished_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["account", "-created_at", "-id"], name="vault_sync_account_recent"
            ),
            models.Index(
                fields=["updated_at"],
                condition=Q(state__in=["queued", "running"]),
                name="vault_sync_active_updated",
            ),
        ]

    def __str__(self) -> str:
        return f"vault sync {self.pk} ({self.state}, {self.phase} @{self.offset})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES


# --- the media page's roll-up (crm.media_stats) ------------------------------------------------
class MediaStatsState(models.Model):
    """An account's media roll-up: in which zone its days are cut, and whether it is whole.

    While ``built_at`` is null (being built, or its zone changed) the media page counts the raw
    rows instead; the hooks write into the roll-up as soon as the row exists."""

    account = models.OneToOneField(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", primary_key=True
    )
    # The zone's name as crm.zones gives it (never an unknown name): the rows' days.
    zone_name = models.CharField(max_length=64)
    built_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"media stats of account {self.account_id} ({self.zone_name})"


class MediaItemDay(models.Model):
    """One vault item's figures on one local day (of the messages' ``sent_at``), at one price,
    by one sender: the sums of what ``analytics.media_queries`` counts over the raw rows.

    Written in the transaction of the rows it counts (``crm.media_stats``): a message marked
    sent adds its media, a PPV purchase adds its buy to the day its message was sent.
    ``revenue_units`` is exact: each purchase adds ``amount * REVENUE_SCALE / shares`` (the
    message's paid media share it equally), ``REVENUE_SCALE`` divisible by every share count.
    ``sent_by_id`` is the message's sender as sent (no foreign key: the roll-up is rebuilt, not
    cascaded; a deleted user's rows keep the id until the next build)."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    vault_item = models.ForeignKey(
        VaultItem, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    price_cents = models.PositiveIntegerField()
    sent_by_id = models.BigIntegerField(null=True, blank=True)
    sent_free = models.PositiveIntegerField(default=0)
    previewed = models.PositiveIntegerField(default=0)
    offered = models.PositiveIntegerField(default=0)
    bought = models.PositiveIntegerField(default=0)
    revenue_units = models.DecimalField(max_digits=40, decimal_places=0, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "vault_item", "day", "price_cents", "sent_by_id"],
                name="media_item_day_unique",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            # A range of days (the page's 30 days), every item: index-only, the figures are
            # in the index (a range's rows are scattered over the heap, one page each).
            models.Index(
                fields=["account", "day"],
                include=[
                    "vault_item",
                    "sent_free",
                    "previewed",
                    "offered",
                    "bought",
                    "revenue_units",
                ],
                name="media_item_day_range",
            ),
            # Ranking a range by revenue or buys reads the rows that sold alone (about one in
            # ten); the page's items' figures then come from the unique index, which also
            # serves one item's page (account, item, day).
            models.Index(
                fields=["account", "day"],
                include=["vault_item", "bought", "revenue_units"],
                condition=Q(bought__gt=0) | Q(revenue_units__gt=0),
                name="media_item_day_sold",
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.vault_item_id} on {self.day} at {self.price_cents}c"


class MediaItemTotal(models.Model):
    """One vault item's figures over all time: the sums of its ``MediaItemDay`` rows, written
    by the same statements in the same transaction (``crm.media_stats``). The media page's
    "all time" reads these instead of summing every day. No day, so no zone: a zone change
    rebuilds them with the days all the same."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    vault_item = models.ForeignKey(
        VaultItem, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    sent_free = models.PositiveIntegerField(default=0)
    previewed = models.PositiveIntegerField(default=0)
    offered = models.PositiveIntegerField(default=0)
    bought = models.PositiveIntegerField(default=0)
    revenue_units = models.DecimalField(max_digits=40, decimal_places=0, default=0)

    class Meta:
        constraints = [
            # Also the account's index (all time: every item of the account).
            models.UniqueConstraint(
                fields=["account", "vault_item"], name="media_item_total_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.vault_item_id} over all time"


class MediaOfferDay(models.Model):
    """The pay-per-view messages carrying at least one paid vault item, on one local day, at
    one price, by one sender: offers (messages), bought (of them) and all their revenue. The
    media page's price and chatter views without an item filter."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    price_cents = models.PositiveIntegerField()
    sent_by_id = models.BigIntegerField(null=True, blank=True)
    offered = models.PositiveIntegerField(default=0)
    bought = models.PositiveIntegerField(default=0)
    revenue_cents = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "price_cents", "sent_by_id"],
                name="media_offer_day_unique",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"offers on {self.day} at {self.price_cents}c"
