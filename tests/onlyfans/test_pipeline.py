"""The send pipeline end to end: real PostgreSQL, Redis, moto SQS and the sandbox over HTTP."""

from __future__ import annotations

import itertools

import pytest
from django.test import override_settings

from crm.models import Conversation, CreatorAccount, Message
from onlyfans import services
from onlyfans.dispatch import account_dispatch, dispatch_budget, outbox_sweep
from onlyfans.ratelimit import (
    RateLimit,
    rate_limit_acquire,
    rate_limit_forecast,
    rate_limit_forecast_last,
)
from tests.factories import CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db


def fast_account(**kwargs) -> CreatorAccount:
    defaults = {"send_rate_per_minute": 1000, "send_min_interval_ms": 0}
    return CreatorAccountFactory(**{**defaults, **kwargs})


def enqueue(fan, text="hello", capture=None, **kwargs) -> Message:
    with capture(execute=True):
        return services.message_enqueue(fan=fan, text=text, **kwargs)


def refreshed(message: Message) -> Message:
    message.refresh_from_db()
    return message


def test_enqueue_to_sent_end_to_end(send_queue, sandbox, django_capture_on_commit_callbacks):
    # given
    fan = FanFactory(account=fast_account())
    # when
    message = enqueue(fan, "hi there", capture=django_capture_on_commit_callbacks)
    assert refreshed(message).status == Message.Status.QUEUED
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)
    # then
    message = refreshed(message)
    stored = sandbox.messages(account=fan.account.platform_account_id)
    assert len(stored) == 1
    assert stored[0]["idempotency_key"] == str(message.idempotency_key)
    assert message.platform_message_id == stored[0]["platform_message_id"]
    assert message.attempts == 1
    assert message.sent_at is not None


def test_same_sqs_message_delivered_twice_sends_once(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    fan = FanFactory(account=fast_account())
    message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    [delivery] = send_queue.receive(wait_seconds=5)
    # when: SQS hands the same message to two deliveries, one after the other
    first = send_queue.run(delivery, ack=False)
    second = send_queue.run(delivery)
    # then
    assert (first, second) == ("sent", "skipped")
    assert len(sandbox.messages(account=fan.account.platform_account_id)) == 1
    assert refreshed(message).attempts == 1


def test_worker_killed_after_gateway_call_sends_once(
    send_queue, sandbox, django_capture_on_commit_callbacks, monkeypatch
):
    """The platform got the message but the worker died before recording it."""
    fan = FanFactory(account=fast_account())
    message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    [delivery] = send_queue.receive(wait_seconds=5)

    class WorkerKilled(BaseException):
        pass

    def die(**kwargs):
        raise WorkerKilled

    from onlyfans import pipeline

    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "message_mark_sent", die)
        with pytest.raises(WorkerKilled):
            send_queue.run(delivery, ack=False)
    assert refreshed(message).status == Message.Status.SENDING
    # the lock outlives nothing: a dead worker's lock expires with its TTL
    from config.redis import redis_client

    redis_client().delete(f"send:lock:{message.pk}")
    # when: SQS redelivers after the visibility timeout
    assert send_queue.run(delivery) == "sent"
    # then: the gateway replayed the stored answer instead of sending again
    stored = sandbox.messages(account=fan.account.platform_account_id)
    assert len(stored) == 1
    assert refreshed(message).platform_message_id == stored[0]["platform_message_id"]
    assert sandbox.stats()["replays"] >= 1


def test_rate_limited_by_platform_honours_retry_after(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    account = fast_account()
    fan = FanFactory(account=account)
    sandbox.configure(rate_limit_per_minute=1)
    first = enqueue(fan, "one", capture=django_capture_on_commit_callbacks)
    send_queue.drain(until=lambda: refreshed(first).status == Message.Status.SENT)
    second = enqueue(fan, "two", capture=django_capture_on_commit_callbacks)
    [delivery] = send_queue.receive(wait_seconds=5)
    # when: the platform answers 429 with Retry-After
    assert send_queue.run(delivery) == "rate_limited"
    # then: the message waits on SQS (delayed), queued, with the attempt not counted
    second = refreshed(second)
    assert second.status == Message.Status.QUEUED
    assert second.attempts == 0
    assert second.last_error == "rate_limited"
    assert send_queue.delayed() == 1
    assert send_queue.receive(wait_seconds=0) == []
    assert len(sandbox.messages(account=account.platform_account_id)) == 1


def test_three_server_errors_end_failed_and_retry_sends(
    send_queue, sandbox, django_capture_on_commit_callbacks, client
):
    fan = FanFactory(account=fast_account())
    sandbox.configure(fail_next=3)
    message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    # when: three attempts each get a 500 (backoff about 1 s then 2 s between them)
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.FAILED)
    message = refreshed(message)
    assert message.attempts == 3
    assert "HTTP 500" in message.last_error
    assert sandbox.messages(account=fan.account.platform_account_id) == []
    # then: a retry puts it back with the same idempotency key, and it goes
    key = message.idempotency_key
    with django_capture_on_commit_callbacks(execute=True):
        services.message_retry(message=message)
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)
    stored = sandbox.messages(account=fan.account.platform_account_id)
    assert [s["idempotency_key"] for s in stored] == [str(key)]


def test_permanent_rejection_fails_at_once(send_queue, sandbox, django_capture_on_commit_callbacks):
    fan = FanFactory(account=fast_account())
    sandbox.configure(disconnected_accounts=[])
    message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(text="x" * 6000)  # the platform refuses it
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.FAILED)
    assert refreshed(message).attempts == 1


def test_disconnected_account_pauses_sends_until_reconnected(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    account = fast_account()
    fan = FanFactory(account=account)
    sandbox.configure(disconnected_accounts=[account.platform_account_id])
    message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    send_queue.drain(until=lambda: refreshed(message).dispatched_at is None, timeout=10)
    account.refresh_from_db()
    assert account.connection_state == CreatorAccount.ConnectionState.EXPIRED
    assert refreshed(message).status == Message.Status.QUEUED
    assert account_dispatch(account_id=account.pk) == 0  # paused: nothing is published
    # when the creator reconnects
    sandbox.configure(disconnected_accounts=[])
    CreatorAccount.objects.filter(pk=account.pk).update(connection_state="connected")
    account_dispatch(account_id=account.pk)
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)


def test_messages_of_one_conversation_leave_in_queued_order(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    fan = FanFactory(account=fast_account())
    sandbox.configure(fail_next=1)  # the first message must retry; the others must wait for it
    sent = [enqueue(fan, f"m{i}", capture=django_capture_on_commit_callbacks) for i in range(4)]
    send_queue.drain(
        until=lambda: all(refreshed(m).status == Message.Status.SENT for m in sent), timeout=20
    )
    stored = sandbox.messages(account=fan.account.platform_account_id)
    keys = [s["idempotency_key"] for s in sorted(stored, key=lambda s: s["arrived_at"])]
    assert keys == [str(m.idempotency_key) for m in sent]


def test_backlog_waits_in_database_not_on_the_broker(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    account = CreatorAccountFactory(send_rate_per_minute=10, send_min_interval_ms=3000)
    fan = FanFactory(account=account)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(200):
            services.message_enqueue(fan=fan, text=f"m{i}")
    on_broker = Message.objects.filter(account=account, dispatched_at__isnull=False).count()
    assert on_broker == dispatch_budget(account) == 10
    assert send_queue.depth() == 10
    assert Message.objects.filter(account=account, status="queued").count() == 200


def test_one_backlog_does_not_delay_another_account(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    slow = CreatorAccountFactory(send_rate_per_minute=1, send_min_interval_ms=3000)
    fast = fast_account()
    slow_fan, fast_fan = FanFactory(account=slow), FanFactory(account=fast)
    with django_capture_on_commit_callbacks(execute=True):
        for i in range(30):
            services.message_enqueue(fan=slow_fan, text=f"s{i}")
    other = enqueue(fast_fan, capture=django_capture_on_commit_callbacks)
    send_queue.drain(until=lambda: refreshed(other).status == Message.Status.SENT, timeout=8)
    assert Message.objects.filter(account=slow, status="sent").count() == 1
    # the slow account's next message is delayed on SQS, not spinning in workers
    executions = len(send_queue.executed)
    assert executions <= 3


def test_publish_failure_keeps_message_queued_and_sweep_publishes_it(
    send_queue, sandbox, django_capture_on_commit_callbacks, monkeypatch
):
    from config.celery import app

    fan = FanFactory(account=fast_account())

    def sqs_down(*args, **kwargs):
        raise ConnectionError("SQS unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(app, "send_task", sqs_down)
        message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    message = refreshed(message)
    assert message.status == Message.Status.QUEUED
    assert message.dispatched_at is None
    assert send_queue.depth() == 0
    # when beat's sweep runs with SQS back
    assert outbox_sweep()["published"] == 1
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)


@override_settings(SEND_REDISPATCH_AFTER_SECONDS=0)
def test_sweep_republishes_a_message_whose_task_was_lost(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    fan = FanFactory(account=fast_account())
    message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    [lost] = send_queue.receive(wait_seconds=5)
    send_queue.client.delete_message(QueueUrl=send_queue.url, ReceiptHandle=lost.receipt_handle)
    assert outbox_sweep()["stale"] == 1
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)
    assert len(sandbox.messages(account=fan.account.platform_account_id)) == 1


def test_limiter_never_grants_more_than_the_window(redis_client):
    limit = RateLimit(per_minute=5, min_interval_ms=0)
    granted = [rate_limit_acquire(account_id=1, limit=limit) for _ in range(8)]
    assert sum(g.granted for g in granted) == 5
    refused = granted[-1]
    assert 59 < refused.wait_seconds <= 60.2 + 0.01


def test_limiter_enforces_the_minimum_interval(redis_client):
    limit = RateLimit(per_minute=100, min_interval_ms=3000)
    first = rate_limit_acquire(account_id=2, limit=limit)
    second = rate_limit_acquire(account_id=2, limit=limit)
    assert first.granted and not second.granted
    assert 3.1 < second.wait_seconds <= 3.2  # the interval plus the 200 ms guard


def test_forecast_of_a_deep_backlog_follows_the_rate(redis_client):
    # given: 10 a minute, 3 s apart, nothing sent yet
    limit = RateLimit(per_minute=10, min_interval_ms=3000)
    # when: the slots of a 10,000-message backlog are forecast
    slots = rate_limit_forecast(account_id=3, limit=limit, count=10_000)
    # then: ten in the first minute (3.4 s apart with guard and lag), then ten a minute on
    assert len(slots) == 10_000
    assert slots[0] == pytest.approx(0, abs=0.05)
    assert slots[1] == pytest.approx(3.4, abs=0.05)
    assert all(b > a for a, b in itertools.pairwise(slots))
    per_minute_late = 60 / ((slots[-1] - slots[-1001]) / 1000)
    assert 9.9 < per_minute_late <= 10
    # about 16.8 hours: each window of ten takes 60.4 s with the guard and the lag
    assert 60_000 < slots[-1] <= 60_500


def test_the_estimate_is_the_forecast_s_last_slot(redis_client):
    # given: an account with three sends in its window
    limit = RateLimit(per_minute=10, min_interval_ms=3000)
    for _ in range(3):
        rate_limit_acquire(account_id=4, limit=limit)
    # when/then: the send API's estimate (no list) is the full forecast's last slot, for a
    # place inside the simulated windows and far past them
    for count in (1, 2, 7, 22, 23, 500, 10_000):
        full = rate_limit_forecast(account_id=4, limit=limit, count=count)[-1]
        last = rate_limit_forecast_last(account_id=4, limit=limit, count=count)
        assert last == pytest.approx(full, abs=0.01), count


def test_platform_id_already_held_still_marks_sent(fan, django_capture_on_commit_callbacks):
    """A sandbox restarted with old ids once left messages "sending" for ever."""
    from tests.factories import MessageFactory

    conversation = MessageFactory(conversation__fan=fan, platform_message_id="4000").conversation
    message = enqueue(fan, capture=django_capture_on_commit_callbacks)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING)
    message.status = Message.Status.SENDING
    services.message_mark_sent(message=message, platform_message_id="4000")
    message = refreshed(message)
    assert conversation.pk == message.conversation_id
    assert message.status == Message.Status.SENT
    assert message.platform_message_id is None
    assert message.last_error == "platform_id_conflict"


def test_enqueue_creates_then_touches_the_fans_one_conversation(fan, django_assert_num_queries):
    # the first message opens the conversation: one statement (upsert and insert together)
    with django_assert_num_queries(1):
        first = services.message_enqueue(fan=fan, text="one")
    second = services.message_enqueue(fan=fan, text="two")
    assert first.conversation_id == second.conversation_id
    conversation = Conversation.objects.get(fan=fan)
    assert conversation.last_message_at == second.queued_at
    assert Conversation.objects.filter(fan=fan).count() == 1
    assert conversation.last_message_preview == "two"
    assert list(conversation.messages.order_by("id").values_list("text", flat=True)) == [
        "one",
        "two",
    ]


def _lock_key(message: Message) -> str:
    return f"send:lock:{message.pk}"


def test_a_delivery_finding_the_lock_taken_sends_nothing_and_takes_no_slot(
    sandbox, redis_client, django_capture_on_commit_callbacks
):
    """The lock is taken by the limiter's script: a delivery that finds another's lock asks
    for no slot, writes nothing and does not call the platform."""
    from onlyfans.pipeline import Delivery, message_deliver

    account = fast_account()
    message = enqueue(FanFactory(account=account), capture=django_capture_on_commit_callbacks)
    redis_client.set(_lock_key(message), "another-delivery", px=60_000)
    # when
    outcome = message_deliver(message_id=message.pk)
    # then
    assert outcome.result == Delivery.BUSY
    assert sandbox.messages(account=account.platform_account_id) == []
    assert redis_client.zcard(f"ratelimit:send:{account.pk}") == 0
    assert refreshed(message).status == Message.Status.QUEUED
    assert refreshed(message).attempts == 0
    assert redis_client.get(_lock_key(message)) in ("another-delivery", b"another-delivery")
    # and once the other delivery let go, it sends
    redis_client.delete(_lock_key(message))
    assert message_deliver(message_id=message.pk).result == Delivery.SENT
    assert redis_client.exists(_lock_key(message)) == 0


def test_the_lock_is_held_from_the_slot_to_the_recorded_answer(
    sandbox, redis_client, django_capture_on_commit_callbacks, monkeypatch
):
    """Two deliveries of one message at once: the second, arriving while the first is on the
    platform or writing its answer, is BUSY; the platform gets the message once."""
    from onlyfans import pipeline
    from onlyfans.pipeline import Delivery, message_deliver

    account = fast_account()
    message = enqueue(FanFactory(account=account), capture=django_capture_on_commit_callbacks)
    seen: list[tuple[str, str]] = []
    real_send, real_sent = pipeline.gateway.message_send, pipeline.message_mark_sent

    def send_with_a_duplicate(request):
        seen.append(("call", message_deliver(message_id=message.pk).result))
        return real_send(request)

    def sent_with_a_duplicate(**kwargs):
        seen.append(("record", message_deliver(message_id=message.pk).result))
        real_sent(**kwargs)

    monkeypatch.setattr(pipeline.gateway, "message_send", send_with_a_duplicate)
    monkeypatch.setattr(pipeline, "message_mark_sent", sent_with_a_duplicate)
    # when
    outcome = message_deliver(message_id=message.pk)
    # then
    assert outcome.result == Delivery.SENT
    assert seen == [("call", Delivery.BUSY), ("record", Delivery.BUSY)]
    assert len(sandbox.messages(account=account.platform_account_id)) == 1
    assert refreshed(message).attempts == 1
    assert redis_client.exists(_lock_key(message)) == 0
    # a later duplicate finds it sent
    assert message_deliver(message_id=message.pk).result == Delivery.SKIPPED


@pytest.mark.parametrize(
    ("configure", "expected"),
    [
        ({}, "sent"),
        ({"rate_limit_per_minute": 1}, "rate_limited"),  # the platform's 429
        ({"fail_next": 1}, "retrying"),  # a 5xx
    ],
)
def test_the_lock_is_released_on_every_outcome(
    sandbox, redis_client, django_capture_on_commit_callbacks, configure, expected
):
    from onlyfans.pipeline import message_deliver

    account = fast_account()
    fan = FanFactory(account=account)
    if configure.get("rate_limit_per_minute"):
        sandbox.configure(rate_limit_per_minute=1)
        first = enqueue(fan, capture=django_capture_on_commit_callbacks)
        assert message_deliver(message_id=first.pk).result == "sent"
    else:
        sandbox.configure(**configure)
    message = enqueue(fan, text="second", capture=django_capture_on_commit_callbacks)
    # when
    outcome = message_deliver(message_id=message.pk)
    # then
    assert outcome.result == expected
    assert redis_client.exists(_lock_key(message)) == 0
    assert redis_client.zcard(f"ratelimit:held:{account.pk}") == 0


def test_the_lock_is_released_when_the_limiter_refuses_or_nothing_is_left(
    sandbox, redis_client, django_capture_on_commit_callbacks
):
    from onlyfans.pipeline import Delivery, message_deliver

    account = fast_account(send_rate_per_minute=1)
    fan = FanFactory(account=account)
    first = enqueue(fan, capture=django_capture_on_commit_callbacks)
    second = enqueue(fan, text="second", capture=django_capture_on_commit_callbacks)
    assert message_deliver(message_id=first.pk).result == Delivery.SENT
    # when: the window is full
    throttled = message_deliver(message_id=second.pk)
    # then
    assert throttled.result == Delivery.THROTTLED
    assert redis_client.exists(_lock_key(second)) == 0
    # and a duplicate of a sent message
    assert message_deliver(message_id=first.pk).result == Delivery.SKIPPED
    assert redis_client.exists(_lock_key(first)) == 0
