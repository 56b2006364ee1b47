"""The roll-ups equal the raw queries, and the refresh keeps them so as rows arrive."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from analytics import rollups
from analytics.histogram import bucket_bounds, bucket_of
from analytics.models import ActiveGap, FanActiveDay
from analytics.periods import Period
from analytics.rollups import account_rollup_rebuild, rollups_refresh
from analytics.selectors import report_compute
from analytics.services import purchase_credit_reassign
from tests.analytics.fixtures import fan_make, hand_fixture, message_make, purchase_make
from tests.factories import ConversationFactory, CreatorAccountFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def _random_account(seed: int, time_zone: str):
    """Fans, chats, replies by three chatters and a campaign, PPVs, tips and subscriptions
    scattered over March and April 2025."""
    rng = random.Random(seed)
    account = CreatorAccountFactory(time_zone=time_zone)
    chatters = [MembershipFactory(account=account, role="chatter").user for _ in range(3)]
    start = date(2025, 3, 1)

    def moment(day: int) -> str:
        when = start + timedelta(days=day)
        return f"{when}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}"

    for i in range(25):
        fan = fan_make(account, moment(rng.randrange(-20, 55)), username=f"r{seed}_{i}")
        ppvs = []
        if rng.random() < 0.8:
            conversation = ConversationFactory(fan=fan)
            times = sorted(moment(rng.randrange(0, 60)) for _ in range(rng.randrange(1, 14)))
            for when in times:
                roll = rng.random()
                if roll < 0.5:
                    message_make(conversation, when)
                elif roll < 0.9:
                    price = rng.choice([0, 0, 500, 1500])
                    m = message_make(
                        conversation,
                        when,
                        out_by=rng.choice(chatters),
                        price=price,
                        failed=rng.random() < 0.05,
                    )
                    if price:
                        ppvs.append(m)
                else:
                    message_make(conversation, when, campaign=True)
        for m in ppvs:
            if rng.random() < 0.5:
                bought = (m.created_at + timedelta(hours=rng.randrange(1, 30))).isoformat()[:19]
                purchase_make(fan, "ppv", m.price_cents, bought, m)
        for _ in range(rng.randrange(0, 3)):
            purchase_make(fan, "tip", rng.choice([300, 500, 2000]), moment(rng.randrange(0, 60)))
        if rng.random() < 0.5:
            purchase_make(fan, "subscription", 999, moment(rng.randrange(-10, 60)))
    return account


def _comparable(report):
    kpis = {k.key: (k.value, k.previous) for k in report.kpis if k.unit != "seconds"}
    series = {
        name: [(p.start, dict(p.values)) for p in s.points] for name, s in report.series.items()
    }
    chatters = {
        c.user_id: (c.messages_sent, c.replies, c.ppv_sent, c.ppv_unlocked, c.revenue_cents)
        for c in report.chatters
    }
    return kpis, series, chatters, report.attribution, report.spend_bands


def _assert_equal(account, period, interval):
    rolled = report_compute(account=account, period=period, interval=interval)
    raw = report_compute(account=account, period=period, interval=interval, source="raw")
    assert _comparable(rolled) == _comparable(raw)
    for a, b in zip(rolled.kpis, raw.kpis, strict=True):
        if a.unit == "seconds" and b.value is not None:
            low, high = bucket_bounds(bucket_of(b.value))
            assert a.value is not None and low - 1e-6 <= a.value <= high + 1e-6, (a, b)


@pytest.mark.parametrize(
    ("seed", "time_zone"), [(1, "UTC"), (2, "Europe/Berlin"), (3, "Pacific/Auckland")]
)
def test_rollups_equal_the_raw_queries(seed, time_zone):
    account = _random_account(seed, time_zone)
    account_rollup_rebuild(account=account)
    for first, last in [
        (date(2025, 3, 1), date(2025, 3, 31)),
        (date(2025, 3, 10), date(2025, 3, 16)),
        (date(2025, 2, 1), date(2025, 5, 1)),
    ]:
        for interval in ("day", "week", "month"):
            period = Period(first_day=first, last_day=last, zone_name=time_zone)
            _assert_equal(account, period, interval)


def test_the_refresh_picks_up_new_rows_and_late_ones():
    # given roll-ups built from the hand fixture
    hand = hand_fixture()
    rollups_refresh()  # first sight of the account: rebuilt whole
    assert rollups.rollup_state(account_id=hand.account.pk) is not None
    period = hand.period
    before = report_compute(account=hand.account, period=period, interval="day")
    assert before.kpi_map["revenue_total"].value == 3499
    # when rows arrive: a fan, a reply answering c3's waiting fan, a tip an hour later, and a
    # late message that fills a gap
    f6 = fan_make(hand.account, "2025-03-04T08:00:00")
    c3 = hand.conversations[2]
    message_make(c3, "2025-03-06T20:10:00", out_by=hand.alice)
    purchase_make(hand.fans[2], "tip", 800, "2025-03-06T21:00:00")
    message_make(hand.conversations[0], "2025-02-27T10:00:00")  # late: previous period
    result = rollups_refresh()
    # then
    assert result["days"] >= 3 and result["rebuilt"] == 0
    after = report_compute(account=hand.account, period=period, interval="day")
    raw = report_compute(account=hand.account, period=period, interval="day", source="raw")
    assert _comparable(after) == _comparable(raw)
    assert after.kpi_map["revenue_total"].value == 3499 + 800
    assert after.kpi_map["fans_new"].value == 3 and f6.pk
    assert after.kpi_map["messages_received"].previous == 2
    alice = next(c for c in after.chatters if c.name == "alice")
    assert alice.revenue_cents == 1000 + 800  # the tip came within 24 h of her reply
    # a second run (it re-reads a margin of recent ids and recent sends) changes nothing
    rollups_refresh()
    assert _comparable(report_compute(account=hand.account, period=period, interval="day")) == (
        _comparable(raw)
    )


def test_a_time_zone_change_rebuilds_the_account():
    hand = hand_fixture()
    rollups_refresh()
    hand.account.time_zone = "America/New_York"
    hand.account.save()
    assert rollups_refresh()["rebuilt"] == 1
    period = Period(
        first_day=date(2025, 3, 1), last_day=date(2025, 3, 7), zone_name="America/New_York"
    )
    _assert_equal(hand.account, period, "day")


def test_reassignment_updates_the_rollups_at_once():
    hand = hand_fixture()
    account_rollup_rebuild(account=hand.account)
    purchase_credit_reassign(
        actor=hand.owner,
        account_id=hand.account.pk,
        purchase_id=hand.purchases["ppv"].pk,
        credited_to_id=hand.bob.pk,
        reason="bob wrote the pitch",
    )
    _assert_equal(hand.account, hand.period, "day")
    report = report_compute(account=hand.account, period=hand.period, interval="day")
    assert report.attribution.by_rule["reassigned"] == (1, 1000)
    bob = next(c for c in report.chatters if c.name == "bob")
    assert bob.revenue_cents == 1500
    # and back to the rule
    purchase_credit_reassign(
        actor=hand.owner,
        account_id=hand.account.pk,
        purchase_id=hand.purchases["ppv"].pk,
        credited_to_id=None,
        reason="mistake",
        back_to_rule=True,
    )
    report = report_compute(account=hand.account, period=hand.period, interval="day")
    assert next(c for c in report.chatters if c.name == "alice").revenue_cents == 1000
    _assert_equal(hand.account, hand.period, "day")


def test_active_gaps_match_the_active_days():
    account = _random_account(7, "UTC")
    account_rollup_rebuild(account=account)
    # recompute a middle slice again: the gap counts must still describe every fan once
    rollups.rollup_recompute(
        account=account, first_day=date(2025, 3, 10), last_day=date(2025, 3, 20)
    )
    days: dict[int, list[date]] = {}
    for fan_id, day in FanActiveDay.objects.filter(account=account).values_list("fan_id", "day"):
        days.setdefault(fan_id, []).append(day)
    expected: dict[tuple[date, date], int] = {}
    for fan_days in days.values():
        fan_days.sort()
        for i, day in enumerate(fan_days):
            nxt = fan_days[i + 1] if i + 1 < len(fan_days) else date(9999, 12, 31)
            expected[(day, nxt)] = expected.get((day, nxt), 0) + 1
    actual = {(g.day, g.next_day): g.fans for g in ActiveGap.objects.filter(account=account)}
    assert actual == expected
