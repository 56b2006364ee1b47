"""Live inbox fragments: the HTML that one account event changes on every open inbox page.

Rendered once per event, from the same partials as the pages, and sent to the account's
Channels group beside the JSON payload. The fragments are htmx out-of-band swaps with stable
ids (``message-<id>``, ``conversation-<id>``), so the page needs no code of its own to apply
them. Nothing here is per user: every member watching the account gets the same HTML.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from crm import selectors
from crm.models import ConversationNote, Message
from crm.team_presence import RowPresence, account_rows, presence_changed_html

TEMPLATE = "crm/inbox.html"


def message_created_html(*, message: selectors.MessageDisplay) -> str:
    """A new message: added to its open thread (once, even if the page has it already) and
    its conversation moved to the top of every list sorted by newest activity."""
    return render_to_string(
        f"{TEMPLATE}#live-message-created",
        {
            "message": message,
            "conversation": message.conversation,
            "account_id": message.account_id,
            "reply_targets": message.conversation.reply_targets,
            "presence_rows": _row_presence(message.account_id, message.conversation.pk),
        },
    )


def conversation_changed_html(*, conversation_id: int) -> str | None:
    conversation = selectors.conversation_for_display(conversation_id=conversation_id)
    if conversation is None:
        return None
    return render_to_string(
        f"{TEMPLATE}#live-conversation-changed",
        {
            "conversation": conversation,
            "account_id": conversation.account_id,
            "reply_targets": conversation.reply_targets,
            "presence_rows": _row_presence(conversation.account_id, conversation.pk),
        },
    )


def _row_presence(account_id: int, conversation_id: int) -> dict[int, RowPresence]:
    # The row is rendered again: it keeps its presence marker (one Redis round trip).
    return account_rows(account_id=account_id, conversation_ids=[conversation_id])


def conversation_woke_html(*, conversation_id: int) -> str | None:
    """A conversation woke from snooze: back at the top of every list sorted by newest
    activity (where it was hidden), and changed in place elsewhere."""
    conversation = selectors.conversation_for_display(conversation_id=conversation_id)
    if conversation is None:
        return None
    return render_to_string(
        f"{TEMPLATE}#live-conversation-woke",
        {
            "conversation": conversation,
            "account_id": conversation.account_id,
            "reply_targets": conversation.reply_targets,
            "presence_rows": _row_presence(conversation.account_id, conversation.pk),
        },
    )


def message_status_html(*, account_id: int, payload: dict[str, Any]) -> str:
    # From the event alone, no query: status events come from the send workers, three a send.
    message = Message(
        id=payload["message_id"],
        account_id=account_id,
        conversation_id=payload["conversation_id"],
        direction=Message.Direction.OUT,
        status=payload["status"],
        last_error=payload.get("error", ""),
    )
    return render_to_string(
        f"{TEMPLATE}#live-message-status", {"message": message, "account_id": account_id}
    )


def fan_changed_html(*, fan_id: int) -> str | None:
    fan = selectors.fan_for_display(fan_id=fan_id)
    if fan is None:
        return None
    return render_to_string(
        f"{TEMPLATE}#live-fan-changed",
        {"fan": fan, "conversation": fan.conversation, "account_id": fan.account_id},
    )


def note_html(*, note: ConversationNote) -> str:
    """An internal note (``crm.notes``) added to every open copy of its thread."""
    return render_to_string(f"{TEMPLATE}#live-note-created", {"note": note})


def note_created_html(*, note_id: int) -> str | None:
    note = ConversationNote.objects.filter(pk=note_id).select_related("author").first()
    return note_html(note=note) if note is not None else None


def event_html(*, account_id: int, event: str, payload: dict[str, Any]) -> str | None:
    """The inbox HTML for an account event, or None when the inbox shows nothing for it."""
    if event == "message.received" or (event == "message.status" and payload.get("new")):
        message = selectors.message_for_display(message_id=payload["message_id"])
        return message_created_html(message=message) if message is not None else None
    if event == "message.status":
        return message_status_html(account_id=account_id, payload=payload)
    if event == "conversation.changed":
        return conversation_changed_html(conversation_id=payload["conversation_id"])
    if event == "conversation.woke":
        return conversation_woke_html(conversation_id=payload["conversation_id"])
    if event == "fan.changed":
        return fan_changed_html(fan_id=payload["fan_id"])
    if event == "presence.changed":
        return presence_changed_html(
            account_id=account_id, conversation_id=payload["conversation_id"]
        )
    if event == "note.created":
        return note_created_html(note_id=payload["note_id"])
    return None
