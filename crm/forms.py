"""Input parsing for the HTML pages; rules live in the services."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from crm.models import BannedWordsPolicy, Fan, GatewayScreening, Membership
from crm.selectors import FAN_SORTS, INBOX_SORTS, InboxFilters


class FanFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=150, label="Search")
    tag = forms.CharField(required=False, max_length=50)
    state = forms.ChoiceField(
        required=False,
        label="Subscription",
        choices=[("", "Any subscription"), *Fan.SubscriptionState.choices],
    )
    sort = forms.ChoiceField(required=False, choices=list(FAN_SORTS.items()))

    def filters(self) -> dict[str, str]:
        """The cleaned filters, or none at all when the query string is invalid."""
        if not self.is_valid():
            return {"query": "", "tag": "", "subscription_state": "", "sort": "spend"}
        data = self.cleaned_data
        return {
            "query": data["q"],
            "tag": data["tag"],
            "subscription_state": data["state"],
            "sort": data["sort"] or "spend",
        }


class FanUpdateForm(forms.Form):
    tags = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Comma-separated, e.g. whale, vip, europe.",
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6}))

    def tag_list(self) -> list[str]:
        return [tag for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class InvitationCreateForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.CHATTER)
    email = forms.CharField(required=False, max_length=254, label="Email (optional)")


class InvitationSignupForm(forms.Form):
    """A new account made through an invitation; crm.invitations checks the rules (username
    free, Django's password validators)."""

    username = forms.CharField(max_length=150)
    email = forms.CharField(required=False, max_length=254, label="Email (optional)")
    password1 = forms.CharField(label="Password", max_length=4096, strip=False)
    password2 = forms.CharField(label="Password again", max_length=4096, strip=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class AccountSwitchForm(forms.Form):
    account_id = forms.IntegerField(min_value=1)
    next = forms.CharField(required=False, max_length=2000)


class InboxFilterForm(forms.Form):
    """The conversation list's filters; they live in the URL's query string."""

    q = forms.CharField(required=False, max_length=150, label="Search")
    sort = forms.ChoiceField(required=False, choices=list(INBOX_SORTS.items()))
    unread = forms.BooleanField(required=False, label="Unread")
    waiting = forms.BooleanField(required=False, label="Waiting")
    mine = forms.BooleanField(required=False, label="Assigned to me")
    mentions = forms.BooleanField(required=False, label="Mentions")
    snoozed = forms.BooleanField(required=False, label="Snoozed")
    tag = forms.CharField(required=False, max_length=50)
    state = forms.ChoiceField(
        required=False,
        label="Subscription",
        choices=[("", "Any subscription"), *Fan.SubscriptionState.choices],
    )

    def filters(self) -> InboxFilters:
        """The cleaned filters, or the default list when the query string is invalid."""
        if not self.is_valid():
            return InboxFilters()
        data = self.cleaned_data
        return InboxFilters(
            query=data["q"].strip(),
            unread=data["unread"],
            waiting=data["waiting"],
            mine=data["mine"],
            mentions=data["mentions"],
            snoozed=data["snoozed"],
            tag=data["tag"].strip().lower(),
            subscription_state=data["state"],
            sort=data["sort"] or "recent",
        )


def _dollars_to_cents(value: Decimal | None) -> int:
    return int((value or Decimal(0)) * 100)


class VaultItemIdsField(forms.Field):
    """Vault item ids posted as repeated hidden inputs (the media picker's chips), in order:
    at most 50 (the pipeline's cap), each a positive number; duplicates dropped."""

    widget = forms.MultipleHiddenInput
    MAX = 50

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if len(values) > self.MAX:
            raise forms.ValidationError(f"At most {self.MAX} media files.")
        ids: list[int] = []
        for raw in values:
            text = str(raw).strip()[:20]
            if not text.isdigit() or int(text) < 1:
                raise forms.ValidationError("Pick media from the vault.")
            if int(text) not in ids:
                ids.append(int(text))
        return ids


class ComposerForm(forms.Form):
    """The thread's composer. Rules (length, price range, media for paid messages) are the
    send pipeline's own (``message_validate``); this only parses."""

    text = forms.CharField(
        required=False, strip=False, widget=forms.Textarea(attrs={"rows": 2}), max_length=20_000
    )
    price = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=7, decimal_places=2, label="Price ($)"
    )
    media_ids = forms.CharField(required=False, max_length=5000, label="Media ids")
    # The media picker (crm.media_send): chosen vault items, those that are free previews,
    # and "send anyway" after the resend guard asked.
    vault_item_ids = VaultItemIdsField(required=False)
    preview_item_ids = VaultItemIdsField(required=False)
    allow_resend = forms.BooleanField(required=False)
    # The collision guard (crm.collision): the newest message on screen; "Send anyway".
    after_message_id = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)
    force = forms.BooleanField(required=False)
    # An internal note instead of a message (crm.notes); "/note …" in the text does the same.
    note = forms.BooleanField(required=False, label="Internal note")
    confirm_banned_words = forms.BooleanField(required=False)
    confirm_repeated_text = forms.BooleanField(required=False)

    def price_cents(self) -> int:
        return _dollars_to_cents(self.cleaned_data.get("price"))

    def media_id_list(self) -> list[str]:
        return [m.strip() for m in self.cleaned_data.get("media_ids", "").split(",") if m.strip()]


class DraftForm(forms.Form):
    """The composer's text as the member types it (``crm.drafts`` checks the length)."""

    text = forms.CharField(required=False, strip=False, max_length=20_000)
    price = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=7, decimal_places=2, label="Price ($)"
    )
    # When the composer was rendered (``data-draft-since``), see ``crm.drafts.draft_save``.
    since = forms.DateTimeField(required=False)

    def price_cents(self) -> int:
        return _dollars_to_cents(self.cleaned_data.get("price"))


class SnoozeForm(forms.Form):
    """The thread's snooze menu: a preset, a time (the account's zone), or until the fan
    writes."""

    preset = forms.CharField(required=False, max_length=20)
    until = forms.CharField(required=False, max_length=40)
    until_reply = forms.BooleanField(required=False)


class SavedReplyForm(forms.Form):
    title = forms.CharField(max_length=100)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), strip=False)
    price = forms.DecimalField(
        required=False, min_value=Decimal(0), max_digits=7, decimal_places=2, label="Price ($)"
    )
    vault_item_ids = VaultItemIdsField(required=False)

    def price_cents(self) -> int:
        return _dollars_to_cents(self.cleaned_data.get("price"))


class TagForm(forms.Form):
    tag = forms.CharField(max_length=200)


class NotesForm(forms.Form):
    notes = forms.CharField(required=False, widget=forms.Textarea, strip=False, max_length=20_000)


class AssignForm(forms.Form):
    assignee = forms.IntegerField(required=False, min_value=1)


class ComposerSettingsForm(forms.Form):
    """An account's composer checks; the list is one word or phrase a line."""

    banned_words = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 12}), max_length=20_000
    )
    banned_words_policy = forms.ChoiceField(choices=BannedWordsPolicy.choices)
    gateway_banned_words = forms.ChoiceField(choices=GatewayScreening.choices, required=False)

    def banned_word_list(self) -> list[str]:
        return self.cleaned_data["banned_words"].splitlines()


# --- Shifts (crm/shifts.py) ------------------------------------------------------------------


class ShiftForm(forms.Form):
    """A shift as people enter it: a member, a local day and two wall-clock times (an end at
    or before the start is the next morning), once or every week from that day."""

    membership = forms.TypedChoiceField(label="Member", coerce=int, choices=())
    day = forms.DateField(label="Day", widget=forms.DateInput(attrs={"type": "date"}))
    start = forms.TimeField(label="From", widget=forms.TimeInput(attrs={"type": "time"}))
    end = forms.TimeField(
        label="To",
        widget=forms.TimeInput(attrs={"type": "time"}),
        help_text="An end before the start is the next day (22:00 to 06:00).",
    )
    weekly = forms.BooleanField(label="Every week", required=False)
    until = forms.DateField(
        label="Until (optional)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: object, members: list[Membership], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["membership"].choices = [  # type: ignore[attr-defined]
            (m.pk, f"{m.user.get_username()} ({m.get_role_display().lower()})") for m in members
        ]

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("start") is not None and data.get("start") == data.get("end"):
            self.add_error("end", "The shift must end after it starts.")
        until, day = data.get("until"), data.get("day")
        if until and day and until < day:  # type: ignore[operator]
            self.add_error("until", "Must be on or after the day.")
        return data


class ShiftDayForm(forms.Form):
    """One day of a weekly shift, moved to other wall-clock times."""

    start = forms.TimeField(label="From", widget=forms.TimeInput(attrs={"type": "time"}))
    end = forms.TimeField(label="To", widget=forms.TimeInput(attrs={"type": "time"}))


class ShiftSettingsForm(forms.Form):
    shift_only_access = forms.BooleanField(label="Shift-only access for chatters", required=False)
    shift_grace_minutes = forms.IntegerField(
        label="Grace before and after a shift (minutes)", min_value=0, max_value=240
    )


# --- vault ----------------------------------------------------------------------------------
from crm.errors import ApplicationError  # noqa: E402
from crm.vault import (  # noqa: E402
    LABELS_INPUT_MAX_LENGTH,
    labels_parse,
    price_parse_dollars,
)


class VaultItemForm(forms.Form):
    """Our labels (comma-separated) and suggested price (dollars) of one vault item."""

    labels = forms.CharField(
        required=False,
        max_length=LABELS_INPUT_MAX_LENGTH,
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "feet, custom, $25 tier"}),
    )
    price = forms.CharField(
        required=False,
        max_length=12,
        label="Suggested price ($)",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "placeholder": "25", "size": 6}),
    )

    def clean_labels(self) -> list[str]:
        try:
            return labels_parse(self.cleaned_data.get("labels") or "")
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc

    def clean_price(self) -> int | None:
        try:
            return price_parse_dollars(self.cleaned_data.get("price") or "")
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


# --- Assignment and first-reply targets (crm.assignment) --------------------------------------


class AssignmentSettingsForm(forms.Form):
    """An account's auto-assignment and first-reply targets; times in minutes, money in
    dollars, as people think of them (stored as seconds and cents)."""

    auto_assign = forms.BooleanField(required=False, label="Assign new conversations automatically")
    auto_assign_cap = forms.IntegerField(
        min_value=1, max_value=500, label="Most waiting conversations per chatter"
    )
    reply_target = forms.DecimalField(
        min_value=Decimal("0.5"),
        max_value=Decimal(1440),
        max_digits=6,
        decimal_places=1,
        label="First-reply target (minutes)",
    )
    vip_spend_threshold = forms.DecimalField(
        min_value=Decimal(0),
        max_digits=10,
        decimal_places=2,
        label="VIP fans: lifetime spend from ($)",
    )
    vip_reply_target = forms.DecimalField(
        min_value=Decimal("0.5"),
        max_value=Decimal(1440),
        max_digits=6,
        decimal_places=1,
        label="VIP first-reply target (minutes)",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        target, vip = data.get("reply_target"), data.get("vip_reply_target")
        if target is not None and vip is not None and vip > target:
            self.add_error(
                "vip_reply_target",
                "The VIP target is the shorter one: at most the first-reply target.",
            )
        return data

    def seconds(self, field: str) -> int:
        return round(self.cleaned_data[field] * 60)

    def cents(self, field: str) -> int:
        return _dollars_to_cents(self.cleaned_data[field])
