"""The event triggers end to end: a signed webhook at the real endpoint, the due pass, the
send pipeline over real SQS and Redis, the sandbox platform over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from automations.models import AutomationRun
from crm.errors import ApplicationError
from crm.models import Fan, Message
from tests.automations.conftest import subscription_body, webhook_body, webhook_post

pytestmark = pytest.mark.django_db

State = AutomationRun.State
Reason = AutomationRun.Reason


def drained(send_queue, messages) -> None:
    send_queue.drain(
        until=lambda: not messages.filter(status__in=["queued", "sending"]).exists(), timeout=30
    )


def test_a_new_subscriber_gets_one_welcome_after_the_delay_and_a_replay_changes_nothing(
    studio, make_automation, sandbox, send_queue, due_pass
):
    make_automation(
        text="Welcome {name|babe}, so happy you're here",
        delay_seconds=120,
        delay_spread_seconds=60,
    )
    body = subscription_body(studio.account, fan_id="7001", name="Mia")
    # when the platform tells us of a new subscriber
    before = timezone.now()
    assert webhook_post(body) == {"status": "accepted"}
    # then one run waits: due after the delay plus a part of the spread
    [run] = AutomationRun.objects.all()
    fan = Fan.objects.get(platform_fan_id="7001")
    assert (run.fan_id, run.state, run.is_control) == (fan.pk, State.SCHEDULED, False)
    assert before + timedelta(seconds=120) <= run.due_at <= timezone.now() + timedelta(seconds=180)
    # nothing goes before it is due
    assert due_pass(now=run.due_at - timedelta(seconds=1)).handled == 0
    assert not Message.objects.filter(direction="out").exists()
    # the same webhook again (a replay), and again later
    assert webhook_post(body) == {"status": "duplicate"}
    # when it is due
    assert due_pass(now=run.due_at + timedelta(seconds=1)).enqueued == 1
    run.refresh_from_db()
    assert run.state == State.ENQUEUED and run.message is not None
    assert (run.message.sender_kind, run.message.text) == (
        "automation",
        "Welcome Mia, so happy you're here",
    )
    drained(send_queue, Message.objects.filter(direction="out"))
    # then the platform got exactly one welcome, to that fan
    stored = sandbox.messages(account=studio.account.platform_account_id)
    run.message.refresh_from_db()
    assert [(s["chat_id"], s["platform_message_id"]) for s in stored] == [
        ("7001", run.message.platform_message_id)
    ]
    # a later pass and another replay send nothing more
    assert webhook_post(body) == {"status": "duplicate"}
    assert due_pass(now=run.due_at + timedelta(hours=1)).handled == 0
    assert len(sandbox.messages(account=studio.account.platform_account_id)) == 1
    assert AutomationRun.objects.count() == 1


def test_a_second_delivery_of_the_same_subscription_in_another_body_is_one_event(
    studio, make_automation
):
    make_automation()
    started = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    webhook_post(subscription_body(studio.account, fan_id="7002", subscribed_at=started))
    # the gateway sends it again with more fields (another body, so not a replay)
    webhook_post(
        subscription_body(
            studio.account, fan_id="7002", subscribed_at=started, expires_at=started + timedelta(30)
        )
    )
    # and once more without its start date
    webhook_post(subscription_body(studio.account, fan_id="7002", name="Zoe"))
    assert AutomationRun.objects.count() == 1


def test_a_fan_who_writes_during_the_delay_gets_no_welcome(
    studio, make_automation, sandbox, send_queue, due_pass
):
    make_automation(delay_seconds=300)
    webhook_post(subscription_body(studio.account, fan_id="7003"))
    [run] = AutomationRun.objects.all()
    # the fan writes first
    webhook_post(
        webhook_body(
            "messages.received",
            studio.account,
            {"id": "m-1", "fromUser": {"id": "7003"}, "text": "hi!"},
        )
    )
    run.refresh_from_db()
    assert (run.state, run.reason) == (State.CANCELLED, Reason.FAN_REPLIED)
    assert due_pass(now=run.due_at + timedelta(seconds=1)).handled == 0
    assert not Message.objects.filter(direction="out").exists()
    assert sandbox.messages(account=studio.account.platform_account_id) == []


def test_a_fan_who_wrote_unseen_by_the_signal_is_caught_when_the_run_is_due(
    studio, make_automation, due_pass
):
    """The cancel at the fan's message is a courtesy; the check when due is the rule (a
    message imported by the sync, say, sends no signal)."""
    from tests.factories import MessageFactory

    make_automation(delay_seconds=300)
    webhook_post(subscription_body(studio.account, fan_id="7004"))
    [run] = AutomationRun.objects.all()
    fan = Fan.objects.get(platform_fan_id="7004")
    from crm.models import Conversation

    conversation, _ = Conversation.objects.get_or_create(fan=fan, account=studio.account)
    MessageFactory(conversation=conversation)
    assert due_pass(now=run.due_at + timedelta(seconds=1)).cancelled == 1
    run.refresh_from_db()
    assert run.reason == Reason.FAN_REPLIED


def test_a_chatter_writing_first_cancels_the_welcome(
    studio, make_automation, django_capture_on_commit_callbacks
):
    from automations.due import automation_runs_due_process
    from onlyfans.services import message_enqueue

    make_automation(name="Later", delay_seconds=300)
    make_automation(name="At once")
    webhook_post(subscription_body(studio.account, fan_id="7005"))
    # the one without delay is already in the pipeline's backlog
    with django_capture_on_commit_callbacks(execute=False):
        assert automation_runs_due_process(now=timezone.now() + timedelta(seconds=1)).enqueued
    fan = Fan.objects.get(platform_fan_id="7005")
    with django_capture_on_commit_callbacks(execute=True):
        message_enqueue(fan=fan, text="hey, welcome!", sent_by_id=studio.chatter.pk)
    runs = AutomationRun.objects.select_related("message")
    assert {(r.automation.name, r.state, r.reason) for r in runs} == {
        ("Later", State.CANCELLED, Reason.CHATTER_WROTE),
        ("At once", State.CANCELLED, Reason.CHATTER_WROTE),
    }
    withdrawn = Message.objects.get(pk=runs.get(automation__name="At once").message_id)
    assert (withdrawn.status, withdrawn.last_error) == (
        "failed",
        "withdrawn: a chatter wrote to the fan before it was sent",
    )


def test_renewal_and_return_after_an_expiry_fire_their_own_automations(studio, make_automation):
    welcome = make_automation(name="Welcome")
    thanks = make_automation(name="Thanks", trigger="renewed")
    back = make_automation(name="Welcome back", trigger="returned_after_expiry")
    now = timezone.now()
    first_end = now - timedelta(days=3)
    fan = Fan.objects.create(
        account=studio.account,
        platform_fan_id="7006",
        username="returner",
        subscription_state=Fan.SubscriptionState.EXPIRED,
        subscribed_at=first_end - timedelta(days=30),
        subscription_expires_at=first_end,
    )
    # the fan comes back
    webhook_post(
        subscription_body(
            studio.account, fan_id="7006", subscribed_at=now, expires_at=now + timedelta(days=30)
        )
    )
    assert list(AutomationRun.objects.values_list("automation_id", flat=True)) == [back.pk]
    # a month later it renews; the renewal replayed is the same event
    renewal = subscription_body(
        studio.account,
        fan_id="7006",
        event="subscriptions.renewed",
        expires_at=now + timedelta(days=60),
    )
    webhook_post(renewal)
    webhook_post(renewal)
    runs = AutomationRun.objects.filter(fan=fan)
    assert sorted(runs.values_list("automation_id", flat=True)) == sorted([back.pk, thanks.pk])
    assert not runs.filter(automation=welcome).exists()


def test_an_unlinked_or_filtered_fan_is_not_triggered(studio, make_automation):
    make_automation(rules={"spend_min_cents": 10_000})
    webhook_post(subscription_body(studio.account, fan_id="7007"))
    assert AutomationRun.objects.count() == 0


def test_a_disabled_automation_fires_nothing_and_turning_one_off_cancels_its_runs(
    studio, make_automation
):
    from automations.services import automation_disable

    make_automation(name="Off", enabled=False, enabled_at=None)
    on = make_automation(name="On", delay_seconds=600)
    webhook_post(subscription_body(studio.account, fan_id="7008"))
    [run] = AutomationRun.objects.all()
    assert run.automation_id == on.pk
    automation_disable(actor=studio.owner, automation=on)
    run.refresh_from_db()
    assert (run.state, run.reason) == (State.CANCELLED, Reason.DISABLED)


def test_a_welcome_still_waiting_in_the_backlog_is_withdrawn_when_the_fan_writes(
    studio, make_automation, sandbox, send_queue, django_capture_on_commit_callbacks
):
    from automations.due import automation_runs_due_process
    from onlyfans.dispatch import outbox_sweep

    make_automation()
    webhook_post(subscription_body(studio.account, fan_id="7010"))
    # handed to the pipeline, still in its backlog (not on the broker yet)
    with django_capture_on_commit_callbacks(execute=False):
        assert automation_runs_due_process(now=timezone.now() + timedelta(seconds=1)).enqueued
    run = AutomationRun.objects.get()
    assert run.state == State.ENQUEUED
    webhook_post(
        webhook_body(
            "messages.received",
            studio.account,
            {"id": "m-10", "fromUser": {"id": "7010"}, "text": "hello"},
        )
    )
    run.refresh_from_db()
    message = Message.objects.get(pk=run.message_id)
    assert (run.state, run.reason) == (State.CANCELLED, Reason.FAN_REPLIED)
    assert (message.status, message.last_error) == (
        "failed",
        "withdrawn: the fan wrote before it was sent",
    )
    outbox_sweep()
    send_queue.drain(timeout=5)
    assert sandbox.messages(account=studio.account.platform_account_id) == []


def test_a_withdrawn_welcome_is_not_sent_again_by_retry(
    studio, make_automation, django_capture_on_commit_callbacks
):
    from automations.due import automation_runs_due_process
    from onlyfans.services import message_retry

    make_automation()
    webhook_post(subscription_body(studio.account, fan_id="7011"))
    with django_capture_on_commit_callbacks(execute=False):
        automation_runs_due_process(now=timezone.now() + timedelta(seconds=1))
    webhook_post(
        webhook_body(
            "messages.received",
            studio.account,
            {"id": "m-11", "fromUser": {"id": "7011"}, "text": "yo"},
        )
    )
    withdrawn = Message.objects.get(sender_kind="automation")
    assert withdrawn.status == "failed"
    with pytest.raises(ApplicationError) as refused:
        message_retry(message=withdrawn)
    assert refused.value.code == "automation_withdrawn"
