"""Rows the gateway and pipeline keep for themselves (the shared model lives in ``crm``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from crm.models import CreatorAccount


class WebhookEvent(models.Model):
    """Every webhook delivery we accepted, keyed by a hash of its signed body."""

    event_key = models.CharField(max_length=255, unique=True)
    event = models.CharField(max_length=100)
    account = models.ForeignKey(
        CreatorAccount,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_events",
    )
    handled = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)
    # A delivery handled after its answer (``onlyfans.webhooks.DEFERRED_EVENTS``): its payload,
    # kept until a task applies it (``applied_at``); a lost task's events are swept up.
    payload = models.JSONField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["event", "-received_at"], name="webhook_event_time"),
            # The deliveries still to apply, oldest first (the apply task and its sweep).
            models.Index(
                fields=["id"],
                condition=Q(payload__isnull=False, applied_at__isnull=True),
                name="webhook_event_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} {self.event_key}"


class FanSync(models.Model):
    """One run of the fan sync from the platform for one account: its state, where it got to
    (``phase`` and ``offset``, so any worker can resume it) and what it did.

    At most one run per account is queued or running (``fan_sync_one_active``). ``step`` counts
    the task runs that claimed the row: a task carries the step it expects, so a duplicate or
    superseded delivery finds another number and does nothing.
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Phase(models.TextChoices):
        FANS = "fans", "Fans"
        CHATS = "chats", "Chats"

    class Trigger(models.TextChoices):
        CONNECT = "connect", "Account connected"
        BUTTON = "button", "Sync now"
        SCHEDULE = "schedule", "Schedule"
        IMPORT = "import", "After a CSV import"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="fan_syncs")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    phase = models.CharField(max_length=10, choices=Phase.choices, default=Phase.FANS)
    offset = models.PositiveIntegerField(default=0, help_text="Position in the phase's list.")
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    fans_seen = models.PositiveIntegerField(default=0)
    fans_created = models.PositiveIntegerField(default=0)
    fans_updated = models.PositiveIntegerField(default=0)
    fans_linked = models.PositiveIntegerField(default=0)
    chats_done = models.PositiveIntegerField(default=0)
    messages_imported = models.PositiveIntegerField(default=0)
    step = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True)
    # Transient failures in a row (reset by a step that gets through); too many fail the run.
    errors_in_row = models.PositiveSmallIntegerField(default=0)
    # Set while the run waits for the gateway's rate limit (429 Retry-After or no quota left).
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
                name="fan_sync_one_active",
            ),
            models.CheckConstraint(
                condition=~Q(state__in=["done", "failed"]) | Q(finished_at__isnull=False),
                name="fan_sync_finished_has_time",
            ),
        ]
        indexes = [
            # The latest run of an account (the progress fragment, the schedule).
            models.Index(fields=["account", "-created_at", "-id"], name="fan_sync_account_recent"),
            # Runs the schedule may have to resume.
            models.Index(
                fields=["updated_at"],
                condition=Q(state__in=["queued", "running"]),
                name="fan_sync_active_updated",
            ),
        ]

    def __str__(self) -> str:
        return f"fan sync {self.pk} ({self.state}, {self.phase} @{self.offset})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES
