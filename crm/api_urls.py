from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from crm import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/", api.AccountListApi.as_view(), name="api_account_list"),
    path("fans/", api.FanListApi.as_view(), name="api_fan_list"),
    path("fans/<int:fan_id>/", api.FanDetailApi.as_view(), name="api_fan_detail"),
]
