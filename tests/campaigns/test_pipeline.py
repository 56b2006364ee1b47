"""Campaigns through the real send pipeline: moto SQS, Redis, the sandbox over HTTP."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import DatabaseError

from campaigns import fanout, services
from campaigns.rules import segment_rules_parse
from campaigns.selectors import campaign_preflight, campaign_progress
from crm.models import Message
from onlyfans import services as send_services
from tests.campaigns.conftest import fan_out_all
from tests.factories import CreatorAccountFactory, FanFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def refreshed(message: Message) -> Message:
    message.refresh_from_db()
    return message


def test_campaign_reaches_each_recipient_once_even_after_a_crashed_fan_out(
    send_queue,
    sandbox,
    shop,
    make_fan,
    make_campaign,
    no_tasks,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    fans = [make_fan(display_name=f"Fan {i}") for i in range(12)]
    make_fan(platform_fan_id=None)
    rules = {"exclude_waiting": True}
    preflight = campaign_preflight(account=shop.account, rules=segment_rules_parse(rules))
    with django_capture_on_commit_callbacks(execute=True):
        campaign = services.campaign_launch(
            actor=shop.owner, campaign=make_campaign(rules=rules, text="Hello {name}")
        )
        fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=5)
    # a worker dies in the middle of the next batch (before it commits)
    from campaigns import fanout as module

    with monkeypatch.context() as patch:
        # (in the last statement: the batch was taken and its conversations written)
        failing = module._FAN_OUT_MESSAGES_SQL.replace("0, '', %(now)s", "1/0, '', %(now)s")
        assert failing != module._FAN_OUT_MESSAGES_SQL
        patch.setattr(module, "_FAN_OUT_MESSAGES_SQL", failing)
        with pytest.raises(DatabaseError), django_capture_on_commit_callbacks(execute=True):
            fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=5)
    # the task is delivered again, twice
    with django_capture_on_commit_callbacks(execute=True):
        fan_out_all(campaign.pk, batch_size=5)
        fan_out_all(campaign.pk, batch_size=5)
    messages = Message.objects.filter(campaign_id=campaign.pk)
    send_queue.drain(
        until=lambda: not messages.filter(status__in=["queued", "sending"]).exists(), timeout=30
    )
    # then: the platform got one message per fan, personalised, nothing for the unlinked fan
    stored = sandbox.messages(account=shop.account.platform_account_id)
    per_chat = Counter(s["chat_id"] for s in stored)
    assert set(per_chat) == {f.platform_fan_id for f in fans}
    assert set(per_chat.values()) == {1}
    assert {m.text for m in messages} == {f"Hello Fan {i}" for i in range(12)}
    assert {s["platform_message_id"] for s in stored} == {m.platform_message_id for m in messages}
    assert len(stored) == preflight.recipients == campaign.recipients_total
    campaign.refresh_from_db()
    progress = campaign_progress(campaign=campaign)
    assert (progress.sent, progress.failed, progress.remaining) == (12, 0, 0)
    assert services.campaign_finish_if_done(campaign_id=campaign.pk)


def test_chatter_reply_overtakes_a_draining_campaign(
    send_queue, sandbox, no_tasks, django_capture_on_commit_callbacks
):
    """30 sends a minute, 1 s apart: a slot about every 2 s. With the campaign's messages
    draining, a reply queued by a chatter leaves after at most one more campaign message."""
    account = CreatorAccountFactory(send_rate_per_minute=30, send_min_interval_ms=1000)
    owner = MembershipFactory(account=account, role="owner").user
    campaign_fans = [FanFactory(account=account) for _ in range(20)]
    chatting = FanFactory(account=account)
    data = services.CampaignInput(
        name="Drain", text="Promo", rules={"fan_ids": [f.pk for f in campaign_fans]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        campaign = services.campaign_create(actor=owner, account_id=account.pk, data=data)
        campaign = services.campaign_launch(actor=owner, campaign=campaign)
        fan_out_all(campaign.pk)
    campaign_messages = Message.objects.filter(campaign_id=campaign.pk)
    # the campaign drains: let two go
    send_queue.drain(until=lambda: campaign_messages.filter(status="sent").count() >= 2, timeout=20)
    # when: a chatter replies
    with django_capture_on_commit_callbacks(execute=True):
        reply = send_services.message_enqueue(fan=chatting, text="hey you", sent_by_id=owner.pk)
    send_queue.drain(until=lambda: refreshed(reply).status == "sent", timeout=20)
    reply = refreshed(reply)
    assert reply.sent_at is not None and reply.queued_at is not None
    # then: counted in slots, from the platform's own arrival order
    arrivals = sorted(
        sandbox.messages(account=account.platform_account_id), key=lambda s: s["arrived_at"]
    )
    keys = [s["idempotency_key"] for s in arrivals]
    reply_at = keys.index(str(reply.idempotency_key))
    sent_before_reply = set(
        campaign_messages.filter(sent_at__lte=reply.queued_at).values_list(
            "idempotency_key", flat=True
        )
    )
    overtaken_by = [k for k in keys[:reply_at] if k not in {str(x) for x in sent_before_reply}]
    assert len(overtaken_by) <= 1, f"{len(overtaken_by)} campaign messages left first"
    step = 60.2 / 30 + 0.2  # the limiter's steady step, with guard and lag
    assert (reply.sent_at - reply.queued_at).total_seconds() <= 2 * step
    assert campaign_messages.filter(status__in=["queued", "sending"]).count() > 10  # still draining


def test_the_pipeline_names_the_campaigns_table_as_campaigns_does():
    # onlyfans reads campaigns by table name (it may not import campaigns): the names hold.
    from campaigns.models import Campaign
    from onlyfans.dispatch import CAMPAIGN_TABLE

    assert Campaign._meta.db_table == CAMPAIGN_TABLE


@pytest.mark.parametrize("state", ["running", "paused", "cancelled", "done"])
def test_a_campaign_message_is_never_retried_outside_its_campaign(
    shop, make_fan, make_campaign, state
):
    from campaigns.models import Campaign
    from crm.errors import ApplicationError
    from tests.factories import MessageFactory

    campaign = make_campaign()
    Campaign.objects.filter(pk=campaign.pk).update(state=state)
    fan = make_fan()
    message = MessageFactory(
        conversation__fan=fan,
        conversation__account=shop.account,
        direction=Message.Direction.OUT,
        status=Message.Status.FAILED,
        sender_kind=Message.SenderKind.CAMPAIGN,
        campaign_id=campaign.pk,
    )
    with pytest.raises(ApplicationError) as refused:
        send_services.message_retry(message=message)
    assert refused.value.code == "campaign_message"
    assert refreshed(message).status == Message.Status.FAILED
