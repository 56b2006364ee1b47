"""Input parsing for the HTML pages; rules live in the services."""

from __future__ import annotations

from django import forms

from crm.models import Fan, Membership
from crm.selectors import FAN_SORTS


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


class MembershipCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.CHATTER)


class MembershipRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class AccountSwitchForm(forms.Form):
    account_id = forms.IntegerField(min_value=1)
    next = forms.CharField(required=False, max_length=2000)
