"""The agency overview: figures from real rows, links into the inbox, scoping, a fixed number
of queries whatever the number of accounts."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Conversation, CreatorAccount, Fan, Message, WorkSession
from tests.factories import (
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    PurchaseFactory,
    UserFactory,
)
from workday import selectors

pytestmark = pytest.mark.django_db


def _conversation(account, **fields):
    return Conversation.objects.create(account=account, fan=FanFactory(account=account), **fields)


def _tile(user, account):
    return {t.account.pk: t for t in selectors.overview_tiles(user=user)}[account.pk]


def test_figures_come_from_the_rows():
    account = CreatorAccountFactory(time_zone="America/New_York", reply_target_seconds=300)
    owner = MembershipFactory(account=account, role="owner").user
    chatter = MembershipFactory(account=account, role="chatter", user__username="zoe").user
    now = timezone.now()
    _conversation(account, waiting_since=now - timedelta(minutes=2), unread_count=1)
    _conversation(account, waiting_since=now - timedelta(minutes=40), unread_count=3)
    _conversation(account, unread_count=2)
    # snoozed: out of the inbox's views, so out of the counts
    _conversation(account, waiting_since=now - timedelta(hours=5), unread_count=1,
                  snoozed_at=now)  # fmt: skip
    WorkSession.objects.create(account=account, user=chatter, started_at=now, last_activity_at=now)
    done = MembershipFactory(account=account, role="chatter").user
    WorkSession.objects.create(
        account=account, user=done, started_at=now - timedelta(hours=2), ended_at=now,
        end_reason="manual", last_activity_at=now,
    )  # fmt: skip
    c = _conversation(account)
    for status in ("queued", "queued", "sending", "sent"):
        Message.objects.create(
            account=account, conversation=c, direction="out", status=status, sender_kind="user",
            sent_at=now if status == "sent" else None,
        )  # fmt: skip
    local_midnight = datetime.combine(
        now.astimezone(ZoneInfo("America/New_York")).date(), datetime.min.time(),
        tzinfo=ZoneInfo("America/New_York"),
    )  # fmt: skip
    fan = c.fan
    PurchaseFactory(fan=fan, amount_cents=1000, purchased_at=local_midnight + timedelta(seconds=1))
    PurchaseFactory(fan=fan, amount_cents=700, purchased_at=local_midnight - timedelta(seconds=1))
    PurchaseFactory(fan=fan, amount_cents=300, purchased_at=local_midnight - timedelta(days=6))
    PurchaseFactory(fan=fan, amount_cents=5000, purchased_at=local_midnight - timedelta(days=7))
    tile = _tile(owner, account)
    f = tile.figures
    assert (f.waiting, f.overdue, f.unread, f.queued) == (2, 1, 3, 2)
    assert f.oldest_waiting_since == now - timedelta(minutes=40)
    assert 2390 < tile.oldest_wait_seconds < 2500
    assert f.clocked_in == ["zoe"]
    assert f.revenue_today_cents == 1000  # yesterday's $7 is not today in New York
    assert f.revenue_7d_cents == 2000  # today and the 6 days before; not 7 days ago
    # the account's first-reply target, and the shorter one for a big spender
    CreatorAccount.objects.filter(pk=account.pk).update(
        reply_target_seconds=60, vip_reply_target_seconds=60
    )
    assert _tile(owner, account).figures.overdue == 2
    CreatorAccount.objects.filter(pk=account.pk).update(
        reply_target_seconds=3600, vip_reply_target_seconds=60, vip_spend_threshold_cents=10_000
    )
    assert _tile(owner, account).figures.overdue == 0
    Fan.objects.filter(account=account, conversation__waiting_since__isnull=False).update(
        lifetime_spend_cents=10_000
    )
    assert _tile(owner, account).figures.overdue == 2


def test_the_page_links_tiles_into_the_inbox_and_warns_of_an_expired_session(client):
    account = CreatorAccountFactory(connection_state=CreatorAccount.ConnectionState.EXPIRED)
    manager = MembershipFactory(account=account, role="manager").user
    _conversation(account, waiting_since=timezone.now(), unread_count=1)
    client.force_login(manager)
    html = client.get(reverse("workday_overview")).content.decode()
    inbox = reverse("inbox", args=[account.pk])
    assert f'href="{inbox}?sort=waiting" data-figure="waiting">1<' in html
    assert f'href="{inbox}?unread=on" data-figure="unread">1<' in html
    assert "sends are paused" in html
    assert f'href="{reverse("workday_overview")}"' in html  # top bar
    # the poll asks for the tiles alone
    fragment = client.get(
        reverse("workday_overview"), headers={"HX-Request": "true", "HX-Target": "overview-tiles"}
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="overview-tiles"') and "<html" not in fragment
    assert 'hx-trigger="every 30s"' in fragment


def test_only_accounts_one_owns_or_manages(client):
    mine = CreatorAccountFactory(display_name="Mine")
    chatting = CreatorAccountFactory(display_name="Chatting")
    CreatorAccountFactory(display_name="Stranger")
    user = UserFactory()
    MembershipFactory(account=mine, role="manager", user=user)
    MembershipFactory(account=chatting, role="chatter", user=user)
    assert [t.account.display_name for t in selectors.overview_tiles(user=user)] == ["Mine"]
    chatter = MembershipFactory(account=chatting, role="chatter").user
    client.force_login(chatter)
    assert client.get(reverse("workday_overview")).status_code == 403
    assert 'href="/overview/"' not in client.get(reverse("home")).content.decode()


def test_query_count_is_pinned_whatever_the_number_of_accounts(client, django_assert_num_queries):
    owner = UserFactory()
    for _ in range(2):
        MembershipFactory(account=CreatorAccountFactory(), role="owner", user=owner)
    client.force_login(owner)
    client.get(reverse("workday_overview"))
    with django_assert_num_queries(OVERVIEW_QUERIES):
        client.get(reverse("workday_overview"))
    for _ in range(8):
        account = CreatorAccountFactory()
        MembershipFactory(account=account, role="owner", user=owner)
        _conversation(account, waiting_since=timezone.now())
        chatter = MembershipFactory(account=account, role="chatter").user
        now = timezone.now()
        WorkSession.objects.create(
            account=account, user=chatter, started_at=now, last_activity_at=now
        )
    with django_assert_num_queries(OVERVIEW_QUERIES):
        response = client.get(reverse("workday_overview"))
    assert response.content.decode().count('class="card wd-tile') == 10


# session, user, memberships, the figures, and the two every page makes
OVERVIEW_QUERIES = 6


def test_counts_stop_at_the_cap(monkeypatch):
    monkeypatch.setattr(selectors, "OVERVIEW_COUNT_CAP", 2)
    account = CreatorAccountFactory()
    owner = MembershipFactory(account=account, role="owner").user
    for minutes in (1, 2, 3):
        _conversation(account, waiting_since=timezone.now() - timedelta(minutes=minutes))
    tile = _tile(owner, account)
    assert tile.figures.waiting == 2 and tile.counts["waiting"] == "1+"
    # the oldest wait is still the true oldest
    assert 170 < tile.oldest_wait_seconds < 200
