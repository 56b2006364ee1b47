from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from crm import api, api_vault

urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/", api.AccountListApi.as_view(), name="api_account_list"),
    path("fans/", api.FanListApi.as_view(), name="api_fan_list"),
    path("fans/<int:fan_id>/", api.FanDetailApi.as_view(), name="api_fan_detail"),
    path("conversations/", api.ConversationListApi.as_view(), name="api_conversation_list"),
    path(
        "conversations/<int:conversation_id>/messages/",
        api.ConversationMessagesApi.as_view(),
        name="api_conversation_messages",
    ),
    path(
        "conversations/<int:conversation_id>/notes",
        api.ConversationNotesApi.as_view(),
        name="api_conversation_notes",
    ),
    path(
        "conversations/<int:conversation_id>/mentions/clear",
        api.ConversationMentionsClearApi.as_view(),
        name="api_conversation_mentions_clear",
    ),
    path(
        "accounts/<int:account_id>/composer-settings",
        api.AccountComposerSettingsApi.as_view(),
        name="api_account_composer_settings",
    ),
    path(
        "conversations/<int:conversation_id>/read",
        api.ConversationReadApi.as_view(),
        name="api_conversation_read",
    ),
    path(
        "conversations/<int:conversation_id>/draft",
        api.ConversationDraftApi.as_view(),
        name="api_conversation_draft",
    ),
    path(
        "conversations/<int:conversation_id>/snooze",
        api.ConversationSnoozeApi.as_view(),
        name="api_conversation_snooze",
    ),
    path(
        "conversations/<int:conversation_id>/unsnooze",
        api.ConversationUnsnoozeApi.as_view(),
        name="api_conversation_unsnooze",
    ),
    # --- the vault (issue 18) ---
    path(
        "accounts/<int:account_id>/vault/",
        api_vault.VaultItemListApi.as_view(),
        name="api_vault_list",
    ),
    path(
        "accounts/<int:account_id>/vault/<int:item_id>/",
        api_vault.VaultItemDetailApi.as_view(),
        name="api_vault_detail",
    ),
]
