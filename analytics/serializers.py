from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.forms import MEDIA_PAGE_MAX, MEDIA_SORTS, MEDIA_VIEWS
from analytics.periods import INTERVALS, MAX_DAYS
from analytics.rollups import ROLLUPS_CURRENT, ROLLUPS_MISSING, ROLLUPS_STALE
from analytics.selectors import TIMESERIES_METRICS
from crm.models import VAULT_LABEL_MAX_LENGTH, VaultMediaType


class RangeParamsSerializer(serializers.Serializer):
    account = serializers.IntegerField(min_value=1, help_text="The creator account's id.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ``from`` is a Python keyword, so these two are added here rather than declared.
        self.fields["from"] = serializers.DateField(
            required=False,
            help_text="First day (ISO date, inclusive, in the account's time zone); with "
            "`to`. Both omitted: the last 30 days up to today.",
        )
        self.fields["to"] = serializers.DateField(
            required=False,
            help_text=f"Last day (inclusive); at most {MAX_DAYS} days after `from`.",
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("from" in attrs) != ("to" in attrs):
            raise serializers.ValidationError({"to": ["Give both from and to, or neither."]})
        return attrs


class TimeseriesParamsSerializer(RangeParamsSerializer):
    metric = serializers.ChoiceField(choices=list(TIMESERIES_METRICS))
    interval = serializers.ChoiceField(choices=list(INTERVALS), required=False, default="day")


# Units whose figures are whole numbers: a count, or money in cents (never a float in JSON).
WHOLE_UNITS = frozenset({"count", "cents"})


@extend_schema_field(
    {
        "type": "number",
        "nullable": True,
        "description": "An integer for the units count and cents; a number for seconds and ratio.",
    }
)
class KpiNumberField(serializers.Field):
    """A KPI's figure as its unit has it: an integer for counts and cents, a float otherwise
    (DRF's FloatField made every cents amount a float, ``2121980.0``)."""

    def to_representation(self, value: Any) -> Any:
        return value

    def get_attribute(self, instance: Any) -> Any:
        value = super().get_attribute(instance)
        if value is None:
            return None
        if instance["unit"] in WHOLE_UNITS:
            return round(value)
        return float(value)


class KpiSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    unit = serializers.ChoiceField(
        choices=["count", "cents", "seconds", "ratio"],
        help_text="cents: money in cents (an integer); seconds: a duration; ratio: 0..1.",
    )
    value = KpiNumberField(allow_null=True)
    previous = KpiNumberField(allow_null=True, help_text="The previous period's value.")
    change = serializers.FloatField(
        allow_null=True,
        help_text="(value - previous) / previous; null when the previous value is 0.",
    )


def freshness_field() -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=[ROLLUPS_CURRENT, ROLLUPS_MISSING, ROLLUPS_STALE],
        help_text="current: the per-day roll-ups, refreshed within minutes; missing: counted "
        "from every row because the roll-ups are being built; stale: the roll-ups as of "
        "computed_at, their refresh behind (one has been requested).",
    )


class PeriodSerializer(serializers.Serializer):
    start = serializers.DateField(source="first_day")
    end = serializers.DateField(source="last_day")
    days = serializers.IntegerField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("start")
        fields["to"] = fields.pop("end")
        return fields


class KpisSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    time_zone = serializers.CharField()
    period = PeriodSerializer()
    previous_period = PeriodSerializer()
    computed_at = serializers.DateTimeField(
        help_text="When the figures were computed (the roll-ups' last refresh)."
    )
    freshness = freshness_field()
    kpis = KpiSerializer(many=True)


class PointSerializer(serializers.Serializer):
    start = serializers.DateField(help_text="The bucket's first day (weeks start on Monday).")
    value = serializers.IntegerField()
    parts = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="For revenue: cents per kind (subscription, tip, ppv); empty otherwise.",
    )


class TimeseriesSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    metric = serializers.CharField()
    unit = serializers.CharField()
    interval = serializers.CharField()
    time_zone = serializers.CharField()
    period = PeriodSerializer()
    computed_at = serializers.DateTimeField()
    freshness = freshness_field()
    points = PointSerializer(many=True)


# --- Which content sells (GET /api/analytics/accounts/{id}/media/) -------------------------


class MediaParamsSerializer(serializers.Serializer):
    range = serializers.ChoiceField(
        choices=["7", "30", "90", "all"],
        required=False,
        help_text="The last 7, 30 or 90 days, or all time; ignored with `from` and `to`. "
        "Default: 30.",
    )
    type = serializers.ChoiceField(
        choices=[c for c, _ in VaultMediaType.choices], required=False, help_text="Item type."
    )
    list = serializers.IntegerField(min_value=1, required=False, help_text="A vault list id.")
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=VAULT_LABEL_MAX_LENGTH, required=False, help_text="One of our labels."
    )
    sort = serializers.ChoiceField(
        choices=[*MEDIA_SORTS, *(f"-{s}" for s in MEDIA_SORTS)],
        required=False,
        default="-revenue",
        help_text="A column; `-` first for highest first. Ties: newest item first.",
    )
    view = serializers.ChoiceField(
        choices=[*MEDIA_VIEWS],
        required=False,
        default="items",
        help_text="items: per vault item (paged); prices, chatters: every PPV offer by price "
        "or by sender (a chatter sees only their own).",
    )
    page = serializers.IntegerField(min_value=1, max_value=MEDIA_PAGE_MAX, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["from"] = serializers.DateField(
            required=False, help_text="First day (ISO date, account's time zone); with `to`."
        )
        self.fields["to"] = serializers.DateField(
            required=False, help_text=f"Last day (inclusive); at most {MAX_DAYS} days."
        )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("from" in attrs) != ("to" in attrs):
            raise serializers.ValidationError({"to": ["Give both from and to, or neither."]})
        return attrs


class MediaFiguresSerializer(serializers.Serializer):
    offered = serializers.IntegerField(help_text="Times offered as pay-per-view.")
    bought = serializers.IntegerField(help_text="Offers unlocked (whenever).")
    conversion = serializers.FloatField(allow_null=True, help_text="bought / offered (0..1).")
    revenue_cents = serializers.IntegerField(
        help_text="What fans paid for the offers (a message's revenue shared among its paid "
        "items for an item; whole for a price or a chatter)."
    )
    revenue_per_offer_cents = serializers.IntegerField(allow_null=True)


class MediaItemSerializer(MediaFiguresSerializer):
    id = serializers.IntegerField(help_text="The vault item's id.")
    media_type = serializers.CharField()
    created_at = serializers.DateTimeField(help_text="When it was added to the vault.")
    labels = serializers.ListField(child=serializers.CharField())
    is_gone = serializers.BooleanField()
    thumbnail_url = serializers.CharField(allow_null=True)
    sent_free = serializers.IntegerField(help_text="Times sent in a free message.")
    previewed = serializers.IntegerField(
        help_text="Times shown as a free preview of a PPV (not an offer)."
    )


class MediaGroupSerializer(MediaFiguresSerializer):
    price_cents = serializers.IntegerField(allow_null=True, help_text="view=prices: the price.")
    user_id = serializers.IntegerField(allow_null=True, help_text="view=chatters: the sender.")
    username = serializers.CharField(allow_null=True)


class MediaStatsSerializer(serializers.Serializer):
    account = serializers.IntegerField()
    time_zone = serializers.CharField()
    period = PeriodSerializer(allow_null=True, help_text="Null: all time.")
    view = serializers.CharField()
    sort = serializers.CharField()
    page = serializers.IntegerField()
    pages = serializers.IntegerField()
    total = serializers.IntegerField(help_text="Items matching the filters (view=items).")
    items = MediaItemSerializer(many=True)
    groups = MediaGroupSerializer(many=True)
