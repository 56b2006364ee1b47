from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import URLPattern, URLResolver, path

from crm.views import (
    assignment_settings,
    composer_settings,
    drafts_snooze,
    inbox,
    invitations,
    media,
    pages,
)
from crm.views import shifts as shift_views
from crm.views import vault as vault_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", pages.home, name="home"),
    path("settings/", pages.settings_page, name="settings"),
    path("accounts/switch/", pages.account_switch, name="account_switch"),
    path("accounts/<int:account_id>/fans/", pages.fan_list, name="fan_list"),
    path("accounts/<int:account_id>/fans/<int:fan_id>/", pages.fan_detail, name="fan_detail"),
    path("accounts/<int:account_id>/fans/<int:fan_id>/chat/", pages.fan_chat, name="fan_chat"),
    path("accounts/<int:account_id>/members/", pages.member_list, name="member_list"),
    path(
        "accounts/<int:account_id>/invitations/",
        invitations.invitation_create,
        name="invitation_create",
    ),
    path(
        "accounts/<int:account_id>/invitations/<int:invitation_id>/revoke/",
        invitations.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invite/<str:token>/", invitations.invitation_accept, name="invitation_accept"),
    path("inbox/", inbox.inbox_current, name="inbox_current"),
    path("accounts/<int:account_id>/inbox/", inbox.inbox, name="inbox"),
    path(
        "accounts/<int:account_id>/inbox/saved-replies/",
        inbox.saved_reply_picker,
        name="saved_reply_picker",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/",
        inbox.inbox,
        name="inbox_thread",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/messages/",
        inbox.thread_messages,
        name="inbox_messages",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/messages/<int:message_id>/retry/",
        inbox.message_retry,
        name="inbox_message_retry",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/composer-check/",
        inbox.composer_check,
        name="inbox_composer_check",
    ),
    path(
        "accounts/<int:account_id>/composer-checks/",
        composer_settings.composer_settings,
        name="composer_settings",
    ),
    path(
        "accounts/<int:account_id>/assignment/",
        assignment_settings.assignment_settings,
        name="assignment_settings",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/read/",
        inbox.conversation_read,
        name="inbox_read",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/claim/",
        inbox.conversation_claim,
        name="inbox_claim",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/draft/",
        drafts_snooze.conversation_draft,
        name="inbox_draft",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/snooze/",
        drafts_snooze.conversation_snooze,
        name="inbox_snooze",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/unsnooze/",
        drafts_snooze.conversation_unsnooze,
        name="inbox_unsnooze",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/assign/",
        inbox.conversation_assign,
        name="inbox_assign",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/fan/tags/",
        inbox.fan_tag_add,
        name="inbox_fan_tag_add",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/fan/tags/remove/",
        inbox.fan_tag_remove,
        name="inbox_fan_tag_remove",
    ),
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/fan/notes/",
        inbox.fan_notes,
        name="inbox_fan_notes",
    ),
    path(
        "accounts/<int:account_id>/saved-replies/", inbox.saved_reply_list, name="saved_reply_list"
    ),
    path(
        "accounts/<int:account_id>/saved-replies/<int:reply_id>/",
        inbox.saved_reply_edit,
        name="saved_reply_edit",
    ),
    path(
        "accounts/<int:account_id>/saved-replies/<int:reply_id>/delete/",
        inbox.saved_reply_delete,
        name="saved_reply_delete",
    ),
    path(
        "accounts/<int:account_id>/members/<int:membership_id>/role/",
        pages.member_update,
        name="member_update",
    ),
    path(
        "accounts/<int:account_id>/members/<int:membership_id>/delete/",
        pages.member_delete,
        name="member_delete",
    ),
    # --- the vault ---
    path("accounts/<int:account_id>/vault/", vault_views.vault_library, name="vault_library"),
    path(
        "accounts/<int:account_id>/vault/<int:item_id>/",
        vault_views.vault_item_edit,
        name="vault_item_edit",
    ),
    path(
        "accounts/<int:account_id>/vault/<int:item_id>/thumb",
        vault_views.vault_item_thumb,
        name="vault_item_thumb",
    ),
    # --- media in the inbox (crm/views/media.py) ---
    path(
        "accounts/<int:account_id>/inbox/<int:conversation_id>/media-picker/",
        media.media_picker,
        name="inbox_media_picker",
    ),
    path("accounts/<int:account_id>/media-picker/", media.media_picker, name="media_picker"),
    path(
        "accounts/<int:account_id>/fans/<int:fan_id>/media/",
        media.fan_media_history,
        name="fan_media_history",
    ),
]

# --- Shifts and the clock (crm/views/shifts.py) ---
urlpatterns += [
    path("accounts/<int:account_id>/shifts/", shift_views.shift_week, name="shift_week"),
    path("accounts/<int:account_id>/shifts/new/", shift_views.shift_new, name="shift_new"),
    path(
        "accounts/<int:account_id>/shifts/settings/",
        shift_views.shift_settings,
        name="shift_settings",
    ),
    path(
        "accounts/<int:account_id>/shifts/<int:shift_id>/",
        shift_views.shift_edit,
        name="shift_edit",
    ),
    path(
        "accounts/<int:account_id>/shifts/<int:shift_id>/delete/",
        shift_views.shift_delete,
        name="shift_delete",
    ),
    path(
        "accounts/<int:account_id>/shifts/weekly/<int:template_id>/",
        shift_views.shift_template_edit,
        name="shift_template_edit",
    ),
    path(
        "accounts/<int:account_id>/shifts/weekly/<int:template_id>/delete/",
        shift_views.shift_template_delete,
        name="shift_template_delete",
    ),
    path(
        "accounts/<int:account_id>/shifts/weekly/<int:template_id>/days/<str:day>/",
        shift_views.shift_template_day,
        name="shift_template_day",
    ),
    path("shifts/mine/", shift_views.member_week, name="member_week"),
    path("accounts/<int:account_id>/clock/", shift_views.clock, name="clock"),
    path("accounts/<int:account_id>/clock/in/", shift_views.clock_in, name="clock_in"),
    path("accounts/<int:account_id>/clock/out/", shift_views.clock_out, name="clock_out"),
]
