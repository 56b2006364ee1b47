"""The campaigns table from the campaigns app's rows: recipients, revenue, uplift vs control."""

from __future__ import annotations

import pytest

from analytics.selectors import campaign_rows
from campaigns.models import Campaign, CampaignRecipient
from crm.models import Message
from tests.analytics.fixtures import at, fan_make, hand_fixture, message_make, purchase_make
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


def test_campaign_revenue_and_uplift_against_the_control_group():
    hand = hand_fixture()
    account = hand.account
    campaign = Campaign.objects.create(account=account, name="March bundle", text="new set")
    Campaign.objects.filter(pk=campaign.pk).update(created_at=at("2025-03-02T10:00:00"))
    other = Campaign.objects.create(account=account, name="Old", text="x")
    Campaign.objects.filter(pk=other.pk).update(created_at=at("2025-01-02T10:00:00"))
    # two recipients got a PPV from the campaign; one bought it; two fans were held back
    treated = [fan_make(account, "2025-01-01T00:00:00", username=f"t{i}") for i in range(2)]
    control = [fan_make(account, "2025-01-01T00:00:00", username=f"k{i}") for i in range(2)]
    for fan in treated:
        conversation = ConversationFactory(fan=fan)
        message = message_make(conversation, "2025-03-02T10:01:00", campaign=True, price=1500)
        Message.objects.filter(pk=message.pk).update(campaign_id=campaign.pk)
        CampaignRecipient.objects.create(
            campaign=campaign, fan=fan, state="queued", message=message
        )
        if fan is treated[0]:
            purchase_make(fan, "ppv", 1500, "2025-03-02T12:00:00", message)
    for fan in control:
        CampaignRecipient.objects.create(
            campaign=campaign, fan=fan, state="control", is_control=True
        )
    purchase_make(control[0], "tip", 500, "2025-03-04T12:00:00")  # within 7 days
    purchase_make(control[1], "tip", 900, "2025-03-20T12:00:00")  # after the window

    (row,) = campaign_rows(account_id=account.pk, period=hand.period)

    assert (row.name, row.recipients, row.control_fans) == ("March bundle", 2, 2)
    assert (row.revenue_cents, row.purchases, row.revenue_per_recipient) == (1500, 1, 750)
    # recipients bought 1500 / 2 = 750 each; the control group 500 / 2 = 250
    assert row.uplift_cents == 500
    assert row.uplift == pytest.approx(2.0)


def test_a_campaign_without_a_control_group_has_no_uplift(client):
    hand = hand_fixture()
    campaign = Campaign.objects.create(account=hand.account, name="No control", text="x")
    Campaign.objects.filter(pk=campaign.pk).update(created_at=at("2025-03-03T10:00:00"))
    (row,) = campaign_rows(account_id=hand.account.pk, period=hand.period)
    assert row.uplift_cents is None and row.recipients == 0
    client.force_login(hand.owner)
    html = client.get(
        f"/accounts/{hand.account.pk}/analytics/",
        {"range": "custom", "from": "2025-03-01", "to": "2025-03-07"},
    ).content.decode()
    assert "No control" in html and "no control group" in html
