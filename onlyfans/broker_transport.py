"""kombu's SQS transport, with a receive that fails softly.

kombu turns a ReceiveMessage answered by a 5xx or a timeout into an empty list, and then
reads that list as the answer's dict: the AttributeError stops the whole worker
("Unrecoverable error"). SQS answers 500 now and then, and moto under load does too (its queues
are not thread-safe), so here a failed receive counts as an empty one and the next poll
follows as usual.
"""

from __future__ import annotations

from typing import Any

import structlog
from kombu.transport import SQS

log = structlog.get_logger(__name__)


class Channel(SQS.Channel):
    def _on_messages_ready(self, queue: str, qname: str, messages: Any) -> int:
        if not isinstance(messages, dict):
            log.warning("broker.receive_failed", queue=qname)
            return 0
        count: int = super()._on_messages_ready(queue, qname, messages)  # type: ignore[misc]
        return count


class Transport(SQS.Transport):
    Channel = Channel
