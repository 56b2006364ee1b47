"""Every KPI of a small account worked out by hand, from the roll-ups and from the raw rows."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.histogram import bucket_bounds, bucket_of
from analytics.periods import Period
from analytics.rollups import account_rollup_rebuild
from analytics.selectors import report_compute
from onlyfans.inbound import purchase_record
from tests.analytics.fixtures import FIRST, LAST, at, hand_fixture
from tests.factories import CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db

HAND = {
    # key: (range, previous period)
    "fans_total": (4, 2),
    "fans_active": (4, 1),
    "fans_new": (2, 1),
    "revenue_total": (3499, 999),
    "revenue_subscription": (999, 999),
    "revenue_tip": (1500, 0),
    "revenue_ppv": (1000, 0),
    "revenue_per_active_fan": (875, 999),  # 3499 / 4 rounded; 999 / 1
    "messages_sent": (6, 1),
    "messages_received": (5, 1),
    "ppv_sent": (2, 0),
    "ppv_unlocked": (1, 0),
    "ppv_conversion": (0.5, 0.0),
}


def _close(estimate: float, exact: float) -> bool:
    """A median read from the buckets lies in the exact median's bucket."""
    low, high = bucket_bounds(bucket_of(exact))
    return low <= estimate <= high


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_every_kpi_matches_the_hand_count(source):
    # given
    hand = hand_fixture()
    account_rollup_rebuild(account=hand.account)
    # when
    report = report_compute(account=hand.account, period=hand.period, interval="day", source=source)
    # then
    kpis = report.kpi_map
    for key, (value, previous) in HAND.items():
        assert (kpis[key].value, kpis[key].previous) == (value, previous), key
    assert kpis["revenue_total"].change == pytest.approx((3499 - 999) / 999)
    assert kpis["revenue_tip"].change is None  # from nothing: no percentage
    # replies 300, 3600, 3600 -> 3600; previous period one reply of 120 s
    median = kpis["response_median_seconds"]
    if source == "raw":
        assert (median.value, median.previous) == (3600, 120)
    else:
        assert _close(median.value, 3600) and _close(median.previous, 120)


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_chatters_and_attribution_by_hand(source):
    hand = hand_fixture()
    account_rollup_rebuild(account=hand.account)
    report = report_compute(account=hand.account, period=hand.period, interval="day", source=source)
    rows = {c.name: c for c in report.chatters}
    alice, bob = rows["alice"], rows["bob"]
    assert (alice.messages_sent, alice.replies, alice.ppv_sent, alice.ppv_unlocked) == (3, 2, 1, 1)
    assert (bob.messages_sent, bob.replies, bob.ppv_sent, bob.ppv_unlocked) == (2, 1, 1, 0)
    # PPV unlock -> its sender; a tip an hour after bob wrote -> bob
    assert (alice.revenue_cents, bob.revenue_cents) == (1000, 500)
    if source == "raw":
        # two replies (300 s, 3600 s): the lower median
        assert (alice.response_median_seconds, bob.response_median_seconds) == (300, 3600)
    else:
        assert _close(bob.response_median_seconds, 3600)
        assert _close(alice.response_median_seconds, 300)
    # a tip 43 h after the last chatter's message, a subscription and a fan without a chat
    assert report.attribution.unattributed == (3, 700 + 999 + 300)
    assert report.attribution.by_rule == {
        "ppv_sender": (1, 1000),
        "last_chatter": (1, 500),
        "unattributed": (3, 1999),
    }
    assert report.attribution.total == (5, 3499)


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_series_by_day_week_and_month(source):
    hand = hand_fixture()
    account_rollup_rebuild(account=hand.account)
    day = report_compute(account=hand.account, period=hand.period, interval="day", source=source)
    points = {p.start: p for p in day.series["revenue"].points}
    assert len(points) == 7
    assert points[date(2025, 3, 2)].values == {"subscription": 999, "tip": 0, "ppv": 1000}
    assert points[date(2025, 3, 7)].values["tip"] == 300
    fans = {p.start: p.values for p in day.series["fans"].points}
    assert fans[date(2025, 3, 1)] == {"new": 0, "active": 1}  # f1 wrote
    assert fans[date(2025, 3, 2)] == {"new": 1, "active": 2}  # f3 joined; f1 and f3 bought
    week = report_compute(account=hand.account, period=hand.period, interval="week", source=source)
    # 1 March 2025 is a Saturday: the range touches two weeks
    starts = [p.start for p in week.series["revenue"].points]
    assert starts == [date(2025, 2, 24), date(2025, 3, 3)]
    assert [p.total for p in week.series["revenue"].points] == [999 + 1000, 500 + 700 + 300]
    active = [p.values["active"] for p in week.series["fans"].points]
    assert active == [2, 4]  # f1, f3 | f1, f2, f3, f4
    month = report_compute(
        account=hand.account, period=hand.period, interval="month", source=source
    )
    assert [p.total for p in month.series["revenue"].points] == [3499]


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_an_empty_account_and_an_empty_range_are_zeros(source):
    account = CreatorAccountFactory()
    account_rollup_rebuild(account=account)
    period = Period(first_day=FIRST, last_day=LAST, zone_name="UTC")
    report = report_compute(account=account, period=period, interval="week", source=source)
    for kpi in report.kpis:
        if kpi.key == "response_median_seconds":
            assert kpi.value is None and kpi.previous is None
        else:
            assert kpi.value == 0 and kpi.previous == 0, kpi.key
    assert all(p.total == 0 for s in report.series.values() for p in s.points)
    assert report.chatters == [] and report.attribution.total == (0, 0)

    hand = hand_fixture()
    account_rollup_rebuild(account=hand.account)
    quiet = Period(first_day=date(2024, 6, 1), last_day=date(2024, 6, 30), zone_name="UTC")
    report = report_compute(account=hand.account, period=quiet, interval="day", source=source)
    assert report.kpi_map["revenue_total"].value == 0
    assert report.kpi_map["fans_total"].value == 0
    assert len(report.series["revenue"].points) == 30


@pytest.mark.parametrize("source", ["rollup", "raw"])
def test_days_are_cut_in_the_accounts_time_zone(source):
    # New York is UTC-5 in early March: 03:00 UTC on the 2nd is 22:00 on the 1st there.
    hand = hand_fixture(time_zone="America/New_York")
    late = hand.purchases["sub"]  # 2025-03-02 00:30 UTC = 1 March 19:30 in New York
    account_rollup_rebuild(account=hand.account)
    zone = hand.account.time_zone
    first = Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 1), zone_name=zone)
    second = Period(first_day=date(2025, 3, 2), last_day=date(2025, 3, 2), zone_name=zone)
    on_first = report_compute(account=hand.account, period=first, interval="day", source=source)
    on_second = report_compute(account=hand.account, period=second, interval="day", source=source)
    assert on_first.kpi_map["revenue_subscription"].value == late.amount_cents
    assert on_second.kpi_map["revenue_subscription"].value == 0
    # the tip at 23:59:59 UTC on the 7th is on the 7th in New York as well; the fan who
    # joined 2025-03-02 00:00 UTC joined on the 1st there
    assert on_first.kpi_map["fans_new"].value == 1
    # and in UTC the same rows fall on the next day
    utc = hand_fixture()
    account_rollup_rebuild(account=utc.account)
    utc_first = report_compute(
        account=utc.account,
        period=Period(first_day=date(2025, 3, 1), last_day=date(2025, 3, 1), zone_name="UTC"),
        interval="day",
        source=source,
    )
    assert utc_first.kpi_map["revenue_subscription"].value == 0


def test_a_replayed_purchase_is_counted_once():
    account = CreatorAccountFactory()
    fan = FanFactory(account=account, platform_fan_id="9001")
    for _ in range(3):  # the webhook delivered three times
        purchase_record(
            account=account,
            platform_fan_id="9001",
            kind="tip",
            amount_cents=1500,
            purchased_at=at("2025-03-03T12:00:00"),
            platform_event_id="txn:abc",
        )
    account_rollup_rebuild(account=account)
    period = Period(first_day=FIRST, last_day=LAST, zone_name="UTC")
    for source in ("rollup", "raw"):
        report = report_compute(account=account, period=period, interval="day", source=source)
        assert report.kpi_map["revenue_tip"].value == 1500
    fan.refresh_from_db()
    assert fan.lifetime_spend_cents == 1500
