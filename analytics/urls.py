from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from analytics import media_views, views

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/<int:account_id>/analytics/", views.analytics_page, name="analytics"),
    path(
        "accounts/<int:account_id>/analytics/export/<slug:table>.csv",
        views.analytics_export,
        name="analytics_export",
    ),
    path(
        "accounts/<int:account_id>/analytics/purchases/<int:purchase_id>/credit/",
        views.purchase_reassign,
        name="analytics_reassign",
    ),
    # --- which content sells ---
    path(
        "accounts/<int:account_id>/analytics/media/",
        media_views.media_page,
        name="analytics_media",
    ),
    path(
        "accounts/<int:account_id>/analytics/media/top/",
        media_views.media_top,
        name="analytics_media_top",
    ),
    path(
        "accounts/<int:account_id>/analytics/media/export.csv",
        media_views.media_export,
        name="analytics_media_export",
    ),
    path(
        "accounts/<int:account_id>/analytics/media/<int:item_id>/",
        media_views.media_item_page,
        name="analytics_media_item",
    ),
]
