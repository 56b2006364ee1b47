"""Shift-only access: the one rule of who may open an account's inbox and fans off shift.

When an account has ``shift_only_access`` on, a chatter may use its inbox, fans, conversations
(pages, API, sockets) only while clocked in (an open ``WorkSession``) and within a scheduled
shift widened by ``shift_grace_minutes`` either side: from ``starts_at - grace`` (inclusive) to
``ends_at + grace`` (exclusive). Owners and managers are never restricted. Clocking in is
refused outside that window.

``crm.selectors.membership_get`` (and the fan and conversation getters) call
``shift_access_require``: free when the setting is off (the account is loaded with the
membership already), one query when it is on (membership role, open session and the shifts
near now, in one UNION), and the answer is kept on the user object for a few seconds so the
several checks of one request cost one query.
"""

from __future__ import annotations

import time as monotonic_time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from crm.errors import ApplicationError
from crm.models import (
    SHIFT_MAX_REAL_DURATION,
    CreatorAccount,
    Membership,
    Shift,
    ShiftTemplate,
    WorkSession,
)
from crm.shift_schedule import Occurrence, occurrences_build
from crm.zones import account_zone

# How long one answer is reused for the same user and account (one request's several checks;
# a socket re-checks every 30 s, see crm.consumers).
CACHE_SECONDS = 5.0
_CACHE_ATTR = "_shift_access_cache"
# How far ahead "your next shift" looks (a weekly shift always falls within it).
NEXT_SHIFT_HORIZON = timedelta(days=8)


@dataclass(frozen=True)
class ShiftAccess:
    allowed: bool
    restricted: bool = False  # the rule applies (shift-only account, chatter)
    clocked_in: bool = False
    # The current shift when in the window (start - grace <= now < end + grace), else None.
    current: Occurrence | None = None
    # The next shift starting after now (within NEXT_SHIFT_HORIZON), when not in a window.
    next: Occurrence | None = None
    grace: timedelta = timedelta(0)

    @property
    def in_window(self) -> bool:
        return self.current is not None

    @property
    def window_ends_at(self) -> datetime | None:
        return self.current.ends_at + self.grace if self.current else None

    @property
    def next_window_opens_at(self) -> datetime | None:
        return self.next.starts_at - self.grace if self.next else None


ALLOWED = ShiftAccess(allowed=True)


class OffShiftError(ApplicationError):
    """A chatter outside their shift (or not clocked in) on a shift-only account."""

    def __init__(self, access: ShiftAccess, account: CreatorAccount) -> None:
        self.access = access
        self.account = account
        starts = access.next.starts_at if access.next else None
        if access.in_window:
            message = "You are not clocked in. Clock in to open this account."
        elif starts is not None:
            local = starts.astimezone(account_zone(account))
            message = (
                "This account is open to chatters only during their shifts. "
                f"Your next shift starts {local:%a %d %b %H:%M} ({account.time_zone})."
            )
        else:
            message = (
                "This account is open to chatters only during their shifts, "
                "and you have none scheduled in the next week."
            )
        super().__init__(
            message,
            code="off_shift",
            status_code=403,
            extra={
                "next_shift_starts_at": starts.isoformat() if starts else None,
                "can_clock_in": access.in_window and not access.clocked_in,
            },
        )


_S, _T, _W, _M = (
    Shift._meta.db_table,
    ShiftTemplate._meta.db_table,
    WorkSession._meta.db_table,
    Membership._meta.db_table,
)
# One round trip: the member's role, their open session, and their shifts and weekly shifts
# that can matter around now. Typed NULLs so the branches line up.
_ACCESS_SQL = f"""
SELECT 'm', m.id, m.role, NULL::timestamptz, NULL::timestamptz, NULL::bigint, NULL::date,
       false, NULL::smallint, NULL::time, NULL::integer, NULL::date, NULL::date
  FROM {_M} m WHERE m.user_id = %(user)s AND m.account_id = %(account)s
UNION ALL
SELECT 'w', w.id, NULL, w.started_at, NULL, NULL, NULL, false, NULL, NULL, NULL, NULL, NULL
  FROM {_W} w WHERE w.account_id = %(account)s AND w.user_id = %(user)s AND w.ended_at IS NULL
UNION ALL
SELECT 's', s.id, NULL, s.starts_at, s.ends_at, s.template_id, s.occurrence_date, s.cancelled,
       NULL, NULL, NULL, NULL, NULL
  FROM {_S} s JOIN {_M} m ON m.id = s.membership_id
 WHERE m.user_id = %(user)s AND m.account_id = %(account)s
   AND ((s.starts_at >= %(from_start)s AND s.starts_at < %(to)s AND s.ends_at > %(from)s)
        OR (s.template_id IS NOT NULL AND s.occurrence_date BETWEEN %(day0)s AND %(day1)s))
UNION ALL
SELECT 't', t.id, NULL, NULL, NULL, NULL, NULL, false, t.weekday, t.start_time,
       t.duration_minutes, t.active_from, t.active_until
  FROM {_T} t JOIN {_M} m ON m.id = t.membership_id
 WHERE m.user_id = %(user)s AND m.account_id = %(account)s
   AND t.active_from <= %(day1)s AND (t.active_until IS NULL OR t.active_until >= %(day0)s)
"""  # noqa: S608 (table names only)


def _cache(user: Any) -> dict[int, tuple[float, ShiftAccess]]:
    cache: dict[int, tuple[float, ShiftAccess]] | None = getattr(user, _CACHE_ATTR, None)
    if cache is None:
        cache = {}
        setattr(user, _CACHE_ATTR, cache)
    return cache


def shift_access_forget(*, user: Any, account_id: int) -> None:
    """Drop the kept answer (clock-in and clock-out change it)."""
    _cache(user).pop(account_id, None)


def shift_access_check(
    *,
    user: Any,
    account: CreatorAccount,
    membership: Membership | None = None,
    now: datetime | None = None,
) -> ShiftAccess:
    """Whether ``user`` may open ``account``'s inbox and fans now (see the module docstring).
    ``membership``: theirs, when the caller has it (saves nothing but the role's lookup)."""
    if not account.shift_only_access:
        return ALLOWED
    if membership is not None and membership.role != Membership.Role.CHATTER:
        return ALLOWED
    use_cache = now is None
    if use_cache:
        kept = _cache(user).get(account.pk)
        if kept is not None and monotonic_time.monotonic() < kept[0]:
            return kept[1]
    access = _access_compute(user_id=user.pk, account=account, now=now or timezone.now())
    if use_cache:
        _cache(user)[account.pk] = (monotonic_time.monotonic() + CACHE_SECONDS, access)
    return access


def shift_access_require(
    *, user: Any, account: CreatorAccount, membership: Membership | None = None
) -> None:
    """``shift_access_check``, raising ``OffShiftError`` (403 ``off_shift``) when refused."""
    access = shift_access_check(user=user, account=account, membership=membership)
    if not access.allowed:
        raise OffShiftError(access, account)


def accounts_closed_now(*, user: Any) -> set[int]:
    """The ids of the accounts ``user`` is a member of but may not open now (a chatter off
    shift on a shift-only account): a list across accounts leaves their rows out, as the
    account's own pages refuse them. One query (the user's chatter memberships of shift-only
    accounts, nearly always none), then one per such account (kept, as every check)."""
    if not user.is_authenticated:
        return set()
    restricted = Membership.objects.filter(
        user_id=user.pk, role=Membership.Role.CHATTER, account__shift_only_access=True
    ).select_related("account")
    return {
        m.account_id
        for m in restricted
        if not shift_access_check(user=user, account=m.account, membership=m).allowed
    }


def _access_compute(*, user_id: int, account: CreatorAccount, now: datetime) -> ShiftAccess:
    zone = account_zone(account)
    grace = timedelta(minutes=account.shift_grace_minutes)
    start, end = now - grace, now + grace + NEXT_SHIFT_HORIZON
    days_from = (start - SHIFT_MAX_REAL_DURATION).astimezone(zone).date()
    days_to = end.astimezone(zone).date()
    with connection.cursor() as cursor:
        cursor.execute(
            _ACCESS_SQL,
            {
                "user": user_id,
                "account": account.pk,
                "from": start,
                "from_start": start - SHIFT_MAX_REAL_DURATION,
                "to": end,
                "day0": days_from,
                "day1": days_to,
            },
        )
        rows = cursor.fetchall()
    role: str | None = None
    clocked_in = False
    membership_id = 0
    shifts: list[Shift] = []
    templates: list[ShiftTemplate] = []
    for kind, pk, row_role, starts, ends, template_id, day, cancelled, *weekly in rows:
        if kind == "m":
            role, membership_id = row_role, pk
        elif kind == "w":
            clocked_in = True
        elif kind == "s":
            shifts.append(
                Shift(
                    id=pk,
                    account_id=account.pk,
                    starts_at=starts,
                    ends_at=ends,
                    template_id=template_id,
                    occurrence_date=day,
                    cancelled=cancelled,
                )
            )
        else:
            weekday, start_time, duration, active_from, active_until = weekly
            templates.append(
                ShiftTemplate(
                    id=pk,
                    account_id=account.pk,
                    weekday=weekday,
                    start_time=start_time,
                    duration_minutes=duration,
                    active_from=active_from,
                    active_until=active_until,
                )
            )
    if role is None or role != Membership.Role.CHATTER:
        # Not a member (the caller's own check answers that) or never restricted.
        return ALLOWED
    for shift in shifts:
        shift.membership_id = membership_id
    for template in templates:
        template.membership_id = membership_id
    zones = {account.pk: zone}
    # The window around now first (a few days of weekly shifts): the allowed path stops here;
    # the week ahead is built only to say when the next shift is.
    edge = now + grace + timedelta(microseconds=1)  # a shift starting right at the window
    around = occurrences_build(
        templates=templates, shifts=shifts, zones=zones, start=start, end=edge
    )
    current = next((o for o in around if o.starts_at - grace <= now < o.ends_at + grace), None)
    upcoming = None
    if current is None:
        ahead = occurrences_build(
            templates=templates, shifts=shifts, zones=zones, start=edge, end=end
        )
        upcoming = next((o for o in ahead if o.starts_at - grace > now), None)
    return ShiftAccess(
        allowed=clocked_in and current is not None,
        restricted=True,
        clocked_in=clocked_in,
        current=current,
        next=upcoming,
        grace=grace,
    )
