from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from onlyfans.ops import SchemaView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("crm.urls")),
    path("", include("imports.urls")),
    path("", include("campaigns.urls")),
    path("", include("analytics.urls")),
    path("", include("automations.urls")),
    path("", include("workday.urls")),
    path("", include("onlyfans.urls")),
    # Built once per process: the URL is public (onlyfans/ops.py).
    path("api/schema/", SchemaView.as_view(), name="api_schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
    path("api/crm/", include("crm.api_urls")),
    path("api/campaigns/", include("campaigns.api_urls")),
    path("api/messages/bulk", include("campaigns.bulk_urls")),
    path("api/analytics/", include("analytics.api_urls")),
    path("api/automations/", include("automations.api_urls")),
    path("api/workday/", include("workday.api_urls")),
    path("api/onlyfans/webhooks", include("onlyfans.webhook_urls")),
    path("api/onlyfans/import/", include("imports.api_urls")),
    path("api/onlyfans/", include("onlyfans.api_urls")),
    path("", include("onlyfans.ops_urls")),
]
