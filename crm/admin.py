"""Admin for support staff. Big tables never count their rows and use raw-id widgets."""

from __future__ import annotations

from django.contrib import admin

from crm.models import (
    ApiToken,
    Conversation,
    CreatorAccount,
    Fan,
    Invitation,
    Membership,
    Message,
    Purchase,
    SavedReply,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(CreatorAccount)
class CreatorAccountAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "platform_account_id",
        "connection_state",
        "send_rate_per_minute",
        "send_min_interval_ms",
        "created_at",
    ]
    list_filter = ["connection_state"]
    search_fields = ["display_name", "=platform_account_id"]
    readonly_fields = ["platform_account_id", "created_at", "updated_at"]
    ordering = ["display_name", "id"]
    inlines = [MembershipInline]

    def get_readonly_fields(self, request, obj=None):  # type: ignore[no-untyped-def]
        # The platform id is set once, when the account is connected.
        if obj is None:
            return ["created_at", "updated_at"]
        return self.readonly_fields


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "account", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "account__display_name", "=account__platform_account_id"]
    list_select_related = ["user", "account"]
    raw_id_fields = ["user", "account"]
    ordering = ["account_id", "user_id"]


@admin.register(Fan)
class FanAdmin(admin.ModelAdmin):
    list_display = [
        "username",
        "display_name",
        "account",
        "platform_fan_id",
        "subscription_state",
        "lifetime_spend_cents",
        "last_seen_at",
    ]
    list_filter = ["subscription_state", "account"]
    search_fields = ["=platform_fan_id", "username", "email"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    readonly_fields = ["platform_fan_id", "created_at", "updated_at"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "fan", "account", "last_message_at", "unread_count", "assigned_to"]
    list_filter = ["account"]
    search_fields = ["=fan__platform_fan_id", "fan__username"]
    list_select_related = ["fan", "account", "assigned_to"]
    raw_id_fields = ["account", "fan", "assigned_to"]
    readonly_fields = ["created_at"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "account",
        "conversation_id",
        "direction",
        "status",
        "sender_kind",
        "price_cents",
        "attempts",
        "sent_at",
        "created_at",
    ]
    list_filter = ["status", "direction", "sender_kind"]
    search_fields = ["=platform_message_id", "=idempotency_key", "=conversation__id"]
    list_select_related = ["account"]
    raw_id_fields = ["account", "conversation", "sent_by"]
    readonly_fields = ["platform_message_id", "idempotency_key", "created_at", "updated_at"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "amount_cents", "fan", "account", "purchased_at"]
    list_filter = ["kind"]
    search_fields = ["=platform_event_id", "=fan__platform_fan_id"]
    list_select_related = ["fan", "account"]
    raw_id_fields = ["account", "fan", "message"]
    readonly_fields = ["platform_event_id", "created_at"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(SavedReply)
class SavedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "account", "price_cents", "updated_at"]
    list_filter = ["account"]
    search_fields = ["title"]
    list_select_related = ["account"]
    raw_id_fields = ["account", "created_by"]
    ordering = ["account_id", "title"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made on the settings page or by create_api_token; here they can be seen and
    revoked (set "revoked at"). The key itself is never stored."""

    list_display = ["name", "user", "key_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["name", "key_prefix", "user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["user", "key_hash", "key_prefix", "created_at", "last_used_at"]
    ordering = ["-id"]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    """Invitations are made on the members page; here they can be seen and revoked (set
    "revoked at"). The token itself is never stored, so a link cannot be read back."""

    list_display = [
        "id",
        "account",
        "role",
        "email",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["role"]
    search_fields = ["=email", "account__display_name", "=account__platform_account_id"]
    list_select_related = ["account", "created_by"]
    raw_id_fields = ["account", "created_by", "accepted_by"]
    readonly_fields = [
        "account",
        "role",
        "email",
        "token_hash",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
    ]
    ordering = ["-id"]
    show_full_result_count = False

    def has_add_permission(self, request: object) -> bool:
        return False


# --- the vault ----------------------------------------------------------------------------
from crm.models import FanMediaEvent, MessageMedia, VaultItem, VaultList, VaultSync  # noqa: E402


@admin.register(VaultItem)
class VaultItemAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "account",
        "platform_media_id",
        "media_type",
        "is_ready",
        "gone_at",
        "suggested_price_cents",
        "synced_at",
    ]
    list_filter = ["media_type", "is_ready"]
    search_fields = ["=platform_media_id", "=account__platform_account_id"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    # The platform's fields are the sync's; staff may correct our own (labels, price).
    readonly_fields = [
        "account",
        "platform_media_id",
        "media_type",
        "duration_seconds",
        "platform_created_at",
        "is_ready",
        "has_error",
        "has_custom_preview",
        "likes_count",
        "tips_cents",
        "gone_at",
        "thumb_name",
        "thumb_fetched_at",
        "synced_at",
    ]
    exclude = ["lists"]
    ordering = ["-id"]
    show_full_result_count = False

    def has_add_permission(self, request: object) -> bool:
        return False  # items come from the platform


@admin.register(VaultList)
class VaultListAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "platform_list_id", "name", "list_type", "gone_at"]
    search_fields = ["=platform_list_id", "name"]
    list_select_related = ["account"]
    raw_id_fields = ["account"]
    readonly_fields = ["account", "platform_list_id", "synced_at", "gone_at"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(MessageMedia)
class MessageMediaAdmin(admin.ModelAdmin):
    list_display = ["id", "message", "platform_media_id", "vault_item", "is_preview", "position"]
    search_fields = ["=platform_media_id"]
    raw_id_fields = ["account", "message", "vault_item"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(FanMediaEvent)
class FanMediaEventAdmin(admin.ModelAdmin):
    list_display = ["id", "fan", "platform_media_id", "kind", "price_cents", "at", "source"]
    list_filter = ["kind", "source"]
    search_fields = ["=platform_media_id"]
    list_select_related = ["fan"]
    raw_id_fields = ["account", "fan", "vault_item", "message", "sent_by"]
    ordering = ["-id"]
    show_full_result_count = False


@admin.register(VaultSync)
class VaultSyncAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "state", "phase", "trigger", "created_at", "finished_at"]
    list_filter = ["state", "trigger"]
    list_select_related = ["account"]
    raw_id_fields = ["account", "requested_by"]
    ordering = ["-id"]
    show_full_result_count = False

    def has_add_permission(self, request: object) -> bool:
        return False  # runs start from the vault page, the schedule or a connect
