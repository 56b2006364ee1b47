from __future__ import annotations

from django.contrib import admin

from onlyfans.models import FanSync, WebhookEvent


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "event", "event_key", "account", "handled", "received_at"]
    list_filter = ["handled", "event"]
    search_fields = ["=event_key"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    readonly_fields = ["event_key", "received_at"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(FanSync)
class FanSyncAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "state", "phase", "trigger", "created_at", "finished_at"]
    list_filter = ["state", "trigger"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    ordering = ["-id"]
    show_full_result_count = False

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False  # runs start from the fans page, the schedule or a reconnect
