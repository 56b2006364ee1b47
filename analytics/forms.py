from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms

from analytics.periods import DEFAULT_DAYS, INTERVALS, PRESETS, Period, period_for
from crm.errors import ApplicationError
from crm.models import VAULT_LABEL_MAX_LENGTH, VaultMediaType

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


# --- Which content sells (the media page and its API) -------------------------------------

MEDIA_RANGE_CHOICES = [*RANGE_CHOICES, ("all", "All time")]
MEDIA_SORTS = (
    "revenue",
    "revenue_per_offer",
    "conversion",
    "bought",
    "offered",
    "previewed",
    "sent_free",
    "created",
)
MEDIA_VIEWS = ("items", "prices", "chatters")
MEDIA_PAGE_MAX = 10_000


class MediaForm(forms.Form):
    """The media page's range (as the analytics page's, plus all time), item filters, sort
    (``-revenue``: highest first; ``revenue``: lowest first) and page. Anything invalid falls
    back to its default, with the errors shown."""

    range = forms.ChoiceField(choices=MEDIA_RANGE_CHOICES, required=False)
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    type = forms.ChoiceField(choices=[("", "Any type"), *VaultMediaType.choices], required=False)
    list = forms.IntegerField(required=False, min_value=1)
    label = forms.CharField(required=False, max_length=VAULT_LABEL_MAX_LENGTH)
    sort = forms.ChoiceField(
        choices=[(s, s) for s in MEDIA_SORTS] + [(f"-{s}", s) for s in MEDIA_SORTS],
        required=False,
    )
    view = forms.ChoiceField(choices=[(v, v) for v in MEDIA_VIEWS], required=False)
    page = forms.IntegerField(required=False, min_value=1, max_value=MEDIA_PAGE_MAX)

    def __init__(self, query: Mapping[str, Any] | None = None, *, zone_name: str = "UTC") -> None:
        data = None
        if query is not None:
            # Capped before parsing: nothing here is longer than a date or a label.
            data = {
                name: str(query.get(key, ""))[:100]
                for name, key in (
                    ("range", "range"),
                    ("start", "from"),
                    ("end", "to"),
                    ("type", "type"),
                    ("list", "list"),
                    ("label", "label"),
                    ("sort", "sort"),
                    ("view", "view"),
                    ("page", "page"),
                )
            }
        super().__init__(data)
        self.zone_name = zone_name

    def _value(self, name: str) -> Any:
        """The field's cleaned value; None when it is missing or invalid (so the default)."""
        self.is_valid()
        return self.cleaned_data.get(name)

    def period(self) -> Period | None:
        """The range; None for all time. Presets and custom dates as the analytics page."""
        if self._value("range") == "all":
            return None
        data = self.data or {}
        self.range_form = RangeForm(
            {
                "range": data.get("range", ""),
                "from": data.get("start", ""),
                "to": data.get("end", ""),
            },
            zone_name=self.zone_name,
        )
        return self.range_form.period()

    def range_key(self, period: Period | None) -> str:
        if period is None:
            return "all"
        if self._value("range") == "custom" or period.days not in PRESETS:
            return "custom"
        return str(period.days)

    def sort_order(self) -> tuple[str, bool]:
        """(sort key, highest first?); default: revenue, highest first."""
        value = self._value("sort") or "-revenue"
        return value.lstrip("-"), value.startswith("-")

    def view_name(self) -> str:
        return self._value("view") or "items"

    def page_number(self) -> int:
        return self._value("page") or 1

    def item_filters(self) -> dict[str, Any]:
        return {
            "media_type": self._value("type") or "",
            "list_id": self._value("list"),
            "label": (self._value("label") or "").strip(),
        }
