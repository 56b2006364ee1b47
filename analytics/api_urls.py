from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from analytics import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("kpis", api.KpisApi.as_view(), name="api_analytics_kpis"),
    path("timeseries", api.TimeseriesApi.as_view(), name="api_analytics_timeseries"),
    # --- which content sells ---
    path(
        "accounts/<int:account_id>/media/",
        api.MediaStatsApi.as_view(),
        name="api_analytics_media",
    ),
]
