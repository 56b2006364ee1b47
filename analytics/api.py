"""The KPI API: the page's figures as JSON (money in cents), scoped to the caller's accounts;
another account is a 404 ``account_not_found``."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import media_selectors, selectors, services
from analytics.forms import MEDIA_SORTS, MEDIA_VIEWS
from analytics.periods import Period, period_for
from analytics.reports import Report
from analytics.selectors import TIMESERIES_METRICS
from analytics.serializers import (
    KpisSerializer,
    MediaParamsSerializer,
    MediaStatsSerializer,
    RangeParamsSerializer,
    TimeseriesParamsSerializer,
    TimeseriesSerializer,
)
from crm.models import VaultMediaType
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


# --- Which content sells -------------------------------------------------------------------


def _media_period(account_tz: str, data: dict[str, Any]) -> Period | None:
    if "from" in data:
        return period_for(zone_name=account_tz, first_day=data["from"], last_day=data["to"])
    if data.get("range") == "all":
        return None
    return period_for(zone_name=account_tz, days=int(data.get("range") or 30))


class MediaStatsApi(APIView):
    @extend_schema(
        summary="Which content sells: an account's vault items with their sales figures",
        description="The media page's figures, counted from the messages and purchases when "
        "asked (never a roll-up): per vault item, times sent free, shown as a preview, "
        "offered as pay-per-view, bought, conversion, revenue (a message's revenue shared "
        "among its paid items) and revenue per offer, for messages sent in the range (days "
        "in the account's time zone); 50 items a page in the `sort` order. `view=prices` or "
        "`view=chatters` gives every PPV offer carrying a matching item by price or by "
        "sender instead (a chatter sees only their own offers).",
        parameters=[
            OpenApiParameter("account_id", int, OpenApiParameter.PATH),
            OpenApiParameter("range", str, enum=["7", "30", "90", "all"]),
            *DATE_PARAMS,
            OpenApiParameter("type", str, enum=[c for c, _ in VaultMediaType.choices]),
            OpenApiParameter("list", int, description="A vault list id."),
            OpenApiParameter("label", str, description="One of the account's labels."),
            OpenApiParameter("sort", str, enum=[*MEDIA_SORTS, *(f"-{s}" for s in MEDIA_SORTS)]),
            OpenApiParameter("view", str, enum=list(MEDIA_VIEWS)),
            OpenApiParameter("page", int, description="1-based page of items."),
        ],
        responses={200: MediaStatsSerializer, **ERRORS},
    )
    def get(self, request: Request, account_id: int) -> Response:
        params = MediaParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = dict(params.validated_data)
        membership = media_selectors.media_membership(user=request.user, account_id=account_id)
        account = membership.account
        period = _media_period(account.time_zone, data)
        sort = data["sort"]
        scope = media_selectors.MediaScope(
            period=period,
            media_type=data.get("type", ""),
            list_id=data.get("list"),
            label=data.get("label", "").strip(),
            sort=sort.lstrip("-"),
            descending=sort.startswith("-"),
        )
        body: dict[str, Any] = {
            "account": account.pk,
            "time_zone": account.time_zone,
            "period": _period(period) if period else None,
            "view": data["view"],
            "sort": sort,
            "page": 1,
            "pages": 1,
            "total": 0,
            "items": [],
            "groups": [],
        }
        if data["view"] == "items":
            page = media_selectors.media_items(
                membership=membership, scope=scope, page=data.get("page", 1)
            )
            body.update(page=page.page, pages=page.pages, total=page.total)
            body["items"] = [
                {
                    "id": r.item_id,
                    "media_type": r.media_type,
                    "created_at": r.platform_created_at,
                    "labels": r.labels,
                    "is_gone": r.is_gone,
                    "thumbnail_url": (
                        reverse("vault_item_thumb", args=[account.pk, r.item_id])
                        if r.has_thumb
                        else None
                    ),
                    "sent_free": r.figures.sent_free,
                    "previewed": r.figures.previewed,
                    **media_selectors.figures_dict(r.figures),
                }
                for r in page.rows
            ]
        else:
            by = "price" if data["view"] == "prices" else "chatter"
            breakdown = media_selectors.media_breakdown(membership=membership, scope=scope, by=by)
            body["groups"] = [
                {
                    "price_cents": g.key if by == "price" else None,
                    "user_id": g.key if by == "chatter" else None,
                    "username": (breakdown.names.get(g.key, ("", ""))[0] or None)
                    if by == "chatter" and g.key is not None
                    else None,
                    **media_selectors.figures_dict(g),
                }
                for g in breakdown.rows
            ]
        return Response(MediaStatsSerializer(body).data)
