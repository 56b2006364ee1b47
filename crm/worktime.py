"""Worked time: clock-in and out, activity, the idle clock-out, worked time for a period.

A member's worked time on an account is a ``WorkSession``: opened by clocking in, closed by
clocking out, by the idle sweep (``SHIFT_IDLE_MINUTES`` after the last activity, ended *at*
that activity, nothing beyond), by a manager, by leaving the account, or (shift-only
accounts) when the shift's window closes. Pay counts these, not the schedule.

Activity (``work_session_touch``) is a page request under ``/accounts/<id>/`` (the
``WorkActivityMiddleware``), a message the member queues, and an inbox socket heartbeat sent
after the person used the page (keys, pointer, scroll; ``static/js/presence.js``), so an
open tab nobody looks at still idles out. A touch costs one Redis call; it writes the
session's ``last_activity_at`` at most once a minute per member and account, and only while
Redis says the member is clocked in (a marker set at clock-in), so members who are not
clocked in never cost a query. Losing Redis loses touches, not sessions: the top bar's clock
(polled every minute) puts the marker back.
See docs/shifts.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone
from redis.exceptions import RedisError

from config.redis import redis_client, redis_key_prefix
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import Membership, WorkSession
from crm.selectors import (
    User,
    manager_membership_get,
    membership_get,
    page_cursor_decode,
    page_cursor_encode,
)
from crm.shift_access import (
    OffShiftError,
    ShiftAccess,
    shift_access_check,
    shift_access_forget,
)
from crm.shift_schedule import occurrences_for_members
from crm.zones import account_zone

log = structlog.get_logger(__name__)

TOUCH_EVERY_SECONDS = 60
# How many open sessions one sweep ends at most (the next minute takes the rest).
SWEEP_BATCH_SIZE = 500
# Longest period the worked-time reads answer (a payroll month fits).
PERIOD_MAX = timedelta(days=62)


# The id of the user's open session on the account (NULL when clocked out), as an SQL
# subquery with the account's and the user's id as its two parameters: the send path folds it
# into the message's INSERT instead of a query of its own. The partial unique index
# ``work_session_one_open`` answers it.
WORK_SESSION_OPEN_SQL = (
    f"(SELECT id FROM {WorkSession._meta.db_table}"  # noqa: S608 (a table name)
    " WHERE account_id = %s AND user_id = %s AND ended_at IS NULL LIMIT 1)"
)


# --- Redis: who is clocked in (a hint), and the touch throttle --------------------------------


def _open_key(account_id: int, user_id: int) -> str:
    return f"{redis_key_prefix()}:worktime:open:{account_id}:{user_id}"


def _touch_key(account_id: int, user_id: int) -> str:
    return f"{redis_key_prefix()}:worktime:touch:{account_id}:{user_id}"


# 1 when the member is clocked in (by the marker) and was not touched in the last minute.
_TOUCH_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[1]) then return 1 end
return 0
"""

# The marker outlives any shift; clock-out and the sweeps delete it, and the clock's poll puts
# it back when Redis lost it.
_OPEN_MARKER_SECONDS = 2 * 24 * 3600


def _marker_set(account_id: int, user_id: int) -> None:
    try:
        redis_client().set(_open_key(account_id, user_id), "1", ex=_OPEN_MARKER_SECONDS)
    except RedisError:
        log.warning("work_session.marker_failed", account_id=account_id, user_id=user_id)


def _marker_clear(account_id: int, user_id: int) -> None:
    try:
        redis_client().delete(_open_key(account_id, user_id), _touch_key(account_id, user_id))
    except RedisError:
        log.warning("work_session.marker_failed", account_id=account_id, user_id=user_id)


def _changed_on_commit(session: WorkSession, *, clocked_in: bool) -> None:
    """After commit: the Redis marker follows the row, and the account's live pages hear it."""
    account_id, user_id, session_id = session.account_id, session.user_id, session.pk
    reason = session.end_reason

    def after() -> None:
        if clocked_in:
            _marker_set(account_id, user_id)
        else:
            _marker_clear(account_id, user_id)
        account_event_broadcast(
            account_id=account_id,
            event="work_session.changed",
            payload={
                "user_id": user_id,
                "work_session_id": session_id,
                "clocked_in": clocked_in,
                "end_reason": reason,
            },
        )

    transaction.on_commit(after)


# --- Reads ------------------------------------------------------------------------------------


def work_session_open_get(*, user: User, account_id: int) -> WorkSession | None:
    """The user's open session on the account, or None (callers checked membership)."""
    if not user.is_authenticated:
        return None
    return WorkSession.objects.filter(
        account_id=account_id, user_id=cast(int, user.pk), ended_at__isnull=True
    ).first()


@dataclass(frozen=True)
class ClockState:
    """What the top bar's clock shows for one member on one account."""

    membership: Membership
    session: WorkSession | None
    access: ShiftAccess
    now: datetime

    @property
    def clocked_in(self) -> bool:
        return self.session is not None

    @property
    def worked_seconds(self) -> int:
        if self.session is None:
            return 0
        return max(0, int((self.now - self.session.started_at).total_seconds()))

    @property
    def worked_label(self) -> str:
        """``h:mm`` worked in the open session so far."""
        minutes = self.worked_seconds // 60
        return f"{minutes // 60}:{minutes % 60:02d}"

    @property
    def may_clock_in(self) -> bool:
        """Shift-only accounts refuse a chatter's clock-in outside their shift ± grace."""
        return not self.access.restricted or self.access.in_window


def clock_state_get(*, user: User, account_id: int) -> ClockState:
    """The member's clock on the account (any member, on shift or not): two queries, three
    on a shift-only account. Puts the Redis marker back if Redis lost it."""
    membership = membership_get(user=user, account_id=account_id, off_shift_ok=True)
    session = work_session_open_get(user=user, account_id=account_id)
    access = shift_access_check(user=user, account=membership.account, membership=membership)
    if session is not None:
        _marker_set(account_id, session.user_id)
    return ClockState(membership=membership, session=session, access=access, now=timezone.now())


def work_sessions_for_period(
    *,
    actor: User,
    account_id: int,
    start: datetime,
    end: datetime,
    user_id: int | None = None,
) -> QuerySet[WorkSession]:
    """Sessions on the account overlapping [start, end), by start. Owners and managers see
    everyone's (or ``user_id``'s); a chatter only their own (another's id: none)."""
    if end <= start or end - start > PERIOD_MAX:
        raise ApplicationError(
            "The period must end after it starts and span at most 62 days.",
            code="invalid_period",
        )
    membership = membership_get(user=actor, account_id=account_id, off_shift_ok=True)
    sessions = WorkSession.objects.filter(account_id=account_id, started_at__lt=end).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gt=start),
        # A session lasts at most PERIOD_MAX in practice (idle ends it); bound the index scan.
        started_at__gte=start - PERIOD_MAX,
    )
    if not membership.can_manage_members:
        sessions = sessions.filter(user_id=cast(int, actor.pk))
    if user_id is not None:
        sessions = sessions.filter(user_id=user_id)
    return sessions.select_related("user").order_by("started_at", "id")


SESSIONS_PAGE_MAX = 200


@dataclass(frozen=True)
class WorkedTime:
    """Worked time on an account for a period: per member totals (clipped to the period, an
    open session counted to now) and one keyset page of the sessions."""

    totals: list[dict[str, Any]]
    sessions: list[WorkSession]
    next_cursor: str | None


def worked_time_get(
    *,
    actor: User,
    account_id: int,
    start: datetime,
    end: datetime,
    user_id: int | None = None,
    cursor: str = "",
    limit: int = 100,
) -> WorkedTime:
    """``work_sessions_for_period`` as totals per member (one aggregate query) and a page of
    sessions by start (keyset on ``work_session_account_start``). Four queries."""
    sessions = work_sessions_for_period(
        actor=actor, account_id=account_id, start=start, end=end, user_id=user_id
    )
    now = timezone.now()
    stop = Least(Coalesce("ended_at", Value(now)), Value(end))
    begin = Greatest("started_at", Value(start))
    totals = list(
        sessions.order_by()
        .values("user_id", "user__username")
        .annotate(
            worked=Sum(ExpressionWrapper(stop - begin, output_field=DurationField())),
            sessions=Count("id"),
        )
        .order_by("user__username")
    )
    limit = max(1, min(limit, SESSIONS_PAGE_MAX))
    page = sessions
    if cursor:
        moment, pk = page_cursor_decode(cursor)
        page = page.filter(Q(started_at__gt=moment) | Q(started_at=moment, id__gt=pk))
    rows = list(page[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = page_cursor_encode(rows[-1].started_at, rows[-1].pk)
    return WorkedTime(
        totals=[
            {
                "user_id": t["user_id"],
                "username": t["user__username"],
                "worked_seconds": max(0, int(t["worked"].total_seconds())) if t["worked"] else 0,
                "sessions": t["sessions"],
            }
            for t in totals
        ],
        sessions=rows,
        next_cursor=next_cursor,
    )


def worked_seconds_in(
    sessions: list[WorkSession], *, start: datetime, end: datetime, now: datetime
) -> int:
    """Seconds of these sessions inside [start, end); an open session counts up to ``now``."""
    total = 0.0
    for session in sessions:
        stop = min(session.ended_at or now, end)
        begin = max(session.started_at, start)
        if stop > begin:
            total += (stop - begin).total_seconds()
    return int(total)


# --- Writes -----------------------------------------------------------------------------------


@transaction.atomic
def work_session_clock_in(
    *, actor: User, account_id: int, now: datetime | None = None
) -> WorkSession:
    """Start the actor's worked time on the account; their open session if they already are
    clocked in (a double click changes nothing). On a shift-only account a chatter outside
    their shift ± grace gets ``OffShiftError`` (403 ``off_shift``). The partial unique index
    ``work_session_one_open`` settles two concurrent clock-ins."""
    membership = membership_get(user=actor, account_id=account_id, off_shift_ok=True)
    now = now or timezone.now()
    access = shift_access_check(
        user=actor, account=membership.account, membership=membership, now=now
    )
    if access.restricted and not access.in_window:
        raise OffShiftError(access, membership.account)
    existing = work_session_open_get(user=actor, account_id=account_id)
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            session = WorkSession.objects.create(
                account_id=account_id,
                user_id=cast(int, actor.pk),
                started_at=now,
                last_activity_at=now,
            )
    except IntegrityError:
        session = WorkSession.objects.get(
            account_id=account_id, user_id=cast(int, actor.pk), ended_at__isnull=True
        )
        return session
    shift_access_forget(user=actor, account_id=account_id)
    log.info("work_session.clocked_in", work_session_id=session.pk, account_id=account_id)
    _changed_on_commit(session, clocked_in=True)
    return session


@transaction.atomic
def work_session_clock_out(
    *,
    actor: User,
    account_id: int,
    user_id: int | None = None,
    now: datetime | None = None,
) -> WorkSession | None:
    """End the open session of the actor (or, for an owner or manager, of member
    ``user_id``) on the account; None when there was none. Locks the session row."""
    if user_id is None or user_id == actor.pk:
        membership_get(user=actor, account_id=account_id, off_shift_ok=True)
        user_id, reason = cast(int, actor.pk), WorkSession.EndReason.MANUAL
    else:
        manager_membership_get(user=actor, account_id=account_id, action="clock members out")
        reason = WorkSession.EndReason.MANAGER
    session = (
        WorkSession.objects.select_for_update()
        .filter(account_id=account_id, user_id=user_id, ended_at__isnull=True)
        .first()
    )
    if session is None:
        return None
    now = now or timezone.now()
    session.ended_at = max(now, session.started_at)
    session.end_reason = reason
    session.ended_by_id = actor.pk
    session.save(update_fields=["ended_at", "end_reason", "ended_by"])
    shift_access_forget(user=actor, account_id=account_id)
    log.info(
        "work_session.clocked_out",
        work_session_id=session.pk,
        account_id=account_id,
        reason=reason,
    )
    _changed_on_commit(session, clocked_in=False)
    return session


def work_session_touch(*, user_id: int, account_id: int, now: datetime | None = None) -> bool:
    """Record activity of a member on an account: one Redis call, and at most once a minute
    (only while clocked in) one UPDATE of the open session. True when it wrote. Never raises
    for Redis: activity is a hint, losing one costs nothing but an early idle clock-out."""
    try:
        due = redis_client().eval(
            _TOUCH_LUA,
            2,
            _open_key(account_id, user_id),
            _touch_key(account_id, user_id),
            TOUCH_EVERY_SECONDS,
        )
    except RedisError:
        log.warning("work_session.touch_failed", account_id=account_id, user_id=user_id)
        return False
    if not due:
        return False
    now = now or timezone.now()
    updated = WorkSession.objects.filter(
        account_id=account_id,
        user_id=user_id,
        ended_at__isnull=True,
        last_activity_at__lt=now,
    ).update(last_activity_at=now)
    return bool(updated)


def _sessions_end(
    sessions: list[WorkSession], *, reason: str, ended_at: dict[int, datetime]
) -> int:
    for session in sessions:
        session.ended_at = max(ended_at[session.pk], session.started_at)
        session.end_reason = reason
    WorkSession.objects.bulk_update(sessions, ["ended_at", "end_reason"])
    for session in sessions:
        log.info(
            "work_session.ended",
            work_session_id=session.pk,
            account_id=session.account_id,
            reason=reason,
        )
        _changed_on_commit(session, clocked_in=False)
    return len(sessions)


@transaction.atomic
def work_sessions_end_idle(*, now: datetime | None = None) -> int:
    """Clock out everyone idle for ``SHIFT_IDLE_MINUTES``: each session ends at its last
    activity (the idle minutes are not worked time), reason ``idle``. Idempotent; rows locked
    with SKIP LOCKED so a clock-out in progress is left to finish. The number ended."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.SHIFT_IDLE_MINUTES)
    sessions = list(
        WorkSession.objects.select_for_update(skip_locked=True)
        .filter(ended_at__isnull=True, last_activity_at__lt=cutoff)
        .order_by("last_activity_at")[:SWEEP_BATCH_SIZE]
    )
    return _sessions_end(
        sessions,
        reason=WorkSession.EndReason.IDLE,
        ended_at={s.pk: s.last_activity_at for s in sessions},
    )


@transaction.atomic
def work_sessions_end_after_shift(*, now: datetime | None = None) -> int:
    """On shift-only accounts, clock out chatters whose shift window (± grace) has closed,
    at its close (at their last activity when no shift covered them: clocked in while the
    setting was off), reason ``shift_ended``. Two queries per open session there."""
    now = now or timezone.now()
    sessions = list(
        WorkSession.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(ended_at__isnull=True, account__shift_only_access=True)
        .select_related("account", "user")
        .order_by("id")[:SWEEP_BATCH_SIZE]
    )
    ending: list[WorkSession] = []
    ended_at: dict[int, datetime] = {}
    for session in sessions:
        access = shift_access_check(user=session.user, account=session.account, now=now)
        if not access.restricted or access.in_window:
            continue
        ending.append(session)
        closed = _last_window_close(session, access.grace, now)
        ended_at[session.pk] = closed or session.last_activity_at
    return _sessions_end(ending, reason=WorkSession.EndReason.SHIFT_ENDED, ended_at=ended_at)


def _last_window_close(session: WorkSession, grace: timedelta, now: datetime) -> datetime | None:
    """When the latest shift window that closed since the session began closed."""
    membership_ids = Membership.objects.filter(
        account_id=session.account_id, user_id=session.user_id
    ).values_list("id", flat=True)
    zone = account_zone(session.account)
    closes = [
        o.ends_at + grace
        for o in occurrences_for_members(
            membership_ids=membership_ids,
            zones={session.account_id: zone},
            start=session.started_at - grace,
            end=now,
        )
        if o.ends_at + grace <= now
    ]
    return max(closes) if closes else None


@transaction.atomic
def work_sessions_end_for_member(*, account_id: int, user_id: int) -> int:
    """A member left the account: their open session there ends now, ``access_revoked``."""
    now = timezone.now()
    sessions = list(
        WorkSession.objects.select_for_update().filter(
            account_id=account_id, user_id=user_id, ended_at__isnull=True
        )
    )
    return _sessions_end(
        sessions,
        reason=WorkSession.EndReason.ACCESS_REVOKED,
        ended_at={s.pk: now for s in sessions},
    )
