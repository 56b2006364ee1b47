"""``POST /api/messages/bulk`` (mounted at that path in config/urls.py)."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from campaigns import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("", api.BulkSendApi.as_view(), name="api_messages_bulk"),
]
