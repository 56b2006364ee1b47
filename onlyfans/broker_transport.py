"""kombu's SQS transport, with a receive that fails softly and batched publishing.

- kombu turns a ReceiveMessage answered by a 5xx or a timeout into an empty list, and then
  reads that list as the answer's dict: the AttributeError stops the whole worker
  ("Unrecoverable error"). SQS answers 500 now and then, and moto under load does too (its
  queues are not thread-safe), so here a failed receive counts as an empty one and the next
  poll follows as usual.
- kombu's ``Producer.batch()`` asks the channel for a publish batch (``create_publish_batch``);
  the stock SQS channel has none, so every task was one SendMessage. Here a batch collects the
  SendMessage calls a dispatch pass makes and sends them as SendMessageBatch, ten at a time:
  one request instead of ten, for this process and for the broker.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import structlog

# kombu-stubs predate kombu 5.7's publish batches and the SQS channel's helpers.
from kombu.exceptions import BatchPublishError  # type: ignore[attr-defined]
from kombu.transport import SQS
from kombu.utils.json import dumps

log = structlog.get_logger(__name__)

SQS_BATCH_MAX = 10  # SendMessageBatch takes at most ten entries


class SQSPublishBatch:
    """SendMessage calls of one ``Producer.batch()``, sent as SendMessageBatch on flush."""

    def __init__(self, channel: Channel, max_size: int) -> None:
        self.channel = channel
        self.max_size = max_size
        self._pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._count = 0
        self._closed = False
        self._aborted = False

    def publish(self, message: dict[str, Any], **kwargs: Any) -> None:
        if self._closed or self._aborted:
            raise RuntimeError("SQS publish batch is closed")
        self.channel.basic_publish(message, _publish_batch=self, **kwargs)
        if self._count >= self.max_size:
            self.flush()

    def add(self, queue: str, entry: dict[str, Any]) -> None:
        entry["Id"] = str(self._count)
        self._pending[queue].append(entry)
        self._count += 1

    def flush(self) -> None:
        pending, self._pending, self._count = self._pending, defaultdict(list), 0
        for queue, entries in pending.items():
            url = self.channel._new_queue(queue)  # type: ignore[func-returns-value]
            client = self.channel.sqs(queue=self.channel.canonical_queue_name(queue))
            for start in range(0, len(entries), SQS_BATCH_MAX):
                chunk = entries[start : start + SQS_BATCH_MAX]
                try:
                    reply = client.send_message_batch(QueueUrl=url, Entries=chunk)
                except Exception as exc:
                    raise BatchPublishError("SQS publish batch failed") from exc
                if reply.get("Failed"):
                    codes = sorted({f.get("Code", "") for f in reply["Failed"]})
                    raise BatchPublishError(f"SQS refused {len(reply['Failed'])}: {codes}")

    def discard(self) -> None:
        self._aborted = True
        self._pending, self._count = defaultdict(list), 0

    def close(self) -> None:
        self._closed = True


class Channel(SQS.Channel):
    def _on_messages_ready(self, queue: str, qname: str, messages: Any) -> int:
        if not isinstance(messages, dict):
            log.warning("broker.receive_failed", queue=qname)
            return 0
        count: int = super()._on_messages_ready(queue, qname, messages)  # type: ignore[misc]
        return count

    def create_publish_batch(self, max_size: int) -> SQSPublishBatch:
        return SQSPublishBatch(self, max_size)

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        batch: SQSPublishBatch | None = kwargs.pop("_publish_batch", None)
        properties = message.get("properties", {})
        plain = (
            batch is not None
            and not queue.endswith(".fifo")
            and "message_attributes" not in properties
            and "MessageGroupId" not in properties
            and not message.get("redelivered")
        )
        if not plain:
            super()._put(queue, message, **kwargs)
            return
        assert batch is not None
        # What the stock _put sends for a plain message on a standard queue.
        entry: dict[str, Any] = {}
        delay = self._resolve_delay_seconds(properties)  # type: ignore[attr-defined]
        if delay is not None:
            entry["DelaySeconds"] = delay
        body = dumps(message)
        if self.sqs_base64_encoding:
            body = SQS.AsyncMessage().encode(body)  # type: ignore[attr-defined]
        entry["MessageBody"] = body
        batch.add(queue, entry)


class Transport(SQS.Transport):
    Channel = Channel
