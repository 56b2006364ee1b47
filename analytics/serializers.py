from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.periods import INTERVALS, MAX_DAYS
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


class KpiSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    unit = serializers.ChoiceField(
        choices=["count", "cents", "seconds", "ratio"],
        help_text="cents: money in cents; seconds: a duration; ratio: 0..1.",
    )
    value = serializers.FloatField(allow_null=True)
    previous = serializers.FloatField(allow_null=True, help_text="The previous period's value.")
    change = serializers.FloatField(
        allow_null=True,
        help_text="(value - previous) / previous; null when the previous value is 0.",
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
    points = PointSerializer(many=True)
