"""Campaigns pick media from the vault (issue 18): the builder's picker field stores the items'
platform ids, and the pre-flight can leave out fans who already received any of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from campaigns.models import Campaign
from crm.models import FanMediaEvent
from tests.factories import VaultItemFactory

pytestmark = pytest.mark.django_db

AT = datetime(2026, 11, 3, tzinfo=UTC)


@pytest.fixture
def owner_client(client, shop):
    client.force_login(shop.owner)
    return client


def got(fan, item, kind, *, linked=True):
    FanMediaEvent.objects.create(
        account=fan.account,
        fan=fan,
        vault_item=item if linked else None,
        platform_media_id=item.platform_media_id,
        kind=kind,
        price_cents=1000 if kind != "sent_free" else 0,
        at=AT,
        source="platform_history",
    )


def test_campaign_form_stores_picked_items_as_platform_ids(owner_client, shop):
    a, b = VaultItemFactory.create_batch(2, account=shop.account)
    url = reverse("campaign_new", args=[shop.account.pk])
    page = owner_client.get(url).content.decode()
    assert 'name="media_ids" type="text"' not in page and "Add media" in page
    response = owner_client.post(
        url,
        {
            "name": "Drop",
            "text": "new set",
            "price": "12",
            "vault_item_ids": [b.pk, a.pk],
            "mode": "individual",
            "control_percent": "0",
            "action": "save",
        },
    )
    assert response.status_code == 302, response.content.decode()
    campaign = Campaign.objects.get(name="Drop")
    assert campaign.media_ids == [b.platform_media_id, a.platform_media_id]
    # editing shows them as chips again, in order
    edit = owner_client.get(reverse("campaign_edit", args=[shop.account.pk, campaign.pk]))
    body = edit.content.decode()
    chip = 'name="vault_item_ids" value="{}"'
    assert body.index(chip.format(b.pk)) < body.index(chip.format(a.pk))


def test_campaign_form_refuses_other_accounts_and_gone_items(owner_client, shop):
    foreign = VaultItemFactory()
    gone = VaultItemFactory(account=shop.account, gone_at=AT)
    response = owner_client.post(
        reverse("campaign_new", args=[shop.account.pk]),
        {
            "name": "Drop",
            "text": "x",
            "price": "12",
            "vault_item_ids": [foreign.pk, gone.pk],
            "mode": "individual",
            "action": "save",
        },
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "Not in this account&#x27;s vault" in body and "Removed on the platform" in body
    assert not Campaign.objects.exists()


def test_preflight_leaves_out_fans_who_received_any_item_and_says_how_many(
    owner_client, shop, make_fan
):
    a, b = VaultItemFactory.create_batch(2, account=shop.account)
    fans = [make_fan() for _ in range(6)]
    got(fans[0], a, "bought")
    got(fans[1], a, "offered")
    got(fans[2], b, "sent_free")
    got(fans[3], b, "sent_free", linked=False)  # history not linked to the item yet
    other_item = VaultItemFactory(account=shop.account)
    got(fans[4], other_item, "bought")  # another item: stays in
    url = reverse("campaign_preflight", args=[shop.account.pk])
    body = {
        "price": "12",
        "vault_item_ids": [a.pk, b.pk],
        "mode": "auto",
        "exclude_received_media": "on",
    }
    response = owner_client.post(url, body, HTTP_HX_REQUEST="true").content.decode()
    assert 'id="preflight-audience">2<' in response
    assert "Already received any of this media" in response
    bought_only = owner_client.post(
        url,
        {**body, "exclude_received_media": "", "exclude_bought_media": "on"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    # "bought" counts our PPV purchases only; the history above holds none
    assert 'id="preflight-audience">6<' in bought_only
