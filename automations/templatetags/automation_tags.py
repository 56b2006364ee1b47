"""Filters of the automation pages: what a trigger and a delay say in words."""

from __future__ import annotations

from django import template

from automations.models import Automation

register = template.Library()

_TRIGGER_WORDS: dict[str, str] = {
    Automation.Trigger.SUBSCRIBED: "A fan subscribes",
    Automation.Trigger.RENEWED: "A fan renews",
    Automation.Trigger.RETURNED_AFTER_EXPIRY: "A fan comes back after an expiry",
    Automation.Trigger.EXPIRING_SOON: "Subscription ends within {n} {unit}",
    Automation.Trigger.EXPIRED_DAYS_AGO: "Subscription ended {n} {unit} ago",
    Automation.Trigger.PPV_NOT_UNLOCKED: "PPV not unlocked within {n} {unit}",
    Automation.Trigger.NO_REPLY: "No reply to the fan for {n} {unit}",
}


@register.filter
def trigger_summary(automation: Automation) -> str:
    words = _TRIGGER_WORDS.get(automation.trigger, automation.trigger)
    return words.format(n=automation.trigger_value, unit=automation.trigger_unit)


@register.filter
def minutes(seconds: int | None) -> str:
    """``90`` → ``1 min``; ``5400`` → ``1 h 30 min`` (whole minutes)."""
    total = int(seconds or 0)
    if total < 60:
        return f"{total} s"
    hours, rest = divmod(total // 60, 60)
    parts = ([f"{hours} h"] if hours else []) + ([f"{rest} min"] if rest else [])
    return " ".join(parts) if parts else "0 min"
