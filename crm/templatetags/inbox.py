"""Small display filters for the inbox: short relative times, money, initials."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils import timezone

register = template.Library()


@register.filter
def short_since(moment: datetime | None) -> str:
    """``now``, ``5m``, ``3h``, ``2d``, ``6w``: how long ago, in the space a list row has."""
    if moment is None:
        return ""
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return "now"
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "now"


@register.filter
def dollars(cents: int | None) -> str:
    """``1234`` -> ``$12.34``; whole amounts without cents (``$12``)."""
    cents = int(cents or 0)
    whole, rest = divmod(cents, 100)
    return f"${whole:,}" if not rest else f"${whole:,}.{rest:02d}"


@register.filter
def initials(fan: object) -> str:
    name = (getattr(fan, "display_name", "") or getattr(fan, "username", "") or "?").strip()
    parts = [p for p in name.replace("_", " ").replace(".", " ").split() if p]
    letters = "".join(p[0] for p in parts[:2]) if parts else "?"
    return letters.upper()
