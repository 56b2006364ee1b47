"""Analytics writes: reassigning a purchase's sales credit (with its audit row); asking for
a roll-up refresh when a reader finds them missing or behind."""

from __future__ import annotations

import structlog
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from analytics import queries, selectors
from analytics.models import AttributionRule, PurchaseCredit, PurchaseCreditChange
from analytics.rollups import ROLLUPS_CURRENT, rollup_recompute
from config.celery import task_publish
from crm.errors import ApplicationError, NotFoundError
from crm.models import Membership, Purchase
from crm.selectors import manager_membership_get
from crm.zones import zone_named

REASON_MAX_LENGTH = 500
REFRESH_TASK = "analytics.tasks.rollups_refresh_task"
REFRESH_REQUEST_KEY = "analytics:rollups-refresh-requested"
# One request per this many seconds, however many pages find the roll-ups missing: a run
# rebuilds every account that needs it, and a second one would only wait for its lock.
REFRESH_REQUEST_SECONDS = 60

log = structlog.get_logger(__name__)


def rollups_refresh_request(*, freshness: str) -> bool:
    """When a report found its account's roll-ups missing or stale (``freshness``), publish a
    refresh now instead of waiting for beat; at most one a minute. A broker that refuses is
    logged: beat's own run follows. Returns whether a task was published."""
    if freshness == ROLLUPS_CURRENT:
        return False
    if not cache.add(REFRESH_REQUEST_KEY, 1, timeout=REFRESH_REQUEST_SECONDS):
        return False
    try:
        task_publish(REFRESH_TASK, ignore_result=True)
    except Exception:  # the broker's errors are many (kombu, boto, sockets)
        log.exception("analytics.rollups_refresh_publish_failed")
        cache.delete(REFRESH_REQUEST_KEY)
        return False
    log.info("analytics.rollups_refresh_requested")
    return True


@transaction.atomic
def purchase_credit_reassign(
    *,
    actor: AbstractBaseUser,
    account_id: int,
    purchase_id: int,
    credited_to_id: int | None,
    reason: str,
    back_to_rule: bool = False,
) -> queries.AttributedPurchase:
    """Credit a purchase to ``credited_to_id`` (a member of the account; None: nobody), or
    hand it back to the rules with ``back_to_rule``; owners and managers only, with a reason.

    Locks the purchase row (``select_for_update``) so two reassignments of the same purchase
    are recorded one after the other, each with the credit it replaced, then recomputes the
    purchase's day of the roll-ups (under the account's roll-up lock). Returns the purchase as
    every figure now sees it.
    """
    membership = manager_membership_get(user=actor, account_id=account_id, action="reassign sales")
    reason = reason.strip()
    if not reason:
        raise ApplicationError(
            "Say why the sale is reassigned.",
            code="invalid_reassignment",
            fields={"reason": ["Required."]},
        )
    if len(reason) > REASON_MAX_LENGTH:
        raise ApplicationError(
            "The reason is too long.",
            code="invalid_reassignment",
            fields={"reason": [f"At most {REASON_MAX_LENGTH} characters."]},
        )
    purchase = (
        Purchase.objects.select_for_update().filter(pk=purchase_id, account_id=account_id).first()
    )
    if purchase is None:
        raise NotFoundError("Purchase not found.", code="purchase_not_found")
    if (
        not back_to_rule
        and credited_to_id is not None
        and not Membership.objects.filter(account_id=account_id, user_id=credited_to_id).exists()
    ):
        raise ApplicationError(
            "Sales can only be credited to members of the account.",
            code="invalid_reassignment",
            fields={"credited_to": ["Not a member of this account."]},
        )
    before = selectors.attributed_purchase_get(account=membership.account, purchase_id=purchase.pk)
    now = timezone.now()
    if back_to_rule:
        PurchaseCredit.objects.filter(purchase_id=purchase.pk).delete()
    else:
        PurchaseCredit.objects.update_or_create(
            purchase_id=purchase.pk,
            defaults={
                "account_id": account_id,
                "credited_to_id": credited_to_id,
                "reason": reason,
                "changed_by_id": actor.pk,
                "changed_at": now,
            },
        )
    after = selectors.attributed_purchase_get(account=membership.account, purchase_id=purchase.pk)
    PurchaseCreditChange.objects.create(
        account_id=account_id,
        purchase_id=purchase.pk,
        from_user_id=before.credited_to_id,
        from_rule=AttributionRule(before.rule),
        to_user_id=after.credited_to_id,
        to_manual=not back_to_rule,
        reason=reason,
        changed_by_id=actor.pk,
        changed_at=now,
    )
    # Every figure follows at once: the purchase's day is recomputed in this transaction.
    day = purchase.purchased_at.astimezone(zone_named(membership.account.time_zone)).date()
    rollup_recompute(account=membership.account, first_day=day, last_day=day)
    return after
