"""Live events to every browser watching a creator account (Channels groups over Redis)."""

from __future__ import annotations

from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = structlog.get_logger(__name__)


def account_group_name(account_id: int) -> str:
    return f"account.{account_id}"


def account_event_broadcast(*, account_id: int, event: str, payload: dict[str, Any]) -> None:
    """Send ``event`` to the account's group. Call it from ``transaction.on_commit``.

    A broadcast is a courtesy to live pages, never a source of truth: when Redis is away the
    event is dropped and logged, and the page catches up on its next load.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(
            account_group_name(account_id),
            {"type": "account.event", "event": event, "payload": payload},
        )
    except Exception:
        log.warning("broadcast.failed", account_id=account_id, event_name=event, exc_info=True)
