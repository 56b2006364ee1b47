"""The rules that protect fans: quiet hours, the per-fan cap across automations and
campaigns, the control group; the campaign lane; screening; cancelling by hand."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.runs import automation_run_cancel, automation_runs_on_subscription
from automations.selectors import automation_run_get, runs_pending_for_fan
from campaigns import fanout
from campaigns import services as campaign_services
from campaigns.models import CampaignRecipient
from crm.errors import ApplicationError, NotFoundError
from crm.models import Fan, Message
from tests.automations.conftest import subscription_body, webhook_post
from tests.factories import FanFactory, MembershipFactory

pytestmark = pytest.mark.django_db

State = AutomationRun.State
Reason = AutomationRun.Reason


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def drained(send_queue) -> None:
    send_queue.drain(
        until=lambda: not Message.objects.filter(status__in=["queued", "sending"]).exists(),
        timeout=45,
    )


def subscribed(fan: Fan, *, now: datetime) -> list[AutomationRun]:
    """What the subscription webhook's signal does, at ``now``."""
    fan.subscription_state = Fan.SubscriptionState.ACTIVE
    fan.subscribed_at = now
    fan.save()
    return automation_runs_on_subscription(
        account=fan.account,
        fan=fan,
        event="subscriptions.new",
        previous_state=Fan.SubscriptionState.NEVER,
        previous_expires_at=None,
        now=now,
    )


def test_quiet_hours_hold_a_welcome_until_morning_on_the_accounts_clock(
    studio, make_automation, sandbox, send_queue, due_pass
):
    make_automation(delay_seconds=60, quiet_hours_start=time(22, 0), quiet_hours_end=time(8, 0))
    fan = FanFactory(account=studio.account)
    # 22:30 in Berlin (21:30 UTC, winter time)
    [run] = subscribed(fan, now=at(2027, 1, 15, 21, 30))
    # due at 08:00 Berlin the next morning, not at 22:31
    assert run.due_at == at(2027, 1, 16, 7, 0)
    assert due_pass(now=at(2027, 1, 15, 21, 31, 30)).handled == 0
    assert due_pass(now=at(2027, 1, 16, 6, 59, 59)).handled == 0
    assert due_pass(now=at(2027, 1, 16, 7, 0, 5)).enqueued == 1
    drained(send_queue)
    assert [s["chat_id"] for s in sandbox.messages()] == [fan.platform_fan_id]


def test_a_run_that_comes_due_late_into_quiet_hours_waits_for_their_end(
    studio, make_automation, due_pass
):
    make_automation(
        delay_seconds=60,
        delay_spread_seconds=600,
        quiet_hours_start=time(22, 0),
        quiet_hours_end=time(8, 0),
    )
    fan = FanFactory(account=studio.account)
    # due at 21:50 Berlin in summer (19:50 UTC), but the pass only gets to it at 22:10
    [run] = subscribed(fan, now=at(2027, 7, 1, 19, 40))
    assert run.due_at < at(2027, 7, 1, 20, 0)
    result = due_pass(now=at(2027, 7, 1, 20, 10))
    assert (result.held, result.enqueued) == (1, 0)
    run.refresh_from_db()
    # 08:00 Berlin summer time is 06:00 UTC, plus a part of the spread
    assert at(2027, 7, 2, 6, 0) <= run.due_at <= at(2027, 7, 2, 6, 10)
    assert run.state == State.SCHEDULED


def test_one_automated_message_per_fan_per_window_across_automations_and_campaigns(
    studio, make_automation, sandbox, send_queue, due_pass, settings
):
    settings.AUTOMATION_FAN_CAP_HOURS = 24
    first = make_automation(name="Welcome", text="Welcome!")
    second = make_automation(name="Welcome offer", text="Here's a gift")
    both, reached, reached_long_ago, mass_reached = (
        FanFactory(account=studio.account, username=n) for n in ("both", "c1", "c2", "mass")
    )
    # a campaign reaches two fans: one now, one (as if) 25 hours ago
    campaign = campaign_services.campaign_create(
        actor=studio.owner,
        account_id=studio.account.pk,
        data=campaign_services.CampaignInput(
            name="Sale", text="Sale today", rules={"fan_ids": [reached.pk, reached_long_ago.pk]}
        ),
    )
    campaign_services.campaign_launch(actor=studio.owner, campaign=campaign)
    fanout.campaign_fan_out_batch(campaign_id=campaign.pk)
    Message.objects.filter(campaign_id=campaign.pk, conversation__fan=reached_long_ago).update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    # and a mass message reached another two hours ago
    CampaignRecipient.objects.create(
        campaign=campaign,
        fan=mass_reached,
        state=CampaignRecipient.State.MASS_SENT,
        sent_at=timezone.now() - timedelta(hours=2),
    )
    now = timezone.now()
    for fan in (both, reached, reached_long_ago, mass_reached):
        subscribed(fan, now=now)
    assert AutomationRun.objects.filter(state=State.SCHEDULED).count() == 8
    result = due_pass(now=now + timedelta(seconds=1))
    # then: one welcome for "both", one for the fan the campaign reached long ago
    assert (result.enqueued, result.skipped) == (2, 6)
    sent = AutomationRun.objects.filter(state=State.ENQUEUED)
    assert {r.fan_id for r in sent} == {both.pk, reached_long_ago.pk}
    assert set(
        AutomationRun.objects.filter(state=State.SKIPPED).values_list("reason", flat=True)
    ) == {Reason.FREQUENCY_CAP}
    # the first automation (by due time) won for "both"; a later pass changes nothing
    assert {r.automation_id for r in sent.filter(fan=both)} <= {first.pk, second.pk}
    assert due_pass(now=now + timedelta(hours=1)).handled == 0
    drained(send_queue)
    per_chat = Counter(s["chat_id"] for s in sandbox.messages())
    # the campaign's two messages and the two welcomes, nothing else
    assert per_chat == Counter(
        {
            both.platform_fan_id: 1,
            reached.platform_fan_id: 1,
            reached_long_ago.platform_fan_id: 2,
        }
    )


def test_the_control_group_is_held_out_at_random_and_never_sent(
    studio, make_automation, sandbox, send_queue, due_pass
):
    automation = make_automation(control_percent=50)
    now = timezone.now()
    fans = [FanFactory(account=studio.account) for _ in range(24)]
    for fan in fans:
        subscribed(fan, now=now)
    runs = AutomationRun.objects.filter(automation=automation)
    control = set(runs.filter(state=State.HELD_CONTROL).values_list("fan_id", flat=True))
    assert set(runs.filter(is_control=True).values_list("fan_id", flat=True)) == control
    assert 4 <= len(control) <= 20  # half of 24, at random (seeded)
    assert due_pass(now=now + timedelta(seconds=1)).enqueued == len(fans) - len(control)
    assert due_pass(now=now + timedelta(days=2)).handled == 0
    assert not runs.filter(is_control=True, message__isnull=False).exists()
    drained(send_queue)
    reached = {s["chat_id"] for s in sandbox.messages()}
    assert reached == {f.platform_fan_id for f in fans if f.pk not in control}


def test_automation_messages_ride_the_campaign_lane_behind_a_chatters_reply(
    studio, make_automation, due_pass
):
    from onlyfans.dispatch import _claim_two_lanes
    from onlyfans.services import message_enqueue

    make_automation()
    [fan, other] = [FanFactory(account=studio.account) for _ in range(2)]
    [run] = subscribed(fan, now=timezone.now())
    automation_message = None
    from automations.due import automation_run_process

    assert automation_run_process(run_id=run.pk) == "enqueued"
    automation_message = Message.objects.get(sender_kind="automation")
    reply = message_enqueue(fan=other, text="a reply", sent_by_id=studio.chatter.pk)
    # no campaign runs: the automation's message is still claimed, after the reply
    direct, lane = _claim_two_lanes(
        studio.account.pk, budget=10, campaign_budget=1, campaign_running=False
    )
    assert (direct, lane) == ([reply.pk], [automation_message.pk])
    # it does not answer the fan: a fan waiting stays waiting
    assert automation_message.conversation.waiting_since is None


def test_an_automations_message_leaves_the_fans_wait_alone(studio, make_automation):
    from automations.due import automation_run_process
    from tests.factories import ConversationFactory

    make_automation(trigger="no_reply", trigger_value=5, enabled_at=at(2026, 1, 1))
    fan = FanFactory(account=studio.account)
    waiting = timezone.now() - timedelta(minutes=10)
    conversation = ConversationFactory(fan=fan, waiting_since=waiting)
    from automations.runs import automation_runs_scan

    [run] = automation_runs_scan(automation=Automation.objects.get(), now=timezone.now())
    assert automation_run_process(run_id=run.pk) == "enqueued"
    conversation.refresh_from_db()
    assert conversation.waiting_since == waiting


def test_a_screened_automation_is_refused_by_the_gateway_for_its_words(
    studio, make_automation, sandbox, send_queue, due_pass
):
    sandbox.configure(banned_words=["telegram"])
    make_automation(text="Add my telegram, {name}", block_banned_words="strict_ban")
    fan = FanFactory(account=studio.account)
    now = timezone.now()
    subscribed(fan, now=now)
    assert due_pass(now=now + timedelta(seconds=1)).enqueued == 1
    drained(send_queue)
    message = Message.objects.get(sender_kind="automation")
    assert message.status == Message.Status.FAILED
    assert message.last_error.startswith("banned_words")
    assert sandbox.messages() == []


def test_the_pipeline_reads_the_automation_tables_by_their_names():
    from onlyfans.dispatch import AUTOMATION_RUN_TABLE, AUTOMATION_TABLE

    assert Automation._meta.db_table == AUTOMATION_TABLE
    assert AutomationRun._meta.db_table == AUTOMATION_RUN_TABLE
    assert AutomationRun._meta.get_field("message").column == "message_id"


def test_a_member_cancels_a_pending_message_from_the_fan_panel(
    studio, make_automation, other_account, django_assert_num_queries
):
    make_automation(delay_seconds=600)
    fan = FanFactory(account=studio.account)
    [run] = subscribed(fan, now=timezone.now())
    with django_assert_num_queries(2):  # the membership, the runs with their automation
        pending = list(runs_pending_for_fan(user=studio.chatter, fan=fan))
        assert [p.automation.name for p in pending] == [run.automation.name]
    stranger = MembershipFactory(account=other_account, role="owner").user
    with pytest.raises(NotFoundError):
        automation_run_get(user=stranger, run_id=run.pk)
    with pytest.raises(NotFoundError):
        automation_run_cancel(run=run, by_user=stranger)
    cancelled = automation_run_cancel(run=run, by_user=studio.chatter)
    assert (cancelled.state, cancelled.reason, cancelled.cancelled_by_id) == (
        State.CANCELLED,
        Reason.MANUAL,
        studio.chatter.pk,
    )
    with pytest.raises(ApplicationError) as refused:
        automation_run_cancel(run=run, by_user=studio.chatter)
    assert refused.value.code == "not_pending"
    assert list(runs_pending_for_fan(user=studio.chatter, fan=fan)) == []


def test_a_webhook_burst_creates_one_run_per_subscriber_in_the_webhook(studio, make_automation):
    make_automation(delay_seconds=30, delay_spread_seconds=90)
    for n in range(30):
        webhook_post(subscription_body(studio.account, fan_id=f"9{n:03d}"))
    runs = AutomationRun.objects.all()
    assert runs.count() == 30
    # a human-looking spread: no two at the same second
    assert len({r.due_at.replace(microsecond=0) for r in runs}) > 20


def test_a_run_due_long_ago_is_cancelled_as_expired_not_sent_late(
    studio, make_automation, due_pass, settings
):
    settings.AUTOMATION_RUN_EXPIRE_HOURS = 6
    make_automation(delay_seconds=60)
    late_fan, fresh_fan = FanFactory(account=studio.account), FanFactory(account=studio.account)
    [late] = subscribed(late_fan, now=at(2027, 1, 15, 9, 0))
    [fresh] = subscribed(fresh_fan, now=at(2027, 1, 15, 12, 0))

    # Beat was down until 15:02: the first run was due 6 h 1 min ago, the other 3 h ago.
    result = due_pass(now=at(2027, 1, 15, 15, 2))

    assert (result.cancelled, result.enqueued) == (1, 1)
    late.refresh_from_db()
    fresh.refresh_from_db()
    assert (late.state, late.reason) == (State.CANCELLED, Reason.EXPIRED)
    assert late.message_id is None
    assert fresh.state == State.ENQUEUED
