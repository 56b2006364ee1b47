"""Filters of the campaign pages: durations, cents per fan, shares."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``3 h 20 min``, ``45 s``; empty for None."""
    if seconds is None:
        return ""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def cents_exact(cents: float | int | None) -> str:
    """Dollars with cents, for per-fan figures that are fractions of a cent apart."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


@register.filter
def share(part: float | int, whole: float | int) -> str:
    if not whole:
        return "—"
    return f"{100 * part / whole:.1f} %"


@register.filter
def exclusion_label(key: str) -> str:
    """An exclusion's key as the pre-flight names it ("waiting_for_reply": "waiting for a
    reply")."""
    from campaigns.selectors import EXCLUSIONS

    return dict(EXCLUSIONS).get(key, key.replace("_", " ")).lower()
