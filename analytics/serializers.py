from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.periods import INTERVALS, MAX_DAYS
from analytics.rollups import ROLLUPS_CURRENT, ROLLUPS_MISSING, ROLLUPS_STALE
from analytics.selectors import TIMESERIES_METRICS


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
