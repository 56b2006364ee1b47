"""The KPI API: the page's figures as JSON (money in cents), scoped to the caller's accounts;
another account is a 404 ``account_not_found``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import selectors, services
from analytics.periods import Period, period_for
from analytics.reports import Report
from analytics.selectors import TIMESERIES_METRICS
from analytics.serializers import (
    KpisSerializer,
    RangeParamsSerializer,
    TimeseriesParamsSerializer,
    TimeseriesSerializer,
)
from crm.serializers import error_responses

ERRORS = error_responses({400: "validation_error, invalid_range", 404: "account_not_found"})
DATE_PARAMS = [
    OpenApiParameter(
        "from",
        str,
        description="First day, ISO date (inclusive, account's time zone). With `to`; "
        "both omitted: the last 30 days.",
    ),
    OpenApiParameter("to", str, description="Last day, ISO date (inclusive)."),
]


def _report(request: Request, params: dict[str, Any], interval: str) -> Report:
    membership = selectors.account_for_analytics(user=request.user, account_id=params["account"])
    account = membership.account
    period: Period = period_for(
        zone_name=account.time_zone,
        days=30,
        first_day=params.get("from"),
        last_day=params.get("to"),
    )
    report = selectors.report_compute(
        account=account, period=period, interval=interval, with_fans=False
    )
    services.rollups_refresh_request(freshness=report.freshness)
    return report


def _period(period: Period) -> dict[str, Any]:
    return {"first_day": period.first_day, "last_day": period.last_day, "days": period.days}


class KpisApi(APIView):
    @extend_schema(
        summary="An account's KPIs for a date range, with the previous period's",
        description="The same figures as the analytics page's cards. The previous period has "
        "the same length and ends the day before `from`.",
        parameters=[
            OpenApiParameter("account", int, required=True, description="Creator account id."),
            *DATE_PARAMS,
        ],
        responses={200: KpisSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = RangeParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        report = _report(request, dict(params.validated_data), "day")
        body = {
            "account": report.account.pk,
            "time_zone": report.period.zone_name,
            "period": _period(report.period),
            "previous_period": _period(report.previous),
            "computed_at": report.computed_at,
            "freshness": report.freshness,
            "kpis": [
                {
                    "key": k.key,
                    "label": k.label,
                    "unit": k.unit,
                    "value": k.value,
                    "previous": k.previous,
                    "change": k.change,
                }
                for k in report.kpis
            ],
        }
        return Response(KpisSerializer(body).data)


class TimeseriesApi(APIView):
    @extend_schema(
        summary="One metric of an account over time, by day, week or month",
        description="The same series as the analytics page's charts: "
        + ", ".join(f"`{m}`" for m in TIMESERIES_METRICS)
        + ". Revenue in cents; buckets are cut in the account's time zone.",
        parameters=[
            OpenApiParameter("account", int, required=True, description="Creator account id."),
            OpenApiParameter("metric", str, required=True, enum=list(TIMESERIES_METRICS)),
            OpenApiParameter("interval", str, enum=["day", "week", "month"]),
            *DATE_PARAMS,
        ],
        responses={200: TimeseriesSerializer, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        params = TimeseriesParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        report = _report(request, data, data["interval"])
        series_name, part = TIMESERIES_METRICS[data["metric"]]
        series = report.series[series_name]
        points = [
            {
                "start": p.start,
                "value": p.values[part] if part else p.total,
                "parts": dict(p.values) if series_name == "revenue" and not part else {},
            }
            for p in series.points
        ]
        body = {
            "account": report.account.pk,
            "metric": data["metric"],
            "unit": series.unit,
            "interval": data["interval"],
            "time_zone": report.period.zone_name,
            "period": _period(report.period),
            "computed_at": report.computed_at,
            "freshness": report.freshness,
            "points": points,
        }
        return Response(TimeseriesSerializer(body).data)
