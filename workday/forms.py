"""Workday's query-string and settings forms; input is capped before it is parsed."""

from __future__ import annotations

from datetime import date, timedelta

from django import forms
from django.utils import timezone

from analytics.periods import MAX_DAYS
from workday.selectors import FLAGS, ReviewFilters

PRICE_CHOICES = [("", "Free and paid"), ("paid", "Paid (PPV)"), ("free", "Free")]
FLAG_CHOICES = [("", "Any"), *FLAGS.items(), ("unreviewed", "Not reviewed yet")]


class ReviewFilterForm(forms.Form):
    account = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    chatter = forms.IntegerField(required=False, min_value=1, max_value=2**62)
    price = forms.ChoiceField(required=False, choices=PRICE_CHOICES)
    flag = forms.ChoiceField(required=False, choices=FLAG_CHOICES)
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    cursor = forms.CharField(required=False, max_length=40)

    def clean(self) -> dict:
        data = super().clean() or {}
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            self.add_error("end", "The range ends before it starts.")
        return data

    def filters(self) -> ReviewFilters:
        """The cleaned filters; the unfiltered feed when the query string is invalid."""
        if not self.is_valid():
            return ReviewFilters()
        data = self.cleaned_data
        return ReviewFilters(
            account_id=data["account"],
            chatter_id=data["chatter"],
            price=data["price"] or "",
            first_day=data["start"],
            last_day=data["end"],
            flag=data["flag"] or "",
        )

    def page_cursor(self) -> str:
        return (self.cleaned_data.get("cursor") or "") if self.is_valid() else ""


class ReviewMarkForm(forms.Form):
    verdict = forms.ChoiceField(choices=[("good", "Good"), ("needs_work", "Needs work")])
    comment = forms.CharField(required=False, max_length=1000)


class PayrollRangeForm(forms.Form):
    """``start`` and ``end`` (inclusive local days); this month so far by default."""

    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end:
            if end < start:
                self.add_error("end", "The period ends before it starts.")
            elif (end - start).days + 1 > MAX_DAYS:
                self.add_error("end", f"A period can be at most {MAX_DAYS} days.")
        return data

    def days(self) -> tuple[date, date]:
        today = timezone.now().date()
        first, last = today.replace(day=1), today
        if self.is_valid():
            first = self.cleaned_data["start"] or first
            last = self.cleaned_data["end"] or max(first, last)
            if self.errors:
                first, last = today.replace(day=1), today
        if last < first or (last - first) > timedelta(days=MAX_DAYS - 1):
            first, last = today.replace(day=1), today
        return first, last


class PayRuleForm(forms.Form):
    hourly_rate = forms.DecimalField(
        min_value=0, max_value=1000, decimal_places=2, label="Hourly rate ($)"
    )
    commission_percent = forms.DecimalField(
        min_value=0, max_value=100, decimal_places=2, label="Commission (%)"
    )


class ReviewSettingsForm(forms.Form):
    min_ppv_price = forms.DecimalField(
        min_value=0, max_value=200, decimal_places=2, label="Minimum PPV price ($)"
    )
    long_wait_minutes = forms.IntegerField(
        required=False, min_value=1, max_value=7 * 24 * 60, label="Long wait (minutes)"
    )
