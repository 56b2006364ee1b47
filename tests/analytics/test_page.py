"""The analytics page: scoping, htmx fragments, links, reassignment, CSV, query counts."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from analytics.models import PurchaseCredit, PurchaseCreditChange
from analytics.rollups import account_rollup_rebuild
from tests.analytics.fixtures import fan_make, hand_fixture
from tests.factories import CreatorAccountFactory, MembershipFactory

pytestmark = pytest.mark.django_db
RANGE = {"range": "custom", "from": "2025-03-01", "to": "2025-03-07"}


@pytest.fixture
def hand():
    hand = hand_fixture()
    account_rollup_rebuild(account=hand.account)
    return hand


def _url(hand, **extra):
    return reverse("analytics", args=[hand.account.pk])


def test_the_page_shows_real_figures_and_is_linked_in_the_top_bar(client, hand):
    client.force_login(hand.owner)
    response = client.get(_url(hand), RANGE)
    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="{reverse("analytics", args=[hand.account.pk])}"' in html  # top bar
    assert "$34.99" in html  # revenue of the range
    assert "$9.99" in html  # previous period's revenue
    assert "+250.3 %" in html  # (3499 - 999) / 999
    assert "<svg" in html and "<title>" in html
    assert "Campaigns" in html


def test_range_and_grouping_come_back_as_a_fragment_for_htmx(client, hand):
    client.force_login(hand.owner)
    response = client.get(
        _url(hand),
        {**RANGE, "interval": "week"},
        headers={"HX-Request": "true", "HX-Target": "analytics-body"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="analytics-body"')
    assert "<html" not in html
    assert "week of 24 Feb" in html
    # links keep href beside hx-get, and carry the range
    assert 'href="/accounts/' in html and "hx-get=" in html
    assert "interval=month" in html and "from=2025-03-01" in html


@pytest.mark.parametrize("days", ["7", "30", "90"])
def test_presets_render(client, hand, days):
    client.force_login(hand.owner)
    response = client.get(_url(hand), {"range": days})
    assert response.status_code == 200
    assert response.context["period"].days == int(days)


def test_a_bad_custom_range_falls_back_and_says_why(client, hand):
    client.force_login(hand.owner)
    response = client.get(_url(hand), {"range": "custom", "from": "2025-03-07", "to": "2025-03-01"})
    assert response.status_code == 200
    assert "ends before it starts" in response.content.decode()
    assert response.context["period"].days == 30


def test_another_accounts_analytics_is_404(client, hand):
    stranger = MembershipFactory(account=CreatorAccountFactory(), role="owner").user
    client.force_login(stranger)
    purchase = hand.purchases["tip_late"]
    for url in (
        _url(hand),
        reverse("analytics_export", args=[hand.account.pk, "kpis"]),
    ):
        assert client.get(url).status_code == 404
    url = reverse("analytics_reassign", args=[hand.account.pk, purchase.pk])
    assert client.post(url, {"credited_to": "none", "reason": "x"}).status_code == 404
    assert not PurchaseCredit.objects.exists()


def test_a_purchase_of_another_account_cannot_be_reassigned_through_mine(client, hand):
    mine = MembershipFactory(account=CreatorAccountFactory(), role="owner")
    client.force_login(mine.user)
    url = reverse("analytics_reassign", args=[mine.account_id, hand.purchases["tip_late"].pk])
    assert client.post(url, {"credited_to": "none", "reason": "x"}).status_code == 404


def test_login_required(client, hand):
    response = client.get(_url(hand))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_talk_today_links_to_the_inbox_or_the_fan(client, hand):
    from django.utils import timezone

    # an active subscriber whose subscription ends in 3 days, with a chat; and a big spender
    # who has not bought in 30 days, without one
    f1, f4 = hand.fans[0], hand.fans[3]
    f1.subscription_state = "active"
    f1.subscription_expires_at = timezone.now() + timezone.timedelta(days=3)
    f1.lifetime_spend_cents = 50_000
    f1.save()
    f4.lifetime_spend_cents = 20_000
    f4.save()
    client.force_login(hand.alice)
    html = client.get(_url(hand), RANGE).content.decode()
    thread = reverse("inbox_thread", args=[hand.account.pk, hand.conversations[0].pk])
    profile = reverse("fan_detail", args=[hand.account.pk, f4.pk])
    assert f'href="{thread}"' in html
    assert f'href="{profile}"' in html


def test_top_fans_bars_link_to_their_conversation(client, hand):
    f1 = hand.fans[0]
    f1.lifetime_spend_cents = 1_500
    f1.save()
    client.force_login(hand.owner)
    response = client.get(_url(hand), RANGE)
    bars = response.context["top_fan_bars"]
    assert bars[0].url == reverse("inbox_thread", args=[hand.account.pk, hand.conversations[0].pk])


def test_owner_reassigns_a_sale_and_every_figure_follows(client, hand):
    tip = hand.purchases["tip_late"]  # unattributed by the rules
    client.force_login(hand.owner)
    url = reverse("analytics_reassign", args=[hand.account.pk, tip.pk])
    response = client.post(
        f"{url}?range=custom&from=2025-03-01&to=2025-03-07",
        {"credited_to": str(hand.bob.pk), "reason": "bob closed it on a call"},
        headers={"HX-Request": "true", "HX-Target": "attribution"},
    )
    assert response.status_code == 200
    assert 'id="attribution"' in response.content.decode()
    change = PurchaseCreditChange.objects.get()
    assert (change.from_user_id, change.from_rule, change.to_user_id) == (
        None,
        "unattributed",
        hand.bob.pk,
    )
    assert change.changed_by_id == hand.owner.pk and change.reason == "bob closed it on a call"
    page = client.get(_url(hand), RANGE)
    bob = next(c for c in page.context["report"].chatters if c.name == "bob")
    assert bob.revenue_cents == 500 + 700
    assert page.context["report"].attribution.unattributed == (2, 999 + 300)
    # the CSV and the API agree
    rows = list(
        csv.reader(
            io.StringIO(
                client.get(
                    reverse("analytics_export", args=[hand.account.pk, "chatters"]), RANGE
                ).content.decode()
            )
        )
    )
    bob_row = next(r for r in rows if r[:1] == ["bob"])
    assert bob_row[7:9] == ["1200", "2"]  # revenue_cents, purchases_credited


def test_a_chatter_cannot_reassign(client, hand):
    client.force_login(hand.alice)
    url = reverse("analytics_reassign", args=[hand.account.pk, hand.purchases["ppv"].pk])
    response = client.post(url, {"credited_to": str(hand.alice.pk), "reason": "mine"})
    assert response.status_code == 302
    assert not PurchaseCredit.objects.exists()
    html = client.get(response["Location"]).content.decode()
    assert "Only owners and managers" in html


def test_reassignment_needs_a_reason_and_a_member(client, hand):
    client.force_login(hand.owner)
    url = reverse("analytics_reassign", args=[hand.account.pk, hand.purchases["ppv"].pk])
    htmx = {"HX-Request": "true", "HX-Target": "attribution"}
    assert client.post(url, {"credited_to": "none", "reason": " "}, headers=htmx).status_code == 422
    outsider = MembershipFactory(account=CreatorAccountFactory()).user
    response = client.post(url, {"credited_to": str(outsider.pk), "reason": "x"}, headers=htmx)
    assert response.status_code == 422
    assert not PurchaseCredit.objects.exists()


def test_csv_cells_that_look_like_formulas_are_neutralised(client, hand):
    fan = fan_make(
        hand.account,
        "2025-03-03T00:00:00",
        username="=HYPERLINK(x)",
        display_name="@SUM(A1)",
        lifetime_spend_cents=99_999,
    )
    hand.alice.username = "+alice"
    hand.alice.save()
    client.force_login(hand.owner)
    fans = client.get(reverse("analytics_export", args=[hand.account.pk, "top-fans"]), RANGE)
    assert fans["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(fans.content.decode())))
    top = next(r for r in rows if r and r[0] == "1")
    assert top[1:3] == ["'=HYPERLINK(x)", "'@SUM(A1)"]
    assert fan.pk
    chatters = client.get(reverse("analytics_export", args=[hand.account.pk, "chatters"]), RANGE)
    text = chatters.content.decode()
    assert "'+alice" in text
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(("=", "+", "@")), cell
    kpis = client.get(reverse("analytics_export", args=[hand.account.pk, "kpis"]), RANGE)
    kpi_rows = {r[0]: r for r in csv.reader(io.StringIO(kpis.content.decode())) if r}
    assert kpi_rows["revenue_total"][3:5] == ["3499", "999"]


def test_unknown_export_is_404(client, hand):
    client.force_login(hand.owner)
    url = f"/accounts/{hand.account.pk}/analytics/export/secrets.csv"
    assert client.get(url).status_code == 404


def test_page_query_count_is_pinned(client, hand, django_assert_num_queries):
    client.force_login(hand.owner)
    client.get(_url(hand), RANGE)  # warm: session, content types
    with django_assert_num_queries(PAGE_QUERIES):
        client.get(_url(hand), RANGE)
    # more purchases, fans and chatters do not add queries
    for i in range(5):
        MembershipFactory(account=hand.account, role="chatter")
        fan_make(hand.account, "2025-03-03T00:00:00", lifetime_spend_cents=100 * i)
    account_rollup_rebuild(account=hand.account)
    with django_assert_num_queries(PAGE_QUERIES):
        client.get(_url(hand), RANGE)


# 19 since "% answered within target" (one query over the messages, analytics.queries).
PAGE_QUERIES = 19
