"""Fixtures of the send pipeline tests: a hand-driven worker over the real SQS send queue."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from onlyfans.broker import queue_names, sqs_client


@dataclass
class Delivery:
    task: str
    args: list[Any]
    receipt_handle: str
    receive_count: int


@dataclass
class SendQueue:
    """Receives the send queue's real SQS messages and runs their tasks in the test thread.

    It plays a worker whose every step the test controls: deliver a message twice, "crash"
    before acknowledging it, or wait out the delays the pipeline put on SQS.
    """

    client: Any
    url: str
    executed: list[tuple[str, Any]] = field(default_factory=list)

    def receive(self, *, wait_seconds: float = 0, max_messages: int = 10) -> list[Delivery]:
        deadline = time.monotonic() + wait_seconds
        while True:
            reply = self.client.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=0,
                AttributeNames=["ApproximateReceiveCount"],
            )
            messages = reply.get("Messages", [])
            if messages or time.monotonic() >= deadline:
                return [self._decode(m) for m in messages]
            time.sleep(0.1)

    @staticmethod
    def _decode(raw: dict[str, Any]) -> Delivery:
        envelope = json.loads(base64.b64decode(raw["Body"]))
        args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        return Delivery(
            task=envelope["headers"]["task"],
            args=args,
            receipt_handle=raw["ReceiptHandle"],
            receive_count=int(raw["Attributes"]["ApproximateReceiveCount"]),
        )

    def run(self, delivery: Delivery, *, ack: bool = True) -> Any:
        from onlyfans import tasks

        task: Any = {
            "onlyfans.tasks.message_send_task": tasks.message_send_task,
            "onlyfans.tasks.outbox_sweep_task": tasks.outbox_sweep_task,
        }[delivery.task]
        result = task(*delivery.args)
        self.executed.append((delivery.task, result))
        if ack:
            self.client.delete_message(QueueUrl=self.url, ReceiptHandle=delivery.receipt_handle)
        return result

    def drain(self, *, until: Callable[[], bool] | None = None, timeout: float = 15.0) -> list[Any]:
        """Run deliveries as they become visible until ``until()`` holds or nothing is left."""
        results: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if until is not None and until():
                return results
            batch = self.receive(wait_seconds=0.5)
            for delivery in batch:
                results.append(self.run(delivery))
            if not batch and until is None and self.depth() == 0:
                return results
        if until is not None and not until():
            raise AssertionError(f"condition not reached in {timeout}s; ran {results}")
        return results

    def depth(self) -> int:
        attrs = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesDelayed",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def delayed(self) -> int:
        attrs = self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessagesDelayed"])


@pytest.fixture
def send_queue(sqs_queues: dict[str, str], redis_client: Any) -> SendQueue:
    return SendQueue(client=sqs_client(), url=sqs_queues[queue_names().send])
