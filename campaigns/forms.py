"""Input parsing for the campaign pages. The rules themselves live in ``campaigns.rules`` and
the services; this turns form fields into ``CampaignInput`` and a rules dict."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from campaigns.models import Campaign
from crm import media_send
from crm.forms import VaultItemIdsField
from crm.models import Fan

RULE_FIELDS = (
    "include_tags",
    "include_tags_mode",
    "exclude_tags",
    "subscription_states",
    "last_seen_within_days",
    "last_seen_not_within_days",
    "exclude_messaged_within_hours",
    "exclude_waiting",
    "exclude_bought_media",
    "exclude_received_media",
    "fan_ids",
)


def _cents(value: Decimal | None) -> int | None:
    return None if value is None else int(value * 100)


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    text = forms.CharField(
        strip=False,
        max_length=20_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="{name} and {username} are filled in per fan; {name|babe} sets the fallback.",
    )
    price = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=7, decimal_places=2, label="Price ($)"
    )
    # Media are picked from the vault (the picker's chips post vault_item_ids); the campaign
    # stores their platform ids. ``media_ids`` (hidden) keeps ids that are no vault item.
    vault_item_ids = VaultItemIdsField(required=False)
    media_ids = forms.CharField(
        required=False, max_length=5000, label="Media ids", widget=forms.HiddenInput
    )
    mode = forms.ChoiceField(choices=Campaign.Mode.choices, initial=Campaign.Mode.AUTO)
    drain_window_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=7 * 24 * 60,
        label="Auto: one by one if it drains within (minutes)",
    )
    control_percent = forms.IntegerField(
        required=False, min_value=0, max_value=50, initial=0, label="Control group (%)"
    )
    block_banned_words = forms.ChoiceField(
        required=False, choices=Campaign.BannedWords.choices, label="Banned words"
    )
    scheduled_at = forms.DateTimeField(
        required=False,
        label="Send at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
    )
    segment = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    save_segment_as = forms.CharField(required=False, max_length=100, label="Save audience as")

    # The audience's rules.
    include_tags = forms.CharField(required=False, max_length=2000, label="Tags")
    include_tags_mode = forms.ChoiceField(
        required=False, choices=[("any", "any of"), ("all", "all of")], initial="any"
    )
    exclude_tags = forms.CharField(required=False, max_length=2000, label="Not tagged")
    spend_min = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        label="Spent at least ($)",
    )
    spend_max = forms.DecimalField(
        required=False,
        min_value=Decimal(0),
        max_digits=12,
        decimal_places=2,
        label="Spent at most ($)",
    )
    subscription_states = forms.MultipleChoiceField(
        required=False,
        choices=Fan.SubscriptionState.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Subscription",
    )
    last_seen_within_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Seen within (days)"
    )
    last_seen_not_within_days = forms.IntegerField(
        required=False, min_value=1, max_value=3650, label="Not seen within (days)"
    )
    exclude_messaged_within_hours = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=24 * 365,
        label="Skip fans messaged in the last (hours)",
    )
    exclude_waiting = forms.BooleanField(
        required=False, initial=True, label="Skip fans waiting for a reply"
    )
    exclude_bought_media = forms.BooleanField(
        required=False, label="Skip fans who already bought this media"
    )
    exclude_received_media = forms.BooleanField(
        required=False, label="Skip fans who already received any of this media"
    )
    fan_ids = forms.CharField(
        required=False,
        max_length=200_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Only these fans (ids)",
    )

    def __init__(
        self, *args: Any, time_zone: str = "UTC", account_id: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone = ZoneInfo(time_zone)
        self.account_id = account_id
        self.chosen_items: list[Any] = []

    def clean_vault_item_ids(self) -> list[int]:
        """The picked items, each one of the account's and sendable now (one query)."""
        ids: list[int] = self.cleaned_data.get("vault_item_ids") or []
        if not ids or self.account_id is None:
            return ids
        items, problems = media_send.vault_items_sendable(account_id=self.account_id, item_ids=ids)
        self.chosen_items = items
        if problems:
            raise forms.ValidationError(media_send.vault_items_problems_message(items, problems))
        return ids

    def rules(self) -> dict[str, Any]:
        """The rules as ``segment_rules_parse`` takes them (it validates)."""
        data = self.cleaned_data
        rules: dict[str, Any] = {key: data.get(key) for key in RULE_FIELDS}
        rules["spend_min_cents"] = _cents(data.get("spend_min"))
        rules["spend_max_cents"] = _cents(data.get("spend_max"))
        return {key: value for key, value in rules.items() if value not in (None, "", [], False)}

    def price_cents(self) -> int:
        return _cents(self.cleaned_data.get("price")) or 0

    def media_id_list(self) -> tuple[str, ...]:
        """The platform ids to send: the picked items' in order, then kept raw ids."""
        picked = [item.platform_media_id for item in self.chosen_items]
        raw = self.cleaned_data.get("media_ids") or ""
        kept = [m.strip() for m in raw.split(",") if m.strip() and m.strip() not in picked]
        return (*picked, *kept)

    def scheduled_at_local(self) -> datetime | None:
        """The time typed, read in the account's time zone."""
        value: datetime | None = self.cleaned_data.get("scheduled_at")
        if value is None:
            return None
        return value.replace(tzinfo=None).replace(tzinfo=self.time_zone)

    @staticmethod
    def initial_from(campaign: Campaign, time_zone: str) -> dict[str, Any]:
        rules = dict(campaign.rules)
        item_ids, raw_ids = media_send.vault_items_for_platform_ids(
            account_id=campaign.account_id, platform_ids=campaign.media_ids
        )
        initial: dict[str, Any] = {
            "name": campaign.name,
            "text": campaign.text,
            "price": Decimal(campaign.price_cents) / 100 if campaign.price_cents else None,
            "vault_item_ids": item_ids,
            "media_ids": ", ".join(raw_ids),
            "mode": campaign.mode,
            "drain_window_minutes": campaign.drain_window_minutes,
            "control_percent": campaign.control_percent,
            "block_banned_words": campaign.block_banned_words,
            "segment": campaign.segment_id,
        }
        if campaign.scheduled_at:
            local = campaign.scheduled_at.astimezone(ZoneInfo(time_zone))
            initial["scheduled_at"] = local.strftime("%Y-%m-%dT%H:%M")
        initial.update(CampaignForm.rules_initial(rules))
        return initial

    @staticmethod
    def rules_initial(rules: dict[str, Any]) -> dict[str, Any]:
        initial: dict[str, Any] = {"exclude_waiting": False}
        for key in RULE_FIELDS:
            if key in rules:
                value = rules[key]
                if key in ("include_tags", "exclude_tags", "fan_ids"):
                    value = ", ".join(str(v) for v in value)
                initial[key] = value
        if rules.get("spend_min_cents") is not None:
            initial["spend_min"] = Decimal(rules["spend_min_cents"]) / 100
        if rules.get("spend_max_cents") is not None:
            initial["spend_max"] = Decimal(rules["spend_max_cents"]) / 100
        return initial
