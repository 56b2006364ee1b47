from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from campaigns import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/<int:account_id>/campaigns/", views.campaign_list, name="campaign_list"),
    path("accounts/<int:account_id>/campaigns/new/", views.campaign_new, name="campaign_new"),
    path(
        "accounts/<int:account_id>/campaigns/preflight/",
        views.campaign_preflight,
        name="campaign_preflight",
    ),
    path(
        "accounts/<int:account_id>/campaigns/<int:campaign_id>/",
        views.campaign_detail,
        name="campaign_detail",
    ),
    path(
        "accounts/<int:account_id>/campaigns/<int:campaign_id>/edit/",
        views.campaign_edit,
        name="campaign_edit",
    ),
    path(
        "accounts/<int:account_id>/campaigns/<int:campaign_id>/<slug:action>/",
        views.campaign_action,
        name="campaign_action",
    ),
    path(
        "accounts/<int:account_id>/segments/<int:segment_id>/delete/",
        views.segment_delete,
        name="segment_delete",
    ),
]
