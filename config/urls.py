from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("crm.urls")),
    path("api/crm/", include("crm.api_urls")),
    path("api/onlyfans/webhooks", include("onlyfans.webhook_urls")),
    path("api/onlyfans/", include("onlyfans.api_urls")),
    path("", include("onlyfans.ops_urls")),
]
