from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from automations import api

urlpatterns: list[URLPattern | URLResolver] = [
    path("", api.AutomationListApi.as_view(), name="api_automation_list"),
    path("<int:automation_id>", api.AutomationDetailApi.as_view(), name="api_automation_detail"),
    path(
        "<int:automation_id>/enable",
        api.AutomationEnableApi.as_view(),
        name="api_automation_enable",
    ),
    path(
        "<int:automation_id>/disable",
        api.AutomationDisableApi.as_view(),
        name="api_automation_disable",
    ),
    path(
        "<int:automation_id>/figures",
        api.AutomationFiguresApi.as_view(),
        name="api_automation_figures",
    ),
    path(
        "fans/<int:fan_id>/pending",
        api.FanPendingRunsApi.as_view(),
        name="api_automation_fan_pending",
    ),
    path("runs/<int:run_id>/cancel", api.RunCancelApi.as_view(), name="api_automation_run_cancel"),
]
