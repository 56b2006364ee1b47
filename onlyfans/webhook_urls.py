from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from onlyfans import webhooks

urlpatterns: list[URLPattern | URLResolver] = [
    path("", webhooks.webhook_receive, name="onlyfans_webhook"),
]
