"""Campaigns: one message to a segment of an account's fans, sent one by one through the send
pipeline (``individual``) or as the platform's own mass message (``mass``).

A campaign's audience is snapshotted at launch into ``CampaignRecipient`` rows (one per fan,
unique), which is what makes the fan-out restartable: a recipient's state says whether its
message exists yet, and the unique pair means a fan is never a recipient twice.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from crm.models import CreatorAccount, Fan, Message


class Segment(models.Model):
    """A saved audience: rules (validated by ``campaigns.rules.segment_rules_parse``)."""

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=100)
    rules = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="segment_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Mode(models.TextChoices):
        INDIVIDUAL = "individual", "One by one (personalised)"
        MASS = "mass", "Platform mass message"
        AUTO = "auto", "Automatic"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Done"

    class BannedWords(models.TextChoices):
        OFF = "", "Do not screen"
        STRICT = "strict_ban", "Refuse banned words"
        RISKY = "risky", "Refuse risky words too"
        SOFTEN = "replace_soften", "Soften them"

    # States in which the audience may still change and the campaign can be edited.
    EDITABLE_STATES = (State.DRAFT, State.SCHEDULED)
    ACTIVE_STATES = (State.RUNNING, State.PAUSED)
    FINAL_STATES = (State.CANCELLED, State.DONE)

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    text = models.TextField()
    price_cents = models.PositiveIntegerField(default=0)
    media_ids = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    segment = models.ForeignKey(
        Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="campaigns"
    )
    # The rules this campaign uses (a copy: editing a saved segment later changes no campaign).
    rules = models.JSONField(default=dict, blank=True)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.INDIVIDUAL)
    # What ``auto`` chose at launch (``individual`` or ``mass``); empty before.
    sent_as = models.CharField(max_length=10, blank=True)
    drain_window_minutes = models.PositiveIntegerField(
        default=120, help_text="Auto mode sends one by one when the audience drains within this."
    )
    control_percent = models.PositiveSmallIntegerField(
        default=0, help_text="Share of the audience held out (gets nothing), in percent."
    )
    block_banned_words = models.CharField(
        max_length=20, choices=BannedWords.choices, blank=True, default=BannedWords.OFF
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    # Counters written by the services (launch and fan-out); the send results are read from
    # the messages themselves (one source of truth).
    recipients_total = models.PositiveIntegerField(default=0)
    control_total = models.PositiveIntegerField(default=0)
    unlinked_skipped = models.PositiveIntegerField(default=0)
    fanned_out = models.PositiveIntegerField(default=0)
    # The pre-flight as it was at launch (counts per rule), for the campaign page.
    preflight = models.JSONField(default=dict, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Mass mode: when someone asked to unsend it from the platform (a task unsends each chunk).
    unsend_requested_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_cents=0) | Q(price_cents__gte=300, price_cents__lte=20000),
                name="campaign_price_range",
            ),
            models.CheckConstraint(
                condition=Q(control_percent__lte=50), name="campaign_control_at_most_half"
            ),
            models.CheckConstraint(
                condition=Q(drain_window_minutes__gte=1), name="campaign_drain_window_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="campaign_account_recent"),
            models.Index(
                fields=["state", "scheduled_at"],
                condition=Q(state__in=["scheduled", "running"]),
                name="campaign_active",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_editable(self) -> bool:
        return self.state in self.EDITABLE_STATES

    @property
    def send_mode(self) -> str:
        """The mode it sends (or will send) in: what auto chose, once launched."""
        return self.sent_as or self.mode


class CampaignRecipient(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting for fan-out"
        QUEUED = "queued", "Message queued"
        CONTROL = "control", "Control group (gets nothing)"
        WITHDRAWN = "withdrawn", "Withdrawn (campaign cancelled)"
        MASS_SENT = "mass_sent", "Sent in a platform mass message"
        UNSENT = "unsent", "Unsent from the platform"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="campaign_recipients")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    is_control = models.BooleanField(default=False)
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Mass mode: the chunk that carries this fan, and when the platform took it.
    chunk = models.ForeignKey(
        "MassChunk", null=True, blank=True, on_delete=models.SET_NULL, related_name="recipients"
    )
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "fan"], name="recipient_unique_fan"),
            models.CheckConstraint(
                condition=~Q(state="control") | Q(is_control=True), name="recipient_control_flag"
            ),
        ]
        indexes = [
            # The fan-out's next batch: a campaign's pending recipients in id order.
            models.Index(
                fields=["campaign", "id"],
                condition=Q(state="pending"),
                name="recipient_campaign_pending",
            ),
            models.Index(fields=["campaign", "state"], name="recipient_campaign_state"),
        ]

    def __str__(self) -> str:
        return f"recipient {self.fan_id} of campaign {self.campaign_id}"


class MassChunk(models.Model):
    """One call of the platform's mass-messaging endpoint: up to ``CAMPAIGN_MASS_CHUNK_SIZE``
    fans. An ``ambiguous`` chunk (timeout, 5xx) is reconciled against the platform's list
    before anything is retried, so that no fan gets the message twice."""

    class State(models.TextChoices):
        PENDING = "pending", "Not sent yet"
        SENDING = "sending", "Call in progress"
        AMBIGUOUS = "ambiguous", "Outcome unknown (reconciling)"
        SENT = "sent", "Accepted by the platform"
        FAILED = "failed", "Refused"
        CANCELLED = "cancelled", "Cancelled"
        UNSENT = "unsent", "Unsent from the platform"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    platform_fan_ids = ArrayField(models.CharField(max_length=64), default=list)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    platform_mass_id = models.CharField(max_length=64, blank=True)
    total = models.PositiveIntegerField(default=0)
    pending = models.PositiveIntegerField(default=0)
    is_done = models.BooleanField(default=False)
    can_unsend = models.BooleanField(default=False)
    # The end of the platform's unsend window (``unsendSeconds`` from the last read).
    unsend_until = models.DateTimeField(null=True, blank=True)
    unsent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Reads of the platform's list that did not find an ambiguous chunk yet.
    reconcile_reads = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "index"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "index"], name="mass_chunk_unique_index")
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of campaign {self.campaign_id}"
