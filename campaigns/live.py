"""Campaign messages on open inbox pages: the inbox's own live events, only when someone
watches.

A fan-out batch queues thousands of messages in one transaction. Each could be announced as
the inbox announces a message queued from its composer (``message.status`` with ``new``: the
bubble joins its open thread, the conversation moves up the list), but every such event costs
a query and a render on the process's single render thread (``crm.broadcasts``), where it
would also delay chatters' own live events. So a batch announces nothing when no browser
listens to the account (``crm.presence.account_watched``: one Redis call), and otherwise at
most ``LIVE_EVENTS_PER_BATCH`` of its messages, those of conversations a chatter is most
likely to have open (waiting for a reply or unread, then the most recent). The rest show when
their thread or list is next loaded, as after a reconnect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog
from django.db.models import Case, IntegerField, Q, Value, When

from crm.broadcasts import account_event_broadcast
from crm.models import Message
from crm.presence import account_watched

log = structlog.get_logger(__name__)

LIVE_EVENTS_PER_BATCH = 50


def campaign_messages_broadcast(
    *, account_id: int, campaign_id: int, fan_ids: Sequence[int]
) -> int:
    """Announce a fan-out batch's new messages to open inbox pages (after commit); how many
    events went."""
    if not fan_ids or not account_watched(account_id=account_id):
        return 0
    active = Case(
        When(Q(conversation__waiting_since__isnull=False) | Q(conversation__unread_count__gt=0),
             then=Value(0)),
        default=Value(1),
        output_field=IntegerField(),
    )  # fmt: skip
    rows = (
        Message.objects.filter(campaign_id=campaign_id, conversation__fan_id__in=list(fan_ids))
        .annotate(active=active)
        .order_by("active", "-id")
        .values_list("id", "conversation_id", "status", "attempts")[:LIVE_EVENTS_PER_BATCH]
    )
    sent = 0
    for message_id, conversation_id, status, attempts in rows:
        payload: dict[str, Any] = {
            "message_id": message_id,
            "conversation_id": conversation_id,
            "status": status,
            "attempts": attempts,
            "new": True,
        }
        account_event_broadcast(account_id=account_id, event="message.status", payload=payload)
        sent += 1
    log.info(
        "campaign.live_announced",
        account_id=account_id,
        campaign_id=campaign_id,
        events=sent,
        batch=len(fan_ids),
    )
    return sent
