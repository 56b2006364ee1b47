"""The import API for scripts: ``/api/onlyfans/import/...`` (the seed's route)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver

urlpatterns: list[URLPattern | URLResolver] = []
