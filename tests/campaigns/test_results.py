"""Attribution and the control group's figures on a hand-built campaign."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient
from campaigns.selectors import campaign_results, campaigns_results
from crm.models import Message, Purchase
from tests.factories import ConversationFactory, MessageFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def launched(shop, make_fan, make_campaign):
    """Four recipients sent at t0 (and one whose message failed), two control fans."""
    t0 = timezone.now() - timedelta(days=5)
    campaign = make_campaign(price_cents=1000, media_ids=("m1",), control_percent=30)
    Campaign.objects.filter(pk=campaign.pk).update(
        state="done", sent_as="individual", launched_at=t0, recipients_total=5, control_total=2
    )
    campaign.refresh_from_db()
    fans = {name: make_fan(username=name) for name in "abcdxef"}
    messages = {}
    for name in "abcdx":
        conversation = ConversationFactory(fan=fans[name])
        message = MessageFactory(
            conversation=conversation,
            direction="out",
            sender_kind="campaign",
            campaign_id=campaign.pk,
            price_cents=1000,
            media_ids=["m1"],
            status="sent" if name != "x" else "failed",
            sent_at=t0 + timedelta(minutes=10) if name != "x" else None,
        )
        messages[name] = message
        CampaignRecipient.objects.create(
            campaign=campaign, fan=fans[name], state="queued", message=message
        )
    for name in "ef":
        ConversationFactory(fan=fans[name])
        CampaignRecipient.objects.create(
            campaign=campaign, fan=fans[name], state="control", is_control=True
        )
    return campaign, fans, messages, t0


def test_attribution_counts_unlocks_of_its_message_and_tips_within_72_hours(launched):
    campaign, fans, messages, t0 = launched
    sent = t0 + timedelta(minutes=10)
    # a unlocks the campaign's message; b tips; c tips too late; d unlocks another message
    PurchaseFactory(
        fan=fans["a"],
        kind=Purchase.Kind.PPV,
        amount_cents=1000,
        message=messages["a"],
        purchased_at=sent + timedelta(hours=2),
    )
    PurchaseFactory(
        fan=fans["b"],
        kind=Purchase.Kind.TIP,
        amount_cents=500,
        purchased_at=sent + timedelta(hours=10),
    )
    PurchaseFactory(
        fan=fans["c"],
        kind=Purchase.Kind.TIP,
        amount_cents=300,
        purchased_at=sent + timedelta(hours=80),
    )
    other = MessageFactory(
        conversation=fans["d"].conversation,
        direction="out",
        status="sent",
        sender_kind="user",
        price_cents=2000,
        media_ids=["z"],
        sent_at=sent,
    )
    PurchaseFactory(
        fan=fans["d"],
        kind=Purchase.Kind.PPV,
        amount_cents=2000,
        message=other,
        purchased_at=sent + timedelta(hours=1),
    )
    PurchaseFactory(
        fan=fans["x"],
        kind=Purchase.Kind.TIP,
        amount_cents=900,
        purchased_at=sent + timedelta(hours=1),
    )  # never got the message
    # the control group: e tips within 72 h of the launch, f buys nothing
    PurchaseFactory(
        fan=fans["e"],
        kind=Purchase.Kind.TIP,
        amount_cents=400,
        purchased_at=t0 + timedelta(hours=5),
    )
    PurchaseFactory(
        fan=fans["f"],
        kind=Purchase.Kind.TIP,
        amount_cents=700,
        purchased_at=t0 - timedelta(hours=1),
    )  # before the launch
    # replies: a within the window, c after it, e (control) within
    MessageFactory(conversation=fans["a"].conversation, created_at=sent + timedelta(hours=1))
    late = MessageFactory(conversation=fans["c"].conversation)
    Message.objects.filter(pk=late.pk).update(created_at=sent + timedelta(hours=100))
    reply = MessageFactory(conversation=fans["e"].conversation)
    Message.objects.filter(pk=reply.pk).update(created_at=t0 + timedelta(hours=3))
    first = Message.objects.filter(conversation=fans["a"].conversation, direction="in").get()
    Message.objects.filter(pk=first.pk).update(created_at=sent + timedelta(hours=1))
    # when
    results = campaign_results(campaign=campaign)
    # then
    assert results.recipients.as_json() == {
        "fans": 4,
        "replied": 1,
        "reply_rate": 0.25,
        "purchases": 2,
        "revenue_cents": 1500,
        "revenue_per_fan_cents": 375,
    }
    assert results.control is not None
    assert results.control.as_json() == {
        "fans": 2,
        "replied": 1,
        "reply_rate": 0.5,
        "purchases": 1,
        "revenue_cents": 400,
        "revenue_per_fan_cents": 200,
    }
    assert results.uplift_per_fan_cents == 175.0
    # money in cents is a whole number in the JSON (the API serves as_json())
    body = results.as_json()
    cents = [body["uplift_per_fan_cents"]] + [
        v for group in ("recipients", "control") for k, v in body[group].items() if "cents" in k
    ]
    assert cents and all(isinstance(v, int) for v in cents), cents


def test_results_of_many_campaigns_in_one_statement(
    launched, make_campaign, django_assert_num_queries
):
    campaign, *_ = launched
    draft = make_campaign(name="draft")
    with django_assert_num_queries(1):
        results = campaigns_results(campaigns=[campaign, draft])
    assert results[campaign.pk].recipients.fans == 4
    assert results[draft.pk].recipients.fans == 0
    assert results[draft.pk].control is None


def test_mass_mode_attributes_unlocks_at_its_price_of_copies_we_do_not_hold(
    shop, make_fan, make_campaign
):
    t0 = timezone.now() - timedelta(days=1)
    campaign = make_campaign(price_cents=1500, media_ids=("m1",))
    Campaign.objects.filter(pk=campaign.pk).update(
        state="done", sent_as="mass", launched_at=t0, recipients_total=2
    )
    campaign.refresh_from_db()
    buyer, other = make_fan(), make_fan()
    for fan in (buyer, other):
        CampaignRecipient.objects.create(campaign=campaign, fan=fan, state="mass_sent", sent_at=t0)
    PurchaseFactory(
        fan=buyer,
        kind=Purchase.Kind.PPV,
        amount_cents=1500,
        message=None,
        purchased_at=t0 + timedelta(hours=1),
    )
    PurchaseFactory(
        fan=other,
        kind=Purchase.Kind.PPV,
        amount_cents=999,
        message=None,
        purchased_at=t0 + timedelta(hours=1),
    )  # another price: not this campaign
    results = campaign_results(campaign=campaign)
    assert (results.recipients.fans, results.recipients.revenue_cents) == (2, 1500)
