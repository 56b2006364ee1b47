"""Banned-word screening (the gateway's ``block_banned_words``) for campaigns sent one by one:
the gateway and the sandbox over HTTP, and a screened campaign that queues one message first
and stops with the words shown when the gateway refuses it."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import fanout, services
from campaigns.models import Campaign, CampaignRecipient
from campaigns.selectors import campaign_progress
from crm.models import Message
from onlyfans import gateway
from onlyfans.contracts import GatewayRejected, SendRequest
from onlyfans.pipeline import message_deliver

pytestmark = pytest.mark.django_db


def send(account: str, text: str, screening: str | None) -> object:
    return gateway.message_send(
        SendRequest(
            account_platform_id=account,
            chat_id="31",
            text=text,
            price_cents=0,
            media_ids=(),
            idempotency_key=str(uuid.uuid4()),
            block_banned_words=screening,
        )
    )


def test_gateway_screens_a_message_for_banned_words(sandbox, shop):
    sandbox.configure(banned_words=["paypal", "cashapp"], rate_limit_per_minute=0)
    account = shop.account.platform_account_id
    with pytest.raises(GatewayRejected) as refused:
        send(account, "Tip me on PayPal or CashApp", "strict_ban")
    assert refused.value.code == "banned_words" and refused.value.status == 422
    assert "paypal" in refused.value.message and "cashapp" in refused.value.message
    assert sandbox.messages(account=account) == []
    # unscreened, or clean: sent
    send(account, "Tip me on PayPal", None)
    send(account, "New set tonight", "strict_ban")
    assert len(sandbox.messages(account=account)) == 2


def test_screened_campaign_stops_on_the_first_refusal_with_the_words_shown(
    client, sandbox, shop, make_fan, make_campaign
):
    sandbox.configure(banned_words=["paypal"], rate_limit_per_minute=0)
    for _ in range(6):
        make_fan()
    campaign = services.campaign_launch(
        actor=shop.owner,
        campaign=make_campaign(text="Tip me on PayPal {name}", block_banned_words="strict_ban"),
    )
    # one message first, then wait for the gateway's verdict on it
    first = fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=100)
    assert (first.queued, first.more) == (1, True)
    waiting = fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=100)
    assert (waiting.queued, waiting.more, waiting.retry_in) == (0, True, 2.0)
    # when: the send pipeline delivers it, screened, and the platform refuses it
    first_message = Message.objects.get(campaign_id=campaign.pk)
    assert message_deliver(message_id=first_message.pk).result == "failed"
    assert sandbox.messages(account=shop.account.platform_account_id) == []
    stopped = fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=100)
    # then: nothing more is queued, the words show on the campaign's page
    assert (stopped.queued, stopped.more) == (0, False)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.DONE and "paypal" in campaign.last_error
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 1
    assert CampaignRecipient.objects.filter(campaign=campaign, state="withdrawn").count() == 5
    progress = campaign_progress(campaign=campaign)
    assert (progress.sent, progress.failed, progress.remaining) == (0, 1, 0)
    client.force_login(shop.owner)
    page = client.get(reverse("campaign_detail", args=[shop.account.pk, campaign.pk]))
    assert "banned words: paypal" in page.content.decode()


def test_screened_campaign_goes_on_once_its_first_message_is_sent(shop, make_fan, make_campaign):
    for _ in range(5):
        make_fan()
    campaign = services.campaign_launch(
        actor=shop.owner,
        campaign=make_campaign(text="New set {name}", block_banned_words="risky"),
    )
    assert fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=100).queued == 1
    Message.objects.filter(campaign_id=campaign.pk).update(status="sent", sent_at=timezone.now())
    rest = fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=100)
    assert (rest.queued, rest.more) == (4, False)
    # an unscreened campaign queues whole batches from the start
    plain = services.campaign_launch(actor=shop.owner, campaign=make_campaign(name="plain"))
    assert fanout.campaign_fan_out_batch(campaign_id=plain.pk, batch_size=100).queued == 5
