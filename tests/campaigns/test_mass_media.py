"""Mass-mode campaigns and the vault: a campaign sent as the platform's mass message has no
message of ours per fan, yet what each fan got is recorded when the platform accepts a chunk
(against the sandbox over HTTP), so the picker's marks, the resend guard, the next campaign's
pre-flight and the media page see it; an unsend takes it back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from analytics import media_selectors
from analytics.media_selectors import MediaScope
from analytics.periods import period_for
from campaigns import fanout, services
from campaigns.models import Campaign, MassChunk
from campaigns.rules import SegmentRules
from campaigns.selectors import campaign_preflight
from crm.media_send import fan_media_history, fan_media_marks
from crm.media_stats import media_stats_build
from crm.models import (
    FanMediaEvent,
    MediaItemDay,
    MediaItemTotal,
    MediaOfferDay,
    MediaStatsState,
    Message,
)
from crm.zones import account_zone
from onlyfans.services import message_mark_sent
from tests.campaigns.test_mass import platform_mass, run_mass
from tests.campaigns.test_unsend import run_unsend
from tests.factories import MembershipFactory, UserFactory, VaultItemFactory

pytestmark = pytest.mark.django_db


def rollup_rows(account: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "days": sorted(
            MediaItemDay.objects.filter(account=account).values_list(
                "vault_item_id", "day", "price_cents", "sent_by_id", "sent_free", "previewed",
                "offered", "bought", "revenue_units",
            ),
            key=repr,
        ),
        "totals": sorted(
            MediaItemTotal.objects.filter(account=account).values_list(
                "vault_item_id", "sent_free", "previewed", "offered", "bought", "revenue_units"
            ),
            key=repr,
        ),
        "offers": sorted(
            MediaOfferDay.objects.filter(account=account).values_list(
                "day", "price_cents", "sent_by_id", "offered", "bought", "revenue_cents"
            ),
            key=repr,
        ),
    }  # fmt: skip


def page_figures(shop: Any, items: list[Any]) -> dict[str, Any]:
    """Everything the media page shows for the account, all time and for the last 7 days."""
    membership = media_selectors.media_membership(user=shop.owner, account_id=shop.account.pk)
    out: dict[str, Any] = {}
    zone = str(account_zone(shop.account))
    for name, period in (("all", None), ("week", period_for(zone_name=zone, days=7))):
        scope = MediaScope(period=period)
        out[name] = {
            "items": {
                r.item_id: media_selectors.figures_dict(r.figures)
                for r in media_selectors.media_items(membership=membership, scope=scope).rows
            },
            "by_price": media_selectors.media_breakdown(
                membership=membership, scope=MediaScope(period=period), by="price"
            ).rows,
            "by_chatter": media_selectors.media_breakdown(
                membership=membership, scope=MediaScope(period=period), by="chatter"
            ).rows,
            "item": [
                media_selectors.figures_dict(
                    media_selectors.media_item_figures(
                        membership=membership, scope=MediaScope(period=period), item_id=i.pk
                    )
                )
                for i in items
            ],
            "item_by_price": [
                media_selectors.media_item_breakdown(
                    membership=membership, scope=MediaScope(period=period), item_id=i.pk, by="price"
                ).rows
                for i in items
            ],
        }
    return out


def raw_page_figures(shop: Any, items: list[Any]) -> dict[str, Any]:
    """The same, counted over the raw rows (no roll-up whole)."""
    state = MediaStatsState.objects.get(account=shop.account)
    MediaStatsState.objects.filter(pk=state.pk).update(built_at=None)
    try:
        return page_figures(shop, items)
    finally:
        MediaStatsState.objects.filter(pk=state.pk).update(built_at=state.built_at)


@pytest.fixture
def vault_mass(sandbox, shop, make_fan, make_campaign):
    """Two vault items, seven linked fans and an unlinked one, the roll-up whole; ``send``
    launches a mass campaign with the items at a price and plays it to the end."""
    a, b = VaultItemFactory.create_batch(2, account=shop.account)
    fans = [make_fan() for _ in range(7)]
    make_fan(platform_fan_id=None)
    media_stats_build(account=shop.account)

    def send(price_cents: int = 1500, media: list[str] | None = None) -> Campaign:
        campaign = make_campaign(
            mode="mass",
            text="New set",
            price_cents=price_cents,
            media_ids=media or [a.platform_media_id, b.platform_media_id],
        )
        campaign = services.campaign_launch(actor=shop.owner, campaign=campaign)
        run_mass(campaign.pk)
        campaign.refresh_from_db()
        assert campaign.state == Campaign.State.DONE
        return campaign

    return type("VaultMass", (), {"a": a, "b": b, "fans": fans, "send": send, "sandbox": sandbox})


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_a_mass_ppv_marks_guards_excludes_and_counts_what_each_fan_got(
    shop, vault_mass, make_campaign
):
    a, b, fans = vault_mass.a, vault_mass.b, vault_mass.fans
    # given: one fan was also offered item a by an individual campaign message today (the
    # same roll-up keys as a mass copy: no sender, the same price and day)
    single = services.campaign_launch(
        actor=shop.owner,
        campaign=make_campaign(price_cents=1500, media_ids=[a.platform_media_id]),
    )
    fanout.campaign_fan_out_batch(campaign_id=single.pk, batch_size=1)
    first = Message.objects.get(campaign_id=single.pk)
    message_mark_sent(message=first, platform_message_id="pm-single-1", sent_at=timezone.now())
    services.campaign_cancel(actor=shop.owner, campaign=single)
    # when: a mass PPV with both items goes out in three chunks (3 + 3 + 1 fans)
    campaign = vault_mass.send(price_cents=1500)
    assert [m["total"] for m in platform_mass(vault_mass.sandbox, shop.account)] == [3, 3, 1]
    chunks = list(MassChunk.objects.filter(campaign=campaign).order_by("index"))
    # then: each fan was offered each item once, from that campaign and its chunk, by its maker
    events = FanMediaEvent.objects.filter(source="campaign_mass")
    assert events.count() == 14
    assert set(events.values_list("kind", "price_cents", "campaign_id", "sent_by_id")) == {
        ("offered", 1500, campaign.pk, shop.owner.pk)
    }
    assert set(events.values_list("mass_chunk_id", "platform_message_id")) == {
        (c.pk, c.platform_mass_id) for c in chunks
    }
    assert set(events.values_list("fan_id", flat=True)) == {f.pk for f in fans}
    # the picker's marks say offered at the campaign's price (a fan the single message missed)
    fan = next(f for f in fans if f.pk != first.conversation.fan_id)
    marks = fan_media_marks(fan_id=fan.pk, item_ids=[a.pk, b.pk])
    assert {k: (m.state, m.price_cents) for k, m in marks.items()} == {
        a.pk: ("offered", 1500),
        b.pk: ("offered", 1500),
    }
    # the fan's history names the campaign
    history = fan_media_history(fan_id=fan.pk).events
    assert {(e.campaign_id, e.message_id) for e in history} == {(campaign.pk, None)}
    # the send API answers 409 media_already_sent for that fan and item
    chatter = UserFactory()
    MembershipFactory(user=chatter, account=shop.account, role="chatter")
    api = APIClient()
    api.force_authenticate(chatter)
    refused = api.post(
        "/api/onlyfans/messages/send",
        {"fan_id": fan.pk, "text": "hi", "price_cents": 1000, "vault_item_ids": [b.pk]},
        format="json",
    )
    assert refused.status_code == 409, refused.content
    body = refused.json()
    assert body["code"] == "media_already_sent"
    assert [(i["vault_item_id"], i["how"], i["price_cents"]) for i in body["items"]] == [
        (b.pk, "offered", 1500)
    ]
    # the next campaign's pre-flight leaves those fans out and says how many
    preflight = campaign_preflight(
        account=shop.account,
        rules=SegmentRules(exclude_received_media=True),
        media_ids=[b.platform_media_id],
        control_percent=0,
        drain_window_minutes=0,
        sample_size=0,
    )
    assert dict((k, n) for k, _label, n in preflight.removed)["received_media"] == 7
    assert preflight.audience == 0
    # and the media page: a offered 8 times (7 copies and the single message), b 7 times,
    # 8 offers at $15 by nobody, from the roll-up kept by the writers...
    kept = rollup_rows(shop.account)
    assert [(t[0], t[3]) for t in kept["totals"]] == sorted([(a.pk, 8), (b.pk, 7)])
    assert [(o[1], o[2], o[3]) for o in kept["offers"]] == [(1500, None, 8)]
    shown = page_figures(shop, [a, b])
    assert shown["all"]["items"][a.pk]["offered"] == 8
    assert shown["week"]["items"][b.pk]["offered"] == 7
    assert [(r.key, r.offered) for r in shown["all"]["by_price"]] == [(1500, 8)]
    # ...equal to the raw rows...
    assert raw_page_figures(shop, [a, b]) == shown
    # ...and to a build from them
    media_stats_build(account=shop.account)
    assert rollup_rows(shop.account) == kept
    assert page_figures(shop, [a, b]) == shown


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_a_free_mass_message_marks_its_media_sent_free(shop, vault_mass):
    a, b = vault_mass.a, vault_mass.b
    vault_mass.send(price_cents=0, media=[a.platform_media_id, "raw-7", a.platform_media_id])
    fan = vault_mass.fans[3]
    marks = fan_media_marks(fan_id=fan.pk, item_ids=[a.pk, b.pk])
    assert {k: (m.state, m.price_cents) for k, m in marks.items()} == {a.pk: ("sent_free", 0)}
    # a raw id that is no vault item is recorded by its platform id (the guard sees it too)
    assert FanMediaEvent.objects.filter(fan=fan, platform_media_id="raw-7").count() == 1
    assert FanMediaEvent.objects.filter(fan=fan, vault_item=a).count() == 1
    kept = rollup_rows(shop.account)
    assert [(t[0], t[1], t[3]) for t in kept["totals"]] == [(a.pk, 7, 0)]
    assert kept["offers"] == []
    shown = page_figures(shop, [a, b])
    assert raw_page_figures(shop, [a, b]) == shown
    media_stats_build(account=shop.account)
    assert rollup_rows(shop.account) == kept


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_an_unsend_takes_the_media_back_from_marks_guard_preflight_and_page(shop, vault_mass):
    a, b = vault_mass.a, vault_mass.b
    campaign = vault_mass.send(price_cents=2000)
    assert FanMediaEvent.objects.filter(source="campaign_mass").count() == 14
    # when: the campaign is unsent from the platform
    services.campaign_unsend(actor=shop.owner, campaign=campaign)
    assert run_unsend(campaign.pk) == ["unsent", "unsent", "unsent", "done"]
    # then: the fans no longer have its media anywhere
    assert FanMediaEvent.objects.filter(source="campaign_mass").count() == 0
    assert fan_media_marks(fan_id=vault_mass.fans[0].pk, item_ids=[a.pk, b.pk]) == {}
    preflight = campaign_preflight(
        account=shop.account,
        rules=SegmentRules(exclude_received_media=True),
        media_ids=[a.platform_media_id],
        control_percent=0,
        drain_window_minutes=0,
        sample_size=0,
    )
    assert dict((k, n) for k, _label, n in preflight.removed)["received_media"] == 0
    # and the roll-up holds nothing (a build from the raw rows has no row either)
    assert rollup_rows(shop.account) == {"days": [], "totals": [], "offers": []}
    shown = page_figures(shop, [a, b])
    assert shown["all"]["items"][a.pk]["offered"] == 0
    assert raw_page_figures(shop, [a, b]) == shown
    media_stats_build(account=shop.account)
    assert rollup_rows(shop.account) == {"days": [], "totals": [], "offers": []}


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_a_chunk_replayed_adds_nothing_twice(shop, vault_mass):
    # given: a sent mass campaign
    from crm.media_send import fan_media_events_record_mass

    campaign = vault_mass.send(price_cents=1500)
    chunk = MassChunk.objects.filter(campaign=campaign).order_by("index")[0]
    assert chunk.sent_at is not None
    kept = rollup_rows(shop.account)
    # when: the same chunk's events are written again (a replay)
    added = fan_media_events_record_mass(
        account_id=shop.account.pk,
        campaign_id=campaign.pk,
        chunk_id=chunk.pk,
        platform_mass_id=chunk.platform_mass_id,
        fan_ids=list(chunk.recipients.values_list("fan_id", flat=True)),
        media_ids=campaign.media_ids,
        price_cents=campaign.price_cents,
        at=chunk.sent_at + timedelta(seconds=1),
        sent_by_id=None,
    )
    # then: nothing is added, to the events or the roll-up
    assert added == 0
    assert rollup_rows(shop.account) == kept


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_each_chunk_writes_its_fans_media_in_one_statement(shop, vault_mass):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # when: seven fans go out in three chunks
    with CaptureQueriesContext(connection) as queries:
        vault_mass.send(price_cents=1500)
    # then: one statement per chunk writes the events (and the roll-up), none per fan
    writes = [q["sql"] for q in queries if "INSERT INTO crm_fanmediaevent" in q["sql"]]
    assert len(writes) == 3
    assert FanMediaEvent.objects.filter(source="campaign_mass").count() == 14


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_an_unlock_of_a_mass_copy_is_recorded_but_not_tied_to_its_media(shop, vault_mass):
    from onlyfans.inbound import purchase_record

    # given: a mass PPV sent; a fan unlocks their copy (the platform names the copy's own
    # message id, which the mass call never told us)
    a, b = vault_mass.a, vault_mass.b
    vault_mass.send(price_cents=1500)
    fan = vault_mass.fans[0]
    purchase = purchase_record(
        account=shop.account,
        platform_fan_id=fan.platform_fan_id,
        kind="ppv",
        amount_cents=1500,
        purchased_at=timezone.now(),
        platform_event_id=f"ppv:copy-1:{fan.platform_fan_id}",
        message_platform_id="copy-1",
    )
    # then: the purchase and the fan's spend are recorded, with no message
    assert purchase is not None and purchase.message_id is None
    # and the media stay offered, not bought: nothing ties the unlock to the campaign
    marks = fan_media_marks(fan_id=fan.pk, item_ids=[a.pk, b.pk])
    assert {m.state for m in marks.values()} == {"offered"}
    assert {t.bought for t in MediaItemTotal.objects.filter(account=shop.account)} == {0}


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_the_fans_media_history_names_the_mass_campaign(client, shop, vault_mass):
    from django.urls import reverse

    campaign = vault_mass.send(price_cents=1500)
    fan = vault_mass.fans[0]
    client.force_login(shop.owner)
    page = client.get(reverse("fan_media_history", args=[shop.account.pk, fan.pk]))
    body = page.content.decode()
    assert page.status_code == 200
    assert body.count("Offered") == 2
    link = reverse("campaign_detail", args=[shop.account.pk, campaign.pk])
    assert f'mass campaign <a href="{link}">#{campaign.pk}</a>' in body
    assert f"by {shop.owner.username}" in body


@override_settings(CAMPAIGN_MASS_CHUNK_SIZE=3)
def test_the_migration_backfills_mass_campaigns_sent_before_it(shop, vault_mass):
    import importlib

    from django.apps import apps
    from django.db import connection

    from crm.media_stats import media_stats_zone

    # given: a mass campaign whose events are missing (sent before they were recorded)
    campaign = vault_mass.send(price_cents=1500)
    columns = ("fan_id", "vault_item_id", "platform_media_id", "kind", "price_cents",
               "platform_message_id", "sent_by_id", "campaign_id", "mass_chunk_id")  # fmt: skip
    events = FanMediaEvent.objects.filter(source="campaign_mass")
    before = sorted(events.values_list(*columns))
    kept = rollup_rows(shop.account)
    events.delete()
    # when: the migration's backfill runs
    migration = importlib.import_module("campaigns.migrations.0005_mass_media_backfill")
    with connection.schema_editor() as editor:
        migration.backfill(apps, editor)
    # then: the same events, the roll-up marked not whole, and a build counts them again
    assert sorted(events.values_list(*columns)) == before
    assert set(events.values_list("campaign_id", flat=True)) == {campaign.pk}
    assert media_stats_zone(account_id=shop.account.pk) is None
    media_stats_build(account=shop.account)
    assert rollup_rows(shop.account) == kept
