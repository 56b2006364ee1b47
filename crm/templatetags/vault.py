"""Filters of the vault's cards (the library grid and the composer's picker)."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def media_duration(seconds: int | None) -> str:
    """A video's or audio's length as ``m:ss`` (``h:mm:ss`` from an hour); "" without one."""
    if not seconds:
        return ""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
