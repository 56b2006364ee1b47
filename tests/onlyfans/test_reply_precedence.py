"""Replies first: a chatter's one-to-one message queued while the campaign lane drains (an
automation's welcomes, a campaign) takes the account's next slot, whichever task wakes first;
the lane's sends give way at the limiter and keep the account's pace."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from crm.models import Message
from onlyfans import dispatch, pipeline, ratelimit, services
from onlyfans.ratelimit import (
    Precedence,
    RateLimit,
    rate_limit_acquire,
    rate_limit_replies_expect,
    rate_limit_replies_forget,
)
from tests.factories import CreatorAccountFactory, FanFactory
from tests.onlyfans.test_workers import wait_for, worker_processes  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

# 60 a minute, 0.5 s apart: a slot about every second (the window's pace).
LIMIT = RateLimit(per_minute=60, min_interval_ms=500)


def test_a_lane_send_gives_way_to_a_reply_expected_before_the_slot_after_it(redis_client):
    # given: a reply expected at its slot, now
    rate_limit_replies_expect(account_id=1, due=[(101, 0.0)])

    # when: a campaign lane send asks first
    lane = rate_limit_acquire(
        account_id=1, limit=LIMIT, hold=True, message_id=7, precedence=Precedence.YIELD
    )

    # then: refused, told to come back one slot later; the reply takes the slot
    assert not lane.granted and lane.yielded and not lane.fenced
    assert lane.wait_seconds == pytest.approx(LIMIT.spacing_ms / 1000, abs=0.02)
    reply = rate_limit_acquire(
        account_id=1, limit=LIMIT, message_id=101, precedence=Precedence.REPLY
    )
    assert reply.granted
    # the reply no longer holds the lane back: only the interval does
    time.sleep(lane.wait_seconds + 0.01)
    assert rate_limit_acquire(
        account_id=1, limit=LIMIT, message_id=7, precedence=Precedence.YIELD
    ).granted


def test_a_reply_expected_later_than_the_next_slot_does_not_hold_the_lane(redis_client):
    rate_limit_replies_expect(account_id=2, due=[(102, 5.0)])

    lane = rate_limit_acquire(account_id=2, limit=LIMIT, precedence=Precedence.YIELD)

    assert lane.granted


def test_a_refused_reply_stays_expected_at_the_slot_it_was_told(redis_client):
    # given: a send just took the slot; the reply asks too early and is refused
    assert rate_limit_acquire(account_id=3, limit=LIMIT).granted
    reply = rate_limit_acquire(
        account_id=3, limit=LIMIT, message_id=103, precedence=Precedence.REPLY
    )
    assert not reply.granted
    time.sleep(reply.wait_seconds + 0.01)

    # when: a lane send asks at that slot, then the reply
    lane = rate_limit_acquire(account_id=3, limit=LIMIT, precedence=Precedence.YIELD)
    again = rate_limit_acquire(
        account_id=3, limit=LIMIT, message_id=103, precedence=Precedence.REPLY
    )

    # then: the reply still went first, without the dispatcher having said so
    assert lane.yielded and again.granted


def test_a_reply_that_never_asks_holds_the_lane_back_only_for_a_while(redis_client, monkeypatch):
    monkeypatch.setattr(ratelimit, "REPLY_PRECEDENCE_MS", 300)
    rate_limit_replies_expect(account_id=4, due=[(104, 0.0)])
    assert rate_limit_acquire(account_id=4, limit=LIMIT, precedence=Precedence.YIELD).yielded
    time.sleep(0.35)
    assert rate_limit_acquire(account_id=4, limit=LIMIT, precedence=Precedence.YIELD).granted


def test_a_forgotten_reply_and_callers_without_precedence_are_not_held(redis_client):
    rate_limit_replies_expect(account_id=5, due=[(105, 0.0), (106, 0.0)])
    # the limiter's other callers (a campaign's mass-message call) decide as before
    assert rate_limit_acquire(account_id=5, limit=LIMIT).granted
    time.sleep(LIMIT.spacing_ms / 1000 + 0.01)
    rate_limit_replies_forget(account_id=5, message_ids=[105, 106])
    assert rate_limit_acquire(account_id=5, limit=LIMIT, precedence=Precedence.YIELD).granted


def test_a_reply_woken_after_a_lane_task_at_its_slot_still_goes_first(sandbox, send_queue):
    """The race the lane lost before: the welcome published earlier and the reply published
    later are both due at the account's next slot, and the welcome's task wakes first."""
    sandbox.configure(rate_limit_per_minute=0, min_interval_ms=0)  # show violations, no 429
    account = CreatorAccountFactory(send_rate_per_minute=60, send_min_interval_ms=1000)
    welcome_fans = [FanFactory(account=account) for _ in range(2)]
    welcomes = [
        services.message_enqueue(fan=fan, text=f"w{i}", sender_kind="automation")
        for i, fan in enumerate(welcome_fans)
    ]
    reply_fan = FanFactory(account=account)
    # the first welcome goes; the second is on the broker for the next slot
    dispatch.account_dispatch(account_id=account.pk)
    assert pipeline.message_deliver(message_id=welcomes[0].pk).result == "sent"
    dispatch.account_dispatch(account_id=account.pk)
    welcomes[1].refresh_from_db()
    assert welcomes[1].dispatched_at is not None

    # when: the chatter replies; its task is forecast at the same slot as the welcome's
    reply = services.message_enqueue(fan=reply_fan, text="hi")
    dispatch.account_dispatch(account_id=account.pk)
    reply.refresh_from_db()
    assert reply.dispatched_at is not None
    time.sleep(1.2 + 0.25)  # the interval, its guard and the forecast's lag: the slot is due
    lane = pipeline.message_deliver(message_id=welcomes[1].pk)  # the welcome wakes first
    replied = pipeline.message_deliver(message_id=reply.pk)

    # then: the reply took the slot; the welcome goes one slot later, the interval kept
    assert (lane.result, replied.result) == ("throttled", "sent")
    assert lane.retry_in == pytest.approx(1.2, abs=0.3)
    time.sleep(lane.retry_in or 0)
    assert pipeline.message_deliver(message_id=welcomes[1].pk).result == "sent"
    arrived = sorted(
        (m["arrived_at"], m["chat_id"])
        for m in sandbox.messages(account=account.platform_account_id)
    )
    order = [welcome_fans[0], reply_fan, welcome_fans[1]]
    assert [c for _, c in arrived] == [f.platform_fan_id for f in order]
    assert min(b[0] - a[0] for a, b in itertools.pairwise(arrived)) >= 1.0


def test_after_a_reply_the_lane_leaves_the_windows_last_place_to_the_next(redis_client):
    limit = RateLimit(per_minute=3, min_interval_ms=0)
    # given: a campaign alone takes the whole window, as before
    for _ in range(3):
        assert rate_limit_acquire(account_id=6, limit=limit, precedence=Precedence.YIELD).granted
    # and: on another account a reply went lately
    assert rate_limit_acquire(account_id=7, limit=limit, precedence=Precedence.REPLY).granted
    assert rate_limit_acquire(account_id=7, limit=limit, precedence=Precedence.YIELD).granted

    # when: the lane asks for the window's last place
    lane = rate_limit_acquire(account_id=7, limit=limit, precedence=Precedence.YIELD)

    # then: it is kept for the next reply, which takes it at once
    assert lane.yielded and lane.wait_seconds > 50  # until the window's oldest send leaves
    assert rate_limit_acquire(account_id=7, limit=limit, precedence=Precedence.REPLY).granted


def test_a_reply_with_nothing_left_to_send_stops_holding_the_lane(sandbox):
    # given: a reply the dispatcher published for the account's next slot
    account = CreatorAccountFactory(send_rate_per_minute=60, send_min_interval_ms=1000)
    reply = services.message_enqueue(fan=FanFactory(account=account), text="hi")
    dispatch.account_dispatch(account_id=account.pk)
    limit = dispatch.account_rate_limit(account)
    assert rate_limit_acquire(
        account_id=account.pk, limit=limit, precedence=Precedence.YIELD
    ).yielded

    # when: it failed meanwhile (gone from the backlog), and its task runs
    Message.objects.filter(pk=reply.pk).update(status=Message.Status.FAILED)
    assert pipeline.message_deliver(message_id=reply.pk).result == "skipped"

    # then: the lane takes the slot at once, not after the reply's hold
    assert rate_limit_acquire(
        account_id=account.pk, limit=limit, precedence=Precedence.YIELD
    ).granted


@pytest.mark.django_db(transaction=True)
def test_replies_queued_while_automated_messages_drain_each_wait_at_most_one_slot(
    worker_processes,  # noqa: F811
    sandbox,
):
    """Real workers on the real queue: 30 automated messages backlogged at a second a slot;
    a chatter replies five times at random points while they drain. No reply waits behind
    more than the one lane send already under way, and the account's pace holds."""
    sandbox.configure(rate_limit_per_minute=0, min_interval_ms=0)
    account = CreatorAccountFactory(send_rate_per_minute=60, send_min_interval_ms=500)
    for i in range(30):
        services.message_enqueue(
            fan=FanFactory(account=account), text=f"w{i}", sender_kind="automation"
        )
    chat_fans = [FanFactory(account=account) for _ in range(5)]
    worker_processes(2)
    lane_sent = Message.objects.filter(account=account, sender_kind="automation", status="sent")
    assert wait_for(lambda: lane_sent.count() >= 3, timeout=60), "workers sent nothing"

    rng = random.Random(25)
    replies = []
    for fan in chat_fans:
        time.sleep(rng.uniform(0.1, 1.0))  # anywhere in a slot
        reply = services.message_enqueue(fan=fan, text="a reply")
        assert wait_for(lambda r=reply: Message.objects.get(pk=r.pk).status == "sent", timeout=20)
        replies.append(Message.objects.get(pk=reply.pk))
    assert lane_sent.count() < 30, "the lane drained before the replies: nothing measured"

    ahead = [
        lane_sent.filter(sent_at__gt=r.queued_at, sent_at__lt=r.sent_at).count() for r in replies
    ]
    assert max(ahead) <= 1, ahead
    arrivals = sorted(
        m["arrived_at"] for m in sandbox.messages(account=account.platform_account_id)
    )
    assert min(b - a for a, b in itertools.pairwise(arrivals)) >= 0.5
