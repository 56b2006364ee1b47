from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from analytics.periods import DEFAULT_DAYS, INTERVALS, PRESETS, Period, period_for
from crm.errors import ApplicationError

RANGE_CHOICES = [(str(d), f"Last {d} days") for d in PRESETS] + [("custom", "Custom")]
INTERVAL_CHOICES = [(i, i.title()) for i in INTERVALS]


class RangeForm(forms.Form):
    """The page's range and grouping, from the query string; anything invalid falls back to
    the last 30 days by day (with the errors shown beside the custom dates)."""

    range = forms.ChoiceField(choices=RANGE_CHOICES, required=False)
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    interval = forms.ChoiceField(choices=INTERVAL_CHOICES, required=False)

    def __init__(self, query: Mapping[str, Any] | None = None, *, zone_name: str = "UTC") -> None:
        # ``from`` and ``to`` are the URL's names (the API uses them too).
        data = None
        if query is not None:
            data = {
                "range": query.get("range", ""),
                "start": query.get("from", ""),
                "end": query.get("to", ""),
                "interval": query.get("interval", ""),
            }
        super().__init__(data)
        self.zone_name = zone_name

    def grouping(self) -> str:
        if self.is_valid() and self.cleaned_data["interval"]:
            return str(self.cleaned_data["interval"])
        return "day"

    def period(self) -> Period:
        if not self.is_valid():
            return period_for(zone_name=self.zone_name, days=DEFAULT_DAYS)
        data = self.cleaned_data
        if data["range"] == "custom" or (not data["range"] and data["start"] and data["end"]):
            if data["start"] and data["end"]:
                try:
                    return period_for(
                        zone_name=self.zone_name, first_day=data["start"], last_day=data["end"]
                    )
                except ApplicationError as exc:
                    self.add_error("end", exc.message)
            else:
                self.add_error("start", "Choose both dates.")
            return period_for(zone_name=self.zone_name, days=DEFAULT_DAYS)
        days = int(data["range"]) if data["range"] else DEFAULT_DAYS
        return period_for(zone_name=self.zone_name, days=days)

    def range_key(self, period: Period) -> str:
        if self.is_valid() and self.cleaned_data["range"] == "custom" and not self.errors:
            return "custom"
        return str(period.days) if period.days in PRESETS else "custom"


class ReassignForm(forms.Form):
    credited_to = forms.CharField(required=True)  # a user id, "none" or "rule"
    reason = forms.CharField(max_length=500, required=False)

    def target(self) -> tuple[int | None, bool]:
        """(user id or None, back to the rule?)"""
        value = self.cleaned_data["credited_to"]
        if value == "rule":
            return None, True
        if value == "none":
            return None, False
        try:
            return int(value), False
        except ValueError:
            raise forms.ValidationError("Choose a member.") from None
