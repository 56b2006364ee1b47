"""The one place a stored time-zone name becomes a zone: snoozes, shifts, analytics periods and
automations all read an account's local time through it."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from crm.models import CreatorAccount

UTC_ZONE = ZoneInfo("UTC")


def zone_named(name: str) -> ZoneInfo:
    """The zone called ``name``; UTC when the stored name is empty or not a known zone."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


def account_zone(account: CreatorAccount) -> ZoneInfo:
    """The account's time zone (UTC when its stored name is not a known zone)."""
    return zone_named(account.time_zone)
