"""Workday's own rows: a supervisor's marks on messages, the review thresholds of each
account, and each member's pay rule.

Every row carries ``account`` so reads are scoped with one indexed filter, as in crm.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q

from crm.models import CreatorAccount, Message

REVIEW_COMMENT_MAX_LENGTH = 1000


class ReviewSettings(models.Model):
    """An account's review thresholds: the lowest PPV price a chatter should ask (0: none),
    and the wait before a reply that counts as long (null: the account's first-reply target,
    ``CreatorAccount.reply_target_seconds``, so the two agree unless a manager says otherwise)."""

    account = models.OneToOneField(
        CreatorAccount, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    min_ppv_price_cents = models.PositiveIntegerField(
        default=0, help_text="PPVs priced below this are flagged (0: no minimum)."
    )
    long_wait_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="A reply after a longer wait is flagged (empty: the account's reply target).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(min_ppv_price_cents__lte=20000), name="review_settings_min_price_range"
            ),
            models.CheckConstraint(
                condition=Q(long_wait_seconds__isnull=True) | Q(long_wait_seconds__gte=30),
                name="review_settings_long_wait_range",
            ),
        ]

    def __str__(self) -> str:
        return f"review settings of {self.account_id}"


class MessageReview(models.Model):
    """A manager's mark on one outgoing message (one per message; marking again replaces it).
    ``chatter`` is the message's sender, kept here so "my reviews" is one index walk."""

    class Verdict(models.TextChoices):
        GOOD = "good", "Good"
        NEEDS_WORK = "needs_work", "Needs work"

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="review")
    chatter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    verdict = models.CharField(max_length=12, choices=Verdict.choices)
    comment = models.TextField(blank=True, max_length=REVIEW_COMMENT_MAX_LENGTH)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField()
    # When the chatter opened "My reviews" after this mark (null: not seen yet).
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-reviewed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(verdict__in=["good", "needs_work"]), name="message_review_verdict"
            ),
        ]
        indexes = [
            # "My reviews", newest first (keyset on these columns).
            models.Index(fields=["chatter", "-reviewed_at", "-id"], name="message_review_chatter"),
            models.Index(
                fields=["chatter"], condition=Q(seen_at__isnull=True), name="message_review_unseen"
            ),
            models.Index(fields=["account", "-reviewed_at"], name="message_review_account"),
        ]

    def __str__(self) -> str:
        return f"{self.verdict} on message {self.message_id}"


class PayRule(models.Model):
    """How one member is paid for their work on one account: an hourly rate for worked time
    (``WorkSession``), a commission on the sales credited to them, or both."""

    account = models.ForeignKey(
        CreatorAccount, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    hourly_rate_cents = models.PositiveIntegerField(default=0)
    commission_percent = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal(0))
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="pay_rule_unique_member"),
            models.CheckConstraint(
                condition=Q(commission_percent__gte=0, commission_percent__lte=100),
                name="pay_rule_commission_range",
            ),
            models.CheckConstraint(
                condition=Q(hourly_rate_cents__lte=100_000), name="pay_rule_hourly_range"
            ),
        ]

    def __str__(self) -> str:
        return f"pay of {self.user_id}@{self.account_id}"
