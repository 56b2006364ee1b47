"""When a run is due: its trigger's moment plus the delay and a random part of the spread,
moved out of the automation's quiet hours (on the account's clock); and the control draw.

Both draws use one module-level generator, so tests make them repeatable with
``rng.seed(...)``; nothing here is security-sensitive.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from automations.models import Automation

rng = random.Random()


def utc_key(moment: datetime) -> str:
    """A moment as it appears in event keys: UTC to the microsecond (``event_key_sql`` writes
    the same text in SQL)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def local_shift(moment: datetime, zone: ZoneInfo, *, hours: int = 0, days: int = 0) -> datetime:
    """``moment`` moved on the account's clock: the same wall-clock time of day ``days`` later,
    ``hours`` earlier or later on the clock. Across a change of the clocks this differs from
    adding hours: 48 hours before Monday 10:00 is Saturday 10:00 even when the clocks go back
    on Sunday (49 real hours)."""
    local = moment.astimezone(zone)
    wall = local.replace(tzinfo=None) + timedelta(days=days, hours=hours)
    # A wall-clock time the change skips (spring) resolves to just after it.
    return _aware(wall, zone)


def _aware(wall: datetime, zone: ZoneInfo) -> datetime:
    aware = wall.replace(tzinfo=zone)
    # Round trip through UTC: a time in the spring gap comes back shifted by the gap.
    return aware.astimezone(UTC).astimezone(zone)


def in_quiet_hours(moment: datetime, *, start: time, end: time, zone: ZoneInfo) -> bool:
    """Whether ``moment`` falls in the quiet hours [start, end) on the account's clock; a
    window with start after end spans midnight (22:00-08:00)."""
    clock = moment.astimezone(zone).time()
    if start < end:
        return start <= clock < end
    if start > end:
        return clock >= start or clock < end
    return False


def quiet_hours_end(moment: datetime, *, end: time, zone: ZoneInfo) -> datetime:
    """The first end of the quiet hours after ``moment`` (the account's clock)."""
    local = moment.astimezone(zone)
    candidate = _aware(datetime.combine(local.date(), end), zone)
    if candidate <= local:
        candidate = _aware(datetime.combine(local.date() + timedelta(days=1), end), zone)
    return candidate


def spread_seconds(automation: Automation) -> float:
    if automation.delay_spread_seconds <= 0:
        return 0.0
    return rng.uniform(0, automation.delay_spread_seconds)


def out_of_quiet_hours(automation: Automation, moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment``, or when it is inside the automation's quiet hours their end plus a fresh
    part of the spread (so the messages held overnight do not all leave at 08:00:00)."""
    start, end = automation.quiet_hours_start, automation.quiet_hours_end
    if start is None or end is None or not in_quiet_hours(moment, start=start, end=end, zone=zone):
        return moment
    return quiet_hours_end(moment, end=end, zone=zone) + timedelta(
        seconds=spread_seconds(automation)
    )


def run_due_at(automation: Automation, *, triggered_at: datetime, zone: ZoneInfo) -> datetime:
    """When a run triggered at ``triggered_at`` is due: + delay + a random part of the spread,
    moved out of quiet hours."""
    due = triggered_at + timedelta(seconds=automation.delay_seconds + spread_seconds(automation))
    return out_of_quiet_hours(automation, due, zone)


def control_draw(automation: Automation) -> bool:
    """Whether this triggered fan is held out (``control_percent`` of them, at random)."""
    return automation.control_percent > 0 and rng.random() * 100 < automation.control_percent
