"""Launch, fan-out, personalisation, pause/resume/cancel, restarts and scoping (no broker:
on-commit side effects do not run in these tests, and fan-out batches run in the test)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from campaigns import fanout, services
from campaigns.models import Campaign, CampaignRecipient
from campaigns.rules import segment_rules_parse
from campaigns.selectors import campaign_preflight, campaign_progress
from crm.errors import ApplicationError
from crm.models import Conversation, Message
from onlyfans.pipeline import message_deliver
from tests.campaigns.conftest import fan_out_all
from tests.factories import ConversationFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def test_launch_snapshots_the_audience_and_fan_out_queues_personalised_messages(
    shop, make_fan, make_campaign
):
    ann = make_fan(display_name="Ann", username="ann")
    bob = make_fan(display_name="", username="bob")
    make_fan(username="ghost", platform_fan_id=None)
    campaign = make_campaign(text="Hi {name|babe} (@{username})", price_cents=0)
    # when
    campaign = services.campaign_launch(actor=shop.owner, campaign=campaign)
    # then: recipients snapshotted, nothing sent yet
    assert campaign.state == Campaign.State.RUNNING
    assert campaign.sent_as == "individual"
    assert campaign.recipients_total == 2
    assert campaign.unlinked_skipped == 1
    assert Message.objects.count() == 0
    assert fan_out_all(campaign.pk) == 2
    messages = {m.conversation.fan_id: m for m in Message.objects.select_related("conversation")}
    assert messages[ann.pk].text == "Hi Ann (@ann)"
    assert messages[bob.pk].text == "Hi babe (@bob)"
    for message in messages.values():
        assert message.status == Message.Status.QUEUED
        assert message.sender_kind == Message.SenderKind.CAMPAIGN
        assert message.campaign_id == campaign.pk
    assert len({m.idempotency_key for m in messages.values()}) == 2
    recipients = CampaignRecipient.objects.filter(campaign=campaign)
    assert {r.state for r in recipients} == {"queued"}
    assert {r.message_id for r in recipients} == {m.pk for m in messages.values()}


def test_campaign_message_leaves_a_waiting_fan_waiting(shop, make_fan, make_campaign):
    fan = make_fan()
    since = timezone.now()
    ConversationFactory(fan=fan, waiting_since=since)
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    fan_out_all(campaign.pk)
    conversation = Conversation.objects.get(fan=fan)
    assert conversation.waiting_since == since
    assert conversation.last_message_direction == "out"


def test_preflight_counts_equal_what_is_queued(shop, make_fan, make_campaign):
    for i in range(40):
        make_fan(
            tags=["vip"] if i % 4 else ["vip", "dnd"],
            platform_fan_id=None if i == 7 else str(9000 + i),
        )
    rules = {"include_tags": ["vip"], "exclude_tags": ["dnd"]}
    preflight = campaign_preflight(
        account=shop.account, rules=segment_rules_parse(rules), control_percent=10
    )
    campaign = make_campaign(rules=rules, control_percent=10)
    campaign = services.campaign_launch(actor=shop.owner, campaign=campaign)
    fan_out_all(campaign.pk, batch_size=7)
    assert campaign.recipients_total == preflight.recipients == Message.objects.count()
    assert campaign.control_total == preflight.control == 2
    assert campaign.unlinked_skipped == preflight.unlinked == 1


def test_control_group_is_random_stored_and_gets_nothing(shop, make_fan, make_campaign):
    fans = [make_fan() for _ in range(50)]
    first = services.campaign_launch(actor=shop.owner, campaign=make_campaign(control_percent=20))
    second = services.campaign_launch(actor=shop.owner, campaign=make_campaign(control_percent=20))
    fan_out_all(first.pk)
    control = set(
        CampaignRecipient.objects.filter(campaign=first, is_control=True).values_list(
            "fan_id", flat=True
        )
    )
    assert len(control) == 10
    assert CampaignRecipient.objects.filter(campaign=first, state="control").count() == 10
    messaged = set(
        Message.objects.filter(campaign_id=first.pk).values_list("conversation__fan_id", flat=True)
    )
    assert messaged == {f.pk for f in fans} - control
    other = set(
        CampaignRecipient.objects.filter(campaign=second, is_control=True).values_list(
            "fan_id", flat=True
        )
    )
    assert other != control  # chosen at random per campaign (1 in C(50,10) to collide)


def test_fan_out_in_batches_then_a_restart_after_a_crash_neither_skips_nor_doubles(
    shop, make_fan, make_campaign, monkeypatch
):
    for _ in range(25):
        make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    # a first batch commits
    assert fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=10).queued == 10
    # the second crashes after its messages were written, before it committed
    from campaigns import fanout as module

    real_update = module.Campaign.objects.filter

    class Crash(Exception):
        pass

    def crash_on_counter(*args, **kwargs):
        if "pk" in kwargs:
            raise Crash
        return real_update(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(module.Campaign.objects, "filter", crash_on_counter)
        with pytest.raises(Crash):
            fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=10)
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 10
    # when: the task runs again (and once more, as a duplicate delivery)
    fan_out_all(campaign.pk, batch_size=10)
    assert fanout.campaign_fan_out_batch(campaign_id=campaign.pk).queued == 0
    # then
    per_fan = Counter(
        Message.objects.filter(campaign_id=campaign.pk).values_list(
            "conversation__fan_id", flat=True
        )
    )
    assert len(per_fan) == 25 and set(per_fan.values()) == {1}
    campaign.refresh_from_db()
    assert campaign.fanned_out == 25


def test_database_refuses_a_second_message_of_a_campaign_to_one_conversation(
    shop, make_fan, make_campaign
):
    make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    fan_out_all(campaign.pk)
    message = Message.objects.get(campaign_id=campaign.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(
            account=message.account,
            conversation=message.conversation,
            direction="out",
            status="queued",
            sender_kind="campaign",
            campaign_id=campaign.pk,
            text="again",
        )


def test_pause_holds_queued_messages_and_resume_puts_them_back_with_their_keys(
    shop, make_fan, make_campaign, redis_client
):
    from onlyfans.dispatch import _claim_two_lanes
    from onlyfans.services import message_enqueue

    fans = [make_fan() for _ in range(6)]
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=4)
    keys = set(Message.objects.values_list("idempotency_key", flat=True))
    # when paused
    campaign = services.campaign_pause(actor=shop.owner, campaign=campaign)
    assert campaign.state == Campaign.State.PAUSED
    assert fanout.campaign_fan_out_batch(campaign_id=campaign.pk).queued == 0
    # then: held as queued, not failed (no failure counted, no Retry in the inbox), and the
    # dispatcher claims none of them, while a chatter's message still goes
    held = Message.objects.filter(campaign_id=campaign.pk)
    assert {(m.status, m.last_error, m.dispatched_at) for m in held} == {("queued", "", None)}
    direct = message_enqueue(fan=fans[0], text="a chatter's reply", sent_by_id=shop.owner.pk)
    assert _claim_two_lanes(shop.account.pk, budget=10, campaign_budget=10) == ([direct.pk], [])
    progress = campaign_progress(campaign=campaign)
    assert (progress.failed, progress.withdrawn, progress.held) == (0, 0, 4)
    # when resumed
    campaign = services.campaign_resume(actor=shop.owner, campaign=campaign)
    assert campaign.state == Campaign.State.RUNNING
    assert campaign_progress(campaign=campaign).held == 0
    assert _claim_two_lanes(shop.account.pk, budget=10, campaign_budget=10)[1] == sorted(
        m.pk for m in held
    )
    fan_out_all(campaign.pk)
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 6
    assert keys <= set(Message.objects.values_list("idempotency_key", flat=True))


def test_cancel_withdraws_queued_messages_and_sends_nothing_more(
    shop, make_fan, make_campaign, redis_client
):
    for _ in range(8):
        make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=5)
    sent = Message.objects.filter(campaign_id=campaign.pk).first()
    assert sent is not None
    Message.objects.filter(pk=sent.pk).update(status="sent", sent_at=timezone.now())
    # when
    campaign = services.campaign_cancel(actor=shop.owner, campaign=campaign)
    # then
    assert campaign.state == Campaign.State.CANCELLED
    assert fanout.campaign_fan_out_batch(campaign_id=campaign.pk).queued == 0
    statuses = Counter(Message.objects.values_list("status", flat=True))
    assert statuses == {"failed": 4, "sent": 1}
    withdrawn = Message.objects.filter(status="failed")
    assert all(m.last_error.startswith("cancelled") for m in withdrawn)
    assert all(message_deliver(message_id=m.pk).result == "skipped" for m in withdrawn)
    assert CampaignRecipient.objects.filter(campaign=campaign, state="withdrawn").count() == 3
    progress = campaign_progress(campaign=campaign)
    assert (progress.sent, progress.failed, progress.withdrawn, progress.remaining) == (1, 0, 4, 0)
    with pytest.raises(ApplicationError) as caught:
        services.campaign_resume(actor=shop.owner, campaign=campaign)
    assert caught.value.code == "invalid_state"


def test_resend_failed_puts_back_only_real_failures(shop, make_fan, make_campaign):
    for _ in range(3):
        make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    fan_out_all(campaign.pk)
    first, second, _third = Message.objects.order_by("id")
    Message.objects.filter(pk=first.pk).update(
        status="failed", last_error="rejected (HTTP 400)", attempts=1
    )
    Message.objects.filter(pk=second.pk).update(status="sent", sent_at=timezone.now())
    assert services.campaign_resend_failed(actor=shop.owner, campaign=campaign) == 1
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("queued", 0)
    assert first.idempotency_key == Message.objects.get(pk=first.pk).idempotency_key


def test_campaign_is_done_once_nothing_is_left(shop, make_fan, make_campaign):
    make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    assert not services.campaign_finish_if_done(campaign_id=campaign.pk)
    fan_out_all(campaign.pk)
    assert not services.campaign_finish_if_done(campaign_id=campaign.pk)
    Message.objects.update(status="sent", sent_at=timezone.now())
    assert services.campaign_finish_if_done(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DONE


def test_scheduled_campaign_starts_when_due(shop, make_fan, make_campaign, no_tasks):
    make_fan()
    later = timezone.now() + timezone.timedelta(hours=2)
    campaign = make_campaign(scheduled_at=later)
    campaign = services.campaign_launch(actor=shop.owner, campaign=campaign)
    assert campaign.state == Campaign.State.SCHEDULED
    assert services.campaign_start(campaign_id=campaign.pk) is None  # not yet
    started = services.campaign_start(
        campaign_id=campaign.pk, now=later + timezone.timedelta(seconds=1)
    )
    assert started is not None and started.state == Campaign.State.RUNNING
    assert started.recipients_total == 1


# --- validation and scoping -------------------------------------------------------------------


def test_invalid_campaign_names_each_field(shop, make_campaign):
    with pytest.raises(ApplicationError) as caught:
        make_campaign(text="Hi {nmae}", price_cents=250, control_percent=60, mode="loud")
    fields = caught.value.fields
    assert {"text", "price_cents", "control_percent", "mode"} <= set(fields)


def test_paid_campaign_needs_media(shop, make_campaign):
    with pytest.raises(ApplicationError) as caught:
        make_campaign(price_cents=500)
    assert "media_ids" in caught.value.fields
    assert make_campaign(price_cents=500, media_ids=("m1",)).price_cents == 500


def test_another_accounts_fans_are_refused_by_name(shop, make_fan, make_campaign, other_fan):
    mine = make_fan()
    with pytest.raises(ApplicationError) as caught:
        make_campaign(rules={"fan_ids": [mine.pk, other_fan.pk, 99999999]})
    assert caught.value.code == "foreign_fans"
    assert caught.value.extra["fan_ids"] == [other_fan.pk, 99999999]


def test_chatters_and_strangers_cannot_run_campaigns(shop, make_campaign, other_account):
    chatter = MembershipFactory(account=shop.account, role="chatter").user
    stranger = MembershipFactory(account=other_account, role="owner").user
    with pytest.raises(ApplicationError) as caught:
        make_campaign(actor=chatter)
    assert caught.value.status_code == 403
    campaign = make_campaign()
    with pytest.raises(ApplicationError) as caught:
        services.campaign_launch(actor=stranger, campaign=campaign)
    assert caught.value.status_code == 404


def test_no_campaign_reaches_another_accounts_fans(shop, make_fan, make_campaign, other_account):
    mine = [make_fan() for _ in range(3)]
    theirs = [make_fan(account=other_account) for _ in range(3)]
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    fan_out_all(campaign.pk)
    reached = set(
        Message.objects.filter(campaign_id=campaign.pk).values_list(
            "conversation__fan_id", flat=True
        )
    )
    assert reached == {f.pk for f in mine}
    assert not reached & {f.pk for f in theirs}
    assert not Message.objects.filter(account=other_account).exists()


def test_fan_out_batch_is_a_handful_of_queries(
    shop, make_fan, make_campaign, django_assert_num_queries
):
    for _ in range(50):
        make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    # savepoint, campaign lock, the batch, its conversations, its messages, the counter,
    # release: the same for 50 fans as for 2,000
    with django_assert_num_queries(7):
        fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=50)
    assert connection.queries_log is not None
