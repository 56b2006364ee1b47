"""Websocket routes; the inbox issue adds its consumers here."""

from __future__ import annotations

from django.urls import path

from crm.consumers import AccountEventsConsumer, InboxEventsConsumer

websocket_urlpatterns = [
    path("ws/accounts/<int:account_id>/", AccountEventsConsumer.as_asgi()),
    path("ws/accounts/<int:account_id>/inbox/", InboxEventsConsumer.as_asgi()),
]
