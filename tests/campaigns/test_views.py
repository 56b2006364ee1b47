"""Campaign pages: list with results, builder with live pre-flight, campaign page, actions."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Segment
from crm.models import Message
from tests.campaigns.conftest import fan_out_all
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client, shop):
    client.force_login(shop.owner)
    return client


def test_top_bar_links_campaigns_for_owners_and_managers_only(client, shop):
    chatter = MembershipFactory(account=shop.account, role="chatter").user
    url = reverse("campaign_list", args=[shop.account.pk])
    client.force_login(shop.manager)
    assert url in client.get(reverse("home")).content.decode()
    client.force_login(chatter)
    assert url not in client.get(reverse("home")).content.decode()
    assert client.get(url).status_code == 403


def test_other_accounts_campaigns_are_404(client, shop, make_campaign, other_account):
    campaign = make_campaign()
    stranger = MembershipFactory(account=other_account, role="owner").user
    client.force_login(stranger)
    assert client.get(reverse("campaign_list", args=[shop.account.pk])).status_code == 404
    url = reverse("campaign_detail", args=[other_account.pk, campaign.pk])
    assert client.get(url).status_code == 404


def test_list_shows_results_side_by_side_in_constant_queries(
    owner_client, shop, make_fan, make_campaign, django_assert_max_num_queries
):
    for _ in range(4):
        make_fan()
    for i in range(3):
        campaign = services.campaign_launch(
            actor=shop.owner, campaign=make_campaign(name=f"C{i}", control_percent=25)
        )
        fan_out_all(campaign.pk)
    Message.objects.update(status="sent", sent_at=timezone.now())
    url = reverse("campaign_list", args=[shop.account.pk])
    # session, user, membership, context processor's memberships, campaigns, results, counts,
    # segments (a few more for the session machinery)
    with django_assert_max_num_queries(12):
        response = owner_client.get(url)
    body = response.content.decode()
    assert response.status_code == 200
    for i in range(3):
        assert f"C{i}" in body
    assert "Per control fan" in body


def test_builder_preflight_fragment_updates_with_the_rules(owner_client, shop, make_fan):
    for i in range(6):
        make_fan(tags=["vip"] if i < 4 else [])
    make_fan(tags=["vip"], platform_fan_id=None)
    url = reverse("campaign_preflight", args=[shop.account.pk])
    response = owner_client.post(
        url, {"include_tags": "vip", "mode": "auto"}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert '<section id="preflight"' in body and "<html" not in body
    assert 'id="preflight-audience">4<' in body
    assert 'id="preflight-unlinked">1<' in body
    bad = owner_client.post(url, {"spend_min": "5", "spend_max": "1"}, HTTP_HX_REQUEST="true")
    assert "Must not be below the minimum" in bad.content.decode()


def test_build_save_segment_and_launch_from_the_form(
    owner_client, shop, make_fan, no_tasks, django_capture_on_commit_callbacks
):
    for _ in range(3):
        make_fan(tags=["vip"])
    url = reverse("campaign_new", args=[shop.account.pk])
    assert owner_client.get(url).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            url,
            {
                "name": "VIP drop",
                "text": "Hi {name}",
                "mode": "individual",
                "include_tags": "vip",
                "include_tags_mode": "any",
                "control_percent": "0",
                "exclude_waiting": "on",
                "save_segment_as": "VIPs",
                "action": "launch",
            },
        )
    campaign = Campaign.objects.get(name="VIP drop")
    assert response.status_code == 302
    assert response.url == reverse("campaign_detail", args=[shop.account.pk, campaign.pk])
    assert campaign.state == Campaign.State.RUNNING
    assert campaign.recipients_total == 3
    assert Segment.objects.get(name="VIPs").rules["include_tags"] == ["vip"]
    assert [name for name, _ in no_tasks] == ["campaigns.tasks.campaign_fan_out_task"]
    # the campaign's page names what the pre-flight left out, in words
    page = owner_client.get(response.url).content.decode()
    assert "3 matched, \u22120 waiting for a reply, \u22120 not linked." in page


def test_form_errors_show_on_their_fields(owner_client, shop):
    url = reverse("campaign_new", args=[shop.account.pk])
    response = owner_client.post(
        url, {"name": "X", "text": "Hi {nmae}", "mode": "auto", "price": "2", "action": "save"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Unknown variable: {nmae}" in body
    assert "$3 to $200" in body


def test_scheduled_time_is_read_in_the_accounts_time_zone(owner_client, shop, make_fan, no_tasks):
    shop.account.time_zone = "Europe/Berlin"
    shop.account.save()
    make_fan()
    url = reverse("campaign_new", args=[shop.account.pk])
    owner_client.post(
        url,
        {
            "name": "Later",
            "text": "Hi",
            "mode": "individual",
            "scheduled_at": "2031-06-01T20:00",
            "action": "launch",
        },
    )
    campaign = Campaign.objects.get(name="Later")
    assert campaign.state == Campaign.State.SCHEDULED
    assert campaign.scheduled_at is not None
    assert campaign.scheduled_at.isoformat() == "2031-06-01T18:00:00+00:00"
    page = owner_client.get(reverse("campaign_detail", args=[shop.account.pk, campaign.pk]))
    assert "Jun 1, 2031 20:00" in page.content.decode()


def test_campaign_page_progress_fragment_and_actions(owner_client, shop, make_fan, make_campaign):
    for _ in range(4):
        make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    fan_out_all(campaign.pk)
    first = Message.objects.order_by("id").first()
    assert first is not None
    Message.objects.filter(pk=first.pk).update(status="sent", sent_at=timezone.now())
    url = reverse("campaign_detail", args=[shop.account.pk, campaign.pk])
    fragment = owner_client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="campaign-progress")
    body = fragment.content.decode()
    assert body.lstrip().startswith('<section id="campaign-progress"')
    assert 'id="progress-sent"><strong>1<' in body
    assert 'hx-trigger="every 2s"' in body
    pause = reverse("campaign_action", args=[shop.account.pk, campaign.pk, "pause"])
    assert owner_client.post(pause).status_code == 302
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.PAUSED
    cancel = reverse("campaign_action", args=[shop.account.pk, campaign.pk, "cancel"])
    owner_client.post(cancel)
    campaign.refresh_from_db()
    assert campaign.state == Campaign.State.CANCELLED
    done = owner_client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="campaign-progress")
    assert "every 2s" not in done.content.decode()  # polling stops
