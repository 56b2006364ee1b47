"""Campaigns API and the bulk send: statuses, bodies, scoping, the schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from campaigns.models import Campaign
from crm.models import Message
from tests.campaigns.conftest import fan_out_all
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(shop) -> APIClient:
    client = APIClient()
    client.force_authenticate(shop.owner)
    return client


def test_create_launch_pause_resume_cancel(api, shop, make_fan, no_tasks):
    fans = [make_fan(tags=["vip"]) for _ in range(3)]
    response = api.post(
        "/api/campaigns/",
        {
            "account": shop.account.pk,
            "name": "API",
            "text": "Hi {name}",
            "rules": {"include_tags": ["vip"]},
            "control_percent": 0,
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "draft"
    assert body["progress"]["recipients"] == 0
    campaign_id = body["id"]
    launched = api.post(f"/api/campaigns/{campaign_id}/launch")
    assert launched.status_code == 200
    assert launched.json()["state"] == "running"
    assert launched.json()["recipients_total"] == 3
    fan_out_all(campaign_id)
    assert api.post(f"/api/campaigns/{campaign_id}/pause").json()["state"] == "paused"
    assert api.post(f"/api/campaigns/{campaign_id}/pause").status_code == 409
    assert api.post(f"/api/campaigns/{campaign_id}/resume").json()["state"] == "running"
    cancelled = api.post(f"/api/campaigns/{campaign_id}/cancel").json()
    assert cancelled["state"] == "cancelled"
    assert cancelled["progress"]["withdrawn"] == 3
    detail = api.get(f"/api/campaigns/{campaign_id}").json()
    assert detail["results"]["recipients"]["fans"] == 0
    assert len(fans) == 3


def test_list_by_account_with_counts(
    api, shop, make_fan, make_campaign, django_assert_max_num_queries
):
    make_fan()
    for i in range(3):
        make_campaign(name=f"C{i}")
    with django_assert_max_num_queries(6):
        response = api.get("/api/campaigns/", {"account": shop.account.pk})
    body = response.json()
    assert body["count"] == 3
    assert [c["name"] for c in body["results"]] == ["C2", "C1", "C0"]
    assert body["results"][0]["sent"] == 0
    assert api.get("/api/campaigns/").status_code == 400


def test_bulk_send_creates_and_launches_an_individual_campaign(api, shop, make_fan, no_tasks):
    fans = [make_fan() for _ in range(5)]
    unlinked = make_fan(platform_fan_id=None)
    response = api.post(
        "/api/messages/bulk",
        {"fan_ids": [f.pk for f in fans] + [unlinked.pk], "text": "Hey {name}"},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert set(body) == {"campaign_id", "total_recipients", "estimated_completion_at", "mode"}
    assert body["total_recipients"] == 5
    assert body["mode"] == "individual"
    campaign = Campaign.objects.get(pk=body["campaign_id"])
    assert campaign.unlinked_skipped == 1
    fan_out_all(campaign.pk)
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 5


def test_bulk_send_names_another_accounts_fans(api, shop, make_fan, other_fan):
    mine = make_fan()
    response = api.post(
        "/api/messages/bulk",
        {"fan_ids": [mine.pk, other_fan.pk], "text": "Hey"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "foreign_fans"
    assert body["fan_ids"] == [other_fan.pk]
    assert not Campaign.objects.exists()
    first_foreign = api.post(
        "/api/messages/bulk", {"fan_ids": [other_fan.pk, mine.pk], "text": "Hey"}, format="json"
    )
    assert first_foreign.status_code == 400
    assert first_foreign.json()["code"] == "foreign_fans"


def test_chatters_get_403_and_strangers_404(shop, make_campaign, other_account):
    campaign = make_campaign()
    chatter = MembershipFactory(account=shop.account, role="chatter").user
    stranger = MembershipFactory(account=other_account, role="owner").user
    client = APIClient()
    client.force_authenticate(chatter)
    assert client.get("/api/campaigns/", {"account": shop.account.pk}).status_code == 403
    assert client.get(f"/api/campaigns/{campaign.pk}").status_code == 404
    client.force_authenticate(stranger)
    assert client.get(f"/api/campaigns/{campaign.pk}").status_code == 404
    assert client.post(f"/api/campaigns/{campaign.pk}/launch").status_code == 404


def test_every_campaign_endpoint_is_in_the_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/campaigns/",
        "/api/campaigns/{campaign_id}",
        "/api/campaigns/{campaign_id}/launch",
        "/api/campaigns/{campaign_id}/pause",
        "/api/campaigns/{campaign_id}/resume",
        "/api/campaigns/{campaign_id}/cancel",
        "/api/messages/bulk",
    ):
        assert path in paths, path
    assert "202" in paths["/api/messages/bulk"]["post"]["responses"]
