"""When shifts happen: weekly templates turned into occurrences, weeks, coverage and overlaps.

Reads only the shift tables (no scoping: callers scope, see ``crm.shifts``), so the access rule
(``crm.shift_access``) and the selectors can both use it without importing each other.

Time zones: a weekly shift is local wall-clock time in its account's zone (``CreatorAccount.
time_zone``). An occurrence starts at ``start_time`` on its local date and ends
``duration_minutes`` of wall-clock time later, so 22:00 + 8 h ends at 06:00 local whatever DST
does: on the night the clocks go forward it lasts 7 real hours, on the night they go back 9.
A local time that does not exist (inside the spring gap, 02:30 in Berlin) is read with the
offset before the change, i.e. an hour later on the clock (03:30); a local time that happens
twice (02:30 on the autumn night) is the first of the two. Stored times are aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Q

from crm.models import SHIFT_MAX_REAL_DURATION, Shift, ShiftTemplate

ISO_WEEK_MAX_LENGTH = 8  # "2026-W09"


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime:
    """``day`` at wall-clock ``at`` in ``zone``, as UTC (fold=0: see the module's docstring)."""
    return datetime.combine(day, at).replace(tzinfo=zone).astimezone(UTC)


def wall_clock_span(day: date, at: time, minutes: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end (UTC) of ``minutes`` of wall-clock time from ``day`` ``at`` local."""
    start_naive = datetime.combine(day, at)
    starts_at = start_naive.replace(tzinfo=zone).astimezone(UTC)
    ends_at = (start_naive + timedelta(minutes=minutes)).replace(tzinfo=zone).astimezone(UTC)
    if ends_at <= starts_at:
        # Only a short shift starting inside the spring gap: keep its real length.
        ends_at = starts_at + timedelta(minutes=minutes)
    return starts_at, ends_at


def wall_clock_minutes(start: time, end: time) -> int:
    """Wall-clock minutes from ``start`` to ``end``; an end at or before the start is on the
    next day (22:00 to 06:00 is 480)."""
    minutes = (end.hour * 60 + end.minute) - (start.hour * 60 + start.minute)
    return minutes if minutes > 0 else minutes + 24 * 60


@dataclass(frozen=True)
class Week:
    """An ISO week in a zone: Monday 00:00 local to the next Monday 00:00 local (167, 168 or
    169 real hours)."""

    year: int
    number: int
    zone: ZoneInfo

    @classmethod
    def parse(cls, value: str, zone: ZoneInfo) -> Week | None:
        """``YYYY-Www`` (``2026-W09``); None when it is not one."""
        value = value[: ISO_WEEK_MAX_LENGTH + 1].strip().upper()
        if len(value) != ISO_WEEK_MAX_LENGTH or value[4:6] != "-W":
            return None
        year, number = value[:4], value[6:]
        if not (year.isdigit() and number.isdigit()):
            return None
        try:
            date.fromisocalendar(int(year), int(number), 1)
        except ValueError:
            return None
        return cls(int(year), int(number), zone)

    @classmethod
    def containing(cls, moment: datetime, zone: ZoneInfo) -> Week:
        year, number, _ = moment.astimezone(zone).isocalendar()
        return cls(year, number, zone)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.number, 1)

    @property
    def days(self) -> list[date]:
        return [self.monday + timedelta(days=i) for i in range(7)]

    @property
    def starts_at(self) -> datetime:
        return local_to_utc(self.monday, time(0), self.zone)

    @property
    def ends_at(self) -> datetime:
        return local_to_utc(self.monday + timedelta(days=7), time(0), self.zone)

    @property
    def previous(self) -> Week:
        return self.shifted(-1)

    @property
    def following(self) -> Week:
        return self.shifted(1)

    @property
    def sunday(self) -> date:
        return self.monday + timedelta(days=6)

    def shifted(self, weeks: int) -> Week:
        year, number, _ = (self.monday + timedelta(weeks=weeks)).isocalendar()
        return Week(year, number, self.zone)

    def __str__(self) -> str:
        return f"{self.year:04d}-W{self.number:02d}"


@dataclass(frozen=True)
class Occurrence:
    """One scheduled shift: a one-off ``Shift``, or a weekly template's occurrence on a local
    date (overridden or not). Times are UTC."""

    account_id: int
    membership_id: int
    starts_at: datetime
    ends_at: datetime
    shift_id: int | None = None
    template_id: int | None = None
    occurrence_date: date | None = None

    @property
    def is_weekly(self) -> bool:
        return self.template_id is not None

    @property
    def key(self) -> str:
        """Stable across renders: ``t<template>-<date>`` for a weekly one, ``s<shift>``."""
        if self.template_id is not None:
            return f"t{self.template_id}-{self.occurrence_date:%Y%m%d}"
        return f"s{self.shift_id}"

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.starts_at < end and start < self.ends_at


def template_occurrence(template: ShiftTemplate, day: date, zone: ZoneInfo) -> Occurrence:
    starts_at, ends_at = wall_clock_span(day, template.start_time, template.duration_minutes, zone)
    return Occurrence(
        account_id=template.account_id,
        membership_id=template.membership_id,
        starts_at=starts_at,
        ends_at=ends_at,
        template_id=template.pk,
        occurrence_date=day,
    )


def _local_days(start: datetime, end: datetime, zone: ZoneInfo) -> list[date]:
    """The local dates a template occurrence overlapping [start, end) can start on."""
    first = (start - SHIFT_MAX_REAL_DURATION).astimezone(zone).date()
    last = end.astimezone(zone).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def occurrences_build(
    *,
    templates: Iterable[ShiftTemplate],
    shifts: Iterable[Shift],
    zones: Mapping[int, ZoneInfo],
    start: datetime,
    end: datetime,
) -> list[Occurrence]:
    """The occurrences overlapping [start, end), by start: templates' occurrences on their
    active days, except those an override replaces (moved or cancelled), plus the shifts.
    ``shifts`` must hold every override of the templates on the days concerned (see
    ``schedule_rows_filter``); ``zones`` maps account id to its zone."""
    shifts = list(shifts)
    overridden = {(s.template_id, s.occurrence_date) for s in shifts if s.template_id}
    result = [
        Occurrence(
            account_id=s.account_id,
            membership_id=s.membership_id,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            shift_id=s.pk,
            template_id=s.template_id,
            occurrence_date=s.occurrence_date,
        )
        for s in shifts
        if not s.cancelled and s.starts_at < end and start < s.ends_at
    ]
    by_account: dict[int, list[ShiftTemplate]] = {}
    for template in templates:
        by_account.setdefault(template.account_id, []).append(template)
    for account_id, account_templates in by_account.items():
        zone = zones.get(account_id) or ZoneInfo("UTC")
        for day in _local_days(start, end, zone):
            weekday = day.weekday()
            for template in account_templates:
                if template.weekday != weekday or day < template.active_from:
                    continue
                if template.active_until is not None and day > template.active_until:
                    continue
                if (template.pk, day) in overridden:
                    continue
                occurrence = template_occurrence(template, day, zone)
                if occurrence.overlaps(start, end):
                    result.append(occurrence)
    result.sort(key=lambda o: (o.starts_at, o.membership_id, o.key))
    return result


def schedule_rows_filter(*, start: datetime, end: datetime, zone: ZoneInfo) -> tuple[Q, Q]:
    """Filters of the templates and the shifts that ``occurrences_build`` needs for
    [start, end): templates active on those local days; shifts overlapping the period (on the
    ``*_starts`` indexes: a shift starts at most 25 h before it ends) and every override of an
    occurrence on those days (wherever it was moved)."""
    days = _local_days(start, end, zone)
    templates = Q(active_from__lte=days[-1]) & (
        Q(active_until__isnull=True) | Q(active_until__gte=days[0])
    )
    shifts = Q(
        starts_at__gte=start - SHIFT_MAX_REAL_DURATION, starts_at__lt=end, ends_at__gt=start
    ) | Q(template__isnull=False, occurrence_date__gte=days[0], occurrence_date__lte=days[-1])
    return templates, shifts


def occurrences_for_members(
    *,
    membership_ids: Iterable[int],
    zones: Mapping[int, ZoneInfo],
    start: datetime,
    end: datetime,
) -> list[Occurrence]:
    """Occurrences of these members' shifts in [start, end): two queries. The widest zone
    offsets do not matter: the filters are padded by more than a day either side."""
    ids = list(membership_ids)
    if not ids:
        return []
    template_q, shift_q = schedule_rows_filter(
        start=start - timedelta(days=1), end=end + timedelta(days=1), zone=ZoneInfo("UTC")
    )
    templates = ShiftTemplate.objects.filter(template_q, membership_id__in=ids)
    shifts = Shift.objects.filter(shift_q, membership_id__in=ids)
    return occurrences_build(templates=templates, shifts=shifts, zones=zones, start=start, end=end)


def coverage_gaps(
    occurrences: Iterable[Occurrence], *, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The stretches of [start, end) with nobody scheduled, in order."""
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for occurrence in sorted(occurrences, key=lambda o: o.starts_at):
        if occurrence.starts_at > cursor:
            gaps.append((cursor, min(occurrence.starts_at, end)))
        cursor = max(cursor, occurrence.ends_at)
        if cursor >= end:
            break
    if cursor < end:
        gaps.append((cursor, end))
    return [(s, e) for s, e in gaps if s < e]


def member_overlaps(occurrences: Iterable[Occurrence]) -> list[tuple[Occurrence, Occurrence]]:
    """Pairs of one member's occurrences that overlap (a member booked twice at once)."""
    pairs: list[tuple[Occurrence, Occurrence]] = []
    by_member: dict[int, list[Occurrence]] = {}
    for occurrence in occurrences:
        by_member.setdefault(occurrence.membership_id, []).append(occurrence)
    for member_occurrences in by_member.values():
        member_occurrences.sort(key=lambda o: o.starts_at)
        for i, first in enumerate(member_occurrences):
            for second in member_occurrences[i + 1 :]:
                if second.starts_at >= first.ends_at:
                    break
                pairs.append((first, second))
    return pairs


@dataclass(frozen=True)
class HourSlot:
    """One real hour of a week, labelled by its local start, with who is scheduled in it."""

    starts_at: datetime
    local_start: datetime
    membership_ids: frozenset[int]

    @property
    def headcount(self) -> int:
        return len(self.membership_ids)


def hour_slots(
    occurrences: Iterable[Occurrence], *, start: datetime, end: datetime, zone: ZoneInfo
) -> list[HourSlot]:
    """Every real hour of [start, end) (a DST week has 167 or 169) and who works in it."""
    occurrences = sorted(occurrences, key=lambda o: o.starts_at)
    slots: list[HourSlot] = []
    moment = start
    while moment < end:
        slot_end = min(moment + timedelta(hours=1), end)
        members = frozenset(
            o.membership_id for o in occurrences if o.starts_at < slot_end and moment < o.ends_at
        )
        slots.append(HourSlot(moment, moment.astimezone(zone), members))
        moment = slot_end
    return slots


def occurrence_moved(
    occurrence: Occurrence, *, starts_at: datetime, ends_at: datetime
) -> Occurrence:
    return replace(occurrence, starts_at=starts_at, ends_at=ends_at)
