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
- kombu acknowledges each delivery with its own DeleteMessage, synchronously in the worker's
  event loop: a fifth of a send worker's busy time under load (py-spy) and one broker request
  per send. Here acks release the delivery at once and their deletes leave as
  DeleteMessageBatch, ten at a time or ``ACK_FLUSH_SECONDS`` after the first one waits. A
  delete that never reaches SQS (the process dies within that time, or SQS refuses it) only
  means the message is delivered again after its visibility timeout, which acks-late tasks
  already allow: the send task's lock and status re-read make a second delivery a no-op.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import structlog

# kombu-stubs predate kombu 5.7's publish batches and the SQS channel's helpers.
from kombu.exceptions import BatchPublishError  # type: ignore[attr-defined]
from kombu.transport import SQS, virtual
from kombu.utils.json import dumps

log = structlog.get_logger(__name__)

SQS_BATCH_MAX = 10  # SendMessageBatch and DeleteMessageBatch take at most ten entries
ACK_FLUSH_SECONDS = 0.05


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


class SQSAckBatch:
    """Deletes of acknowledged deliveries, per queue, sent as DeleteMessageBatch by the acking
    thread when ten wait, else by a daemon thread ``ACK_FLUSH_SECONDS`` after the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[Any, list[str]]] = {}
        self._first_at: float | None = None
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, client: Any, queue_url: str, receipt_handle: str) -> None:
        with self._lock:
            _client, handles = self._pending.setdefault(queue_url, (client, []))
            handles.append(receipt_handle)
            full = len(handles) >= SQS_BATCH_MAX
            if self._first_at is None:
                self._first_at = time.monotonic()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqs-acks", daemon=True)
                self._thread.start()
        if full:
            self.flush(queue_url)
        else:
            self._wake.set()

    def _take(self, queue_url: str | None) -> list[tuple[Any, str, list[str]]]:
        with self._lock:
            urls = [queue_url] if queue_url is not None else list(self._pending)
            taken = []
            for url in urls:
                entry = self._pending.pop(url, None)
                if entry is not None:
                    taken.append((entry[0], url, entry[1]))
            if not self._pending:
                self._first_at = None
        return taken

    def flush(self, queue_url: str | None = None) -> None:
        """Delete what waits (of one queue, or of all); failures are logged, not raised."""
        for client, url, handles in self._take(queue_url):
            for start in range(0, len(handles), SQS_BATCH_MAX):
                chunk = handles[start : start + SQS_BATCH_MAX]
                entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)]
                try:
                    reply = client.delete_message_batch(QueueUrl=url, Entries=entries)
                except Exception:
                    log.warning("broker.ack_batch_failed", messages=len(chunk), exc_info=True)
                    continue
                if reply.get("Failed"):
                    codes = sorted({f.get("Code", "") for f in reply["Failed"]})
                    log.warning("broker.ack_refused", messages=len(reply["Failed"]), codes=codes)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                first_at = self._first_at
            if first_at is None:
                continue
            time.sleep(max(0.0, first_at + ACK_FLUSH_SECONDS - time.monotonic()))
            self.flush()


class Channel(SQS.Channel):
    _ack_batch: SQSAckBatch | None = None

    def basic_ack(self, delivery_tag: str, multiple: bool = False) -> None:
        try:
            info = self.qos.get(delivery_tag).delivery_info
            sqs_message = info["sqs_message"]
        except KeyError:
            super().basic_ack(delivery_tag, multiple)
            return
        queue = None
        if "routing_key" in info:
            queue = self.canonical_queue_name(info["routing_key"])
        if self._ack_batch is None:
            self._ack_batch = SQSAckBatch()
        self._ack_batch.add(self.sqs(queue=queue), info["sqs_queue"], sqs_message["ReceiptHandle"])
        # The delivery is done with: free its prefetch place now (kombu's base channel).
        virtual.Channel.basic_ack(self, delivery_tag, multiple)

    def close(self) -> None:
        if self._ack_batch is not None:
            self._ack_batch.flush()
        super().close()

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
