"""Date ranges in the account's own time zone, their previous period, and chart buckets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from django.utils import timezone

from crm.errors import ApplicationError
from crm.zones import zone_named

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
# A custom range may not be longer than this (a year and a bit: month charts stay readable).
MAX_DAYS = 400
INTERVALS = ("day", "week", "month")


def local_today(zone: tzinfo) -> date:
    return timezone.now().astimezone(zone).date()


@dataclass(frozen=True)
class Period:
    """Whole days ``first_day``..``last_day`` (inclusive) in ``zone_name``."""

    first_day: date
    last_day: date
    zone_name: str

    @property
    def zone(self) -> tzinfo:
        return zone_named(self.zone_name)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    @property
    def start(self) -> datetime:
        """The first instant of the first day, in the account's zone."""
        return datetime.combine(self.first_day, time.min, tzinfo=self.zone)

    @property
    def end(self) -> datetime:
        """The first instant after the last day (exclusive)."""
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=self.zone)

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        return Period(
            first_day=self.first_day - timedelta(days=self.days),
            last_day=self.first_day - timedelta(days=1),
            zone_name=self.zone_name,
        )

    def day_list(self) -> list[date]:
        return [self.first_day + timedelta(days=i) for i in range(self.days)]


def period_for(
    *,
    zone_name: str,
    days: int | None = None,
    first_day: date | None = None,
    last_day: date | None = None,
) -> Period:
    """The last ``days`` days up to today, or the custom range ``first_day``..``last_day``.

    ApplicationError ``invalid_range`` when the custom range is reversed or too long.
    """
    if first_day is not None and last_day is not None:
        if last_day < first_day:
            raise ApplicationError(
                "The range ends before it starts.",
                code="invalid_range",
                fields={"to": ["Must be on or after from."]},
            )
        if (last_day - first_day).days + 1 > MAX_DAYS:
            raise ApplicationError(
                f"A range can be at most {MAX_DAYS} days.",
                code="invalid_range",
                fields={"to": [f"At most {MAX_DAYS} days after from."]},
            )
        return Period(first_day=first_day, last_day=last_day, zone_name=zone_name)
    today = local_today(zone_named(zone_name))
    count = days if days in PRESETS else DEFAULT_DAYS
    return Period(first_day=today - timedelta(days=count - 1), last_day=today, zone_name=zone_name)


def bucket_start(day: date, interval: str) -> date:
    """The first day of the chart bucket ``day`` falls in (weeks start on Monday)."""
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def buckets(period: Period, interval: str) -> list[date]:
    """Every bucket's first day that the period touches, in order (the first may start
    before the period: a week or month cut by the range)."""
    seen: list[date] = []
    for day in period.day_list():
        start = bucket_start(day, interval)
        if not seen or seen[-1] != start:
            seen.append(start)
    return seen
