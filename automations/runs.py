"""Writes of automation runs: their creation, exactly once per ``(automation, fan,
event_key)`` (an insert that conflicts on that unique key does nothing, so a replayed webhook,
a second scan or a restart never makes a second run), and their cancellation when something
changes before they go (the fan writes, a member writes, the fan buys, the trigger stops
holding; a member's cancel from the fan panel)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.scheduling import control_draw, run_due_at
from automations.selectors import fans_in_audience
from automations.triggers import TriggerHit, event_key, scan_window, trigger_hits, trigger_holds
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import Conversation, CreatorAccount, Fan, Message
from crm.selectors import membership_get
from crm.zones import account_zone
from onlyfans.inbound import SubscriptionApplied

log = structlog.get_logger(__name__)

Trigger = Automation.Trigger
State = AutomationRun.State
Reason = AutomationRun.Reason


# --- runs: creation -------------------------------------------------------------------------


def _runs_create(
    automation: Automation, hits: Sequence[TriggerHit], *, now: datetime
) -> list[AutomationRun]:
    """Insert a run per hit; one that exists already (same automation, fan and event key) is
    left alone. Returns the runs inserted."""
    if not hits:
        return []
    zone = account_zone(automation.account)
    runs = []
    for hit in hits:
        is_control = control_draw(automation)
        runs.append(
            AutomationRun(
                automation=automation,
                account_id=automation.account_id,
                fan_id=hit.fan_id,
                event_key=hit.event_key[:100],
                triggered_at=hit.triggered_at,
                # Due from the trigger's moment, or from now when it is past (a late scan).
                due_at=run_due_at(
                    automation, triggered_at=max(hit.triggered_at, now - _late()), zone=zone
                ),
                is_control=is_control,
                state=State.HELD_CONTROL if is_control else State.SCHEDULED,
                finished_at=now if is_control else None,
                source_message_id=hit.source_message_id,
            )
        )
    with connection.cursor() as cursor:
        inserted = _insert_ignoring_conflicts(cursor, runs)
    if inserted:
        log.info(
            "automation.runs_created",
            automation_id=automation.pk,
            account_id=automation.account_id,
            runs=len(inserted),
            control=sum(1 for r in inserted if r.is_control),
        )
    return inserted


def _late() -> timedelta:
    # A scan that finds a moment this far past still counts from it; older ones from now.
    return timedelta(seconds=2 * settings.AUTOMATION_SCAN_SECONDS)


_INSERT_COLUMNS = (
    "automation_id",
    "account_id",
    "fan_id",
    "event_key",
    "state",
    "reason",
    "is_control",
    "triggered_at",
    "due_at",
    "finished_at",
    "source_message_id",
    "message_id",
    "cancelled_by_id",
    "created_at",
    "updated_at",
)


_INSERT_TYPES = (
    "bigint",
    "bigint",
    "bigint",
    "text",
    "text",
    "text",
    "boolean",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "bigint",
    "bigint",
    "bigint",
    "timestamptz",
    "timestamptz",
)


def _insert_ignoring_conflicts(cursor: Any, runs: list[AutomationRun]) -> list[AutomationRun]:
    """One INSERT … SELECT FROM unnest(arrays) … ON CONFLICT DO NOTHING RETURNING for the runs
    (bulk_create's ignore_conflicts does not say which rows went in; arrays, one parameter a
    column, keep a batch of hundreds cheap to send)."""
    now = timezone.now()
    columns: list[list[Any]] = [[] for _ in _INSERT_COLUMNS]
    for run in runs:
        values = (
            run.automation_id,
            run.account_id,
            run.fan_id,
            run.event_key,
            run.state,
            "",
            run.is_control,
            run.triggered_at,
            run.due_at,
            run.finished_at,
            run.source_message_id,
            None,
            None,
            now,
            now,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    arrays = ", ".join(f"%s::{kind}[]" for kind in _INSERT_TYPES)
    sql = (
        f"INSERT INTO {AutomationRun._meta.db_table} ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608
        f"SELECT * FROM unnest({arrays}) "
        "ON CONFLICT (automation_id, fan_id, event_key) DO NOTHING RETURNING id, fan_id, event_key"
    )
    cursor.execute(sql, columns)
    by_key = {(run.fan_id, run.event_key): run for run in runs}
    inserted = []
    for pk, fan_id, key in cursor.fetchall():
        run = by_key[(fan_id, key)]
        run.pk = pk
        run.created_at = run.updated_at = now
        inserted.append(run)
    return inserted


def _enabled(account_id: int, triggers: Sequence[str]) -> list[Automation]:
    return list(
        Automation.objects.filter(account_id=account_id, enabled=True, trigger__in=triggers)
        .select_related("account")
        .order_by("pk")
    )


def automation_runs_on_subscription(
    *,
    account: CreatorAccount,
    fan: Fan,
    event: str,
    previous_state: str,
    previous_expires_at: datetime | None,
    now: datetime | None = None,
) -> list[AutomationRun]:
    """``automation_runs_on_subscriptions`` for one event applied to ``fan`` (as it is now)."""
    change = SubscriptionApplied(
        fan=fan,
        event=event,
        previous_state=previous_state,
        previous_expires_at=previous_expires_at,
        subscribed_at=fan.subscribed_at,
        expires_at=fan.subscription_expires_at,
        event_subscribed_at=None,
        event_expires_at=None,
    )
    return automation_runs_on_subscriptions(account=account, changes=[change], now=now)


def _subscription_hit(change: SubscriptionApplied, *, now: datetime) -> tuple[str, str] | None:
    """The trigger and event key of a subscription event, or None."""
    ended = change.previous_state == Fan.SubscriptionState.EXPIRED or (
        change.previous_expires_at is not None and change.previous_expires_at <= now
    )
    if change.event == "subscriptions.new":
        started = change.subscribed_at or now
        if ended:
            return Trigger.RETURNED_AFTER_EXPIRY, event_key(
                "returned", change.previous_expires_at or started
            )
        return Trigger.SUBSCRIBED, event_key("subscribed", started)
    if change.event == "subscriptions.renewed":
        return Trigger.RENEWED, event_key("renewed", change.expires_at or now)
    return None


def automation_runs_on_subscriptions(
    *,
    account: CreatorAccount,
    changes: Sequence[SubscriptionApplied],
    now: datetime | None = None,
) -> list[AutomationRun]:
    """Subscription webhooks were applied to the account's fans (inside their transaction,
    which holds the fans' row locks): runs for the account's enabled event automations, and
    the fans' pending runs whose trigger no longer holds are cancelled (a renewal moves the
    end an expiring-soon nudge was about). A few statements for the whole batch: the pending
    runs, the enabled automations, and per automation its filters over the batch's fans and
    one insert.

    ``subscriptions.new`` fires ``returned_after_expiry`` when the fan's previous subscription
    had ended (expired by state or by its end date), else ``subscribed``; its event key is
    the subscription's start (the end that was passed, for a return), which a repeated
    delivery of the same subscription shares. ``subscriptions.renewed`` fires ``renewed``,
    keyed by the new end date.
    """
    now = now or timezone.now()
    if not changes:
        return []
    _cancel_where_trigger_gone(fans={c.fan.pk: c.fan for c in changes}, now=now)
    hits: dict[str, dict[tuple[int, str], TriggerHit]] = {}
    for change in changes:
        found = _subscription_hit(change, now=now)
        if found is not None:
            trigger, key = found
            hits.setdefault(trigger, {})[(change.fan.pk, key)] = TriggerHit(change.fan.pk, key, now)
    created: list[AutomationRun] = []
    if not hits:
        return created
    for automation in _enabled(account.pk, list(hits)):
        candidates = list(hits[automation.trigger].values())
        allowed = fans_in_audience(
            automation=automation, fan_ids={hit.fan_id for hit in candidates}, now=now
        )
        created += _runs_create(
            automation, [hit for hit in candidates if hit.fan_id in allowed], now=now
        )
    return created


def automation_runs_scan(
    *, automation: Automation, now: datetime | None = None, limit: int = 5000
) -> list[AutomationRun]:
    """Find the automation's scan-trigger hits up to now and create their runs (exactly once
    per event: those that have a run are not found again, and the unique key backs it)."""
    now = now or timezone.now()
    if not automation.enabled or automation.trigger not in Automation.SCAN_TRIGGERS:
        return []
    lookback = timedelta(hours=settings.AUTOMATION_SCAN_LOOKBACK_HOURS)
    since = scan_window(automation, now=now, lookback=lookback)
    hits = trigger_hits(automation=automation, since=since, until=now, live=True, limit=limit)
    with transaction.atomic():
        return _runs_create(automation, hits, now=now)


def automation_scans_run(*, now: datetime | None = None) -> int:
    """Scan every enabled automation with a scan trigger (the periodic task)."""
    now = now or timezone.now()
    created = 0
    automations = Automation.objects.filter(
        enabled=True, trigger__in=Automation.SCAN_TRIGGERS
    ).select_related("account")
    for automation in automations.order_by("pk"):
        created += len(automation_runs_scan(automation=automation, now=now))
    return created


# --- runs: cancel on change -------------------------------------------------------------------


def automation_runs_cancel(
    *, runs: Any, reason: str, now: datetime, by_user_id: int | None = None
) -> int:
    """Cancel the scheduled runs among ``runs`` (a queryset) with ``reason``."""
    ids = list(runs.filter(state=State.SCHEDULED).values_list("pk", flat=True))
    if not ids:
        return 0
    changed = AutomationRun.objects.filter(pk__in=ids, state=State.SCHEDULED).update(
        state=State.CANCELLED,
        reason=reason,
        finished_at=now,
        updated_at=now,
        cancelled_by_id=by_user_id,
    )
    if changed:
        log.info("automation.runs_cancelled", runs=changed, reason=reason)
    return changed


def _cancel_where_trigger_gone(*, fans: dict[int, Fan], now: datetime) -> int:
    pending = list(
        AutomationRun.objects.filter(fan_id__in=list(fans), state=State.SCHEDULED).select_related(
            "automation"
        )
    )
    gone = [
        run.pk
        for run in pending
        if not trigger_holds(run=run, automation=run.automation, fan=fans[run.fan_id], now=now)
    ]
    if not gone:
        return 0
    return automation_runs_cancel(
        runs=AutomationRun.objects.filter(pk__in=gone),
        reason=Reason.TRIGGER_NO_LONGER_HOLDS,
        now=now,
    )


WITHDRAWN_ERROR = "withdrawn: {reason} before it was sent"

_R = AutomationRun._meta.db_table
_A = Automation._meta.db_table
_M = Message._meta.db_table
_C = Conversation._meta.db_table
# The fan's scheduled runs cancelled and their automated messages still in the backlog (not on
# the broker yet: the dispatcher's claim and this update exclude each other on the row, and a
# send task only claims a pending message) withdrawn, of the automations whose trigger is among
# ``triggers`` (NULL: all) and not among ``except``, in one statement: it runs on every fan's
# message.
_CANCEL_FOR_FAN_SQL = f"""
WITH matching AS (
  SELECT a.id FROM {_A} a
  WHERE a.account_id = %(account_id)s
    AND (%(triggers)s::text[] IS NULL OR a.trigger = ANY(%(triggers)s::text[]))
    AND a.trigger <> ALL(%(except)s::text[])
), withdrawn AS (
  UPDATE {_M} m SET status = 'failed', last_error = %(error)s, updated_at = %(now)s
  WHERE m.account_id = %(account_id)s AND m.sender_kind = 'automation' AND m.status = 'queued'
    AND m.dispatched_at IS NULL
    AND m.conversation_id = (SELECT c.id FROM {_C} c WHERE c.fan_id = %(fan_id)s)
    AND EXISTS (SELECT 1 FROM {_R} r WHERE r.message_id = m.id AND r.state = 'enqueued'
                AND r.automation_id IN (SELECT id FROM matching))
  RETURNING m.id, m.conversation_id
), ended AS (
  UPDATE {_R} r SET state = 'cancelled', reason = %(reason)s, updated_at = %(now)s
  FROM withdrawn w WHERE r.message_id = w.id AND r.state = 'enqueued'
  RETURNING r.id
), cancelled AS (
  UPDATE {_R} r SET state = 'cancelled', reason = %(reason)s, finished_at = %(now)s,
    updated_at = %(now)s
  WHERE r.fan_id = %(fan_id)s AND r.state = 'scheduled'
    AND r.automation_id IN (SELECT id FROM matching)
  RETURNING r.id
)
SELECT (SELECT count(*) FROM cancelled), (SELECT count(*) FROM ended),
  (SELECT coalesce(array_agg(ARRAY[w.id, w.conversation_id]), '{{}}') FROM withdrawn w)
"""  # noqa: S608 (table names only)


def automation_runs_cancel_for_fan(
    *,
    account_id: int,
    fan_id: int,
    reason: str,
    triggers: Sequence[str] | None = None,
    except_triggers: Sequence[str] = (),
    now: datetime | None = None,
) -> int:
    """Cancel the fan's scheduled runs (of ``triggers`` only, when given) with ``reason``: the
    fan wrote, a chatter wrote, the fan bought. An enqueued run whose message still waits in
    the pipeline's backlog (not on the broker yet) is withdrawn too: its message fails as
    ``withdrawn: …`` and the run is cancelled. One statement (``_CANCEL_FOR_FAN_SQL``), in
    the caller's transaction (the event's own)."""
    now = now or timezone.now()
    label = str(Reason(reason).label).lower()
    error = WITHDRAWN_ERROR.format(reason=label)
    with connection.cursor() as cursor:
        cursor.execute(
            _CANCEL_FOR_FAN_SQL,
            {
                "account_id": account_id,
                "fan_id": fan_id,
                "reason": reason,
                "triggers": None if triggers is None else [str(t) for t in triggers],
                "except": [str(t) for t in except_triggers],
                "error": error[:500],
                "now": now,
            },
        )
        cancelled, withdrawn, messages = cursor.fetchone()
    for message_id, conversation_id in messages or []:
        transaction.on_commit(
            functools.partial(
                account_event_broadcast,
                account_id=account_id,
                event="message.status",
                payload={
                    "message_id": message_id,
                    "conversation_id": conversation_id,
                    "status": Message.Status.FAILED,
                    "attempts": 0,
                    "error": error,
                },
            )
        )
    if cancelled or withdrawn:
        log.info(
            "automation.runs_cancelled",
            account_id=account_id,
            runs=cancelled + withdrawn,
            withdrawn=withdrawn,
            reason=reason,
        )
    return int(cancelled + withdrawn)


def automation_runs_cancel_chatter_wrote(*, account_id: int, fan_id: int) -> int:
    """``automation_runs_cancel_for_fan`` for a member's message (reason ``chatter_wrote``,
    every trigger), after the member's message commits: one statement, atomic on its own
    (no BEGIN and COMMIT around it on the send path)."""
    return automation_runs_cancel_for_fan(
        account_id=account_id, fan_id=fan_id, reason=Reason.CHATTER_WROTE
    )


@transaction.atomic
def automation_run_cancel(
    *, run: AutomationRun, by_user: AbstractBaseUser, reason: str = Reason.MANUAL
) -> AutomationRun:
    """A member cancels a pending run (the fan panel's "cancel"). Any member of the account
    may; another account's run is a 404. A run that already went (or ended) is refused with
    ``not_pending``. Locks the run row."""
    membership_get(user=by_user, account_id=run.account_id)
    if reason not in Reason.values or not reason:
        raise ApplicationError("Unknown reason.", code="invalid_reason")
    locked = AutomationRun.objects.select_for_update().get(pk=run.pk)
    if locked.state != State.SCHEDULED:
        raise ApplicationError(
            f"This automated message is {locked.get_state_display().lower()}, not pending.",
            code="not_pending",
            status_code=409,
        )
    now = timezone.now()
    locked.state = State.CANCELLED
    locked.reason = reason
    locked.finished_at = now
    locked.cancelled_by_id = by_user.pk
    locked.save(update_fields=["state", "reason", "finished_at", "cancelled_by", "updated_at"])
    log.info(
        "automation.run_cancelled",
        run_id=locked.pk,
        automation_id=locked.automation_id,
        account_id=locked.account_id,
        reason=reason,
    )
    run_changed_on_commit(locked)
    return locked


def run_changed_on_commit(run: AutomationRun) -> None:
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=run.account_id,
            event="automation.run_changed",
            payload={"run_id": run.pk, "fan_id": run.fan_id, "state": run.state},
        )
    )
