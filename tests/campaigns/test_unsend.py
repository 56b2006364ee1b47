"""Unsending a platform mass message within the platform's window, against the sandbox over
HTTP: the gateway's DELETE, the campaign's button while the window lasts, the API action."""

from __future__ import annotations

import time

import pytest
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from campaigns import services
from campaigns.mass import campaign_mass_refresh, campaign_unsend_step
from campaigns.models import Campaign, CampaignRecipient, MassChunk
from campaigns.selectors import campaign_progress, campaign_unsend_until
from crm.errors import ApplicationError
from onlyfans import gateway
from onlyfans.contracts import GatewayRejected, MassSendRequest
from tests.campaigns.test_mass import platform_mass, run_mass

pytestmark = pytest.mark.django_db


def run_unsend(campaign_id: int, *, timeout: float = 30.0) -> list[str]:
    """Play the unsend task: steps until none is asked for."""
    results = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = campaign_unsend_step(campaign_id=campaign_id)
        results.append(step.result)
        if step.retry_in is None:
            return results
        time.sleep(min(step.retry_in, 1.0))
    raise AssertionError(f"unsend not finished: {results}")


def chat(account: str, fan_id: str) -> list:
    return gateway.messages_list(account_platform_id=account, chat_id=fan_id, limit=20)


def test_gateway_unsends_within_the_window_and_is_refused_after_it(sandbox, shop):
    account = shop.account.platform_account_id
    sent = gateway.mass_message_send(
        MassSendRequest(account_platform_id=account, user_ids=("21", "22"), text="Oops")
    )
    assert sent.can_unsend and sent.unsend_seconds > 3000
    assert len(chat(account, "21")) == 1
    # when
    unsent = gateway.mass_message_unsend(
        account_platform_id=account, platform_mass_id=sent.platform_mass_id
    )
    # then: gone from the fans' chats, and the platform says so
    assert unsent.is_canceled and not unsent.can_unsend
    assert chat(account, "21") == [] and chat(account, "22") == []
    again = gateway.mass_message_retrieve(
        account_platform_id=account, platform_mass_id=sent.platform_mass_id
    )
    assert again.is_canceled
    with pytest.raises(GatewayRejected) as twice:
        gateway.mass_message_unsend(
            account_platform_id=account, platform_mass_id=sent.platform_mass_id
        )
    assert twice.value.code == "unsend_not_allowed"
    # a message whose window is over stays
    sandbox.configure(mass_unsend_seconds=0)
    late = gateway.mass_message_send(
        MassSendRequest(account_platform_id=account, user_ids=("23",), text="Late")
    )
    assert not late.can_unsend
    with pytest.raises(GatewayRejected):
        gateway.mass_message_unsend(
            account_platform_id=account, platform_mass_id=late.platform_mass_id
        )
    assert len(chat(account, "23")) == 1


@pytest.fixture
def sent_mass_campaign(sandbox, shop, make_fan, make_campaign):
    def make(count: int = 7) -> Campaign:
        for _ in range(count):
            make_fan()
        campaign = services.campaign_launch(
            actor=shop.owner, campaign=make_campaign(mode="mass", text="Flash sale")
        )
        run_mass(campaign.pk)
        campaign.refresh_from_db()
        assert campaign.state == Campaign.State.DONE
        return campaign

    return make


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_unsend_button_while_the_window_lasts_then_every_chunk_unsent(
    client, sandbox, shop, sent_mass_campaign, no_tasks, django_capture_on_commit_callbacks
):
    campaign = sent_mass_campaign()
    page_url = reverse("campaign_detail", args=[shop.account.pk, campaign.pk])
    client.force_login(shop.manager)
    page = client.get(page_url).content.decode()
    assert 'id="unsend-button"' in page and "can be unsent until" in page
    # when: the manager presses it
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("campaign_action", args=[shop.account.pk, campaign.pk, "unsend"])
        )
    assert response.status_code == 302
    assert [name for name, _ in no_tasks] == ["campaigns.tasks.campaign_unsend_task"]
    results = run_unsend(campaign.pk)
    # then: three DELETEs (3 + 3 + 1 fans), each chunk unsent on the platform
    assert results == ["unsent", "unsent", "unsent", "done"]
    assert [m["isCanceled"] for m in platform_mass(sandbox, shop.account)] == [True] * 3
    assert set(MassChunk.objects.filter(campaign=campaign).values_list("state", flat=True)) == {
        "unsent"
    }
    assert CampaignRecipient.objects.filter(campaign=campaign, state="unsent").count() == 7
    campaign.refresh_from_db()
    progress = campaign_progress(campaign=campaign)
    assert (progress.sent, progress.unsent, progress.withdrawn) == (0, 7, 7)
    assert progress.unsend_until is None and not progress.unsending
    page = client.get(page_url).content.decode()
    assert 'id="unsend-button"' not in page and "7 unsent" in page
    with pytest.raises(ApplicationError) as twice:
        services.campaign_unsend(actor=shop.owner, campaign=campaign)
    assert twice.value.code == "already_unsent"


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_no_unsend_once_the_platforms_window_is_over(
    client, sandbox, shop, sent_mass_campaign, no_tasks
):
    sandbox.configure(mass_unsend_seconds=3)
    campaign = sent_mass_campaign()
    assert campaign_unsend_until(campaign=campaign) is not None
    time.sleep(3.2)
    campaign_mass_refresh(campaign_id=campaign.pk)  # the platform now says canUnsend false
    assert not MassChunk.objects.filter(campaign=campaign, can_unsend=True).exists()
    assert campaign_unsend_until(campaign=campaign) is None
    client.force_login(shop.owner)
    page = client.get(reverse("campaign_detail", args=[shop.account.pk, campaign.pk]))
    assert 'id="unsend-button"' not in page.content.decode()
    with pytest.raises(ApplicationError) as refused:
        services.campaign_unsend(actor=shop.owner, campaign=campaign)
    assert refused.value.code == "not_unsendable"
    assert no_tasks == []
    assert [m["isCanceled"] for m in platform_mass(sandbox, shop.account)] == [False] * 3


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_a_window_that_closes_before_the_task_runs_leaves_the_chunk(
    sandbox, shop, sent_mass_campaign, no_tasks
):
    sandbox.configure(mass_unsend_seconds=3)
    campaign = sent_mass_campaign(count=2)
    services.campaign_unsend(actor=shop.owner, campaign=campaign)
    time.sleep(3.2)
    assert run_unsend(campaign.pk) == ["window_passed", "done"]
    chunk = MassChunk.objects.get(campaign=campaign)
    assert chunk.state == "sent" and "window" in chunk.last_error
    assert [m["isCanceled"] for m in platform_mass(sandbox, shop.account)] == [False]


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_unsend_api_action(sandbox, shop, make_fan, make_campaign, sent_mass_campaign, no_tasks):
    api = APIClient()
    api.force_authenticate(shop.owner)
    campaign = sent_mass_campaign(count=4)
    detail = api.get(f"/api/campaigns/{campaign.pk}").json()
    assert detail["progress"]["mass"]["unsend_until"] is not None
    response = api.post(f"/api/campaigns/{campaign.pk}/unsend")
    assert response.status_code == 200, response.json()
    assert response.json()["progress"]["mass"]["unsending"] is True
    assert api.post(f"/api/campaigns/{campaign.pk}/unsend").json()["code"] == "already_unsent"
    # an individual campaign has nothing to unsend
    make_fan()
    individual = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    refused = api.post(f"/api/campaigns/{individual.pk}/unsend")
    assert (refused.status_code, refused.json()["code"]) == (409, "not_unsendable")
    # chatters do not see campaigns
    from tests.factories import MembershipFactory

    chatter = MembershipFactory(account=shop.account, role="chatter").user
    api.force_authenticate(chatter)
    assert api.post(f"/api/campaigns/{campaign.pk}/unsend").status_code == 404  # not theirs to see


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_unsend_of_a_running_campaign_cancels_the_chunks_not_sent(
    sandbox, shop, make_fan, make_campaign, no_tasks
):
    from campaigns.mass import campaign_mass_step

    for _ in range(7):
        make_fan()
    campaign = services.campaign_launch(
        actor=shop.owner, campaign=make_campaign(mode="mass", text="Oops")
    )
    assert campaign_mass_step(campaign_id=campaign.pk).result == "sent"
    campaign_mass_refresh(campaign_id=campaign.pk)
    campaign.refresh_from_db()
    services.campaign_unsend(actor=shop.owner, campaign=campaign)
    assert run_unsend(campaign.pk) == ["unsent", "done"]
    assert campaign_mass_step(campaign_id=campaign.pk).result == "skipped"
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELLED
    states = sorted(MassChunk.objects.filter(campaign=campaign).values_list("state", flat=True))
    assert states == ["cancelled", "cancelled", "unsent"]
    assert [m["isCanceled"] for m in platform_mass(sandbox, shop.account)] == [True]
