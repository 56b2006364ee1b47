from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, path

from crm import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("settings/", views.settings_page, name="settings"),
    path("accounts/switch/", views.account_switch, name="account_switch"),
    path("accounts/<int:account_id>/fans/", views.fan_list, name="fan_list"),
    path("accounts/<int:account_id>/fans/<int:fan_id>/", views.fan_detail, name="fan_detail"),
    path("accounts/<int:account_id>/members/", views.member_list, name="member_list"),
    path(
        "accounts/<int:account_id>/members/<int:membership_id>/role/",
        views.member_update,
        name="member_update",
    ),
    path(
        "accounts/<int:account_id>/members/<int:membership_id>/delete/",
        views.member_delete,
        name="member_delete",
    ),
]
