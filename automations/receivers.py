"""What automations do when the apps below tell them something happened (their signals,
``onlyfans.signals``). Each receiver runs inside the event's own transaction: the runs it
writes or cancels commit with the event, or not at all."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.db import transaction

from automations.models import Automation, AutomationRun
from automations.runs import (
    automation_runs_cancel_chatter_wrote,
    automation_runs_cancel_for_fan,
    automation_runs_on_subscriptions,
)
from crm.models import CreatorAccount, Fan, Message, Purchase
from onlyfans.inbound import SubscriptionApplied


def subscriptions_applied_receiver(
    sender: Any,
    *,
    account: CreatorAccount,
    changes: Sequence[SubscriptionApplied],
    **kwargs: Any,
) -> None:
    automation_runs_on_subscriptions(account=account, changes=changes)


# Whether an account has automations at all, per process, for ``AUTOMATION_ACCOUNT_CACHE_SECONDS``:
# a fan's message on an account without any costs no query here. Stale for that long at worst
# after an account's first automation, which is safe: a run's due pass checks again whether
# the fan wrote (``automations.due._cancel_reason``), so a reply never goes unseen.
_has_automations: dict[int, tuple[bool, float]] = {}


def account_has_automations(account_id: int) -> bool:
    now = time.monotonic()
    cached = _has_automations.get(account_id)
    if cached is not None and cached[1] > now:
        return cached[0]
    has = Automation.objects.filter(account_id=account_id).exists()
    ttl = settings.AUTOMATION_ACCOUNT_CACHE_SECONDS
    if ttl > 0:
        _has_automations[account_id] = (has, now + ttl)
    return has


def fan_message_received_receiver(
    sender: Any, *, account: CreatorAccount, fan_id: int, **kwargs: Any
) -> None:
    if not account_has_automations(account.pk):
        return
    # A no-reply nudge is about the fan's wait: another message from them keeps it due.
    automation_runs_cancel_for_fan(
        account_id=account.pk,
        fan_id=fan_id,
        reason=AutomationRun.Reason.FAN_REPLIED,
        except_triggers=[Automation.Trigger.NO_REPLY],
    )


def message_queued_receiver(sender: Any, *, message: Message, fan: Fan, **kwargs: Any) -> None:
    if message.sender_kind != Message.SenderKind.USER:
        return  # an automation's or a campaign's message is not a chatter writing
    # After the member's message commits (one statement in autocommit, off the send's
    # transaction). A run that goes meanwhile is checked when due.
    transaction.on_commit(
        functools.partial(_chatter_wrote_after_commit, account_id=fan.account_id, fan_id=fan.pk)
    )


def _chatter_wrote_after_commit(*, account_id: int, fan_id: int) -> None:
    if account_has_automations(account_id):  # else nothing to withdraw, and no statement
        automation_runs_cancel_chatter_wrote(account_id=account_id, fan_id=fan_id)


def purchase_recorded_receiver(sender: Any, *, purchase: Purchase, **kwargs: Any) -> None:
    if not account_has_automations(purchase.account_id):
        return
    automation_runs_cancel_for_fan(
        account_id=purchase.account_id,
        fan_id=purchase.fan_id,
        reason=AutomationRun.Reason.FAN_BOUGHT,
        triggers=[Automation.Trigger.PPV_NOT_UNLOCKED],
    )
