"""Schedules: one-off and weekly shifts, a week of an account, a member's week, and edits.

Owners and managers edit an account's schedule; every member reads it (a chatter sees only
their own shifts). Reads and writes take the schedule in the account's time zone
(``crm.shift_schedule`` holds the time arithmetic and its DST rules). A member is never
booked twice at once: each write checks the member's other shifts (one-off and weekly)
under a lock of the member's row. See docs/shifts.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from typing import cast
from zoneinfo import ZoneInfo

import structlog
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError, NotFoundError
from crm.models import (
    SHIFT_MAX_MINUTES,
    CreatorAccount,
    Membership,
    Shift,
    ShiftTemplate,
)
from crm.selectors import User, manager_membership_get, membership_get
from crm.shift_schedule import (
    HourSlot,
    Occurrence,
    Week,
    coverage_gaps,
    hour_slots,
    member_overlaps,
    occurrences_build,
    schedule_rows_filter,
    wall_clock_minutes,
    wall_clock_span,
)
from crm.zones import account_zone

log = structlog.get_logger(__name__)

EDIT_ACTION = "edit shifts"
# How far ahead a weekly shift is checked against the member's other shifts.
OVERLAP_HORIZON = timedelta(days=366)
GRACE_MINUTES_MAX = 240


# --- Reads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    # Per local day of the week (Monday first): the occurrences that start that day.
    days: list[list[Occurrence]]
    dates: list[date] = field(default_factory=list)

    @property
    def cells(self) -> list[tuple[date, list[Occurrence]]]:
        return list(zip(self.dates, self.days, strict=False))


@dataclass(frozen=True)
class ShiftWeek:
    """A week of an account's schedule as its week view shows it."""

    membership: Membership  # the viewer's
    week: Week
    rows: list[MemberRow]
    occurrences: list[Occurrence]
    # Only for owners and managers (a chatter sees their own shifts, not the coverage).
    gaps: list[tuple[datetime, datetime]] = field(default_factory=list)
    overlaps: list[tuple[Occurrence, Occurrence]] = field(default_factory=list)
    hours: list[HourSlot] = field(default_factory=list)

    @property
    def account(self) -> CreatorAccount:
        return self.membership.account

    @property
    def can_edit(self) -> bool:
        return self.membership.can_manage_members

    @property
    def zone(self) -> ZoneInfo:
        return self.week.zone

    @cached_property
    def overlap_keys(self) -> set[str]:
        return {o.key for pair in self.overlaps for o in pair}

    @property
    def members(self) -> dict[int, Membership]:
        return {row.membership.pk: row.membership for row in self.rows}

    @property
    def overlap_rows(self) -> list[tuple[str, Occurrence, Occurrence]]:
        members = self.members
        return [
            (members[a.membership_id].user.get_username(), a, b)
            for a, b in self.overlaps
            if a.membership_id in members
        ]

    @property
    def gap_days(self) -> list[list[tuple[datetime, datetime]]]:
        """Per local day (Monday first), the stretches nobody covers, cut at local midnight
        (local aware times)."""
        days: list[list[tuple[datetime, datetime]]] = [[] for _ in range(7)]
        zone, monday = self.zone, self.week.monday
        for start, end in self.gaps:
            cursor = start.astimezone(zone)
            end_local = end.astimezone(zone)
            while cursor < end_local:
                index = (cursor.date() - monday).days
                next_midnight = datetime.combine(
                    cursor.date() + timedelta(days=1), time(0)
                ).replace(tzinfo=zone)
                stop = min(end_local, next_midnight)
                if 0 <= index < 7:
                    days[index].append((cursor, stop))
                cursor = stop
        return days

    @property
    def gap_hours(self) -> float:
        seconds = sum((end - start).total_seconds() for start, end in self.gaps)
        return round(seconds / 3600, 1)

    @property
    def hour_rows(self) -> list[HourRow]:
        """The hours-as-rows table: one row per local clock hour, a cell per day (None where
        the hour does not exist that day: the spring change; the autumn one has two 02:00)."""
        names = {pk: m.user.get_username() for pk, m in self.members.items()}
        rows: dict[tuple[int, int, int], list[HourCell | None]] = {}
        monday = self.week.monday
        for slot in self.hours:
            local = slot.local_start
            key = (local.hour, local.minute, local.fold)
            index = (local.date() - monday).days
            if not 0 <= index < 7:
                continue
            cells = rows.setdefault(key, [None] * 7)
            cells[index] = HourCell(slot, sorted(names.get(pk, "?") for pk in slot.membership_ids))
        return [
            HourRow(f"{h:02d}:{m:02d}" + (" (again)" if fold else ""), cells)
            for (h, m, fold), cells in sorted(rows.items())
        ]


@dataclass(frozen=True)
class HourCell:
    slot: HourSlot
    names: list[str]


@dataclass(frozen=True)
class HourRow:
    label: str
    cells: list[HourCell | None]


def week_of(value: str, *, zone: ZoneInfo, now: datetime | None = None) -> Week:
    """The ISO week ``value`` (``2026-W09``) in ``zone``; this week when it is empty or not
    one (a bad link shows the current week rather than an error)."""
    return Week.parse(value, zone) or Week.containing(now or timezone.now(), zone)


def _by_local_day(occurrences: list[Occurrence], week: Week) -> list[list[Occurrence]]:
    days: list[list[Occurrence]] = [[] for _ in range(7)]
    monday = week.monday
    for occurrence in occurrences:
        index = (occurrence.starts_at.astimezone(week.zone).date() - monday).days
        # A shift that began on the Sunday before shows on Monday, where the week sees it.
        days[min(max(index, 0), 6)].append(occurrence)
    return days


def shift_week_get(*, user: User, account_id: int, week: str = "") -> ShiftWeek:
    """An account's week: members as rows (a chatter: only themselves), each day's shifts,
    and for owners and managers the stretches nobody covers, members booked twice and the
    headcount per hour. Four queries: membership, members, weekly shifts, shifts."""
    membership = membership_get(user=user, account_id=account_id, off_shift_ok=True)
    account = membership.account
    zone = account_zone(account)
    the_week = week_of(week, zone=zone)
    start, end = the_week.starts_at, the_week.ends_at
    members_q = Membership.objects.filter(account_id=account_id)
    if not membership.can_manage_members:
        members_q = members_q.filter(pk=membership.pk)
    members = list(members_q.select_related("user").order_by("user__username", "id"))
    template_q, shift_q = schedule_rows_filter(start=start, end=end, zone=zone)
    member_ids = [m.pk for m in members]
    templates = ShiftTemplate.objects.filter(template_q, account_id=account_id)
    shifts = Shift.objects.filter(shift_q, account_id=account_id)
    if not membership.can_manage_members:
        templates = templates.filter(membership_id=membership.pk)
        shifts = shifts.filter(membership_id=membership.pk)
    occurrences = occurrences_build(
        templates=templates, shifts=shifts, zones={account_id: zone}, start=start, end=end
    )
    by_member: dict[int, list[Occurrence]] = {pk: [] for pk in member_ids}
    for occurrence in occurrences:
        by_member.setdefault(occurrence.membership_id, []).append(occurrence)
    rows = [MemberRow(m, _by_local_day(by_member[m.pk], the_week), the_week.days) for m in members]
    if not membership.can_manage_members:
        return ShiftWeek(membership, the_week, rows, occurrences)
    return ShiftWeek(
        membership,
        the_week,
        rows,
        occurrences,
        gaps=coverage_gaps(occurrences, start=start, end=end),
        overlaps=member_overlaps(occurrences),
        hours=hour_slots(occurrences, start=start, end=end, zone=zone),
    )


@dataclass(frozen=True)
class AccountWeekRow:
    membership: Membership  # the member's, on this account
    week: Week  # in this account's zone
    days: list[list[Occurrence]]

    @property
    def total_hours(self) -> float:
        seconds = sum((o.ends_at - o.starts_at).total_seconds() for day in self.days for o in day)
        return round(seconds / 3600, 1)


@dataclass(frozen=True)
class MemberWeek:
    """One person's week across the accounts the viewer may see them on."""

    user_id: int
    username: str
    week_label: str
    rows: list[AccountWeekRow]
    # Accounts where the viewer may look at other members' weeks (for the member picker).
    managed_members: list[Membership]


def member_week_get(*, viewer: User, user_id: int | None = None, week: str = "") -> MemberWeek:
    """A member's shifts of one ISO week on each of their accounts, each in its own zone.
    The viewer's own week (any member), or another member's on the accounts the viewer owns
    or manages (NotFoundError when there are none). Four queries."""
    viewer_id = cast(int, viewer.pk)
    target_id = user_id if user_id is not None else viewer_id
    managed = Membership.objects.filter(
        account__memberships__user_id=viewer_id,
        account__memberships__role__in=Membership.MANAGING_ROLES,
    )
    managed_members = list(
        managed.select_related("user", "account").order_by("user__username", "account_id")
    )
    if target_id == viewer_id:
        memberships = [m for m in _memberships_of(viewer_id)]
    else:
        memberships = [m for m in managed_members if m.user_id == target_id]
        if not memberships:
            raise NotFoundError("Member not found.", code="member_not_found")
    now = timezone.now()
    zones = {m.account_id: account_zone(m.account) for m in memberships}
    weeks = {m.account_id: week_of(week, zone=zones[m.account_id], now=now) for m in memberships}
    start = min((w.starts_at for w in weeks.values()), default=now)
    end = max((w.ends_at for w in weeks.values()), default=now)
    template_q, shift_q = schedule_rows_filter(
        start=start - timedelta(days=1), end=end + timedelta(days=1), zone=ZoneInfo("UTC")
    )
    ids = [m.pk for m in memberships]
    occurrences = occurrences_build(
        templates=ShiftTemplate.objects.filter(template_q, membership_id__in=ids),
        shifts=Shift.objects.filter(shift_q, membership_id__in=ids),
        zones=zones,
        start=start,
        end=end,
    )
    rows = []
    for m in memberships:
        the_week = weeks[m.account_id]
        mine = [
            o
            for o in occurrences
            if o.membership_id == m.pk and o.overlaps(the_week.starts_at, the_week.ends_at)
        ]
        rows.append(AccountWeekRow(m, the_week, _by_local_day(mine, the_week)))
    username = memberships[0].user.get_username() if memberships else viewer.get_username()
    label = str(next(iter(weeks.values()))) if weeks else str(Week.containing(now, ZoneInfo("UTC")))
    return MemberWeek(target_id, username, label, rows, managed_members)


def _memberships_of(user_id: int) -> list[Membership]:
    return list(
        Membership.objects.filter(user_id=user_id)
        .select_related("user", "account")
        .order_by("account__display_name", "account_id")
    )


def shifts_for_period(
    *, user: User, account_id: int, start: datetime, end: datetime, membership_id: int | None = None
) -> list[Occurrence]:
    """The account's shifts overlapping [start, end) (at most 62 days): everyone's for owners
    and managers (or one member's), a chatter's own. Three queries."""
    if end <= start or end - start > timedelta(days=62):
        raise ApplicationError(
            "The period must end after it starts and span at most 62 days.",
            code="invalid_period",
        )
    membership = membership_get(user=user, account_id=account_id, off_shift_ok=True)
    zone = account_zone(membership.account)
    template_q, shift_q = schedule_rows_filter(start=start, end=end, zone=zone)
    scope = Q(account_id=account_id)
    if not membership.can_manage_members:
        scope &= Q(membership_id=membership.pk)
    elif membership_id is not None:
        scope &= Q(membership_id=membership_id)
    return occurrences_build(
        templates=ShiftTemplate.objects.filter(template_q, scope),
        shifts=Shift.objects.filter(shift_q, scope),
        zones={account_id: zone},
        start=start,
        end=end,
    )


def shift_templates_for_account(*, user: User, account_id: int) -> list[ShiftTemplate]:
    """The account's weekly shifts (a chatter: their own), by weekday and start. Two
    queries; an account has a few dozen at most (one per member and weekday, say)."""
    membership = membership_get(user=user, account_id=account_id, off_shift_ok=True)
    templates = ShiftTemplate.objects.filter(account_id=account_id)
    if not membership.can_manage_members:
        templates = templates.filter(membership_id=membership.pk)
    return list(templates.order_by("weekday", "start_time", "id"))


def shift_get(*, user: User, account_id: int, shift_id: int) -> Shift:
    """One shift row of the account, for its owners and managers; NotFoundError otherwise."""
    manager_membership_get(user=user, account_id=account_id, action=EDIT_ACTION)
    shift = Shift.objects.filter(pk=shift_id, account_id=account_id).first()
    if shift is None:
        raise NotFoundError("Shift not found.", code="shift_not_found")
    return shift


def shift_template_get(*, user: User, account_id: int, template_id: int) -> ShiftTemplate:
    """One weekly shift of the account, for its owners and managers; NotFoundError otherwise."""
    manager_membership_get(user=user, account_id=account_id, action=EDIT_ACTION)
    template = ShiftTemplate.objects.filter(pk=template_id, account_id=account_id).first()
    if template is None:
        raise NotFoundError("Weekly shift not found.", code="shift_not_found")
    return template


# --- Writes -----------------------------------------------------------------------------------


def local_span(*, day: date, start: time, end: time, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """A shift entered as a local date and two wall-clock times (an end at or before the
    start is the next day) as UTC times."""
    return wall_clock_span(day, start, wall_clock_minutes(start, end), zone)


def _member_lock(*, account_id: int, membership_id: int) -> Membership:
    """The member's row, locked (every schedule write of a member takes it first), or an
    error naming the field when they are not a member of this account."""
    member = (
        Membership.objects.select_for_update()
        .filter(pk=membership_id, account_id=account_id)
        .select_related("user")
        .first()
    )
    if member is None:
        raise ApplicationError(
            "This person is not a member of this account.",
            code="invalid_member",
            fields={"membership": ["Not a member of this account."]},
        )
    return member


def _span_check(starts_at: datetime, ends_at: datetime) -> None:
    if timezone.is_naive(starts_at) or timezone.is_naive(ends_at):
        raise ApplicationError(
            "Give times with their UTC offset.",
            code="invalid_shift",
            fields={"starts_at": ["A time with its offset, e.g. 2026-03-02T09:00:00Z."]},
        )
    if ends_at <= starts_at:
        raise ApplicationError(
            "The shift must end after it starts.",
            code="invalid_shift",
            fields={"ends_at": ["Must be after the start."]},
        )
    if ends_at - starts_at > timedelta(minutes=SHIFT_MAX_MINUTES):
        raise ApplicationError(
            "A shift lasts at most 24 hours.",
            code="invalid_shift",
            fields={"ends_at": ["At most 24 hours after the start."]},
        )


def _overlap_error(member: Membership, other: Occurrence, zone: ZoneInfo) -> ApplicationError:
    local_start, local_end = other.starts_at.astimezone(zone), other.ends_at.astimezone(zone)
    return ApplicationError(
        f"{member.user.get_username()} already has a shift {local_start:%a %d %b %H:%M}"
        f" to {local_end:%H:%M} that overlaps this one.",
        code="shift_overlap",
        fields={"starts_at": ["Overlaps another shift of this member."]},
    )


def _member_rows(
    member: Membership, start: datetime, end: datetime
) -> tuple[list[ShiftTemplate], list[Shift]]:
    template_q, shift_q = schedule_rows_filter(
        start=start - timedelta(days=1), end=end + timedelta(days=1), zone=ZoneInfo("UTC")
    )
    return (
        list(ShiftTemplate.objects.filter(template_q, membership_id=member.pk)),
        list(Shift.objects.filter(shift_q, membership_id=member.pk)),
    )


def _first_overlap(
    candidates: list[Occurrence], existing: list[Occurrence], skip: set[str]
) -> Occurrence | None:
    others = sorted((o for o in existing if o.key not in skip), key=lambda o: o.starts_at)
    for candidate in candidates:
        for other in others:
            if other.starts_at >= candidate.ends_at:
                break
            if other.ends_at > candidate.starts_at:
                return other
    return None


def _one_off_overlap_check(
    *,
    member: Membership,
    zone: ZoneInfo,
    starts_at: datetime,
    ends_at: datetime,
    skip: set[str],
) -> None:
    templates, shifts = _member_rows(member, starts_at, ends_at)
    existing = occurrences_build(
        templates=templates,
        shifts=shifts,
        zones={member.account_id: zone},
        start=starts_at,
        end=ends_at,
    )
    candidate = Occurrence(member.account_id, member.pk, starts_at, ends_at)
    other = _first_overlap([candidate], existing, skip)
    if other is not None:
        raise _overlap_error(member, other, zone)


def _template_overlap_check(*, member: Membership, zone: ZoneInfo, template: ShiftTemplate) -> None:
    """The weekly shift against the member's other shifts from its first day, over the
    longest of: its active days, the member's other rows plus two weeks (capped at a year)."""
    start = datetime.combine(template.active_from, time(0)).replace(tzinfo=zone)
    templates = [
        t
        for t in ShiftTemplate.objects.filter(
            Q(active_until__isnull=True) | Q(active_until__gte=template.active_from),
            membership_id=member.pk,
        )
        if t.pk != template.pk
    ]
    shifts = list(
        Shift.objects.filter(
            Q(ends_at__gt=start) | Q(template__isnull=False, occurrence_date__gte=start.date()),
            membership_id=member.pk,
        )
    )
    latest = max(
        [template.active_from]
        + [t.active_from for t in templates]
        + [s.starts_at.astimezone(zone).date() for s in shifts]
    )
    last_day = latest + timedelta(days=14)
    if template.active_until is not None:
        last_day = min(last_day, template.active_until)
    end = min(
        datetime.combine(last_day + timedelta(days=1), time(0)).replace(tzinfo=zone),
        start + OVERLAP_HORIZON,
    )
    zones = {member.account_id: zone}

    def its_own(shift: Shift) -> bool:
        return template.pk is not None and shift.template_id == template.pk

    candidates = occurrences_build(
        templates=[template],
        shifts=[s for s in shifts if its_own(s)],
        zones=zones,
        start=start,
        end=end,
    )
    others = [s for s in shifts if not its_own(s)]
    existing = occurrences_build(
        templates=templates, shifts=others, zones=zones, start=start, end=end
    )
    other = _first_overlap(candidates, existing, skip=set())
    if other is not None:
        raise _overlap_error(member, other, zone)


def _changed_on_commit(account_id: int) -> None:
    transaction.on_commit(
        lambda: account_event_broadcast(
            account_id=account_id, event="shifts.changed", payload={"account_id": account_id}
        )
    )


@transaction.atomic
def shift_create(
    *,
    actor: User,
    account_id: int,
    membership_id: int,
    starts_at: datetime,
    ends_at: datetime,
) -> Shift:
    """A one-off shift for a member of the account (owners and managers). Locks the
    member's row; refuses a span that ends first, lasts over 24 h, or overlaps another of the
    member's shifts (``shift_overlap``)."""
    editor = manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    _span_check(starts_at, ends_at)
    member = _member_lock(account_id=account_id, membership_id=membership_id)
    zone = account_zone(editor.account)
    _one_off_overlap_check(
        member=member, zone=zone, starts_at=starts_at, ends_at=ends_at, skip=set()
    )
    shift = Shift.objects.create(
        account_id=account_id,
        membership=member,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by_id=actor.pk,
    )
    log.info("shift.created", shift_id=shift.pk, account_id=account_id)
    _changed_on_commit(account_id)
    return shift


@transaction.atomic
def shift_update(
    *,
    actor: User,
    account_id: int,
    shift_id: int,
    membership_id: int,
    starts_at: datetime,
    ends_at: datetime,
) -> Shift:
    """Change a one-off shift (or a moved occurrence of a weekly one: it stays that day's
    replacement, and keeps its member). The same checks as ``shift_create``."""
    editor = manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    _span_check(starts_at, ends_at)
    shift = Shift.objects.select_for_update().filter(pk=shift_id, account_id=account_id).first()
    if shift is None:
        raise NotFoundError("Shift not found.", code="shift_not_found")
    if shift.template_id is not None:
        membership_id = shift.membership_id
    member = _member_lock(account_id=account_id, membership_id=membership_id)
    zone = account_zone(editor.account)
    _one_off_overlap_check(
        member=member, zone=zone, starts_at=starts_at, ends_at=ends_at, skip={f"s{shift.pk}"}
    )
    shift.membership = member
    shift.starts_at, shift.ends_at, shift.cancelled = starts_at, ends_at, False
    shift.save(update_fields=["membership", "starts_at", "ends_at", "cancelled", "updated_at"])
    log.info("shift.updated", shift_id=shift.pk, account_id=account_id)
    _changed_on_commit(account_id)
    return shift


@transaction.atomic
def shift_delete(*, actor: User, account_id: int, shift_id: int) -> None:
    """Delete a one-off shift; for a moved or cancelled occurrence of a weekly shift, delete
    the change (the weekly shift's own time applies again that day)."""
    manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    deleted, _ = Shift.objects.filter(pk=shift_id, account_id=account_id).delete()
    if not deleted:
        raise NotFoundError("Shift not found.", code="shift_not_found")
    log.info("shift.deleted", shift_id=shift_id, account_id=account_id)
    _changed_on_commit(account_id)


def _template_fields_check(
    *, weekday: int, duration_minutes: int, active_from: date, active_until: date | None
) -> None:
    errors: dict[str, list[str]] = {}
    if not 0 <= weekday <= 6:
        errors["weekday"] = ["0 (Monday) to 6 (Sunday)."]
    if not 1 <= duration_minutes <= SHIFT_MAX_MINUTES:
        errors["duration_minutes"] = ["From 1 minute to 24 hours."]
    if active_until is not None and active_until < active_from:
        errors["active_until"] = ["Must be on or after the first day."]
    if errors:
        raise ApplicationError(
            "The weekly shift is not valid.", code="invalid_shift", fields=errors
        )


@transaction.atomic
def shift_template_create(
    *,
    actor: User,
    account_id: int,
    membership_id: int,
    weekday: int,
    start_time: time,
    duration_minutes: int,
    active_from: date,
    active_until: date | None = None,
) -> ShiftTemplate:
    """A weekly shift (owners and managers): every ``weekday`` from ``active_from`` (moved to
    the first such weekday) to ``active_until``, at ``start_time`` local. Locks the member's
    row; refuses an overlap with the member's other shifts (``shift_overlap``)."""
    editor = manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    _template_fields_check(
        weekday=weekday,
        duration_minutes=duration_minutes,
        active_from=active_from,
        active_until=active_until,
    )
    active_from += timedelta(days=(weekday - active_from.weekday()) % 7)
    if active_until is not None and active_until < active_from:
        raise ApplicationError(
            "No such weekday between the first and the last day.",
            code="invalid_shift",
            fields={"active_until": ["No occurrence before this day."]},
        )
    member = _member_lock(account_id=account_id, membership_id=membership_id)
    template = ShiftTemplate(
        account_id=account_id,
        membership=member,
        weekday=weekday,
        start_time=start_time,
        duration_minutes=duration_minutes,
        active_from=active_from,
        active_until=active_until,
        created_by_id=actor.pk,
    )
    _template_overlap_check(member=member, zone=account_zone(editor.account), template=template)
    template.save()
    log.info("shift_template.created", shift_template_id=template.pk, account_id=account_id)
    _changed_on_commit(account_id)
    return template


@transaction.atomic
def shift_template_update(
    *,
    actor: User,
    account_id: int,
    template_id: int,
    membership_id: int,
    weekday: int,
    start_time: time,
    duration_minutes: int,
    active_from: date,
    active_until: date | None = None,
) -> ShiftTemplate:
    """Change a weekly shift, every week of it (its one-day changes stay). The same checks
    as ``shift_template_create``."""
    editor = manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    _template_fields_check(
        weekday=weekday,
        duration_minutes=duration_minutes,
        active_from=active_from,
        active_until=active_until,
    )
    template = (
        ShiftTemplate.objects.select_for_update()
        .filter(pk=template_id, account_id=account_id)
        .first()
    )
    if template is None:
        raise NotFoundError("Weekly shift not found.", code="shift_not_found")
    member = _member_lock(account_id=account_id, membership_id=membership_id)
    if member.pk != template.membership_id:
        # The day-by-day changes were the old member's; another member starts clean.
        template.overrides.all().delete()
    template.membership = member
    template.weekday, template.start_time = weekday, start_time
    template.duration_minutes = duration_minutes
    template.active_from = active_from + timedelta(days=(weekday - active_from.weekday()) % 7)
    template.active_until = active_until
    if template.active_until is not None and template.active_until < template.active_from:
        raise ApplicationError(
            "No such weekday between the first and the last day.",
            code="invalid_shift",
            fields={"active_until": ["No occurrence before this day."]},
        )
    _template_overlap_check(member=member, zone=account_zone(editor.account), template=template)
    template.save()
    log.info("shift_template.updated", shift_template_id=template.pk, account_id=account_id)
    _changed_on_commit(account_id)
    return template


@transaction.atomic
def shift_template_delete(*, actor: User, account_id: int, template_id: int) -> None:
    """Delete a weekly shift, every week of it, with its one-day changes."""
    manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    deleted, _ = ShiftTemplate.objects.filter(pk=template_id, account_id=account_id).delete()
    if not deleted:
        raise NotFoundError("Weekly shift not found.", code="shift_not_found")
    log.info("shift_template.deleted", shift_template_id=template_id, account_id=account_id)
    _changed_on_commit(account_id)


def _occurrence_of(template: ShiftTemplate, day: date) -> None:
    if day.weekday() != template.weekday or day < template.active_from:
        raise NotFoundError(
            "That weekly shift does not happen on that day.", code="shift_not_found"
        )
    if template.active_until is not None and day > template.active_until:
        raise NotFoundError(
            "That weekly shift does not happen on that day.", code="shift_not_found"
        )


@transaction.atomic
def shift_occurrence_change(
    *,
    actor: User,
    account_id: int,
    template_id: int,
    occurrence_date: date,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    cancel: bool = False,
) -> Shift:
    """Change one day of a weekly shift: cancel it (``cancel``) or move it to
    ``starts_at`` to ``ends_at``; the row that records the change replaces any earlier one for
    that day. Locks the member's row."""
    editor = manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    template = ShiftTemplate.objects.filter(pk=template_id, account_id=account_id).first()
    if template is None:
        raise NotFoundError("Weekly shift not found.", code="shift_not_found")
    _occurrence_of(template, occurrence_date)
    member = _member_lock(account_id=account_id, membership_id=template.membership_id)
    zone = account_zone(editor.account)
    if cancel:
        starts_at, ends_at = wall_clock_span(
            occurrence_date, template.start_time, template.duration_minutes, zone
        )
    else:
        if starts_at is None or ends_at is None:
            raise ApplicationError("Give the new start and end.", code="invalid_shift")
        _span_check(starts_at, ends_at)
        skip = {f"t{template.pk}-{occurrence_date:%Y%m%d}"}
        existing = Shift.objects.filter(template=template, occurrence_date=occurrence_date)
        skip |= {f"s{pk}" for pk in existing.values_list("id", flat=True)}
        _one_off_overlap_check(
            member=member, zone=zone, starts_at=starts_at, ends_at=ends_at, skip=skip
        )
    shift, _ = Shift.objects.update_or_create(
        template=template,
        occurrence_date=occurrence_date,
        defaults={
            "account_id": account_id,
            "membership": member,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "cancelled": cancel,
            "created_by_id": actor.pk,
        },
    )
    log.info(
        "shift.occurrence_changed",
        shift_id=shift.pk,
        shift_template_id=template.pk,
        account_id=account_id,
        cancelled=cancel,
    )
    _changed_on_commit(account_id)
    return shift


@transaction.atomic
def account_shift_settings_update(
    *, actor: User, account_id: int, shift_only_access: bool, shift_grace_minutes: int
) -> CreatorAccount:
    """Owners and managers switch shift-only access and set its grace (0 to 240 minutes)."""
    editor = manager_membership_get(user=actor, account_id=account_id, action=EDIT_ACTION)
    if not 0 <= shift_grace_minutes <= GRACE_MINUTES_MAX:
        raise ApplicationError(
            "The grace period is 0 to 240 minutes.",
            code="invalid_settings",
            fields={"shift_grace_minutes": ["0 to 240."]},
        )
    account = editor.account
    account.shift_only_access = shift_only_access
    account.shift_grace_minutes = shift_grace_minutes
    account.save(update_fields=["shift_only_access", "shift_grace_minutes", "updated_at"])
    log.info(
        "account.shift_settings_updated",
        account_id=account_id,
        shift_only_access=shift_only_access,
        grace_minutes=shift_grace_minutes,
    )
    return account
