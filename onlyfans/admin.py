from __future__ import annotations

from django.contrib import admin

from onlyfans.models import WebhookEvent


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
