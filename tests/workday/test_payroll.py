"""Payroll: worked hours from work sessions, per-shift figures, credited sales per shift, the
equality with the analytics page, reassignment, pay rules, CSV, scoping and queries."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from analytics.rollups import account_rollup_rebuild
from analytics.selectors import report_compute
from analytics.services import purchase_credit_reassign
from crm.models import Message, WorkSession
from tests.analytics.fixtures import FIRST, LAST, at, hand_fixture
from tests.factories import CreatorAccountFactory, MembershipFactory
from workday import selectors, services

pytestmark = pytest.mark.django_db


def _session(hand, user, start, end):
    return WorkSession.objects.create(
        account=hand.account,
        user=user,
        started_at=at(start),
        ended_at=at(end),
        end_reason="manual",
        last_activity_at=at(start),
    )


@pytest.fixture
def hand():
    """analytics' hand-checked account (alice: a PPV unlocked for $10; bob: a $5 tip) with
    work sessions: alice 03-01 09:00-13:00 (her PPV was sent in it) and 03-03 10:30-11:30;
    bob 03-03 09:30-12:00 (the tip at 11:00 is his by the last-chatter rule)."""
    hand = hand_fixture()
    hand.a1 = _session(hand, hand.alice, "2025-03-01T09:00:00", "2025-03-01T13:00:00")
    hand.a2 = _session(hand, hand.alice, "2025-03-03T10:30:00", "2025-03-03T11:30:00")
    hand.b1 = _session(hand, hand.bob, "2025-03-03T09:30:00", "2025-03-03T12:00:00")
    # what message_enqueue records: the sender's open session
    Message.objects.filter(
        sent_by=hand.alice, created_at__gte=at("2025-03-01T09:00:00"),
        created_at__lt=at("2025-03-01T13:00:00"),
    ).update(work_session=hand.a1)  # fmt: skip
    Message.objects.filter(
        sent_by=hand.bob, created_at__gte=at("2025-03-03T09:30:00"),
        created_at__lt=at("2025-03-03T12:00:00"),
    ).update(work_session=hand.b1)  # fmt: skip
    return hand


def _payroll(hand, first=FIRST, last=LAST):
    payroll = selectors.payroll_for_account(
        user=hand.owner, account_id=hand.account.pk, first_day=first, last_day=last
    )
    return {m.username: m for m in payroll.members}


def _by_session(member):
    return {s.session_id: s for s in member.shifts}


def test_figures_per_member_and_per_shift(hand):
    members = _payroll(hand)
    alice, bob = members["alice"], members["bob"]
    assert alice.totals.worked_hours == pytest.approx(5.0)
    assert bob.totals.worked_hours == pytest.approx(2.5)
    # alice sent three messages in the range (one failed); two in her first session
    assert (
        alice.totals.messages == 3 and alice.totals.ppv_sent == 1 and alice.totals.ppv_unlocked == 1
    )
    shifts = _by_session(alice)
    assert shifts[hand.a1.pk].messages == 2 and shifts[hand.a1.pk].ppv_unlocked == 1
    assert shifts[None].messages == 1  # 03-04 17:00, while clocked out
    assert shifts[hand.a2.pk].messages == 0 and shifts[hand.a2.pk].worked_hours == pytest.approx(1)
    # replies: alice answered c1 at 10:05 (300 s) and c2 at 17:00 (3600 s)
    assert alice.totals.replies == 2 and alice.totals.fans_answered == 2
    assert alice.totals.median_response_seconds == 300
    assert shifts[hand.a1.pk].replies == 1 and shifts[hand.a1.pk].median_response_seconds == 300
    assert _by_session(bob)[hand.b1.pk].median_response_seconds == 3600


def test_credited_sales_sit_in_the_shift_they_happened_in(hand):
    members = _payroll(hand)
    alice, bob = members["alice"], members["bob"]
    # the PPV was bought on 03-02, alice was clocked out: it goes to the session she sent it in
    assert _by_session(alice)[hand.a1.pk].credited_cents == 1000
    # the tip at 03-03 11:00 to bob, clocked in then
    assert _by_session(bob)[hand.b1.pk].credited_cents == 500
    for member in (alice, bob):
        assert member.totals.credited_cents == sum(s.credited_cents for s in member.shifts)


def test_payroll_credited_revenue_equals_the_analytics_chatters_table(hand):
    account_rollup_rebuild(account=hand.account)
    report = report_compute(account=hand.account, period=hand.period, interval="day")
    raw = report_compute(account=hand.account, period=hand.period, interval="day", source="raw")
    members = _payroll(hand)
    for source in (report, raw):
        analytics = {row.name: row for row in source.chatters}
        for name in ("alice", "bob"):
            assert members[name].totals.credited_cents == analytics[name].revenue_cents
            assert members[name].totals.messages == analytics[name].messages_sent
            assert members[name].totals.ppv_sent == analytics[name].ppv_sent
            assert members[name].totals.ppv_unlocked == analytics[name].ppv_unlocked
            assert members[name].totals.replies == analytics[name].replies
    assert members["alice"].totals.credited_cents == 1000
    assert members["bob"].totals.credited_cents == 500


def test_reassigning_a_sale_moves_it_to_the_other_members_shift(hand):
    purchase_credit_reassign(
        actor=hand.owner,
        account_id=hand.account.pk,
        purchase_id=hand.purchases["tip_bob"].pk,
        credited_to_id=hand.alice.pk,
        reason="alice set it up",
    )
    members = _payroll(hand)
    assert _by_session(members["bob"])[hand.b1.pk].credited_cents == 0
    assert members["bob"].totals.credited_cents == 0
    # alice was clocked in at 11:00 on 03-03: her second session has it
    assert _by_session(members["alice"])[hand.a2.pk].credited_cents == 500
    assert members["alice"].totals.credited_cents == 1500
    report = report_compute(account=hand.account, period=hand.period, interval="day", source="raw")
    assert {r.name: r.revenue_cents for r in report.chatters}["alice"] == 1500


def test_hours_are_clipped_to_the_period(hand):
    members = _payroll(hand, first=date(2025, 3, 3), last=date(2025, 3, 3))
    assert members["alice"].totals.worked_hours == pytest.approx(1.0)
    # a session across midnight counts only its part inside the day
    _session(hand, hand.bob, "2025-03-03T22:00:00", "2025-03-04T02:00:00")
    members = _payroll(hand, first=date(2025, 3, 3), last=date(2025, 3, 3))
    assert members["bob"].totals.worked_hours == pytest.approx(2.5 + 2.0)


def test_pay_by_rule_hourly_commission_or_both(hand):
    services.pay_rule_set(
        actor=hand.owner, account_id=hand.account.pk, user_id=hand.alice.pk,
        hourly_rate_cents=1500, commission_percent="10",
    )  # fmt: skip
    services.pay_rule_set(
        actor=hand.owner, account_id=hand.account.pk, user_id=hand.bob.pk,
        hourly_rate_cents=0, commission_percent=Decimal("12.5"),
    )  # fmt: skip
    members = _payroll(hand)
    assert members["alice"].hourly_pay_cents == 7500  # 5 h at $15
    assert members["alice"].commission_cents == 100  # 10 % of $10
    assert members["alice"].pay_cents == 7600
    assert members["bob"].pay_cents == 63  # 12.5 % of $5, rounded half up
    from crm.errors import ApplicationError

    with pytest.raises(ApplicationError):
        services.pay_rule_set(
            actor=hand.alice, account_id=hand.account.pk, user_id=hand.alice.pk,
            hourly_rate_cents=99_999, commission_percent="0",
        )  # fmt: skip
    with pytest.raises(ApplicationError) as bad:
        services.pay_rule_set(
            actor=hand.owner, account_id=hand.account.pk, user_id=hand.bob.pk,
            hourly_rate_cents=100, commission_percent="101",
        )  # fmt: skip
    assert bad.value.code == "invalid_pay_rule"


def test_the_page_shows_shifts_and_is_for_owners_and_managers(client, hand):
    url = reverse("workday_payroll", args=[hand.account.pk])
    client.force_login(hand.owner)
    response = client.get(url, {"start": "2025-03-01", "end": "2025-03-07"})
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="shift-{hand.a1.pk}-{hand.alice.pk}"' in html and "$10" in html
    client.force_login(hand.alice)
    assert client.get(url).status_code == 403
    stranger = MembershipFactory(account=CreatorAccountFactory(), role="owner").user
    client.force_login(stranger)
    assert client.get(url).status_code == 404
    # the all-accounts page covers the accounts one owns only
    response = client.get(
        reverse("workday_payroll_all"), {"start": "2025-03-01", "end": "2025-03-07"}
    )
    assert response.status_code == 200 and "alice" not in response.content.decode()


def test_csv_neutralises_formulas(client, hand):
    hand.alice.username = '=HYPERLINK("http://x")'
    hand.alice.save()
    client.force_login(hand.owner)
    url = reverse("workday_payroll_csv", args=[hand.account.pk])
    response = client.get(url, {"start": "2025-03-01", "end": "2025-03-07"})
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][0] == "account" and rows[0][-1] == "pay_cents"
    names = {row[1]: row for row in rows[1:]}
    assert '\'=HYPERLINK("http://x")' in names
    assert names['\'=HYPERLINK("http://x")'][9] == "1000"
    shifts = client.get(url, {"start": "2025-03-01", "end": "2025-03-07", "detail": "shifts"})
    shift_rows = list(csv.reader(io.StringIO(shifts.content.decode())))
    assert shift_rows[0][2] == "work_session"
    assert sum(int(r[12]) for r in shift_rows[1:] if r[1] == "bob") == 500


def test_payroll_page_query_count_is_pinned(client, hand, django_assert_num_queries):
    url = reverse("workday_payroll", args=[hand.account.pk])
    params = {"start": "2025-03-01", "end": "2025-03-07"}
    client.force_login(hand.owner)
    client.get(url, params)
    with django_assert_num_queries(PAYROLL_QUERIES):
        client.get(url, params)
    for _ in range(4):
        member = MembershipFactory(account=hand.account, role="chatter").user
        _session(hand, member, "2025-03-02T09:00:00", "2025-03-02T10:00:00")
    with django_assert_num_queries(PAYROLL_QUERIES):
        client.get(url, params)


# session, user, membership check, members, pay rules, sessions, sent, replies, credited, and
# the two every page makes
PAYROLL_QUERIES = 11


def test_all_accounts_payroll_is_a_fixed_number_of_queries(client, hand, django_assert_num_queries):
    # given: an owner of the hand-checked account, then of two more, each with a chatter's
    # shift (one of them in another time zone, so each account keeps its own period)
    url = reverse("workday_payroll_all")
    params = {"start": "2025-03-01", "end": "2025-03-07"}
    client.force_login(hand.owner)
    client.get(url, params)
    with django_assert_num_queries(PAYROLL_ALL_QUERIES):
        one = client.get(url, params)
    others = []
    for zone in ("UTC", "America/New_York"):
        account = CreatorAccountFactory(time_zone=zone)
        MembershipFactory(account=account, user=hand.owner, role="owner")
        chatter = MembershipFactory(account=account, role="chatter").user
        WorkSession.objects.create(
            account=account, user=chatter, started_at=at("2025-03-02T09:00:00"),
            ended_at=at("2025-03-02T11:00:00"), end_reason="manual",
            last_activity_at=at("2025-03-02T09:00:00"),
        )  # fmt: skip
        others.append((account, chatter))

    # when
    with django_assert_num_queries(PAYROLL_ALL_QUERIES):
        three = client.get(url, params)

    # then: the same statements, and every account's members with their own hours
    assert one.status_code == three.status_code == 200
    payroll = selectors.payroll_for_owner(user=hand.owner, first_day=FIRST, last_day=LAST)
    by_account = {(m.account_id, m.user_id): m for m in payroll.members}
    for account, chatter in others:
        assert by_account[(account.pk, chatter.pk)].totals.worked_seconds == 2 * 3600
    assert by_account[(hand.account.pk, hand.alice.pk)].totals.credited_cents == 1000


# session, user, managed memberships, members, pay rules, sessions, sent, replies, credited,
# and the two every page makes
PAYROLL_ALL_QUERIES = 11
