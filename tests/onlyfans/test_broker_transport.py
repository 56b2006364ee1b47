"""The SQS transport the workers use survives a receive that failed on the broker's side."""

from __future__ import annotations

from config.celery import app
from onlyfans.broker_transport import Channel


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
