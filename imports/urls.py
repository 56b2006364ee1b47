"""Import pages, under a creator account's fans."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from imports import views

BASE = "accounts/<int:account_id>/fans/import/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(BASE, views.import_index, name="fan_import_index"),
    path(f"{BASE}<int:import_id>/", views.import_detail, name="fan_import_detail"),
    path(f"{BASE}<int:import_id>/map/", views.import_map, name="fan_import_map"),
    path(f"{BASE}<int:import_id>/preview/", views.import_preview, name="fan_import_preview"),
    path(
        f"{BASE}<int:import_id>/preview/counts/",
        views.import_preview_counts,
        name="fan_import_preview_counts",
    ),
    path(f"{BASE}<int:import_id>/start/", views.import_start, name="fan_import_start"),
    path(f"{BASE}<int:import_id>/requeue/", views.import_requeue, name="fan_import_requeue"),
    path(f"{BASE}<int:import_id>/rejected.csv", views.import_errors, name="fan_import_errors"),
]
