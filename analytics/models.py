"""Analytics' own rows: manual sales credits and their audit trail.

Every figure is a query over crm's rows (purchases, messages, fans); the only state analytics
keeps is what people decided: a purchase credited to another chatter than the rule says.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from crm.models import CreatorAccount, Fan, Purchase


class AttributionRule(models.TextChoices):
    """Why a purchase is credited to whom (shown beside each purchase)."""

    PPV_SENDER = "ppv_sender", "PPV unlock: the chatter who sent it"
    LAST_CHATTER = "last_chatter", "Tip: the last chatter who wrote to the fan"
    REASSIGNED = "reassigned", "Reassigned by hand"
    UNATTRIBUTED = "unattributed", "No rule applies"


class PurchaseCredit(models.Model):
    """The current manual credit of one purchase; it overrides the rules.

    ``credited_to`` null means "unattributed on purpose". Written only by
    ``analytics.services.purchase_credit_reassign``, which also appends a PurchaseCreditChange.
    """

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="+")
    purchase = models.OneToOneField(Purchase, on_delete=models.CASCADE, related_name="credit")
    credited_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=500)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["account", "credited_to"], name="credit_account_user")]

    def __str__(self) -> str:
        return f"purchase {self.purchase_id} -> {self.credited_to_id}"


class PurchaseCreditChange(models.Model):
    """One reassignment, as it happened: who, when, why, from whom to whom. Never edited."""

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="+")
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="credit_changes")
    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_rule = models.CharField(max_length=20, choices=AttributionRule.choices)
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # False when the change handed the purchase back to the rules.
    to_manual = models.BooleanField(default=True)
    reason = models.CharField(max_length=500)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-changed_at"], name="credit_change_account_time"),
            models.Index(fields=["purchase", "-changed_at"], name="credit_change_purchase"),
        ]

    def __str__(self) -> str:
        return f"purchase {self.purchase_id}: {self.from_user_id} -> {self.to_user_id}"


# --- Roll-ups: per-day figures the page reads instead of a million raw rows -------------------
# Kept by analytics.rollups (a Celery task every minute, and the reassignment service at once);
# tests/analytics/test_rollups.py proves them equal to the raw queries.

NO_NEXT_DAY = "9999-12-31"


class DayRollup(models.Model):
    """One account's figures for one local day: the whole account (``user`` null) and each
    chatter (``user`` set: their messages, replies and credited sales)."""

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    revenue_subscription = models.BigIntegerField(default=0)
    revenue_tip = models.BigIntegerField(default=0)
    revenue_ppv = models.BigIntegerField(default=0)
    purchases = models.IntegerField(default=0)
    new_fans = models.IntegerField(default=0)
    messages_sent = models.IntegerField(default=0)
    messages_received = models.IntegerField(default=0)
    ppv_sent = models.IntegerField(default=0)
    ppv_unlocked = models.IntegerField(default=0)
    replies = models.IntegerField(default=0)
    # Replies per response-time bucket (analytics.histogram); medians come from these.
    response_histogram = ArrayField(models.IntegerField(), default=list, blank=True)
    credited_cents = models.BigIntegerField(default=0)
    credited_purchases = models.IntegerField(default=0)
    # Account rows: {rule: [purchases, cents]} over the day's purchases.
    by_rule = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day"],
                condition=models.Q(user__isnull=True),
                name="day_rollup_unique_account",
            ),
            models.UniqueConstraint(
                fields=["account", "day", "user"],
                condition=models.Q(user__isnull=False),
                name="day_rollup_unique_user",
            ),
        ]
        indexes = [models.Index(fields=["account", "day"], name="day_rollup_account_day")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day} {self.user_id or 'all'}"


class FanActiveDay(models.Model):
    """A local day on which a fan wrote a message or bought something."""

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="+")
    fan = models.ForeignKey(Fan, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["fan", "day"], name="fan_active_day_unique")]
        indexes = [models.Index(fields=["account", "day"], name="fan_active_day_account")]

    def __str__(self) -> str:
        return f"fan {self.fan_id} on {self.day}"


class ActiveGap(models.Model):
    """How many fans were active on ``day`` and next active on ``next_day`` (9999-12-31: not
    since). A fan is active in [a, b) exactly once as a row with a <= day < b <= next_day, so
    distinct active fans of any window are a sum over these few rows."""

    account = models.ForeignKey(CreatorAccount, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    next_day = models.DateField()
    fans = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "day", "next_day"], name="active_gap_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.day}->{self.next_day}: {self.fans}"


class RollupState(models.Model):
    """Per account: the time zone the roll-ups were cut in, when they were last brought up to
    date (the page's "as of"), and fans per lifetime-spend band at that time."""

    account = models.OneToOneField(
        CreatorAccount, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    time_zone = models.CharField(max_length=64)
    refreshed_at = models.DateTimeField()
    spend_bands = ArrayField(models.IntegerField(), default=list, blank=True)

    def __str__(self) -> str:
        return f"{self.account_id} as of {self.refreshed_at}"


class RollupCursor(models.Model):
    """How far the refresh task has read a crm table (its highest id seen)."""

    table = models.CharField(max_length=64, primary_key=True)
    last_id = models.BigIntegerField(default=0)
    # Rows with ids in (last_id - overlap, last_id] when it was read: a later count that
    # differs means a transaction committed a lower id after the read (read that stretch again).
    window_count = models.IntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.table} @ {self.last_id}"
