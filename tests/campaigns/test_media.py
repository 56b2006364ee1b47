"""Campaigns pick media from the vault (issue 18): the builder's picker field stores the items'
platform ids, and the pre-flight can leave out fans who already received any of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from campaigns import fanout, services
from campaigns.models import Campaign
from campaigns.rules import SegmentRules
from campaigns.selectors import campaign_preflight
from crm.media_send import MediaAlreadySentError, fan_media_marks, media_attachment_resolve
from crm.media_stats import media_stats_build
from crm.models import FanMediaEvent, MediaItemTotal, Message, MessageMedia
from onlyfans.services import message_mark_sent
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


def test_fan_out_records_each_messages_media_so_marks_guard_preflight_and_page_see_it(
    shop, make_fan, make_campaign, django_assert_num_queries
):
    # given a PPV campaign with two vault items and a raw id (twice) that is not in the vault
    a, b = VaultItemFactory.create_batch(2, account=shop.account)
    fans = [make_fan() for _ in range(3)]
    media_stats_build(account=shop.account)  # the media page's roll-up, whole
    campaign = services.campaign_launch(
        actor=shop.owner,
        campaign=make_campaign(
            price_cents=1200, media_ids=[b.platform_media_id, "raw-9", a.platform_media_id, "raw-9"]
        ),
    )
    # when it fans out: the media rows come in the messages' statement (no query per fan)
    with django_assert_num_queries(7):
        fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=50)
    # then every message carries its media in order, linked to the items
    messages = list(Message.objects.filter(campaign_id=campaign.pk).order_by("id"))
    assert len(messages) == 3
    for message in messages:
        rows = list(
            MessageMedia.objects.filter(message=message).values_list(
                "position", "vault_item_id", "platform_media_id", "is_preview"
            )
        )
        assert rows == [
            (0, b.pk, b.platform_media_id, False),
            (1, None, "raw-9", False),
            (2, a.pk, a.platform_media_id, False),
        ]
    # when one is sent
    first = messages[0]
    fan = first.conversation.fan
    message_mark_sent(message=first, platform_message_id="pm-campaign-1", sent_at=AT)
    # then the fan's marks say offered at the campaign's price
    marks = fan_media_marks(fan_id=fan.pk, item_ids=[a.pk, b.pk])
    assert {k: (m.state, m.price_cents) for k, m in marks.items()} == {
        a.pk: ("offered", 1200),
        b.pk: ("offered", 1200),
    }
    # and the resend guard stops the same item to that fan, not to another
    with pytest.raises(MediaAlreadySentError) as refused:
        media_attachment_resolve(
            account_id=shop.account.pk, fan_id=fan.pk, vault_item_ids=[a.pk], price_cents=1000
        )
    assert [i.vault_item_id for i in refused.value.items] == [a.pk]
    other_fan = messages[1].conversation.fan
    assert media_attachment_resolve(
        account_id=shop.account.pk, fan_id=other_fan.pk, vault_item_ids=[a.pk], price_cents=1000
    )
    # and the next campaign's pre-flight leaves that fan out
    preflight = campaign_preflight(
        account=shop.account,
        rules=SegmentRules(exclude_received_media=True),
        media_ids=[a.platform_media_id],
        control_percent=0,
        drain_window_minutes=0,
        sample_size=0,
    )
    assert preflight.audience == len(fans) - 1
    # and the media page counts the offer (two paid vault items and a raw id share it)
    totals = dict(
        MediaItemTotal.objects.filter(account=shop.account).values_list("vault_item_id", "offered")
    )
    assert totals == {a.pk: 1, b.pk: 1}
    kept = list(MediaItemTotal.objects.filter(account=shop.account).values_list().order_by("id"))
    media_stats_build(account=shop.account)
    rebuilt = MediaItemTotal.objects.filter(account=shop.account).order_by("id").values_list()
    assert [row[2:] for row in kept] == [row[2:] for row in rebuilt]
