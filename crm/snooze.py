"""Snooze: put a conversation away until a time or until the fan writes.

A snoozed conversation (``snoozed_at`` set) leaves every view of the conversation list but
"Snoozed" (and a search, which still finds it). It wakes when its time comes (the periodic
``crm.tasks.snoozes_wake_task``), when the fan writes (``conversation_wake_for_fan_message``,
called by the inbound path in ``onlyfans.inbound``), or by hand (``conversation_unsnooze``).
A timed wake moves it to the top of the list with a "woke from snooze" marker, which stays
until someone opens the thread or snoozes it again. Times given without a zone (the page's
"tonight", "tomorrow", a date) are the account's own (``CreatorAccount.time_zone``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import structlog
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import Conversation
from crm.selectors import membership_get

log = structlog.get_logger(__name__)

SNOOZE_MAX_DAYS = 365
SNOOZE_WAKE_BATCH_SIZE = 200
# What the thread's menu offers, in the account's time zone.
SNOOZE_PRESETS = {
    "1h": "1 hour",
    "tonight": "Tonight (20:00)",
    "tomorrow": "Tomorrow (09:00)",
    "next_week": "Next week (Monday 09:00)",
}
EVENING = time(20, 0)
MORNING = time(9, 0)
# An ISO date or date-time is at most 32 characters; anything longer is refused unparsed.
SNOOZE_UNTIL_MAX_LENGTH = 40


def _at(day: date, moment: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, moment, tzinfo=zone)


def snooze_preset_until(*, preset: str, zone: ZoneInfo, now: datetime) -> datetime:
    """When a preset of the menu ends: ``1h`` from now; ``tonight`` at 20:00 (tomorrow's
    when it is past 20:00 already); ``tomorrow`` at 09:00; ``next_week`` on Monday at 09:00,
    all in ``zone``. ApplicationError ``invalid_snooze_preset`` for anything else."""
    local = now.astimezone(zone)
    if preset == "1h":
        return now + timedelta(hours=1)
    if preset == "tonight":
        evening = _at(local.date(), EVENING, zone)
        return evening if evening > local else _at(local.date() + timedelta(days=1), EVENING, zone)
    if preset == "tomorrow":
        return _at(local.date() + timedelta(days=1), MORNING, zone)
    if preset == "next_week":
        days = 7 - local.weekday()  # Monday: 7 days on, never today
        return _at(local.date() + timedelta(days=days), MORNING, zone)
    raise ApplicationError(
        "Unknown snooze choice.",
        code="invalid_snooze_preset",
        fields={"preset": [f"One of {', '.join(SNOOZE_PRESETS)}."]},
    )


def snooze_until_parse(*, value: str, zone: ZoneInfo) -> datetime:
    """An ISO 8601 date-time or date as a moment: one without an offset is in ``zone``, a
    date alone means 09:00 that day. ApplicationError ``invalid_snooze_until`` otherwise."""
    value = value.strip()
    invalid = ApplicationError(
        "Give the time as an ISO 8601 date or date-time, e.g. 2026-05-01T18:00.",
        code="invalid_snooze_until",
        fields={"until": ["Not a date or date-time."]},
    )
    if not value or len(value) > SNOOZE_UNTIL_MAX_LENGTH:
        raise invalid
    try:
        if len(value) == 10:
            return _at(date.fromisoformat(value), MORNING, zone)
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


@dataclass(frozen=True)
class SnoozeState:
    """How a conversation is snoozed, for the thread's header and the API."""

    snoozed: bool
    until: datetime | None
    until_reply: bool


def snooze_state(conversation: Conversation) -> SnoozeState:
    snoozed = conversation.snoozed_at is not None
    return SnoozeState(
        snoozed=snoozed,
        until=conversation.snoozed_until,
        until_reply=snoozed and conversation.snoozed_until is None,
    )


def _changed_on_commit(conversation: Conversation, *, event: str = "conversation.changed") -> None:
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=conversation.account_id,
            event=event,
            payload={"conversation_id": conversation.pk},
        )
    )


@transaction.atomic
def conversation_snooze(
    *,
    actor: AbstractBaseUser,
    conversation: Conversation,
    until: datetime | None = None,
    until_reply: bool = False,
) -> Conversation:
    """Snooze the conversation until ``until``, or (``until_reply`` without a time) until the
    fan writes; a timed snooze also wakes when the fan writes. Any member of the account may.
    Snoozing again replaces the earlier snooze. ApplicationError 400 ``snooze_time_required``
    with neither, ``snooze_in_past`` for a time gone, ``snooze_too_far`` beyond a year.
    No lock: one UPDATE of the row, the last snooze wins."""
    membership_get(user=actor, account_id=conversation.account_id)
    now = timezone.now()
    if until is None and not until_reply:
        raise ApplicationError(
            "Say until when: a time, or until the fan writes.",
            code="snooze_time_required",
            fields={"until": ["Required unless until_reply is true."]},
        )
    if until is not None:
        if until <= now:
            raise ApplicationError(
                "That time has passed already.",
                code="snooze_in_past",
                fields={"until": ["In the past."]},
            )
        if until > now + timedelta(days=SNOOZE_MAX_DAYS):
            raise ApplicationError(
                f"A snooze lasts at most {SNOOZE_MAX_DAYS} days.",
                code="snooze_too_far",
                fields={"until": ["Too far ahead."]},
            )
    Conversation.objects.filter(pk=conversation.pk).update(
        snoozed_at=now, snoozed_until=until, snoozed_by_id=actor.pk, woke_from_snooze_at=None
    )
    conversation.snoozed_at = now
    conversation.snoozed_until = until
    conversation.snoozed_by_id = actor.pk
    conversation.woke_from_snooze_at = None
    log.info(
        "conversation.snoozed",
        conversation_id=conversation.pk,
        account_id=conversation.account_id,
        user_id=actor.pk,
        timed=until is not None,
    )
    _changed_on_commit(conversation)
    return conversation


_AWAKE = {"snoozed_at": None, "snoozed_until": None, "snoozed_by_id": None}


@transaction.atomic
def conversation_unsnooze(*, actor: AbstractBaseUser, conversation: Conversation) -> Conversation:
    """Wake the conversation now, by hand (no marker: the member knows). Idempotent."""
    membership_get(user=actor, account_id=conversation.account_id)
    changed = Conversation.objects.filter(pk=conversation.pk, snoozed_at__isnull=False).update(
        **_AWAKE
    )
    conversation.snoozed_at = conversation.snoozed_until = None
    conversation.snoozed_by_id = None
    if changed:
        log.info(
            "conversation.unsnoozed",
            conversation_id=conversation.pk,
            account_id=conversation.account_id,
            user_id=actor.pk,
        )
        _changed_on_commit(conversation)
    return conversation


@transaction.atomic
def conversation_woke_seen(*, actor: AbstractBaseUser, conversation: Conversation) -> bool:
    """A member opened a woken conversation: its "woke from snooze" marker goes, for all."""
    membership_get(user=actor, account_id=conversation.account_id)
    changed = Conversation.objects.filter(
        pk=conversation.pk, woke_from_snooze_at__isnull=False
    ).update(woke_from_snooze_at=None)
    conversation.woke_from_snooze_at = None
    if changed:
        _changed_on_commit(conversation)
    return bool(changed)


def conversation_wake_for_fan_message(*, conversation: Conversation) -> bool:
    """The fan wrote in ``conversation`` (as just loaded by the inbound service, inside its
    transaction): a snooze of any kind ends, with the "woke" marker. Costs nothing for a
    conversation that is not snoozed, which is nearly every inbound message."""
    if conversation.snoozed_at is None:
        return False
    now = timezone.now()
    changed = Conversation.objects.filter(pk=conversation.pk, snoozed_at__isnull=False).update(
        **_AWAKE, woke_from_snooze_at=now
    )
    if changed:
        conversation.snoozed_at = conversation.snoozed_until = None
        conversation.woke_from_snooze_at = now
        log.info(
            "conversation.woke",
            conversation_id=conversation.pk,
            account_id=conversation.account_id,
            reason="fan_message",
        )
        _changed_on_commit(conversation, event="conversation.woke")
    return bool(changed)


def snoozes_wake_due(
    *, now: datetime | None = None, batch_size: int = SNOOZE_WAKE_BATCH_SIZE
) -> int:
    """Wake every conversation whose snooze time has come, a batch per transaction; how many
    woke. Each moves to the top of the list (its activity time becomes the wake time) with
    the "woke" marker, and every open inbox of its account hears it after commit.

    Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so two runs at once never wake one
    twice; a second run finds nothing due: idempotent.
    """
    now = now or timezone.now()
    total = 0
    while True:
        with transaction.atomic():
            due = list(
                Conversation.objects.select_for_update(skip_locked=True)
                .filter(snoozed_until__lte=now)
                .order_by("snoozed_until")
                .values_list("id", "account_id")[:batch_size]
            )
            if not due:
                break
            Conversation.objects.filter(pk__in=[pk for pk, _ in due]).update(
                **_AWAKE,
                woke_from_snooze_at=now,
                # GREATEST, not the wake time alone: a fan's message may be newer already.
                last_message_at=Greatest(F("last_message_at"), Value(now)),
            )
            for pk, account_id in due:
                _changed_on_commit(
                    Conversation(pk=pk, account_id=account_id), event="conversation.woke"
                )
        total += len(due)
        if len(due) < batch_size:
            break
    if total:
        log.info("snoozes.woke", count=total, reason="time")
    return total
