"""Display filters for analytics: durations, KPI values by unit, changes."""

from __future__ import annotations

from django import template

from analytics.reports import Kpi
from crm.templatetags.inbox import dollars

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """``42 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``; an em dash when there is none."""
    if seconds is None:
        return "—"
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    minutes = s // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


@register.filter
def percent(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    return f"{ratio * 100:.1f} %"


@register.filter
def kpi_value(kpi: Kpi, which: str = "value") -> str:
    value = kpi.value if which == "value" else kpi.previous
    if value is None:
        return "—"
    if kpi.unit == "cents":
        return dollars(int(value))
    if kpi.unit == "seconds":
        return duration(float(value))
    if kpi.unit == "ratio":
        return percent(float(value))
    return f"{int(value):,}"


@register.filter
def change_text(kpi: Kpi) -> str:
    change = kpi.change
    if change is None:
        if kpi.previous is None:
            return "—"
        if kpi.previous == 0 and kpi.value:
            return "new"
        return "no change" if kpi.value == kpi.previous else "—"
    if kpi.unit == "ratio" and kpi.delta is not None:
        return f"{kpi.delta * 100:+.1f} pts"
    return f"{change * 100:+.1f} %"


@register.filter
def change_class(kpi: Kpi) -> str:
    """``up``/``down`` for the direction, ``good``/``bad`` for what it means (a slower response
    is worse)."""
    delta = kpi.delta
    if not delta:
        return "flat"
    better = delta < 0 if kpi.unit == "seconds" else delta > 0
    return f"{'up' if delta > 0 else 'down'} {'good' if better else 'bad'}"


@register.filter
def get_item(mapping: dict, key: str) -> object:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def signed_dollars(cents: int | None) -> str:
    """``+$1.20`` or ``\u2212$0.50`` (a minus sign)."""
    if cents is None:
        return "—"
    return f"+{dollars(cents)}" if cents >= 0 else f"\u2212{dollars(-cents)}"


@register.filter
def dollars_or_dash(cents: int | None) -> str:
    """``dollars`` of a figure that may not exist (revenue per offer without offers)."""
    return "—" if cents is None else dollars(cents)
