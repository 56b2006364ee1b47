"""The SQS transport: a receive that failed on the broker's side, and batched publishing."""

from __future__ import annotations

import pytest
from django.utils import timezone

from config.celery import app
from crm.models import Message
from onlyfans import services
from onlyfans.broker_transport import Channel
from onlyfans.dispatch import message_task_publish, tasks_published_together
from tests.factories import CreatorAccountFactory, FanFactory


def test_workers_use_the_patched_transport(sqs_queues):
    with app.connection_for_read() as connection:
        assert isinstance(connection.default_channel, Channel)


def test_a_failed_receive_counts_as_an_empty_one(sqs_queues):
    # kombu hands [] instead of the answer's dict when SQS answered 5xx or timed out; the
    # stock channel raised AttributeError there, which stopped the worker.
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        assert channel._on_messages_ready("url", "fancrm-test-send", []) == 0
        assert channel._on_messages_ready("url", "fancrm-test-send", {"Messages": []}) == 0


def test_tasks_published_together_leave_in_sqs_batches(send_queue, monkeypatch):
    import botocore.client

    calls: list[str] = []
    real_call = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        calls.append(operation)
        return real_call(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    # when: twelve tasks of one dispatch pass, one of them two seconds ahead
    with tasks_published_together():
        for message_id in range(1, 12):
            message_task_publish(message_id=message_id, delay_seconds=0)
        message_task_publish(message_id=12, delay_seconds=2.0)
        assert calls == []  # nothing leaves before the pass ends
    # then: two SendMessageBatch requests (ten and two), no single sends
    assert [c for c in calls if c.startswith("SendMessage")] == [
        "SendMessageBatch",
        "SendMessageBatch",
    ]
    assert send_queue.delayed() == 1
    deliveries = send_queue.receive(wait_seconds=1)
    while len(deliveries) < 11:
        deliveries += send_queue.receive(wait_seconds=1)
    assert sorted(d.args[0] for d in deliveries) == list(range(1, 12))
    assert {d.task for d in deliveries} == {"onlyfans.tasks.message_send_task"}
    late = send_queue.receive(wait_seconds=4)
    assert [d.args[0] for d in late] == [12]


@pytest.mark.django_db
def test_a_batch_sqs_refuses_goes_back_to_the_backlog(send_queue, monkeypatch):
    import botocore.client
    from botocore.exceptions import EndpointConnectionError

    fan = FanFactory(account=CreatorAccountFactory())
    messages = [services.message_enqueue(fan=fan, text=f"m{i}") for i in range(3)]
    Message.objects.update(dispatched_at=timezone.now())  # as a dispatch pass claims them
    real_call = botocore.client.BaseClient._make_api_call

    def sqs_down(self, operation, params):
        if operation == "SendMessageBatch":
            raise EndpointConnectionError(endpoint_url="http://sqs")
        return real_call(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", sqs_down)
    with tasks_published_together():
        for message in messages:
            message_task_publish(message_id=message.pk, delay_seconds=0)
    # the pass does not fail; its messages wait in the backlog for the next dispatch
    assert not Message.objects.filter(dispatched_at__isnull=False).exists()
    assert send_queue.depth() == 0


@pytest.mark.django_db
def test_a_pass_that_fails_midway_leaves_nothing_claimed_and_unpublished(send_queue):
    fan = FanFactory(account=CreatorAccountFactory())
    message = services.message_enqueue(fan=fan, text="m")
    Message.objects.update(dispatched_at=timezone.now())  # claimed by the pass
    with pytest.raises(RuntimeError), tasks_published_together():
        message_task_publish(message_id=message.pk, delay_seconds=0)
        raise RuntimeError("the next account's dispatch failed")
    # kombu discarded the unpublished batch; the message is back in the backlog at once
    assert Message.objects.get(pk=message.pk).dispatched_at is None
    assert send_queue.depth() == 0


def test_acks_leave_as_delete_batches(send_queue, monkeypatch):
    import time

    import botocore.client

    from onlyfans.broker import queue_names

    with tasks_published_together():
        for message_id in range(1, 13):
            message_task_publish(message_id=message_id, delay_seconds=0)
    calls: list[str] = []
    real_call = botocore.client.BaseClient._make_api_call

    def counting(self, operation, params):
        calls.append(operation)
        return real_call(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    # when: a consumer acks the twelve deliveries
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(queue_names().send)
        for _ in range(12):
            queue.get(timeout=10).ack()
        time.sleep(0.5)  # the last two leave with the flush thread
        queue.close()
    # then: two DeleteMessageBatch requests (ten, then two), none deleted one by one, and
    # nothing comes back
    deletes = [c for c in calls if c.startswith("DeleteMessage")]
    assert deletes == ["DeleteMessageBatch", "DeleteMessageBatch"]
    assert send_queue.depth() == 0
