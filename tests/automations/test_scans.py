"""The scan triggers: expiring soon and expired N days ago on the account's clock (across a
change of the clocks in Europe/Berlin), PPV not unlocked, no reply; each once per event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from automations.models import AutomationRun
from automations.runs import automation_runs_scan
from automations.triggers import trigger_hits
from crm.models import Conversation, Fan, Message, Purchase
from tests.factories import ConversationFactory, FanFactory, MessageFactory

pytestmark = pytest.mark.django_db

State = AutomationRun.State
Reason = AutomationRun.Reason
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def drained(send_queue) -> None:
    send_queue.drain(
        until=lambda: not Message.objects.filter(status__in=["queued", "sending"]).exists(),
        timeout=30,
    )


def test_expiring_soon_counts_hours_on_the_accounts_clock_across_spring_forward(
    studio, make_automation, sandbox, send_queue, due_pass
):
    """Berlin moves its clocks forward on Sunday 28 March 2027 (02:00 -> 03:00). A
    subscription ending Monday 29 March at 10:00 (08:00 UTC) is nudged 48 hours earlier on
    the clock: Saturday 27 March at 10:00 (09:00 UTC), 47 real hours before."""
    nudge = make_automation(
        trigger="expiring_soon", trigger_value=48, text="Ends soon, {name}!", enabled_at=LONG_AGO
    )
    fan = FanFactory(
        account=studio.account,
        display_name="Ada",
        subscription_state=Fan.SubscriptionState.ACTIVE,
        subscription_expires_at=at(2027, 3, 29, 8, 0),
    )
    FanFactory(  # ends a week later: not yet
        account=studio.account,
        subscription_state=Fan.SubscriptionState.ACTIVE,
        subscription_expires_at=at(2027, 4, 5, 8, 0),
    )
    # 48 real hours before the end is not it
    assert automation_runs_scan(automation=nudge, now=at(2027, 3, 27, 8, 30)) == []
    assert automation_runs_scan(automation=nudge, now=at(2027, 3, 27, 8, 59, 59)) == []
    # 10:00 on the account's clock is
    [run] = automation_runs_scan(automation=nudge, now=at(2027, 3, 27, 9, 0, 30))
    assert (run.fan_id, run.triggered_at, run.due_at) == (
        fan.pk,
        at(2027, 3, 27, 9, 0),
        at(2027, 3, 27, 9, 0),
    )
    # the next scans find it made (the scan's key in SQL is the run's)
    assert (
        trigger_hits(automation=nudge, since=LONG_AGO, until=at(2027, 3, 27, 9, 1, 30), live=True)
        == []
    )
    assert automation_runs_scan(automation=nudge, now=at(2027, 3, 27, 9, 1, 30)) == []
    assert due_pass(now=at(2027, 3, 27, 9, 0, 45)).enqueued == 1
    drained(send_queue)
    assert [s["chat_id"] for s in sandbox.messages()] == [fan.platform_fan_id]
    assert Message.objects.get(direction="out").text == "Ends soon, Ada!"


def test_expired_days_ago_is_the_same_time_of_day_n_days_on_across_fall_back(
    studio, make_automation, due_pass
):
    """Berlin's clocks go back on Sunday 25 October 2026 (03:00 -> 02:00). A subscription
    that ended Friday 23 October at 10:00 (08:00 UTC) is three days ago on Monday 26 October
    at 10:00 (09:00 UTC): 73 real hours."""
    winback = make_automation(
        trigger="expired_days_ago", trigger_value=3, enabled_at=at(2026, 10, 1)
    )
    fan = FanFactory(
        account=studio.account,
        subscription_state=Fan.SubscriptionState.EXPIRED,
        subscription_expires_at=at(2026, 10, 23, 8, 0),
    )
    assert automation_runs_scan(automation=winback, now=at(2026, 10, 26, 8, 30)) == []
    [run] = automation_runs_scan(automation=winback, now=at(2026, 10, 26, 9, 0, 10))
    assert (run.fan_id, run.triggered_at) == (fan.pk, at(2026, 10, 26, 9, 0))
    later = at(2026, 10, 26, 9, 5)
    assert trigger_hits(automation=winback, since=LONG_AGO, until=later, live=True) == []
    assert due_pass(now=at(2026, 10, 26, 9, 1)).enqueued == 1


def test_expired_days_ago_across_spring_forward_is_71_real_hours(studio, make_automation):
    winback = make_automation(trigger="expired_days_ago", trigger_value=3, enabled_at=LONG_AGO)
    fan = FanFactory(
        account=studio.account,
        subscription_state=Fan.SubscriptionState.EXPIRED,
        # Friday 26 March 2027 10:00 in Berlin (winter time)
        subscription_expires_at=at(2027, 3, 26, 9, 0),
    )
    assert automation_runs_scan(automation=winback, now=at(2027, 3, 29, 7, 59)) == []
    [run] = automation_runs_scan(automation=winback, now=at(2027, 3, 29, 8, 0, 5))
    assert (run.fan_id, run.triggered_at) == (fan.pk, at(2027, 3, 29, 8, 0))


def test_a_renewal_during_the_delay_cancels_the_expiring_nudge(studio, make_automation, due_pass):
    from tests.automations.conftest import subscription_body, webhook_post

    nudge = make_automation(
        trigger="expiring_soon", trigger_value=24, delay_seconds=3600, enabled_at=LONG_AGO
    )
    from django.utils import timezone

    now = timezone.now()
    fan = FanFactory(
        account=studio.account,
        platform_fan_id="8001",
        subscription_state=Fan.SubscriptionState.ACTIVE,
        subscribed_at=now - timedelta(days=29),
        subscription_expires_at=now + timedelta(hours=20),
    )
    [run] = automation_runs_scan(automation=nudge, now=now)
    assert run.fan_id == fan.pk
    webhook_post(
        subscription_body(
            studio.account,
            fan_id="8001",
            event="subscriptions.renewed",
            expires_at=now + timedelta(days=30, hours=20),
        )
    )
    run.refresh_from_db()
    assert (run.state, run.reason) == (State.CANCELLED, Reason.TRIGGER_NO_LONGER_HOLDS)
    # the new end date is a new event: nudged again before it
    [again] = automation_runs_scan(automation=nudge, now=now + timedelta(days=30))
    assert again.event_key != run.event_key


def test_a_subscription_that_changed_unseen_is_caught_when_the_run_is_due(
    studio, make_automation, due_pass
):
    winback = make_automation(trigger="expired_days_ago", trigger_value=2, enabled_at=LONG_AGO)
    fan = FanFactory(
        account=studio.account,
        subscription_state=Fan.SubscriptionState.EXPIRED,
        subscription_expires_at=at(2027, 5, 1, 10, 0),
    )
    [run] = automation_runs_scan(automation=winback, now=at(2027, 5, 3, 10, 0, 30))
    # the sync saw the fan back (no signal from there)
    Fan.objects.filter(pk=fan.pk).update(
        subscription_state=Fan.SubscriptionState.ACTIVE,
        subscribed_at=at(2027, 5, 3, 9, 0),
        subscription_expires_at=at(2027, 6, 3, 9, 0),
    )
    assert due_pass(now=at(2027, 5, 3, 10, 1)).cancelled == 1
    run.refresh_from_db()
    assert run.reason == Reason.TRIGGER_NO_LONGER_HOLDS


def _ppv(fan: Fan, *, sent_at: datetime, **fields) -> Message:
    conversation = Conversation.objects.filter(fan=fan).first() or ConversationFactory(fan=fan)
    return MessageFactory(
        conversation=conversation,
        direction=Message.Direction.OUT,
        status=Message.Status.SENT,
        sender_kind=Message.SenderKind.USER,
        price_cents=1500,
        media_ids=["m1"],
        sent_at=sent_at,
        platform_message_id=f"p{fan.pk}-{sent_at.timestamp()}",
        **fields,
    )


def test_ppv_not_unlocked_follows_up_and_an_unlock_or_a_purchase_cancels_it(
    studio, make_automation, due_pass
):
    from tests.automations.conftest import webhook_body, webhook_post

    follow = make_automation(
        trigger="ppv_not_unlocked", trigger_value=6, delay_seconds=600, enabled_at=LONG_AGO
    )
    sent = at(2027, 2, 1, 12, 0)
    [keeps, unlocks, tips, opened] = [FanFactory(account=studio.account) for _ in range(4)]
    ppvs = {fan.pk: _ppv(fan, sent_at=sent) for fan in (keeps, unlocks, tips, opened)}
    # unlocked before the N hours: no follow-up
    Purchase.objects.create(
        account=studio.account,
        fan=opened,
        kind="ppv",
        amount_cents=1500,
        purchased_at=sent + timedelta(hours=1),
        message=ppvs[opened.pk],
    )
    assert automation_runs_scan(automation=follow, now=sent + timedelta(hours=5)) == []
    runs = automation_runs_scan(automation=follow, now=sent + timedelta(hours=6, seconds=30))
    assert {r.fan_id for r in runs} == {keeps.pk, unlocks.pk, tips.pk}
    assert (
        trigger_hits(
            automation=follow,
            since=LONG_AGO,
            until=sent + timedelta(hours=6, seconds=40),
            live=True,
        )
        == []
    )
    assert {r.source_message_id for r in runs} == {
        ppvs[f].pk for f in (keeps.pk, unlocks.pk, tips.pk)
    }
    # during the delay one fan unlocks it, another tips
    webhook_post(
        webhook_body(
            "messages.ppv.unlocked",
            studio.account,
            {
                "user": {"id": unlocks.platform_fan_id},
                "messageId": ppvs[unlocks.pk].platform_message_id,
                "price": 15,
            },
        )
    )
    webhook_post(
        webhook_body(
            "transactions.new",
            studio.account,
            {"type": "tip", "id": "t-1", "amountGross": 5, "user": {"id": tips.platform_fan_id}},
        )
    )
    by_fan = {r.fan_id: r for r in AutomationRun.objects.all()}
    assert by_fan[unlocks.pk].reason == by_fan[tips.pk].reason == Reason.FAN_BOUGHT
    assert due_pass(now=sent + timedelta(hours=7)).enqueued == 1
    assert AutomationRun.objects.get(fan=keeps).state == State.ENQUEUED
    # the follow-up itself (an automation's message) is never followed up
    Message.objects.filter(sender_kind="automation").update(
        status="sent", sent_at=sent + timedelta(hours=7), price_cents=1500
    )
    assert automation_runs_scan(automation=follow, now=sent + timedelta(hours=14)) == []


def test_no_reply_nudges_a_waiting_fan_once_and_a_chatters_answer_cancels_it(
    studio, make_automation, due_pass, django_capture_on_commit_callbacks
):
    from onlyfans.services import message_enqueue

    nudge = make_automation(
        trigger="no_reply", trigger_value=30, delay_seconds=120, enabled_at=LONG_AGO
    )
    waiting = at(2027, 2, 2, 20, 0)
    [patient, answered] = [FanFactory(account=studio.account) for _ in range(2)]
    for fan in (patient, answered):
        ConversationFactory(fan=fan, waiting_since=waiting)
    assert automation_runs_scan(automation=nudge, now=waiting + timedelta(minutes=29)) == []
    runs = automation_runs_scan(automation=nudge, now=waiting + timedelta(minutes=31))
    assert {r.fan_id for r in runs} == {patient.pk, answered.pk}
    assert (
        trigger_hits(
            automation=nudge, since=LONG_AGO, until=waiting + timedelta(minutes=32), live=True
        )
        == []
    )
    with django_capture_on_commit_callbacks(execute=True):
        message_enqueue(fan=answered, text="sorry, here now", sent_by_id=studio.chatter.pk)
    assert AutomationRun.objects.get(fan=answered).reason == Reason.CHATTER_WROTE
    # the waiting fan writing again does not cancel their nudge (it is about the wait)
    from tests.automations.conftest import webhook_body, webhook_post

    webhook_post(
        webhook_body(
            "messages.received",
            studio.account,
            {"id": "m-9", "fromUser": {"id": patient.platform_fan_id}, "text": "hello??"},
        )
    )
    assert AutomationRun.objects.get(fan=patient).state == State.SCHEDULED


def test_turning_a_scan_on_does_not_reach_back_before_it(studio, make_automation):
    from django.utils import timezone

    now = timezone.now()
    follow = make_automation(trigger="ppv_not_unlocked", trigger_value=2, enabled_at=now)
    _ppv(FanFactory(account=studio.account), sent_at=now - timedelta(hours=5))
    assert automation_runs_scan(automation=follow, now=now + timedelta(minutes=1)) == []
