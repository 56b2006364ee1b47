from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from onlyfans import ops

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", ops.healthz, name="healthz"),
    path("readyz", ops.readyz, name="readyz"),
    path("metrics", ops.metrics, name="metrics"),
    path(
        "api/monitoring/onlyfans",
        ops.OnlyFansMonitoringView.as_view(),
        name="monitoring_onlyfans",
    ),
]
