"""Admin for support staff: automations and their runs, read-only (the services write them;
staff can turn a runaway automation off, which cancels its pending runs)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from automations.models import Automation, AutomationRun
from automations.services import automation_turn_off


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Automation)
class AutomationAdmin(_ReadOnly):
    list_display = ["name", "account", "trigger", "trigger_value", "enabled", "updated_at"]
    list_filter = ["trigger", "enabled"]
    search_fields = ["name", "=account__platform_account_id"]
    list_select_related = ["account"]
    ordering = ["account_id", "name", "id"]
    actions = ["turn_off"]

    @admin.action(description="Turn off (cancels their pending runs)")
    def turn_off(self, request: HttpRequest, queryset: QuerySet[Automation]) -> None:
        for automation_id in queryset.filter(enabled=True).values_list("pk", flat=True):
            automation_turn_off(automation_id=automation_id)


@admin.register(AutomationRun)
class AutomationRunAdmin(_ReadOnly):
    list_display = [
        "id",
        "automation",
        "fan_id",
        "state",
        "reason",
        "is_control",
        "triggered_at",
        "due_at",
        "message_id",
    ]
    list_filter = ["state", "reason", "is_control"]
    search_fields = ["=fan__platform_fan_id", "=event_key"]
    list_select_related = ["automation"]
    raw_id_fields = ["automation", "account", "fan", "message", "source_message", "cancelled_by"]
    ordering = ["-id"]
    show_full_result_count = False
