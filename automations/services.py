"""Writes for automations: their lifecycle (create, update, enable, disable), their runs
(created by triggers, cancelled on change), and the due pass that hands runs to the send
pipeline.

A run is created ``scheduled`` (or ``held_control``) once per ``(automation, fan, event_key)``:
an insert that conflicts on that unique key does nothing, so a replayed webhook, a second scan
or a restart never makes a second run. When due it is re-checked (turned off? quiet hours?
did the fan write, a chatter write, the fan buy, the trigger stop holding? filters? the
per-fan cap?) and, in the same transaction that marks it ``enqueued``, its one message is
queued through ``onlyfans.services.message_enqueue`` in the campaign lane. The message row is
the pipeline's outbox: published after commit, and re-published by the outbox sweep if that
publish is lost, so a worker killed anywhere sends exactly one message or none (and then the
run is still due).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.scheduling import control_draw, out_of_quiet_hours, run_due_at
from automations.selectors import automation_membership_get, fan_in_audience
from automations.triggers import TriggerHit, event_key, scan_window, trigger_hits, trigger_holds
from campaigns.models import CampaignRecipient
from campaigns.rules import (
    SegmentRules,
    segment_rules_parse,
    text_max_length,
    text_personalise,
    text_variables_check,
)
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import Conversation, CreatorAccount, Fan, Membership, Message, Purchase
from crm.selectors import membership_get
from crm.zones import account_zone
from onlyfans.services import message_enqueue, message_validate

log = structlog.get_logger(__name__)

Trigger = Automation.Trigger
State = AutomationRun.State
Reason = AutomationRun.Reason

# Upper bounds of what a user sets (a year of hours, days or minutes; a week of delay).
TRIGGER_VALUE_MAX = {"hours": 24 * 365, "days": 365, "minutes": 60 * 24 * 30}
DELAY_MAX_SECONDS = 7 * 24 * 3600
NAME_MAX_LENGTH = 200


# --- automations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AutomationInput:
    """What a user sets on an automation (pages and API parse into this)."""

    name: str
    trigger: str
    text: str
    trigger_value: int = 0
    price_cents: int = 0
    media_ids: tuple[str, ...] = ()
    delay_seconds: int = 0
    delay_spread_seconds: int = 0
    rules: dict[str, Any] = field(default_factory=dict)
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    control_percent: int = 0
    block_banned_words: str = ""


def _validate(data: AutomationInput) -> SegmentRules:
    errors: dict[str, list[str]] = {}
    name = data.name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        errors["name"] = [f"Required, at most {NAME_MAX_LENGTH} characters."]
    if data.trigger not in Trigger.values:
        errors["trigger"] = [f"Choose from {', '.join(Trigger.values)}."]
    else:
        unit = Automation.TRIGGER_UNITS.get(data.trigger)
        if unit is None:
            if data.trigger_value:
                errors["trigger_value"] = ["This trigger takes no number."]
        elif not 1 <= data.trigger_value <= TRIGGER_VALUE_MAX[unit]:
            errors["trigger_value"] = [f"Between 1 and {TRIGGER_VALUE_MAX[unit]} {unit}."]
    try:
        message_validate(
            text=data.text, price_cents=data.price_cents, media_ids=list(data.media_ids)
        )
    except ApplicationError as exc:
        errors.update(exc.fields)
    unknown = text_variables_check(data.text) if isinstance(data.text, str) else []
    if unknown:
        errors.setdefault("text", []).append(
            "Unknown variable: "
            + ", ".join("{" + v + "}" for v in unknown)
            + ". Use {name} or {username}, with a fallback like {name|babe}."
        )
    elif (
        isinstance(data.text, str) and text_max_length(data.text) > settings.MESSAGE_TEXT_MAX_LENGTH
    ):
        errors.setdefault("text", []).append(
            "Too long once the fans' names are filled in; shorten the text."
        )
    for key in ("delay_seconds", "delay_spread_seconds"):
        if not 0 <= getattr(data, key) <= DELAY_MAX_SECONDS:
            errors[key] = ["Between 0 seconds and 7 days."]
    start, end = data.quiet_hours_start, data.quiet_hours_end
    if (start is None) != (end is None):
        errors["quiet_hours_end" if end is None else "quiet_hours_start"] = [
            "Set both ends of the quiet hours, or neither."
        ]
    elif start is not None and start == end:
        errors["quiet_hours_end"] = ["The quiet hours must end at another time than they start."]
    if not 0 <= data.control_percent <= 50:
        errors["control_percent"] = ["Between 0 and 50 percent."]
    if data.block_banned_words not in Automation.BannedWords.values:
        errors["block_banned_words"] = [
            f"Choose from {', '.join(v for v in Automation.BannedWords.values if v)}, or empty."
        ]
    try:
        rules = segment_rules_parse(data.rules or {})
    except ApplicationError as exc:
        errors.update(exc.fields)
        rules = SegmentRules()
    if rules.fan_ids:
        errors["fan_ids"] = ["An automation reaches fans by its trigger, not by a list."]
    if errors:
        raise ApplicationError(
            "The automation is not valid.", code="invalid_automation", fields=errors
        )
    return rules


def _apply(automation: Automation, data: AutomationInput, rules: SegmentRules) -> None:
    automation.name = data.name.strip()
    automation.trigger = data.trigger
    automation.trigger_value = data.trigger_value
    automation.text = data.text
    automation.price_cents = data.price_cents
    automation.media_ids = list(data.media_ids)
    automation.delay_seconds = data.delay_seconds
    automation.delay_spread_seconds = data.delay_spread_seconds
    automation.rules = rules.as_json()
    automation.quiet_hours_start = data.quiet_hours_start
    automation.quiet_hours_end = data.quiet_hours_end
    automation.control_percent = data.control_percent
    automation.block_banned_words = data.block_banned_words


def _name_taken(automation: Automation) -> None:
    clash = Automation.objects.filter(account_id=automation.account_id, name=automation.name)
    if automation.pk is not None:
        clash = clash.exclude(pk=automation.pk)
    if clash.exists():
        raise ApplicationError(
            f"There is already an automation named “{automation.name}”.",
            code="duplicate_automation",
            fields={"name": ["Already used."]},
            status_code=409,
        )


@transaction.atomic
def automation_create(
    *, actor: AbstractBaseUser, account_id: int, data: AutomationInput, enabled: bool = False
) -> Automation:
    """A new automation of the account (owners and managers), off unless ``enabled``."""
    membership = automation_membership_get(user=actor, account_id=account_id)
    rules = _validate(data)
    automation = Automation(account=membership.account, created_by_id=actor.pk)
    _apply(automation, data, rules)
    _name_taken(automation)
    if enabled:
        automation.enabled = True
        automation.enabled_at = timezone.now()
    automation.save()
    log.info(
        "automation.created",
        automation_id=automation.pk,
        account_id=account_id,
        trigger=automation.trigger,
        enabled=automation.enabled,
    )
    return automation


def _locked(actor: AbstractBaseUser, automation: Automation) -> tuple[Membership, Automation]:
    membership = automation_membership_get(user=actor, account_id=automation.account_id)
    locked = Automation.objects.select_for_update().select_related("account").get(pk=automation.pk)
    return membership, locked


@transaction.atomic
def automation_update(
    *, actor: AbstractBaseUser, automation: Automation, data: AutomationInput
) -> Automation:
    """Change an automation. Its pending runs keep their times and send the new message when
    due (they are re-checked against the new filters then). The trigger of an automation that
    has runs cannot change (its figures would mix two triggers): make a new one. Locks the
    automation row."""
    _, locked = _locked(actor, automation)
    rules = _validate(data)
    if data.trigger != locked.trigger and AutomationRun.objects.filter(automation=locked).exists():
        raise ApplicationError(
            "The trigger of an automation that has run cannot change; create a new one.",
            code="trigger_locked",
            fields={"trigger": ["Fixed once it has run."]},
            status_code=409,
        )
    _apply(locked, data, rules)
    _name_taken(locked)
    locked.save()
    log.info("automation.updated", automation_id=locked.pk, account_id=locked.account_id)
    return locked


@transaction.atomic
def automation_enable(*, actor: AbstractBaseUser, automation: Automation) -> Automation:
    """Turn it on. Scan triggers fire only for moments from now on (an expiring-soon nudge
    also for subscriptions already within its hours). Locks the automation row."""
    _, locked = _locked(actor, automation)
    if not locked.enabled:
        locked.enabled = True
        locked.enabled_at = timezone.now()
        locked.save(update_fields=["enabled", "enabled_at", "updated_at"])
        log.info("automation.enabled", automation_id=locked.pk, account_id=locked.account_id)
    return locked


@transaction.atomic
def automation_disable(*, actor: AbstractBaseUser, automation: Automation) -> Automation:
    """Turn it off: nothing more fires, and its pending runs are cancelled (``disabled``).
    Locks the automation row."""
    automation_membership_get(user=actor, account_id=automation.account_id)
    return automation_turn_off(automation_id=automation.pk)


@transaction.atomic
def automation_turn_off(*, automation_id: int) -> Automation:
    """``automation_disable`` without the actor's check (Django admin's staff action)."""
    locked = Automation.objects.select_for_update().select_related("account").get(pk=automation_id)
    cancelled = 0
    if locked.enabled:
        locked.enabled = False
        locked.save(update_fields=["enabled", "updated_at"])
        cancelled = _cancel(
            AutomationRun.objects.filter(automation=locked, state=State.SCHEDULED),
            reason=Reason.DISABLED,
            now=timezone.now(),
        )
        log.info(
            "automation.disabled",
            automation_id=locked.pk,
            account_id=locked.account_id,
            cancelled=cancelled,
        )
    return locked


@transaction.atomic
def automation_delete(*, actor: AbstractBaseUser, automation: Automation) -> None:
    """Delete it with its runs (the messages it sent stay in the inbox)."""
    _, locked = _locked(actor, automation)
    log.info("automation.deleted", automation_id=locked.pk, account_id=locked.account_id)
    locked.delete()


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


def _insert_ignoring_conflicts(cursor: Any, runs: list[AutomationRun]) -> list[AutomationRun]:
    """One INSERT … ON CONFLICT DO NOTHING RETURNING for the runs (bulk_create's
    ignore_conflicts does not say which rows went in)."""
    now = timezone.now()
    rows = []
    params: list[Any] = []
    for run in runs:
        rows.append("(" + ", ".join(["%s"] * len(_INSERT_COLUMNS)) + ")")
        params += [
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
        ]
    sql = (
        f"INSERT INTO {AutomationRun._meta.db_table} ({', '.join(_INSERT_COLUMNS)}) "  # noqa: S608
        f"VALUES {', '.join(rows)} "
        "ON CONFLICT (automation_id, fan_id, event_key) DO NOTHING RETURNING id, fan_id, event_key"
    )
    cursor.execute(sql, params)
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
    """A subscription webhook was applied to ``fan`` (inside its transaction): runs for the
    account's enabled event automations, and the fan's pending runs whose trigger no longer
    holds are cancelled (a renewal moves the end an expiring-soon nudge was about).

    ``subscriptions.new`` fires ``returned_after_expiry`` when the fan's previous subscription
    had ended (expired by state or by its end date), else ``subscribed``; its event key is
    the subscription's start (the end that was passed, for a return), which a repeated
    delivery of the same subscription shares. ``subscriptions.renewed`` fires ``renewed``,
    keyed by the new end date. The caller holds the fan's row lock.
    """
    now = now or timezone.now()
    _cancel_where_trigger_gone(fan=fan, now=now)
    ended = previous_state == Fan.SubscriptionState.EXPIRED or (
        previous_expires_at is not None and previous_expires_at <= now
    )
    if event == "subscriptions.new":
        started = fan.subscribed_at or now
        if ended:
            trigger = Trigger.RETURNED_AFTER_EXPIRY
            key = event_key("returned", previous_expires_at or started)
        else:
            trigger, key = Trigger.SUBSCRIBED, event_key("subscribed", started)
    elif event == "subscriptions.renewed":
        expires = fan.subscription_expires_at
        trigger = Trigger.RENEWED
        key = event_key("renewed", expires) if expires else event_key("renewed", now)
    else:
        return []
    created: list[AutomationRun] = []
    for automation in _enabled(account.pk, [trigger]):
        if not fan_in_audience(automation=automation, fan_id=fan.pk, now=now):
            continue
        hit = TriggerHit(fan.pk, key, now)
        created += _runs_create(automation, [hit], now=now)
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


def _cancel(runs: Any, *, reason: str, now: datetime, by_user_id: int | None = None) -> int:
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


def _cancel_where_trigger_gone(*, fan: Fan, now: datetime) -> int:
    pending = list(
        AutomationRun.objects.filter(fan_id=fan.pk, state=State.SCHEDULED).select_related(
            "automation"
        )
    )
    gone = [
        run.pk
        for run in pending
        if not trigger_holds(run=run, automation=run.automation, fan=fan, now=now)
    ]
    if not gone:
        return 0
    return _cancel(
        AutomationRun.objects.filter(pk__in=gone), reason=Reason.TRIGGER_NO_LONGER_HOLDS, now=now
    )


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
    ``withdrawn: …`` and the run is cancelled. Runs inside the event's own transaction."""
    now = now or timezone.now()
    runs = AutomationRun.objects.filter(fan_id=fan_id, state=State.SCHEDULED)
    if triggers is not None:
        runs = runs.filter(automation__trigger__in=list(triggers))
    if except_triggers:
        runs = runs.exclude(automation__trigger__in=list(except_triggers))
    cancelled = _cancel(runs, reason=reason, now=now)
    return cancelled + _withdraw_waiting(
        account_id=account_id,
        fan_id=fan_id,
        reason=reason,
        triggers=triggers,
        except_triggers=except_triggers,
        now=now,
    )


WITHDRAWN_ERROR = "withdrawn: {reason} before it was sent"

_R = AutomationRun._meta.db_table
_M = Message._meta.db_table
_C = Conversation._meta.db_table
# A member wrote to the fan: every scheduled run of the fan is cancelled and every automated
# message of theirs still in the backlog withdrawn, in one statement (this runs after each
# member's send).
_CHATTER_WROTE_SQL = f"""
WITH withdrawn AS (
  UPDATE {_M} m SET status = 'failed', last_error = %(error)s, updated_at = %(now)s
  WHERE m.account_id = %(account_id)s AND m.sender_kind = 'automation' AND m.status = 'queued'
    AND m.dispatched_at IS NULL
    AND m.conversation_id = (SELECT c.id FROM {_C} c WHERE c.fan_id = %(fan_id)s)
  RETURNING m.id
), ended AS (
  UPDATE {_R} r SET state = 'cancelled', reason = %(reason)s, updated_at = %(now)s
  FROM withdrawn w WHERE r.message_id = w.id AND r.state = 'enqueued'
  RETURNING r.id
), cancelled AS (
  UPDATE {_R} r SET state = 'cancelled', reason = %(reason)s, finished_at = %(now)s,
    updated_at = %(now)s
  WHERE r.fan_id = %(fan_id)s AND r.state = 'scheduled'
  RETURNING r.id
)
SELECT (SELECT count(*) FROM cancelled), (SELECT count(*) FROM ended)
"""  # noqa: S608 (table names only)


@transaction.atomic
def automation_runs_cancel_chatter_wrote(*, account_id: int, fan_id: int) -> int:
    """``automation_runs_cancel_for_fan`` for a member's message (reason ``chatter_wrote``,
    every trigger), as one statement: it runs after every member's send."""
    reason = Reason.CHATTER_WROTE
    with connection.cursor() as cursor:
        cursor.execute(
            _CHATTER_WROTE_SQL,
            {
                "account_id": account_id,
                "fan_id": fan_id,
                "reason": reason,
                "error": WITHDRAWN_ERROR.format(reason=str(reason.label).lower()),
                "now": timezone.now(),
            },
        )
        cancelled, withdrawn = cursor.fetchone()
    if cancelled or withdrawn:
        log.info(
            "automation.runs_cancelled",
            account_id=account_id,
            runs=cancelled + withdrawn,
            withdrawn=withdrawn,
            reason=reason,
        )
    return int(cancelled + withdrawn)


def _withdraw_waiting(
    *,
    account_id: int,
    fan_id: int,
    reason: str,
    triggers: Sequence[str] | None,
    except_triggers: Sequence[str],
    now: datetime,
) -> int:
    # The account's automation backlog is small (``_backlog_room``): its index finds the fan's.
    waiting = list(
        Message.objects.filter(
            account_id=account_id,
            sender_kind=Message.SenderKind.AUTOMATION,
            status=Message.Status.QUEUED,
            dispatched_at__isnull=True,
            conversation__fan_id=fan_id,
        ).values_list("pk", "conversation_id")
    )
    if not waiting:
        return 0
    runs = AutomationRun.objects.filter(
        message_id__in=[pk for pk, _ in waiting], state=State.ENQUEUED
    )
    if triggers is not None:
        runs = runs.filter(automation__trigger__in=list(triggers))
    if except_triggers:
        runs = runs.exclude(automation__trigger__in=list(except_triggers))
    run_messages = dict(runs.values_list("pk", "message_id"))
    if not run_messages:
        return 0
    label = str(Reason(reason).label).lower()
    # Only while it is not on the broker: the dispatcher's claim and this update exclude each
    # other on the row, and a send task only claims a pending message.
    withdrawn = list(
        Message.objects.filter(
            pk__in=list(run_messages.values()),
            status=Message.Status.QUEUED,
            dispatched_at__isnull=True,
        ).values_list("pk", flat=True)
    )
    Message.objects.filter(
        pk__in=withdrawn, status=Message.Status.QUEUED, dispatched_at__isnull=True
    ).update(
        status=Message.Status.FAILED,
        last_error=WITHDRAWN_ERROR.format(reason=label)[:500],
        updated_at=now,
    )
    changed = AutomationRun.objects.filter(message_id__in=withdrawn, state=State.ENQUEUED).update(
        state=State.CANCELLED, reason=reason, updated_at=now
    )
    conversations = dict(waiting)
    for message_id in withdrawn:
        transaction.on_commit(
            functools.partial(
                account_event_broadcast,
                account_id=account_id,
                event="message.status",
                payload={
                    "message_id": message_id,
                    "conversation_id": conversations[message_id],
                    "status": Message.Status.FAILED,
                    "attempts": 0,
                    "error": WITHDRAWN_ERROR.format(reason=label),
                },
            )
        )
    if changed:
        log.info(
            "automation.messages_withdrawn", account_id=account_id, runs=changed, reason=reason
        )
    return changed


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
    _run_changed_on_commit(locked)
    return locked


def _run_changed_on_commit(run: AutomationRun) -> None:
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=run.account_id,
            event="automation.run_changed",
            payload={"run_id": run.pk, "fan_id": run.fan_id, "state": run.state},
        )
    )


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
    _run_changed_on_commit(run)


def _run_process_locked(
    *, run: AutomationRun, automation: Automation, fan: Fan, now: datetime
) -> str:
    """Re-check a due run and send its message or end it. The caller holds the run's and the
    fan's row locks. Returns the ``DuePass`` field it counts in."""
    if not automation.enabled:
        _finish(run, state=State.CANCELLED, reason=Reason.DISABLED, now=now)
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
            media_ids=list(automation.media_ids),
            sender_kind=Message.SenderKind.AUTOMATION,
        )
    except ApplicationError as exc:
        reason = Reason.FAN_NOT_LINKED if exc.code == "fan_not_linked" else Reason.INVALID_MESSAGE
        _finish(run, state=State.SKIPPED, reason=reason, now=now)
        return "skipped"
    run.message = message
    _finish(run, state=State.ENQUEUED, reason="", now=now)
    return "enqueued"


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
