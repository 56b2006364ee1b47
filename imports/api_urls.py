"""The import API for scripts: ``/api/onlyfans/import/...`` (the seed's route)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from imports import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("csv", api.ImportCreateApi.as_view(), name="api_fan_import_create"),
    path("<int:import_id>", api.ImportDetailApi.as_view(), name="api_fan_import"),
    path("<int:import_id>/errors", api.ImportErrorsApi.as_view(), name="api_fan_import_errors"),
]
