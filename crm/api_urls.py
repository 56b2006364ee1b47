from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from crm import api, api_vault, shift_api

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
    # --- the vault ---
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

# --- Shifts, the clock and worked time (crm/shift_api.py) ---
urlpatterns += [
    path(
        "accounts/<int:account_id>/shifts",
        shift_api.AccountShiftsApi.as_view(),
        name="api_account_shifts",
    ),
    path(
        "accounts/<int:account_id>/shifts/<int:shift_id>",
        shift_api.AccountShiftDetailApi.as_view(),
        name="api_account_shift_detail",
    ),
    path(
        "accounts/<int:account_id>/weekly-shifts",
        shift_api.AccountWeeklyShiftsApi.as_view(),
        name="api_account_weekly_shifts",
    ),
    path(
        "accounts/<int:account_id>/weekly-shifts/<int:weekly_shift_id>",
        shift_api.AccountWeeklyShiftDetailApi.as_view(),
        name="api_account_weekly_shift_detail",
    ),
    path(
        "accounts/<int:account_id>/weekly-shifts/<int:weekly_shift_id>/days/<str:day>",
        shift_api.AccountWeeklyShiftDayApi.as_view(),
        name="api_account_weekly_shift_day",
    ),
    path("shifts/mine", shift_api.MyShiftsApi.as_view(), name="api_shifts_mine"),
    path("accounts/<int:account_id>/clock", shift_api.ClockApi.as_view(), name="api_clock"),
    path("accounts/<int:account_id>/clock-in", shift_api.ClockInApi.as_view(), name="api_clock_in"),
    path(
        "accounts/<int:account_id>/clock-out",
        shift_api.ClockOutApi.as_view(),
        name="api_clock_out",
    ),
    path(
        "accounts/<int:account_id>/worked-time",
        shift_api.WorkedTimeApi.as_view(),
        name="api_worked_time",
    ),
]
