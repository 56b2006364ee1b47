"""Automations: lifecycle messages that run themselves (a welcome, a renewal thanks, a nudge
before a subscription ends, a win-back after it ended, a PPV follow-up, a no-reply nudge).

An ``Automation`` is what an owner sets up: a trigger, a message, a delay, filters, quiet
hours, a control group. Each time its trigger fires for a fan an ``AutomationRun`` is written,
unique per ``(automation, fan, event_key)``: that unique key is the exactly-once guarantee (a
replayed webhook, a second scan of the same expiry or a restart finds the run there and does
nothing). A run waits ``scheduled`` until it is due, is then re-checked and handed to the send
pipeline's campaign lane as one message (``enqueued``), or ends ``cancelled``/``skipped`` with
its reason; control-group runs are ``held_control`` from the start and never send.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from crm.models import CreatorAccount, Fan, Message


class Automation(models.Model):
    class Trigger(models.TextChoices):
        SUBSCRIBED = "subscribed", "A fan subscribes"
        RENEWED = "renewed", "A fan renews"
        RETURNED_AFTER_EXPIRY = "returned_after_expiry", "A fan comes back after an expiry"
        EXPIRING_SOON = "expiring_soon", "A subscription ends within N hours"
        EXPIRED_DAYS_AGO = "expired_days_ago", "A subscription ended N days ago"
        PPV_NOT_UNLOCKED = "ppv_not_unlocked", "A PPV is not unlocked within N hours"
        NO_REPLY = "no_reply", "A fan's message has no reply for N minutes"

    class BannedWords(models.TextChoices):
        # The gateway's screening at send time (as for campaigns, PLATFORM_API.md).
        OFF = "", "Do not screen"
        STRICT = "strict_ban", "Refuse banned words"
        RISKY = "risky", "Refuse risky words too"
        SOFTEN = "replace_soften", "Soften them"

    # What ``trigger_value`` counts for each trigger (the event triggers take none).
    TRIGGER_UNITS: dict[str, str] = {
        Trigger.EXPIRING_SOON: "hours",
        Trigger.EXPIRED_DAYS_AGO: "days",
        Trigger.PPV_NOT_UNLOCKED: "hours",
        Trigger.NO_REPLY: "minutes",
    }
    EVENT_TRIGGERS = (Trigger.SUBSCRIBED, Trigger.RENEWED, Trigger.RETURNED_AFTER_EXPIRY)
    SCAN_TRIGGERS = (
        Trigger.EXPIRING_SOON,
        Trigger.EXPIRED_DAYS_AGO,
        Trigger.PPV_NOT_UNLOCKED,
        Trigger.NO_REPLY,
    )

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="automations", db_index=False
    )
    name = models.CharField(max_length=200)
    trigger = models.CharField(max_length=30, choices=Trigger.choices)
    # Hours (expiring_soon, ppv_not_unlocked), days (expired_days_ago) or minutes (no_reply),
    # counted on the account's clock (automations.triggers); 0 for the event triggers.
    trigger_value = models.PositiveIntegerField(default=0)
    # The campaign composer's personalisation: {name}, {username}, fallbacks {name|babe}.
    text = models.TextField()
    price_cents = models.PositiveIntegerField(default=0)
    # Media picked from the vault (our ids, in order), resolved to their platform ids when a
    # run's message is queued, so an item removed or not ready by then is refused there.
    vault_item_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    # Raw platform ids beside them (scripts, and automations saved before the picker).
    media_ids = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    # Due at trigger + delay + a random part of the spread (per run), so it looks typed.
    delay_seconds = models.PositiveIntegerField(default=0)
    delay_spread_seconds = models.PositiveIntegerField(default=0)
    # Who it reaches: campaign segment rules (campaigns.rules.segment_rules_parse: spend range,
    # tags, subscription states, not messaged within N hours, not waiting for a reply, ...),
    # applied when the trigger fires and again when the run is due.
    rules = models.JSONField(default=dict, blank=True)
    # Quiet hours on the account's clock (start > end spans midnight); a run due inside them
    # waits for their end. Both empty: none.
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    control_percent = models.PositiveSmallIntegerField(
        default=0, help_text="Share of triggered fans held out at random (gets nothing), in %."
    )
    block_banned_words = models.CharField(
        max_length=20, choices=BannedWords.choices, blank=True, default=BannedWords.OFF
    )
    enabled = models.BooleanField(default=False)
    # When it was last turned on: scan triggers only fire for moments after it (turning on a
    # PPV follow-up does not follow up every PPV ever sent).
    enabled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "name"], name="automation_unique_name"),
            models.CheckConstraint(
                condition=Q(price_cents=0) | Q(price_cents__gte=300, price_cents__lte=20000),
                name="automation_price_range",
            ),
            models.CheckConstraint(
                condition=Q(control_percent__lte=50), name="automation_control_at_most_half"
            ),
            models.CheckConstraint(
                condition=Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False),
                name="automation_quiet_hours_both_or_none",
            ),
            models.CheckConstraint(
                condition=Q(
                    trigger__in=[
                        "subscribed",
                        "renewed",
                        "returned_after_expiry",
                        "expiring_soon",
                        "expired_days_ago",
                        "ppv_not_unlocked",
                        "no_reply",
                    ]
                ),
                name="automation_trigger_valid",
            ),
            models.CheckConstraint(
                condition=Q(trigger__in=["subscribed", "renewed", "returned_after_expiry"])
                | Q(trigger_value__gte=1),
                name="automation_scan_trigger_has_value",
            ),
            models.CheckConstraint(
                condition=Q(enabled=False) | Q(enabled_at__isnull=False),
                name="automation_enabled_has_time",
            ),
        ]
        indexes = [
            # The account's automations for a trigger (an event's receivers, the scans).
            models.Index(
                fields=["account", "trigger"],
                condition=Q(enabled=True),
                name="automation_account_enabled",
            ),
            models.Index(
                fields=["trigger"], condition=Q(enabled=True), name="automation_trigger_enabled"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def trigger_unit(self) -> str:
        return self.TRIGGER_UNITS.get(self.trigger, "")

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_hours_start is not None and self.quiet_hours_end is not None


class AutomationRun(models.Model):
    """One fan, one trigger event of one automation: the exactly-once record."""

    class State(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        HELD_CONTROL = "held_control", "Held out (control group)"
        ENQUEUED = "enqueued", "Handed to the send pipeline"
        CANCELLED = "cancelled", "Cancelled"
        SKIPPED = "skipped", "Skipped"

    class Reason(models.TextChoices):
        # Why a run was cancelled (before it went) or skipped (when it was due).
        NONE = "", "—"
        FAN_REPLIED = "fan_replied", "The fan wrote"
        CHATTER_WROTE = "chatter_wrote", "A chatter wrote to the fan"
        FAN_BOUGHT = "fan_bought", "The fan bought"
        TRIGGER_NO_LONGER_HOLDS = "trigger_no_longer_holds", "The trigger no longer holds"
        FREQUENCY_CAP = "frequency_cap", "Messaged recently (frequency cap)"
        FILTERED = "filtered", "No longer matches the filters"
        DISABLED = "disabled", "The automation was turned off"
        MANUAL = "manual", "Cancelled by a member"
        FAN_NOT_LINKED = "fan_not_linked", "Fan not linked to the platform"
        INVALID_MESSAGE = "invalid_message", "The message is not valid"
        EXPIRED = "expired", "Too late: due long ago (an outage)"
        MEDIA_UNAVAILABLE = "media_unavailable", "A media was removed or is not ready"
        MEDIA_ALREADY_SENT = "media_already_sent", "The fan already has this media"

    PENDING_STATES = (State.SCHEDULED,)
    FINAL_STATES = (State.HELD_CONTROL, State.ENQUEUED, State.CANCELLED, State.SKIPPED)

    automation = models.ForeignKey(
        Automation, on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="+", db_index=False)
    # The trigger event's stable identity: the subscription's start, the new end date, the
    # expiry instant, the PPV message's id, the fan's waiting-since time (automations.triggers).
    event_key = models.CharField(max_length=100)
    state = models.CharField(max_length=20, choices=State.choices, default=State.SCHEDULED)
    reason = models.CharField(max_length=30, choices=Reason.choices, blank=True, default="")
    is_control = models.BooleanField(default=False)
    # When the trigger fired (the event's time), when the run is due, when it ended.
    triggered_at = models.DateTimeField()
    due_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # The PPV message a follow-up is about (ppv_not_unlocked), to see whether it was unlocked.
    source_message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The message handed to the send pipeline (state enqueued).
    message = models.OneToOneField(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="automation_run"
    )
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-triggered_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "fan", "event_key"], name="automation_run_unique_event"
            ),
            models.CheckConstraint(
                condition=Q(is_control=True, state="held_control")
                | Q(is_control=False) & ~Q(state="held_control"),
                name="automation_run_control_state",
            ),
            models.CheckConstraint(
                condition=Q(state__in=["cancelled", "skipped"], reason__gt="")
                | ~Q(state__in=["cancelled", "skipped"]) & Q(reason=""),
                name="automation_run_reason_when_ended",
            ),
            models.CheckConstraint(
                condition=Q(state="scheduled") | Q(finished_at__isnull=False),
                name="automation_run_finished_has_time",
            ),
        ]
        indexes = [
            # The due scan: scheduled runs, soonest first.
            models.Index(
                fields=["due_at", "id"],
                condition=Q(state="scheduled"),
                name="automation_run_due",
            ),
            # An account's due runs (the due pass hands each account its share).
            models.Index(
                fields=["account", "due_at"],
                condition=Q(state="scheduled"),
                name="automation_run_account_due",
            ),
            # A fan's pending runs (cancel on change, the fan panel).
            models.Index(
                fields=["fan", "due_at"],
                condition=Q(state="scheduled"),
                name="automation_run_fan_pending",
            ),
            # An automation's runs by state and time (figures, turning it off).
            models.Index(
                fields=["automation", "state", "triggered_at"], name="automation_run_state"
            ),
            models.Index(fields=["account", "-triggered_at"], name="automation_run_account"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of automation {self.automation_id} for fan {self.fan_id}"
