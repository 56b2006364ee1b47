"""The messages API's retry leaves a campaign's failed message to its campaign."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign
from crm.models import Message
from onlyfans.services import message_enqueue, message_mark_failed
from tests.factories import FanFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("state", ["running", "paused", "done", "cancelled"])
def test_retry_of_a_campaign_message_answers_409_with_the_campaign(chatter, account, state):
    fan = FanFactory(account=account)
    campaign = Campaign.objects.create(account=account, name="Promo", text="hi", state=state)
    message = message_enqueue(
        fan=fan, text="hi", sender_kind=Message.SenderKind.CAMPAIGN, campaign_id=campaign.pk
    )
    message_mark_failed(message=message, error="server_error: boom")
    api = APIClient()
    api.force_authenticate(chatter)

    response = api.post(f"/api/onlyfans/messages/{message.pk}/retry")

    assert response.status_code == 409
    body = response.json()
    assert (body["code"], body["campaign_id"]) == ("campaign_message", campaign.pk)
    message.refresh_from_db()
    assert message.status == Message.Status.FAILED
