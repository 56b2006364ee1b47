from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from automations import views

A = "accounts/<int:account_id>/automations/"

urlpatterns: list[URLPattern | URLResolver] = [
    path(A, views.automation_list, name="automation_list"),
    path(f"{A}new/", views.automation_new, name="automation_new"),
    path(f"{A}preview/", views.automation_preview, name="automation_preview"),
    path(f"{A}reach/", views.automation_reach, name="automation_reach"),
    path(f"{A}<int:automation_id>/", views.automation_edit, name="automation_edit"),
    path(f"{A}<int:automation_id>/toggle/", views.automation_toggle, name="automation_toggle"),
    path(f"{A}<int:automation_id>/delete/", views.automation_delete, name="automation_delete"),
    # The fan panel's fragment: crm's templates hx-get this path (no import across layers).
    path(f"{A}fans/<int:fan_id>/pending/", views.fan_pending, name="automation_fan_pending"),
    path(
        f"{A}fans/<int:fan_id>/runs/<int:run_id>/cancel/",
        views.fan_run_cancel,
        name="automation_fan_run_cancel",
    ),
]
