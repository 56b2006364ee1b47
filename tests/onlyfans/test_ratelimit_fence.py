"""The limiter's guarantee: two sends of an account reach the platform at least the minimum
interval apart, and never more than the limit in 60 s, however late after its slot a request
arrives, because a slot whose call is unanswered past the guard holds back the next one."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from django.db import connection

from crm.models import Message
from onlyfans import gateway, pipeline, services
from onlyfans.ratelimit import (
    RateLimit,
    rate_limit_acquire,
    rate_limit_rebuild,
    rate_limit_release,
    rate_limit_retake,
    rate_limit_slot_usable,
)
from tests.factories import CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db  # an account's missing log is rebuilt from PostgreSQL


def _wait_until_granted(account_id: int, limit: RateLimit, **kwargs):
    while True:
        slot = rate_limit_acquire(account_id=account_id, limit=limit, **kwargs)
        if slot.granted:
            return slot
        time.sleep(min(slot.wait_seconds, 0.05))


def test_a_slot_unanswered_past_the_guard_holds_back_the_next_until_its_answer(redis_client):
    # given: 0.3 s apart; a held slot whose call takes 0.8 s (far beyond the guard)
    limit = RateLimit(per_minute=100, min_interval_ms=300)
    first = rate_limit_acquire(account_id=1, limit=limit, hold=True)
    assert first.granted
    time.sleep(0.6)  # past the interval and the guard: without the fence the next would go

    # when: another send asks while the call is unanswered
    fenced = rate_limit_acquire(account_id=1, limit=limit)

    # then: refused until the answer, and after it the interval counts from the answer
    assert not fenced.granted
    assert fenced.wait_seconds == pytest.approx(0.3, abs=0.01)  # come back after the interval
    time.sleep(0.2)
    assert rate_limit_release(account_id=1, limit=limit, slot=first)  # late: moved
    answered = time.monotonic()
    second = _wait_until_granted(1, limit)
    # the first's request arrived before its answer, the second's after its slot
    assert second.asked_at - answered >= 0.3 - 0.05


def test_an_answer_within_the_guard_costs_nothing(redis_client):
    limit = RateLimit(per_minute=100, min_interval_ms=300)
    first = rate_limit_acquire(account_id=2, limit=limit, hold=True)
    assert not rate_limit_release(account_id=2, limit=limit, slot=first)  # not moved
    time.sleep(0.5 + 0.01)  # the interval and the guard
    assert rate_limit_acquire(account_id=2, limit=limit).granted


def test_a_call_never_answered_holds_the_account_back_only_for_its_lease(redis_client, settings):
    # a worker died mid-call: nobody releases its slot
    settings.SEND_SLOT_MAX_AGE_MS = 100
    settings.ONLYFANS_API_TIMEOUT_SECONDS = 0.2  # lease: 0.1 + 2 x 0.2 = 0.5 s
    limit = RateLimit(per_minute=100, min_interval_ms=0)
    assert limit.lease_ms == 500
    assert rate_limit_acquire(account_id=3, limit=limit, hold=True).granted
    time.sleep(0.3)
    assert not rate_limit_acquire(account_id=3, limit=limit).granted  # fenced
    time.sleep(0.25)
    assert rate_limit_acquire(account_id=3, limit=limit).granted  # the lease ended


def test_a_slot_is_usable_only_while_fresh_and_held(redis_client, settings):
    limit = RateLimit(per_minute=100, min_interval_ms=0)
    slot = rate_limit_acquire(account_id=4, limit=limit, hold=True)
    assert rate_limit_slot_usable(account_id=4, limit=limit, slot=slot)
    settings.SEND_SLOT_MAX_AGE_MS = 0  # as if the call would start long after the slot
    assert not rate_limit_slot_usable(account_id=4, limit=limit, slot=slot)
    settings.SEND_SLOT_MAX_AGE_MS = 2000
    redis_client.flushdb()  # Redis restarted: the slot is gone
    assert not rate_limit_slot_usable(account_id=4, limit=limit, slot=slot)


def test_a_sending_message_rebuilt_after_redis_loss_is_held_until_its_call_answers(redis_client):
    # given: a message being sent (slot taken, call on its way) when Redis loses everything
    account = CreatorAccountFactory(send_rate_per_minute=100, send_min_interval_ms=300)
    fan = FanFactory(account=account)
    message = services.message_enqueue(fan=fan, text="x")
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING)
    limit = RateLimit(per_minute=100, min_interval_ms=300)
    slot = rate_limit_acquire(account_id=account.pk, limit=limit, hold=True, message_id=message.pk)
    redis_client.flushdb()

    # when: another send asks (the log is rebuilt: the sending message counts now, held)
    assert not rate_limit_acquire(account_id=account.pk, limit=limit).granted
    time.sleep(0.6)

    # then: still held back past the interval (the call may still be on its way) until the
    # call answers, which releases the rebuilt entry too
    assert not rate_limit_acquire(account_id=account.pk, limit=limit).granted
    rate_limit_release(account_id=account.pk, limit=limit, slot=slot, message_id=message.pk)
    _wait_until_granted(account.pk, limit)


def test_retaking_a_slot_lost_with_redis_rebuilds_without_the_message_itself(redis_client):
    account = CreatorAccountFactory(send_rate_per_minute=100, send_min_interval_ms=300)
    message = services.message_enqueue(fan=FanFactory(account=account), text="x")
    limit = RateLimit(per_minute=100, min_interval_ms=300)
    slot = rate_limit_acquire(account_id=account.pk, limit=limit, hold=True, message_id=message.pk)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING)  # claimed
    redis_client.flushdb()
    assert not rate_limit_slot_usable(account_id=account.pk, limit=limit, slot=slot)

    retaken = rate_limit_retake(
        account_id=account.pk, limit=limit, stale=slot, message_id=message.pk
    )

    # rebuilt: nothing sent, and the message's own call not made yet, so only the "log was
    # lost" send of the present moment stands in the way (one interval)
    if not retaken.granted:
        assert retaken.wait_seconds <= 0.5 + 0.01
        time.sleep(retaken.wait_seconds)
        retaken = rate_limit_retake(
            account_id=account.pk, limit=limit, stale=retaken, message_id=message.pk
        )
    assert retaken.granted
    assert rate_limit_slot_usable(account_id=account.pk, limit=limit, slot=retaken)


@pytest.mark.django_db(transaction=True)
def test_arrivals_keep_the_interval_when_a_request_reaches_the_platform_late(
    sqs_queues, sandbox, redis_client, monkeypatch
):
    """The drill's violations: a request reaching the platform long after its slot (a starved
    worker, a slow network) landed among the sends of later slots. Here one call takes 0.8 s
    between its slot check and the platform, while another send of the account asks at 0.55 s
    (past the interval and its guard): without the hold, the two arrived 0.2 s apart."""
    sandbox.configure(rate_limit_per_minute=0, min_interval_ms=0)  # show violations, no 429
    account = CreatorAccountFactory(send_rate_per_minute=100, send_min_interval_ms=300)
    first, second = (
        services.message_enqueue(fan=FanFactory(account=account), text=f"m{i}") for i in range(2)
    )
    real_send = gateway.message_send
    slow = threading.Event()

    def late_send(request):
        if request.idempotency_key == str(first.idempotency_key):
            slow.set()
            time.sleep(0.8)  # after every check the product makes: the network's time
        return real_send(request)

    monkeypatch.setattr(pipeline.gateway, "message_send", late_send)
    outcomes: list[str] = []

    def deliver_first() -> None:
        try:
            outcomes.append(pipeline.message_deliver(message_id=first.pk).result)
        finally:
            connection.close()

    worker = threading.Thread(target=deliver_first)
    worker.start()
    assert slow.wait(5)
    time.sleep(0.55)
    while (result := pipeline.message_deliver(message_id=second.pk).result) != "sent":
        outcomes.append(result)
        time.sleep(0.05)
    worker.join()

    arrivals = sorted(
        m["arrived_at"] for m in sandbox.messages(account=account.platform_account_id)
    )
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.3, [b - a for a, b in itertools.pairwise(arrivals)]
    assert "throttled" in outcomes and "sent" in outcomes  # the second waited for the first


def test_two_workers_finding_the_log_missing_at_once_count_each_send_once(redis_client):
    """The flaky test_two_workers_never_exceed_the_account_limit: both workers' first acquire
    found an idle account's log missing; the first rebuilt (nothing), took a slot and marked
    its message sending; the second's rebuild then added that message and a "lost" send on
    top of its slot: three entries for one send, and the window of 5 let only 3 out."""
    account = CreatorAccountFactory(send_rate_per_minute=5, send_min_interval_ms=0)
    message = services.message_enqueue(fan=FanFactory(account=account), text="x")
    limit = RateLimit(per_minute=5, min_interval_ms=0)
    first = rate_limit_acquire(account_id=account.pk, limit=limit, hold=True, message_id=message.pk)
    Message.objects.filter(pk=message.pk).update(status=Message.Status.SENDING)

    rate_limit_rebuild(account_id=account.pk, limit=limit)  # the second worker, a moment late

    assert redis_client.zrange(f"ratelimit:send:{account.pk}", 0, -1) == [first.member.encode()]


def test_a_refusal_from_the_fence_says_so_and_one_from_the_interval_does_not(redis_client):
    limit = RateLimit(per_minute=100, min_interval_ms=300)
    rate_limit_acquire(account_id=3, limit=limit, hold=True)  # its call never answers
    by_interval = rate_limit_acquire(account_id=3, limit=limit, hold=True)
    time.sleep(0.55)  # past the interval and its guard: only the unanswered call holds it back
    by_fence = rate_limit_acquire(account_id=3, limit=limit, hold=True)

    assert not by_interval.granted and not by_interval.fenced
    assert 0 < by_interval.wait_seconds <= 0.5
    assert not by_fence.granted and by_fence.fenced


def test_a_delivery_woken_just_before_its_slot_waits_in_the_worker_and_keeps_the_interval(
    sandbox, monkeypatch
):
    """A task that wakes a little early (an earlier send left later than its forecast) waits
    the limiter's wait in the worker, once, instead of going round the broker again."""
    sandbox.configure(rate_limit_per_minute=0, min_interval_ms=0)  # show violations, no 429
    # What is left of the 0.5 s (interval and guard) depends on how long the first call took;
    # a short wait as long as the whole gap keeps the case the same on a quick or busy machine.
    monkeypatch.setattr(pipeline, "SHORT_WAIT_SECONDS", 0.5)
    account = CreatorAccountFactory(send_rate_per_minute=100, send_min_interval_ms=300)
    first, second = (
        services.message_enqueue(fan=FanFactory(account=account), text=f"m{i}") for i in range(2)
    )

    assert pipeline.message_deliver(message_id=first.pk).result == "sent"
    # at once: at most 0.5 s is left, under the worker's short wait
    assert pipeline.message_deliver(message_id=second.pk).result == "sent"

    arrivals = sorted(
        m["arrived_at"] for m in sandbox.messages(account=account.platform_account_id)
    )
    assert len(arrivals) == 2
    assert arrivals[1] - arrivals[0] >= 0.3, arrivals


def test_a_wait_longer_than_the_short_wait_goes_back_to_the_broker(sandbox, monkeypatch):
    account = CreatorAccountFactory(send_rate_per_minute=100, send_min_interval_ms=2000)
    first, second = (
        services.message_enqueue(fan=FanFactory(account=account), text=f"m{i}") for i in range(2)
    )
    assert pipeline.message_deliver(message_id=first.pk).result == "sent"

    outcome = pipeline.message_deliver(message_id=second.pk)

    assert outcome.result == "throttled"
    assert outcome.retry_in is not None and outcome.retry_in > pipeline.SHORT_WAIT_SECONDS
