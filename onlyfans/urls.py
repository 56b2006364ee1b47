"""Pages of the onlyfans app, under a creator account."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from onlyfans import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/<int:account_id>/fans/sync/", views.fan_sync, name="fan_sync"),
    path("accounts/<int:account_id>/vault/sync/", views.vault_sync, name="vault_sync"),
]
