"""Input parsing for the automation editor: form fields into ``AutomationInput`` (the
engine's services validate it again, so the API and the page refuse the same things).

Every field is capped here before anything else reads it: text lengths, the trigger's number,
delays, spend, the control share, tags.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from automations.models import Automation
from automations.services import DELAY_MAX_SECONDS, TRIGGER_VALUE_MAX, AutomationInput
from crm import media_send
from crm.forms import VaultItemIdsField
from crm.models import Fan

DELAY_MAX_MINUTES = DELAY_MAX_SECONDS // 60
SPEND_MAX_DOLLARS = Decimal(1_000_000)
MEDIA_IDS_MAX_LENGTH = 2000
# The largest number any trigger takes (minutes of a no-reply nudge); the service checks the
# trigger's own bound.
TRIGGER_VALUE_CAP = max(TRIGGER_VALUE_MAX.values())


def _cents(value: Decimal | None) -> int | None:
    return None if value is None else int(value * 100)


def _tags(raw: str) -> list[str]:
    return [t.strip() for t in raw.split(",") if t.strip()]


class AutomationForm(forms.Form):
    """Pass ``account_id`` so the picked media are checked against the account's vault."""

    name = forms.CharField(max_length=200)
    trigger = forms.ChoiceField(choices=Automation.Trigger.choices)
    trigger_value = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=TRIGGER_VALUE_CAP,
        label="N",
        help_text="Hours, days or minutes, as the trigger says.",
    )
    text = forms.CharField(
        strip=False,
        max_length=settings.MESSAGE_TEXT_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="{name} and {username} are filled in per fan; {name|babe} sets the fallback.",
    )
    price = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_value=Decimal(200),
        max_digits=5,
        decimal_places=2,
        label="Price ($)",
    )
    # Media are picked from the vault (the picker's chips post vault_item_ids); ``media_ids``
    # (hidden) keeps raw platform ids that are no vault item (scripts, older automations).
    vault_item_ids = VaultItemIdsField(required=False)
    media_ids = forms.CharField(
        required=False, max_length=MEDIA_IDS_MAX_LENGTH, label="Media ids", widget=forms.HiddenInput
    )
    delay_minutes = forms.IntegerField(
        min_value=0, max_value=DELAY_MAX_MINUTES, initial=0, label="Delay (minutes)"
    )
    delay_spread_minutes = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=DELAY_MAX_MINUTES,
        initial=0,
        label="Plus at random up to (minutes)",
    )
    # Filters (the campaign segment rules an automation uses).
    include_tags = forms.CharField(required=False, max_length=2000, label="Tagged (any of)")
    exclude_tags = forms.CharField(required=False, max_length=2000, label="Not tagged")
    spend_min = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_value=SPEND_MAX_DOLLARS,
        max_digits=9,
        decimal_places=2,
        label="Spent at least ($)",
    )
    spend_max = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_value=SPEND_MAX_DOLLARS,
        max_digits=9,
        decimal_places=2,
        label="Spent at most ($)",
    )
    subscription_states = forms.MultipleChoiceField(
        required=False,
        choices=Fan.SubscriptionState.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Subscription",
    )
    exclude_messaged_within_hours = forms.IntegerField(
        required=False, min_value=1, max_value=24 * 365, label="Not messaged in the last (hours)"
    )
    exclude_waiting = forms.BooleanField(
        required=False, initial=True, label="Skip fans waiting for a chatter's reply"
    )
    quiet_hours_start = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    quiet_hours_end = forms.TimeField(
        required=False, widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M")
    )
    control_percent = forms.IntegerField(
        required=False, min_value=0, max_value=50, initial=0, label="Control group (%)"
    )
    block_banned_words = forms.ChoiceField(
        required=False, choices=Automation.BannedWords.choices, label="Banned words"
    )
    enabled = forms.BooleanField(required=False, label="On")

    def __init__(self, *args: Any, account_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.account_id = account_id

    def clean_vault_item_ids(self) -> list[int]:
        """The picked items, each one of the account's and sendable now (one query)."""
        ids: list[int] = self.cleaned_data.get("vault_item_ids") or []
        if not ids or self.account_id is None:
            return ids
        items, problems = media_send.vault_items_sendable(account_id=self.account_id, item_ids=ids)
        if problems:
            raise forms.ValidationError(media_send.vault_items_problems_message(items, problems))
        return ids

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        price = data.get("price")
        if price and price < 3:
            self.add_error("price", "A paid message costs between $3 and $200 (0 = free).")
        has_media = bool(self.media_id_list() or data.get("vault_item_ids"))
        if price and not has_media and "vault_item_ids" not in self.errors:
            self.add_error(
                "vault_item_ids", "A paid message needs at least one media file: add media."
            )
        start, end = data.get("quiet_hours_start"), data.get("quiet_hours_end")
        if (start is None) != (end is None):
            self.add_error(
                "quiet_hours_end" if end is None else "quiet_hours_start",
                "Set both ends of the quiet hours, or neither.",
            )
        spend_min, spend_max = data.get("spend_min"), data.get("spend_max")
        if spend_min is not None and spend_max is not None and spend_min > spend_max:
            self.add_error("spend_max", "Must not be below the minimum.")
        return data

    def rules(self) -> dict[str, Any]:
        data = self.cleaned_data
        rules: dict[str, Any] = {
            "include_tags": _tags(data.get("include_tags") or ""),
            "exclude_tags": _tags(data.get("exclude_tags") or ""),
            "spend_min_cents": _cents(data.get("spend_min")),
            "spend_max_cents": _cents(data.get("spend_max")),
            "subscription_states": list(data.get("subscription_states") or []),
            "exclude_messaged_within_hours": data.get("exclude_messaged_within_hours"),
            "exclude_waiting": bool(data.get("exclude_waiting")),
        }
        return {k: v for k, v in rules.items() if v not in (None, "", [], False)}

    def media_id_list(self) -> tuple[str, ...]:
        raw = self.cleaned_data.get("media_ids") or ""
        return tuple(m.strip() for m in raw.split(",") if m.strip())

    def input(self) -> AutomationInput:
        """What the engine's services take (call after ``is_valid``)."""
        data = self.cleaned_data
        trigger = data["trigger"]
        value = data.get("trigger_value") or 0
        if trigger in Automation.EVENT_TRIGGERS:
            value = 0  # the field is hidden for them: a leftover number means nothing
        return AutomationInput(
            name=data["name"],
            trigger=trigger,
            trigger_value=value,
            text=data["text"],
            price_cents=_cents(data.get("price")) or 0,
            media_ids=self.media_id_list(),
            vault_item_ids=tuple(data.get("vault_item_ids") or ()),
            delay_seconds=(data.get("delay_minutes") or 0) * 60,
            delay_spread_seconds=(data.get("delay_spread_minutes") or 0) * 60,
            rules=self.rules(),
            quiet_hours_start=data.get("quiet_hours_start"),
            quiet_hours_end=data.get("quiet_hours_end"),
            control_percent=data.get("control_percent") or 0,
            block_banned_words=data.get("block_banned_words") or "",
        )

    @staticmethod
    def initial_from(automation: Automation) -> dict[str, Any]:
        rules = dict(automation.rules or {})

        def dollars(cents: int | None) -> Decimal | None:
            return None if cents is None else Decimal(cents) / 100

        # Raw ids of older automations that are vault items come back as the picker's chips.
        found, raw_ids = media_send.vault_items_for_platform_ids(
            account_id=automation.account_id, platform_ids=automation.media_ids
        )
        item_ids = list(dict.fromkeys([*automation.vault_item_ids, *found]))
        return {
            "name": automation.name,
            "trigger": automation.trigger,
            "trigger_value": automation.trigger_value or None,
            "text": automation.text,
            "price": dollars(automation.price_cents) if automation.price_cents else None,
            "vault_item_ids": item_ids,
            "media_ids": ", ".join(raw_ids),
            "delay_minutes": automation.delay_seconds // 60,
            "delay_spread_minutes": automation.delay_spread_seconds // 60,
            "include_tags": ", ".join(rules.get("include_tags") or []),
            "exclude_tags": ", ".join(rules.get("exclude_tags") or []),
            "spend_min": dollars(rules.get("spend_min_cents")),
            "spend_max": dollars(rules.get("spend_max_cents")),
            "subscription_states": rules.get("subscription_states") or [],
            "exclude_messaged_within_hours": rules.get("exclude_messaged_within_hours"),
            "exclude_waiting": bool(rules.get("exclude_waiting")),
            "quiet_hours_start": _hhmm(automation.quiet_hours_start),
            "quiet_hours_end": _hhmm(automation.quiet_hours_end),
            "control_percent": automation.control_percent,
            "block_banned_words": automation.block_banned_words,
            "enabled": automation.enabled,
        }


def _hhmm(value: time | None) -> str:
    return value.strftime("%H:%M") if value else ""


# The service's field names for the form's, where they differ (its errors land by the input).
FORM_FIELD_OF = {
    "price_cents": "price",
    "delay_seconds": "delay_minutes",
    "delay_spread_seconds": "delay_spread_minutes",
    "spend_min_cents": "spend_min",
    "spend_max_cents": "spend_max",
}
