"""The due pass: due runs re-checked and handed to the send pipeline.

When due a run is re-checked (turned off? quiet hours? did the fan write, a member write, the
fan buy, the trigger stop holding? filters? the per-fan cap?) and, in the same transaction that
marks it ``enqueued``, its one message is queued through ``onlyfans.services.message_enqueue``
in the campaign lane. The message row is the pipeline's outbox: published after commit, and
re-published by the outbox sweep if that publish is lost, so a worker killed anywhere sends
exactly one message or none (and then the run is still due).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.runs import run_changed_on_commit
from automations.scheduling import out_of_quiet_hours
from automations.selectors import fan_in_audience
from automations.triggers import trigger_holds
from campaigns.models import CampaignRecipient
from campaigns.rules import (
    text_personalise,
)
from crm.errors import ApplicationError
from crm.models import Conversation, CreatorAccount, Fan, Message, Purchase
from crm.zones import account_zone
from onlyfans.services import message_enqueue

log = structlog.get_logger(__name__)

Trigger = Automation.Trigger
State = AutomationRun.State
Reason = AutomationRun.Reason


# --- runs: the due pass -------------------------------------------------------------------------


@dataclass
class DuePass:
    enqueued: int = 0
    held: int = 0  # moved to the end of quiet hours
    cancelled: int = 0
    skipped: int = 0
    accounts_full: int = 0  # accounts whose automation backlog was full
    more: bool = False  # due runs were left for the next pass

    @property
    def handled(self) -> int:
        return self.enqueued + self.held + self.cancelled + self.skipped


_BACKLOG_SQL = f"""
SELECT count(*) FROM (SELECT 1 FROM {Message._meta.db_table}
  WHERE account_id = %s AND status = 'queued' AND dispatched_at IS NULL
    AND sender_kind = 'automation' LIMIT %s) b
"""  # noqa: S608 (table name only)


def _backlog_room(account: CreatorAccount) -> int:
    """How many more automated messages the account's pipeline backlog takes now: at least
    ``AUTOMATION_BACKLOG_MAX_PER_ACCOUNT``, more for a fast account (two passes' sends)."""
    cap = max(
        settings.AUTOMATION_BACKLOG_MAX_PER_ACCOUNT,
        math.ceil(account.send_rate_per_minute * settings.AUTOMATION_DUE_SECONDS / 30),
    )
    with connection.cursor() as cursor:
        cursor.execute(_BACKLOG_SQL, [account.pk, cap])
        waiting = int(cursor.fetchone()[0])
    return cap - waiting


def automation_runs_due_process(
    *, now: datetime | None = None, limit: int | None = None
) -> DuePass:
    """Hand the due runs of every account to the send pipeline (the periodic task), each
    account its share: no more than its automation backlog takes (``_backlog_room``), so a
    burst of 10,000 welcomes waits here, re-checked when its turn comes, and never delays
    another account's. One transaction per account."""
    now = now or timezone.now()
    limit = limit or settings.AUTOMATION_DUE_BATCH_SIZE
    result = DuePass()
    account_ids = list(
        AutomationRun.objects.filter(state=State.SCHEDULED, due_at__lte=now)
        .order_by()
        .values_list("account_id", flat=True)
        .distinct()
    )
    for account_id in account_ids:
        if result.handled >= limit:
            result.more = True
            break
        _account_due_process(
            account_id=account_id, now=now, limit=limit - result.handled, result=result
        )
    return result


@transaction.atomic
def _account_due_process(*, account_id: int, now: datetime, limit: int, result: DuePass) -> None:
    account = CreatorAccount.objects.filter(pk=account_id).first()
    if account is None:
        return
    room = _backlog_room(account)
    if room <= 0:
        result.accounts_full += 1
        return
    take = min(room, limit)
    runs = list(
        AutomationRun.objects.select_for_update(skip_locked=True)
        .filter(account_id=account_id, state=State.SCHEDULED, due_at__lte=now)
        .order_by("due_at", "pk")[:take]
    )
    if not runs:
        return
    if len(runs) == take and take < room:
        result.more = True
    # The fans in id order (deadlock-free against another pass), locked for the check of the
    # cap: two runs of one fan, handled by two workers, see each other's message.
    fans = {
        fan.pk: fan
        for fan in Fan.objects.select_for_update()
        .filter(pk__in={run.fan_id for run in runs})
        .order_by("pk")
    }
    automations = {
        a.pk: a
        for a in Automation.objects.filter(
            pk__in={run.automation_id for run in runs}
        ).select_related("account")
    }
    for run in sorted(runs, key=lambda r: (r.fan_id, r.due_at, r.pk)):
        fan = fans.get(run.fan_id)
        if fan is None:
            continue
        outcome = _run_process_locked(
            run=run, automation=automations[run.automation_id], fan=fan, now=now
        )
        setattr(result, outcome, getattr(result, outcome) + 1)


def automation_run_process(*, run_id: int, now: datetime | None = None) -> str | None:
    """Handle one due run now, if it is still scheduled and not locked by another pass (tests
    and tools; the periodic pass batches by account). Returns the outcome or None."""
    now = now or timezone.now()
    with transaction.atomic():
        run = (
            AutomationRun.objects.select_for_update(skip_locked=True)
            .filter(pk=run_id, state=State.SCHEDULED)
            .first()
        )
        if run is None:
            return None
        fan = Fan.objects.select_for_update().get(pk=run.fan_id)
        automation = Automation.objects.select_related("account").get(pk=run.automation_id)
        return _run_process_locked(run=run, automation=automation, fan=fan, now=now)


def _finish(run: AutomationRun, *, state: str, reason: str, now: datetime) -> None:
    run.state = state
    run.reason = reason
    run.finished_at = now
    run.save(update_fields=["state", "reason", "finished_at", "message", "updated_at"])
    log.info(
        "automation.run_finished",
        run_id=run.pk,
        automation_id=run.automation_id,
        account_id=run.account_id,
        state=state,
        reason=reason or None,
        message_id=run.message_id,
    )
    run_changed_on_commit(run)


def _run_process_locked(
    *, run: AutomationRun, automation: Automation, fan: Fan, now: datetime
) -> str:
    """Re-check a due run and send its message or end it. The caller holds the run's and the
    fan's row locks. Returns the ``DuePass`` field it counts in."""
    if not automation.enabled:
        _finish(run, state=State.CANCELLED, reason=Reason.DISABLED, now=now)
        return "cancelled"
    expire_hours = settings.AUTOMATION_RUN_EXPIRE_HOURS
    if expire_hours > 0 and run.due_at < now - timedelta(hours=expire_hours):
        # After a long outage a welcome or a nudge hours late reads wrong: it does not go.
        _finish(run, state=State.CANCELLED, reason=Reason.EXPIRED, now=now)
        return "cancelled"
    zone = account_zone(automation.account)
    later = out_of_quiet_hours(automation, now, zone)
    if later != now:
        run.due_at = later
        run.save(update_fields=["due_at", "updated_at"])
        log.info("automation.run_quiet_hours", run_id=run.pk, account_id=run.account_id)
        return "held"
    conversation = Conversation.objects.filter(fan_id=fan.pk).first()
    reason = _cancel_reason(
        run=run, automation=automation, fan=fan, conversation=conversation, now=now
    )
    if reason:
        _finish(run, state=State.CANCELLED, reason=reason, now=now)
        return "cancelled"
    reason = _skip_reason(automation=automation, fan=fan, conversation=conversation, now=now)
    if reason:
        _finish(run, state=State.SKIPPED, reason=reason, now=now)
        return "skipped"
    text = text_personalise(automation.text, display_name=fan.display_name, username=fan.username)
    try:
        message = message_enqueue(
            fan=fan,
            text=text,
            price_cents=automation.price_cents,
            vault_item_ids=list(automation.vault_item_ids),
            media_ids=list(automation.media_ids),
            sender_kind=Message.SenderKind.AUTOMATION,
        )
    except ApplicationError as exc:
        reason = _SKIP_REASON_OF.get(exc.code, Reason.INVALID_MESSAGE)
        _finish(run, state=State.SKIPPED, reason=reason, now=now)
        return "skipped"
    run.message = message
    _finish(run, state=State.ENQUEUED, reason="", now=now)
    return "enqueued"


# Why a due run's message was refused by the pipeline (its error code), for the run's record:
# the picked media are checked again here, so one removed or still processing since the
# automation was saved, or one the fan already has (the resend guard), is named as such.
_SKIP_REASON_OF = {
    "fan_not_linked": Reason.FAN_NOT_LINKED,
    "media_not_found": Reason.MEDIA_UNAVAILABLE,
    "media_gone": Reason.MEDIA_UNAVAILABLE,
    "media_not_ready": Reason.MEDIA_UNAVAILABLE,
    "media_already_sent": Reason.MEDIA_ALREADY_SENT,
}


def _reference_time(run: AutomationRun) -> datetime:
    """Since when the fan's and chatters' messages count against the run: the trigger's
    moment, or for a PPV follow-up the PPV's sending (a chat since then needs no nudge)."""
    if run.source_message_id is not None:
        sent_at = (
            Message.objects.filter(pk=run.source_message_id)
            .values_list("sent_at", flat=True)
            .first()
        )
        if sent_at is not None:
            return min(sent_at, run.triggered_at)
    return run.triggered_at


def _cancel_reason(
    *,
    run: AutomationRun,
    automation: Automation,
    fan: Fan,
    conversation: Conversation | None,
    now: datetime,
) -> str:
    since = _reference_time(run)
    if conversation is not None:
        messages = Message.objects.filter(conversation=conversation, created_at__gt=since)
        if (
            automation.trigger != Trigger.NO_REPLY
            and messages.filter(direction=Message.Direction.IN).exists()
        ):
            return Reason.FAN_REPLIED
        if messages.filter(
            direction=Message.Direction.OUT, sender_kind=Message.SenderKind.USER
        ).exists():
            return Reason.CHATTER_WROTE
    if (
        automation.trigger == Trigger.PPV_NOT_UNLOCKED
        and Purchase.objects.filter(fan_id=fan.pk, purchased_at__gt=since).exists()
    ):
        return Reason.FAN_BOUGHT
    if not trigger_holds(run=run, automation=automation, fan=fan, now=now):
        return Reason.TRIGGER_NO_LONGER_HOLDS
    return ""


def fan_capped(*, fan: Fan, conversation: Conversation | None, now: datetime) -> bool:
    """Whether the fan had an automated or a campaign message (not failed) within the last
    ``AUTOMATION_FAN_CAP_HOURS``, or a campaign's mass message."""
    since = now - timedelta(hours=settings.AUTOMATION_FAN_CAP_HOURS)
    if (
        conversation is not None
        and Message.objects.filter(
            conversation=conversation,
            direction=Message.Direction.OUT,
            sender_kind__in=[Message.SenderKind.AUTOMATION, Message.SenderKind.CAMPAIGN],
            created_at__gte=since,
        )
        .exclude(status=Message.Status.FAILED)
        .exists()
    ):
        return True
    return CampaignRecipient.objects.filter(
        Q(fan_id=fan.pk, state=CampaignRecipient.State.MASS_SENT, sent_at__gte=since)
    ).exists()


def _skip_reason(
    *, automation: Automation, fan: Fan, conversation: Conversation | None, now: datetime
) -> str:
    if not fan.platform_fan_id:
        return Reason.FAN_NOT_LINKED
    if not fan_in_audience(automation=automation, fan_id=fan.pk, now=now):
        return Reason.FILTERED
    if fan_capped(fan=fan, conversation=conversation, now=now):
        return Reason.FREQUENCY_CAP
    return ""
