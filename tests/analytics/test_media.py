"""Which content sells: every figure against the raw rows and by hand, sorting, ranges in the
account's time zone, filters, breakdowns, scoping (another account, chatters), the CSV, the
API and pinned query counts."""

from __future__ import annotations

import csv
import io
import sys
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from analytics import media_selectors
from analytics.media_selectors import MediaScope
from analytics.periods import Period
from crm.media_stats import media_stats_build, media_stats_link_add
from crm.models import (
    Conversation,
    CreatorAccount,
    MediaItemDay,
    MediaItemTotal,
    MediaOfferDay,
    MediaStatsState,
    Message,
    MessageMedia,
    Purchase,
    VaultItem,
    VaultItemList,
)
from onlyfans.inbound import purchase_record
from onlyfans.services import message_mark_sent
from tests.factories import (
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    PurchaseFactory,
    VaultItemFactory,
    VaultListFactory,
)

pytestmark = pytest.mark.django_db
ZONE = "America/New_York"
FIRST, LAST = date(2025, 3, 1), date(2025, 3, 7)
RANGE = {"range": "custom", "from": "2025-03-01", "to": "2025-03-07"}
API_RANGE = {"from": "2025-03-01", "to": "2025-03-07"}


# Set by the ``shop`` fixture: the shop's messages are marked sent and its purchases recorded
# by the product's writers (which keep the roll-up), not written as finished rows.
THROUGH_WRITERS = False


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Shop:
    account: CreatorAccount
    owner: Any
    manager: Any
    c1: Any
    c2: Any
    items: dict[str, Any]
    messages: dict[str, Message]
    other: CreatorAccount
    other_item: Any
    other_owner: Any

    @property
    def period(self) -> Period:
        return Period(first_day=FIRST, last_day=LAST, zone_name=ZONE)


def _send(
    account: CreatorAccount,
    conversation: Conversation,
    when: str,
    *,
    by: Any,
    price: int = 0,
    media: list[tuple[Any, bool]],
    failed: bool = False,
) -> Message:
    """An outgoing message carrying ``media`` (an item or a raw platform id, is_preview)."""
    ids = [m.platform_media_id if isinstance(m, VaultItem) else m for m, _ in media]
    writers = THROUGH_WRITERS and not failed
    status = "failed" if failed else ("queued" if writers else "sent")
    message = Message.objects.create(
        account=account,
        conversation=conversation,
        direction="out",
        status=status,
        sender_kind="user",
        sent_by=by,
        sent_at=None if status != "sent" else at(when),
        price_cents=price,
        media_ids=ids,
        text="",
        platform_message_id=None if status != "sent" else f"pm-{uuid.uuid4().hex}",
    )
    for position, (item, preview) in enumerate(media):
        MessageMedia.objects.create(
            account=account,
            message=message,
            vault_item=item if isinstance(item, VaultItem) else None,
            platform_media_id=ids[position],
            is_preview=preview,
            position=position,
        )
    if writers:
        message_mark_sent(
            message=message, platform_message_id=f"pm-{uuid.uuid4().hex}", sent_at=at(when)
        )
        message.refresh_from_db()
    return message


def _buy(message: Message, cents: int, when: str, **fields: Any) -> Purchase | None:
    if THROUGH_WRITERS:
        fan = message.conversation.fan
        return purchase_record(
            account=message.account,
            platform_fan_id=str(fan.platform_fan_id),
            kind=fields.pop("kind", "ppv"),
            amount_cents=cents,
            purchased_at=at(when),
            platform_event_id=fields.pop("event", None) or f"ev-{uuid.uuid4().hex}",
            message_platform_id=message.platform_message_id,
        )
    return PurchaseFactory(
        fan=message.conversation.fan,
        kind=fields.pop("kind", "ppv"),
        amount_cents=cents,
        purchased_at=at(when),
        message=message,
        platform_event_id=fields.pop("event", None),
    )


def _account(**fields: Any) -> CreatorAccount:
    account = CreatorAccountFactory(**fields)
    if THROUGH_WRITERS:
        media_stats_build(account=account)  # whole and empty: the writers keep it
    return account


def shop_make() -> Shop:
    account = _account(time_zone=ZONE)
    owner = MembershipFactory(account=account, role="owner").user
    manager = MembershipFactory(account=account, role="manager", user__username="mia").user
    c1 = MembershipFactory(account=account, role="chatter", user__username="cleo").user
    c2 = MembershipFactory(account=account, role="chatter", user__username="dan").user
    fan = FanFactory(account=account, platform_fan_id="f-1")
    fan2 = FanFactory(account=account, platform_fan_id="f-2")
    conv = Conversation.objects.create(account=account, fan=fan)
    conv2 = Conversation.objects.create(account=account, fan=fan2)
    feet = VaultListFactory(account=account, name="Feet")
    i1 = VaultItemFactory(account=account, media_type="photo", labels=["feet"])
    i2 = VaultItemFactory(account=account, media_type="video", labels=["$25 tier"])
    i3 = VaultItemFactory(account=account, media_type="gif")
    i4 = VaultItemFactory(account=account, media_type="photo")  # never sent
    i5 = VaultItemFactory(account=account, media_type="audio")
    for item in (i1, i2):
        VaultItemList.objects.create(item=item, vault_list=feet)
    m = {
        # free, two items
        "m1": _send(account, conv, "2025-03-02T12:00:00", by=c1, media=[(i1, False), (i2, False)]),
        # $20: i1 a free preview (never an offer of it), i2 and i3 paid; bought
        "m2": _send(
            account,
            conv,
            "2025-03-03T12:00:00",
            by=c1,
            price=2000,
            media=[(i1, True), (i2, False), (i3, False)],
        ),
        # $10 i1, not bought (a tip that points at it is no unlock)
        "m3": _send(account, conv2, "2025-03-04T12:00:00", by=c2, price=1000, media=[(i1, False)]),
        # $10 i1, bought (the webhook replayed: one row) and a second PPV row for it
        "m4": _send(account, conv, "2025-03-05T12:00:00", by=c2, price=1000, media=[(i1, False)]),
        # $15 i2 with a raw platform id that is not a vault item: two paid media share it
        "m5": _send(
            account,
            conv,
            "2025-03-06T12:00:00",
            by=c1,
            price=1500,
            media=[(i2, False), ("999999", False)],
        ),
        # failed: never counted
        "m6": _send(
            account,
            conv,
            "2025-03-06T13:00:00",
            by=c1,
            price=1000,
            media=[(i1, False)],
            failed=True,
        ),
        # before the range (all time only), bought
        "m7": _send(account, conv, "2025-02-20T12:00:00", by=c1, price=1000, media=[(i1, False)]),
        # 8 March 03:00 UTC is 7 March in New York: in the range; bought after it
        "m8": _send(
            account, conv, "2025-03-08T03:00:00", by=manager, price=2500, media=[(i5, False)]
        ),
        # 1 March 03:00 UTC is still 28 February in New York: out of the range
        "m9": _send(account, conv2, "2025-03-01T03:00:00", by=c2, price=1000, media=[(i3, False)]),
    }
    _buy(m["m2"], 2000, "2025-03-03T13:00:00")
    _buy(m["m3"], 500, "2025-03-04T13:00:00", kind="tip")
    for _ in range(2):  # a replayed webhook records the unlock once
        purchase_record(
            account=account,
            platform_fan_id="f-1",
            kind="ppv",
            amount_cents=None,
            purchased_at=at("2025-03-05T13:00:00"),
            platform_event_id=f"ppv:{m['m4'].platform_message_id}:f-1",
            message_platform_id=m["m4"].platform_message_id,
        )
    _buy(m["m4"], 1000, "2025-03-05T14:00:00", event="second-row")
    _buy(m["m5"], 1500, "2025-03-06T13:00:00")
    _buy(m["m7"], 1000, "2025-02-20T13:00:00")
    _buy(m["m8"], 2500, "2025-03-09T10:00:00")
    _buy(m["m9"], 1000, "2025-03-01T04:00:00")

    other = _account(time_zone=ZONE)
    other_owner = MembershipFactory(account=other, role="owner").user
    other_item = VaultItemFactory(account=other, media_type="photo")
    other_conv = Conversation.objects.create(account=other, fan=FanFactory(account=other))
    om = _send(
        other, other_conv, "2025-03-03T12:00:00", by=other_owner, price=5000,
        media=[(other_item, False)],
    )  # fmt: skip
    _buy(om, 5000, "2025-03-03T13:00:00")
    return Shop(
        account,
        owner,
        manager,
        c1,
        c2,
        {"i1": i1, "i2": i2, "i3": i3, "i4": i4, "i5": i5},
        m,
        other,
        other_item,
        other_owner,
    )


@pytest.fixture(params=["rollup", "writers", "raw"])
def shop(request, monkeypatch) -> Shop:
    """The shop, its figures counted from the roll-up (built from the rows written here, or
    built empty first and kept by the writers that mark the messages sent and record the
    purchases) or, with no roll-up built, from the raw rows: every test holds for all three."""
    if request.param == "writers":
        monkeypatch.setattr(sys.modules[__name__], "THROUGH_WRITERS", True)
    made = shop_make()
    if request.param == "rollup":
        for account in (made.account, made.other):
            media_stats_build(account=account)
    return made


def _rollup_rows(account: CreatorAccount) -> dict[str, list[tuple[Any, ...]]]:
    fields = {
        "days": (MediaItemDay, ["vault_item_id", "day", "price_cents", "sent_by_id", "sent_free",
                                "previewed", "offered", "bought", "revenue_units"]),
        "totals": (MediaItemTotal, ["vault_item_id", "sent_free", "previewed", "offered",
                                    "bought", "revenue_units"]),
        "offers": (MediaOfferDay, ["day", "price_cents", "sent_by_id", "offered", "bought",
                                   "revenue_cents"]),
    }  # fmt: skip
    return {
        name: sorted(
            model.objects.filter(account=account).values_list(*columns),  # type: ignore[attr-defined]
            key=repr,
        )
        for name, (model, columns) in fields.items()
    }


# --- the oracle: the same figures counted in Python from the raw rows --------------------------


def raw_figures(account: CreatorAccount, period: Period | None) -> dict[int, dict[str, Any]]:
    sent = {
        m.pk: m
        for m in Message.objects.filter(account=account, status="sent")
        if m.sent_at is not None and (period is None or period.start <= m.sent_at < period.end)
    }
    paid_by_message: dict[int, int] = defaultdict(int)
    for p in Purchase.objects.filter(account=account, kind="ppv", message_id__in=list(sent)):
        assert p.message_id is not None
        paid_by_message[p.message_id] += p.amount_cents
    media = list(MessageMedia.objects.filter(message_id__in=list(sent)))
    shares: dict[int, int] = defaultdict(int)
    for row in media:
        if not row.is_preview:
            shares[row.message_id] += 1
    out: dict[int, dict[str, Any]] = {
        item.pk: {"sent_free": 0, "previewed": 0, "offered": 0, "bought": 0, "revenue": Decimal(0)}
        for item in VaultItem.objects.filter(account=account)
    }
    for row in media:
        if row.vault_item_id is None:
            continue
        figures = out[row.vault_item_id]
        message = sent[row.message_id]
        if message.price_cents == 0:
            figures["sent_free"] += 1
        elif row.is_preview:
            figures["previewed"] += 1
        else:
            figures["offered"] += 1
            if row.message_id in paid_by_message:
                figures["bought"] += 1
                figures["revenue"] += (
                    Decimal(paid_by_message[row.message_id]) / shares[row.message_id]
                )
    for figures in out.values():
        figures["revenue"] = int(figures["revenue"].quantize(Decimal(1)))
    return out


def _as_dict(row: Any) -> dict[str, Any]:
    f = row.figures
    return {
        "sent_free": f.sent_free,
        "previewed": f.previewed,
        "offered": f.offered,
        "bought": f.bought,
        "revenue": f.revenue_cents,
    }


def _membership(shop: Shop, user: Any) -> Any:
    return media_selectors.media_membership(user=user, account_id=shop.account.pk)


@pytest.mark.parametrize("ranged", [True, False])
def test_every_items_figure_equals_the_raw_rows_and_the_hand_count(shop, ranged):
    # given the range (in New York's days) or all time
    period = shop.period if ranged else None
    # when
    page = media_selectors.media_items(
        membership=_membership(shop, shop.owner), scope=MediaScope(period=period)
    )
    # then
    got = {r.item_id: _as_dict(r) for r in page.rows}
    assert got == raw_figures(shop.account, period)
    assert page.total == 5 and shop.other_item.pk not in got
    i = {k: v.pk for k, v in shop.items.items()}
    if ranged:
        assert got[i["i1"]] == {
            "sent_free": 1, "previewed": 1, "offered": 2, "bought": 1, "revenue": 2000
        }  # fmt: skip
        assert got[i["i2"]] == {
            "sent_free": 1, "previewed": 0, "offered": 2, "bought": 2, "revenue": 1750
        }  # fmt: skip
        assert got[i["i3"]]["offered"] == 1 and got[i["i3"]]["revenue"] == 1000  # not m9
        assert got[i["i5"]] == {
            "sent_free": 0, "previewed": 0, "offered": 1, "bought": 1, "revenue": 2500
        }  # fmt: skip
        assert [r.item_id for r in page.rows] == [i["i5"], i["i1"], i["i2"], i["i3"], i["i4"]]
        by_id = {r.item_id: r.figures for r in page.rows}
        assert by_id[i["i1"]].conversion == 0.5 and by_id[i["i1"]].revenue_per_offer_cents == 1000
        assert by_id[i["i4"]].conversion is None
    else:
        assert got[i["i1"]]["offered"] == 3 and got[i["i1"]]["revenue"] == 3000  # m7 too
        assert got[i["i3"]]["offered"] == 2  # m9 too
        assert page.rows[0].item_id == i["i1"]


SORTS = ["revenue", "revenue_per_offer", "conversion", "bought", "offered", "previewed",
         "sent_free", "created"]  # fmt: skip


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("sort", SORTS)
def test_each_sort_orders_as_the_raw_figures_do(shop, sort, descending):
    raw = raw_figures(shop.account, shop.period)
    items = {item.pk: item for item in VaultItem.objects.filter(account=shop.account)}

    def key(pk: int) -> Any:
        f = raw[pk]
        value = {
            "conversion": f["bought"] / f["offered"] if f["offered"] else None,
            "revenue_per_offer": f["revenue"] / f["offered"] if f["offered"] else None,
            "created": items[pk].platform_created_at.timestamp(),
        }.get(sort, f.get(sort))
        return value

    # ties: newest item first; no value (no offers): last in either direction
    newest = sorted(items, key=lambda pk: (items[pk].platform_created_at, pk), reverse=True)
    valued = [pk for pk in newest if key(pk) is not None]
    valued.sort(key=key, reverse=descending)  # stable: ties keep newest first
    expected = valued + [pk for pk in newest if key(pk) is None]
    page = media_selectors.media_items(
        membership=_membership(shop, shop.owner),
        scope=MediaScope(period=shop.period, sort=sort, descending=descending),
    )
    assert [r.item_id for r in page.rows] == expected


def test_pages_split_the_order_without_gaps(shop, monkeypatch):
    monkeypatch.setattr(media_selectors, "PAGE_SIZE", 2)
    membership = _membership(shop, shop.owner)
    scope = MediaScope(period=shop.period)
    pages = [
        media_selectors.media_items(membership=membership, scope=scope, page=n)
        for n in (1, 2, 3, 4)
    ]
    ids = [r.item_id for p in pages for r in p.rows]
    whole = [r.item_id for r in media_selectors.media_items_all(membership=membership, scope=scope)]
    assert ids == whole and len(ids) == 5
    assert [p.pages for p in pages] == [3, 3, 3, 3] and pages[3].rows == []
    assert pages[3].total == 5  # past the end: still says how many


def test_filters_by_type_list_and_label(shop):
    membership = _membership(shop, shop.owner)
    i = {k: v.pk for k, v in shop.items.items()}
    feet = shop.items["i1"].lists.get()

    def ids(**filters: Any) -> set[int]:
        page = media_selectors.media_items(
            membership=membership, scope=MediaScope(period=shop.period, **filters)
        )
        return {r.item_id for r in page.rows}

    assert ids(media_type="photo") == {i["i1"], i["i4"]}
    assert ids(list_id=feet.pk) == {i["i1"], i["i2"]}
    assert ids(label="$25 tier") == {i["i2"]}
    assert ids(label="feet", media_type="video") == set()
    other_list = VaultListFactory(account=shop.other)
    assert ids(list_id=other_list.pk) == set()  # another account's list matches nothing


def test_by_price_and_by_chatter_count_messages(shop):
    membership = _membership(shop, shop.owner)
    scope = MediaScope(period=shop.period)
    prices = media_selectors.media_breakdown(membership=membership, scope=scope, by="price")
    assert [(g.key, g.offered, g.bought, g.revenue_cents) for g in prices.rows] == [
        (2500, 1, 1, 2500),
        (1000, 2, 1, 2000),  # m3, m4 (m9 is February in New York; m6 failed)
        (2000, 1, 1, 2000),
        (1500, 1, 1, 1500),  # m5's whole revenue
    ]
    chatters = media_selectors.media_breakdown(membership=membership, scope=scope, by="chatter")
    rows = {c.name: (c.row.offered, c.row.bought, c.row.revenue_cents) for c in chatters.chatters()}
    assert rows == {"cleo": (2, 2, 3500), "mia": (1, 1, 2500), "dan": (2, 1, 2000)}
    assert not chatters.own_only
    photos = media_selectors.media_breakdown(
        membership=membership, scope=MediaScope(period=shop.period, media_type="photo"), by="price"
    )
    assert [(g.key, g.offered, g.bought, g.revenue_cents) for g in photos.rows] == [
        (1000, 2, 1, 2000)
    ]


def test_one_items_breakdowns(shop):
    membership = _membership(shop, shop.owner)
    scope = MediaScope(period=shop.period)
    i2 = shop.items["i2"].pk
    prices = media_selectors.media_item_breakdown(
        membership=membership, scope=scope, item_id=i2, by="price"
    )
    assert [(g.key, g.offered, g.bought, g.revenue_cents) for g in prices.rows] == [
        (2000, 1, 1, 1000),
        (1500, 1, 1, 750),
    ]
    i1 = shop.items["i1"].pk
    chatters = media_selectors.media_item_breakdown(
        membership=membership, scope=scope, item_id=i1, by="chatter"
    )
    assert [(c.name, c.row.offered, c.row.bought) for c in chatters.chatters()] == [("dan", 2, 1)]
    figures = media_selectors.media_item_figures(membership=membership, scope=scope, item_id=i1)
    assert (figures.previewed, figures.offered, figures.revenue_cents) == (1, 2, 2000)


def test_a_chatter_sees_items_and_prices_but_only_their_own_offers(client, shop):
    membership = _membership(shop, shop.c2)
    scope = MediaScope(period=shop.period)
    items = media_selectors.media_items(membership=membership, scope=scope)
    assert len(items.rows) == 5  # the same figures as the owner's
    chatters = media_selectors.media_breakdown(membership=membership, scope=scope, by="chatter")
    assert chatters.own_only
    assert [(c.name, c.row.offered) for c in chatters.chatters()] == [("dan", 2)]
    client.force_login(shop.c2)
    url = reverse("analytics_media", args=[shop.account.pk])
    html = client.get(url, {**RANGE, "view": "chatters"}).content.decode()
    assert "dan" in html and "cleo" not in html and "You see your own offers" in html
    item_url = reverse("analytics_media_item", args=[shop.account.pk, shop.items["i2"].pk])
    html = client.get(item_url, RANGE).content.decode()
    assert "cleo" not in html  # i2 was offered by cleo only
    api = client.get(
        reverse("api_analytics_media", args=[shop.account.pk]), {**API_RANGE, "view": "chatters"}
    ).json()
    assert [g["username"] for g in api["groups"]] == ["dan"]


def test_another_accounts_page_item_and_api_are_404(client, shop):
    client.force_login(shop.owner)
    assert client.get(reverse("analytics_media", args=[shop.other.pk])).status_code == 404
    foreign = reverse("analytics_media_item", args=[shop.account.pk, shop.other_item.pk])
    assert client.get(foreign).status_code == 404
    other_item = reverse("analytics_media_item", args=[shop.other.pk, shop.other_item.pk])
    assert client.get(other_item).status_code == 404
    api = client.get(reverse("api_analytics_media", args=[shop.other.pk]))
    assert api.status_code == 404 and api.json()["code"] == "account_not_found"
    export = reverse("analytics_media_export", args=[shop.other.pk])
    assert client.get(export).status_code == 404
    client.logout()
    assert client.get(reverse("analytics_media", args=[shop.account.pk])).status_code == 302
    assert client.get(reverse("api_analytics_media", args=[shop.account.pk])).status_code in (
        401,
        403,
    )


def test_the_page_shows_the_figures_sort_links_and_an_htmx_fragment(client, shop):
    VaultItem.objects.filter(pk=shop.items["i5"].pk).update(thumb_name="ab/cd.jpg")
    client.force_login(shop.owner)
    url = reverse("analytics_media", args=[shop.account.pk])
    html = client.get(url, RANGE).content.decode()
    # thumbnails come from the vault's members-only view, never the platform's URL
    assert (
        f'src="{reverse("vault_item_thumb", args=[shop.account.pk, shop.items["i5"].pk])}"' in html
    )
    assert "Which content sells" in html
    assert "$25" in html and "$17.50" in html and "50.0 %" in html
    assert 'aria-sort="descending"' in html and "sort=revenue" in html  # click: lowest first
    assert "sort=-offered" in html
    assert reverse("analytics_media_item", args=[shop.account.pk, shop.items["i1"].pk]) in html
    fragment = client.get(
        url, {**RANGE, "sort": "offered"}, headers={"HX-Request": "true", "HX-Target": "media-body"}
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="media-body"') and "<html" not in fragment
    assert 'aria-sort="ascending"' in fragment
    prices = client.get(url, {**RANGE, "view": "prices"}).content.decode()
    assert "By price" in prices and "$20" in prices


def test_bad_input_falls_back_and_never_fails(client, shop):
    client.force_login(shop.owner)
    url = reverse("analytics_media", args=[shop.account.pk])
    for query in (
        {"sort": "id; DROP TABLE crm_message"},
        {"range": "custom", "from": "2025-03-07", "to": "2025-03-01"},
        {"page": "0"},
        {"page": "x" * 5000},
        {"type": "pdf", "list": "abc", "label": "x" * 500},
        {"view": "everything"},
    ):
        assert client.get(url, query).status_code == 200
    html = client.get(url, {"range": "custom", "from": "2025-03-07", "to": "2025-03-01"})
    assert "The range ends before it starts." in html.content.decode()
    api = reverse("api_analytics_media", args=[shop.account.pk])
    bad = client.get(api, {"sort": "price"})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"
    reversed_range = client.get(api, {"from": "2025-03-07", "to": "2025-03-01"})
    assert reversed_range.status_code == 400 and reversed_range.json()["code"] == "invalid_range"


def test_the_csv_has_every_item_and_neutralises_labels(client, shop):
    VaultItem.objects.filter(pk=shop.items["i4"].pk).update(labels=["=HYPERLINK(1)"])
    client.force_login(shop.owner)
    response = client.get(reverse("analytics_media_export", args=[shop.account.pk]), RANGE)
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:4] == ["vault_item_id", "type", "created", "labels"]
    by_id = {int(r[0]): r for r in rows[1:]}
    assert set(by_id) == {item.pk for item in shop.items.values()}
    assert by_id[shop.items["i4"].pk][3] == "'=HYPERLINK(1)"
    assert by_id[shop.items["i2"].pk][6:10] == ["2", "2", "1.0", "1750"]


def test_the_api_gives_the_same_figures(client, shop):
    client.force_login(shop.owner)
    url = reverse("api_analytics_media", args=[shop.account.pk])
    body = client.get(url, {**API_RANGE, "sort": "-revenue"}).json()
    raw = raw_figures(shop.account, shop.period)
    assert body["period"] == {"from": "2025-03-01", "to": "2025-03-07", "days": 7}
    assert body["total"] == 5 and body["time_zone"] == ZONE
    for item in body["items"]:
        f = raw[item["id"]]
        assert (item["sent_free"], item["previewed"], item["offered"], item["bought"]) == (
            f["sent_free"],
            f["previewed"],
            f["offered"],
            f["bought"],
        )
        assert item["revenue_cents"] == f["revenue"]
    assert body["items"][0]["id"] == shop.items["i5"].pk
    assert body["items"][0]["thumbnail_url"] is None
    everything = client.get(url, {"range": "all"}).json()
    assert everything["period"] is None and everything["items"][0]["id"] == shop.items["i1"].pk
    prices = client.get(url, {**API_RANGE, "view": "prices"}).json()
    assert prices["groups"][0] == {
        "price_cents": 2500, "user_id": None, "username": None, "offered": 1, "bought": 1,
        "conversion": 1.0, "revenue_cents": 2500, "revenue_per_offer_cents": 2500,
    }  # fmt: skip


def test_the_analytics_page_lists_top_media_by_revenue(client, shop, django_assert_num_queries):
    client.force_login(shop.owner)
    html = client.get(reverse("analytics", args=[shop.account.pk]), RANGE).content.decode()
    top = reverse("analytics_media_top", args=[shop.account.pk])
    assert "Top media by revenue" in html and f'hx-get="{top}?' in html  # loads after the page
    with django_assert_num_queries(8):
        html = client.get(top, RANGE, headers={"HX-Request": "true"}).content.decode()
    assert html.lstrip().startswith('<section class="card" id="top-media"')
    section = html.split("</section>")[0]
    i = {k: v.pk for k, v in shop.items.items()}
    order = [section.index(f"#{i[k]}<") for k in ("i5", "i1", "i2", "i3")]
    assert order == sorted(order)
    assert f"#{i['i4']}<" not in section  # earned nothing
    assert reverse("analytics_media", args=[shop.account.pk]) in section


PAGE_QUERIES = 12  # with the roll-up's state


def _more_rows(shop: Shop) -> None:
    """More items, messages, purchases and members: the query counts stay the same."""
    conv = Conversation.objects.filter(account=shop.account).first()
    for n in range(6):
        item = VaultItemFactory(account=shop.account)
        user = MembershipFactory(account=shop.account, role="chatter").user
        message = _send(
            shop.account, conv, f"2025-03-0{n % 6 + 2}T15:0{n}:00", by=user, price=1000,
            media=[(item, False), (shop.items["i1"], True)],
        )  # fmt: skip
        _buy(message, 1000, "2025-03-07T10:00:00")


@pytest.mark.parametrize(
    ("name", "query", "count"),
    [
        ("items", RANGE, PAGE_QUERIES),
        ("all time, by offers", {"range": "all", "sort": "-offered"}, PAGE_QUERIES),
        ("by price", {**RANGE, "view": "prices"}, PAGE_QUERIES),
        ("by chatter", {**RANGE, "view": "chatters"}, PAGE_QUERIES + 2),
    ],
)
def test_page_query_counts_are_pinned(client, shop, django_assert_num_queries, name, query, count):
    client.force_login(shop.owner)
    url = reverse("analytics_media", args=[shop.account.pk])
    client.get(url, query)  # warm: session, content types
    with django_assert_num_queries(count):
        assert client.get(url, query).status_code == 200
    _more_rows(shop)
    with django_assert_num_queries(count):
        assert client.get(url, query).status_code == 200


def test_item_page_csv_and_api_query_counts_are_pinned(client, shop, django_assert_num_queries):
    client.force_login(shop.owner)
    item = reverse("analytics_media_item", args=[shop.account.pk, shop.items["i1"].pk])
    export = reverse("analytics_media_export", args=[shop.account.pk])
    api = reverse("api_analytics_media", args=[shop.account.pk])
    for url in (item, export, api):
        client.get(url, API_RANGE if url == api else RANGE)
    for _ in range(2):
        with django_assert_num_queries(21):
            assert client.get(item, RANGE).status_code == 200
        with django_assert_num_queries(8):
            response = client.get(export, RANGE)
            b"".join(response.streaming_content)
        with django_assert_num_queries(8):
            assert client.get(api, API_RANGE).status_code == 200
        _more_rows(shop)


def test_the_writers_keep_the_roll_up_as_a_build_from_the_raw_rows_counts_it(monkeypatch):
    # given the roll-up whole before any row, then every row written by the product's writers
    monkeypatch.setattr(sys.modules[__name__], "THROUGH_WRITERS", True)
    shop = shop_make()
    # and a message whose media was not in the vault when sent, synced later
    conv = Conversation.objects.filter(account=shop.account).first()
    late = _send(
        shop.account, conv, "2025-03-04T18:00:00", by=shop.c1, price=3000,
        media=[("late-1", False), (shop.items["i4"], False)],
    )  # fmt: skip
    _buy(late, 3000, "2025-03-04T19:00:00")
    VaultItemFactory(account=shop.account, platform_media_id="late-1", media_type="video")
    assert media_stats_link_add(account_id=shop.account.pk) == 1
    kept = _rollup_rows(shop.account)
    assert kept["totals"] and kept["days"] and kept["offers"]
    # then a build from the raw rows gives the very same rows, days, totals and offers
    media_stats_build(account=shop.account)
    assert _rollup_rows(shop.account) == kept
    # and the page (all time from the totals, a range from the days) equals the raw rows
    membership = _membership(shop, shop.owner)
    for period in (None, shop.period):
        page = media_selectors.media_items(membership=membership, scope=MediaScope(period=period))
        assert {r.item_id: _as_dict(r) for r in page.rows} == raw_figures(shop.account, period)


def test_all_time_figures_are_true_while_the_roll_up_is_rebuilt(shop):
    # given a roll-up not whole (being rebuilt, as after a migration): the raw rows count
    MediaStatsState.objects.filter(account=shop.account).update(built_at=None)
    MediaItemTotal.objects.filter(account=shop.account).delete()
    page = media_selectors.media_items(
        membership=_membership(shop, shop.owner), scope=MediaScope(period=None)
    )
    assert {r.item_id: _as_dict(r) for r in page.rows} == raw_figures(shop.account, None)
