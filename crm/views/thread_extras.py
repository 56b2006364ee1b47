"""What the thread pane shows of a member's draft and of a snooze (crm.drafts, crm.snooze),
kept apart from ``crm.views.inbox`` so that module only calls in."""

from __future__ import annotations

from typing import Any

from crm import drafts, snooze, zones
from crm.forms import ComposerForm
from crm.models import Conversation
from crm.views.pages import AuthenticatedRequest


def composer_with_draft(
    request: AuthenticatedRequest, conversation: Conversation, *, after_message_id: int
) -> ComposerForm:
    """An empty composer holding the member's own draft, if they left one, and the newest
    message on screen for the collision guard (``crm.collision``)."""
    draft = drafts.draft_get(user=request.user, conversation=conversation)
    if draft is None:
        return ComposerForm(initial={"after_message_id": after_message_id})
    price = draft.price_cents / 100 if draft.price_cents else None
    return ComposerForm(
        initial={"text": draft.text, "price": price, "after_message_id": after_message_id}
    )


def snooze_context(conversation: Conversation, *, error: str = "") -> dict[str, Any]:
    return {
        "snooze": snooze.snooze_state(conversation),
        "snooze_presets": snooze.SNOOZE_PRESETS,
        "snooze_zone": zones.account_zone(conversation.account),
        "snooze_error": error,
    }
