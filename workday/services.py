"""Workday writes: marking a message, a chatter seeing their marks, pay rules and the review
thresholds of an account. Owners and managers only, except ``message_reviews_mark_seen``."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import cast

import structlog
from django.db import transaction
from django.utils import timezone

from crm.errors import ApplicationError, NotFoundError
from crm.models import Membership, Message
from crm.selectors import User, manager_membership_get
from workday.models import REVIEW_COMMENT_MAX_LENGTH, MessageReview, PayRule, ReviewSettings

log = structlog.get_logger(__name__)


@transaction.atomic
def message_review_mark(
    *, actor: User, message_id: int, verdict: str, comment: str = ""
) -> MessageReview:
    """Mark a member's outgoing message good or needs work, with a comment its sender sees;
    marking again replaces the mark (and shows it to the sender as new). Another account's
    message is a NotFoundError; a chatter gets 403."""
    message = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.OUT)
        .only("id", "account_id", "sent_by_id")
        .first()
    )
    if message is None:
        raise NotFoundError("Message not found.", code="message_not_found")
    manager_membership_get(user=actor, account_id=message.account_id, action="review messages")
    if verdict not in MessageReview.Verdict.values:
        raise ApplicationError(
            "Choose good or needs work.",
            code="invalid_review",
            fields={"verdict": ["good or needs_work."]},
        )
    comment = comment.strip()
    if len(comment) > REVIEW_COMMENT_MAX_LENGTH:
        raise ApplicationError(
            "The comment is too long.",
            code="invalid_review",
            fields={"comment": [f"At most {REVIEW_COMMENT_MAX_LENGTH} characters."]},
        )
    if message.sent_by_id is None:
        raise ApplicationError(
            "Only messages a member sent can be reviewed.", code="not_reviewable", status_code=409
        )
    review, created = MessageReview.objects.update_or_create(
        message_id=message.pk,
        defaults={
            "account_id": message.account_id,
            "chatter_id": message.sent_by_id,
            "verdict": verdict,
            "comment": comment,
            "reviewed_by_id": actor.pk,
            "reviewed_at": timezone.now(),
            "seen_at": None,
        },
    )
    log.info(
        "workday.message_reviewed",
        message_id=message.pk,
        account_id=message.account_id,
        verdict=verdict,
        created=created,
    )
    return review


@transaction.atomic
def message_reviews_mark_seen(*, actor: User) -> int:
    """The user has seen every mark on their messages; returns how many were new."""
    if not actor.is_authenticated:
        return 0
    return MessageReview.objects.filter(
        chatter_id=cast(int, actor.pk), seen_at__isnull=True
    ).update(seen_at=timezone.now())


def _cents(value: object, name: str, maximum: int) -> int:
    try:
        cents = int(str(value))
    except ValueError:
        cents = -1
    if not 0 <= cents <= maximum:
        raise ApplicationError(
            "The pay rule is not valid.",
            code="invalid_pay_rule",
            fields={name: [f"Whole cents from 0 to {maximum}."]},
        )
    return cents


@transaction.atomic
def pay_rule_set(
    *,
    actor: User,
    account_id: int,
    user_id: int,
    hourly_rate_cents: int,
    commission_percent: Decimal | str,
) -> PayRule:
    """Set how a member of the account is paid (owners and managers)."""
    manager_membership_get(user=actor, account_id=account_id, action="change pay")
    if not Membership.objects.filter(account_id=account_id, user_id=user_id).exists():
        raise NotFoundError("Member not found.", code="member_not_found")
    hourly = _cents(hourly_rate_cents, "hourly_rate_cents", 100_000)
    try:
        percent = Decimal(str(commission_percent)[:12]).quantize(Decimal("0.01"))
    except InvalidOperation:
        percent = Decimal(-1)
    if not Decimal(0) <= percent <= Decimal(100):
        raise ApplicationError(
            "The pay rule is not valid.",
            code="invalid_pay_rule",
            fields={"commission_percent": ["A percentage from 0 to 100."]},
        )
    rule, _ = PayRule.objects.update_or_create(
        account_id=account_id,
        user_id=user_id,
        defaults={
            "hourly_rate_cents": hourly,
            "commission_percent": percent,
            "updated_by_id": actor.pk,
        },
    )
    log.info("workday.pay_rule_set", account_id=account_id, user_id=user_id)
    return rule


@transaction.atomic
def review_settings_update(
    *, actor: User, account_id: int, min_ppv_price_cents: int, long_wait_seconds: int | None
) -> ReviewSettings:
    """Set the account's review thresholds (owners and managers)."""
    manager_membership_get(user=actor, account_id=account_id, action="change review settings")
    price = _cents(min_ppv_price_cents, "min_ppv_price_cents", 20_000)
    if long_wait_seconds is not None and not 30 <= long_wait_seconds <= 7 * 24 * 3600:
        raise ApplicationError(
            "The settings are not valid.",
            code="invalid_review_settings",
            fields={"long_wait_seconds": ["From 30 seconds to 7 days."]},
        )
    found, _ = ReviewSettings.objects.update_or_create(
        account_id=account_id,
        defaults={"min_ppv_price_cents": price, "long_wait_seconds": long_wait_seconds},
    )
    log.info("workday.review_settings_changed", account_id=account_id)
    return found
