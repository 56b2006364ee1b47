from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from analytics import views

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
]
