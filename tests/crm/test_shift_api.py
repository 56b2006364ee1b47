"""Shifts, the clock and worked time over the REST API: the pages' rules, the same scoping."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from rest_framework.test import APIClient

from crm.models import Membership, Shift, ShiftTemplate, WorkSession
from tests.factories import (
    CreatorAccountFactory,
    MembershipFactory,
    ShiftFactory,
    ShiftTemplateFactory,
    WorkSessionFactory,
)

pytestmark = pytest.mark.django_db


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def account():
    return CreatorAccountFactory(time_zone="Europe/Berlin")


@pytest.fixture
def manager(account):
    return MembershipFactory(account=account, role=Membership.Role.MANAGER).user


@pytest.fixture
def member(account):
    return MembershipFactory(account=account)


def api_for(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(type(user).objects.get(pk=user.pk))
    return api


def test_a_manager_lists_the_shifts_of_a_period_in_constant_queries(
    account, manager, member, django_assert_num_queries
):
    ShiftTemplateFactory(membership=member, weekday=0)
    ShiftFactory(membership=member, starts_at=utc(2026, 3, 3, 8), ends_at=utc(2026, 3, 3, 9))
    url = f"/api/crm/accounts/{account.pk}/shifts"
    period = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-16T00:00:00Z"}
    api = api_for(manager)
    with django_assert_num_queries(3):  # membership, weekly shifts, shifts
        body = api.get(url, period).json()
    assert [(row["weekly_shift_id"] is not None, row["starts_at"]) for row in body] == [
        (True, "2026-03-02T08:00:00Z"),
        (False, "2026-03-03T08:00:00Z"),
        (True, "2026-03-09T08:00:00Z"),
    ]
    for _ in range(5):
        other = MembershipFactory(account=account)
        ShiftTemplateFactory(membership=other, weekday=3)
        ShiftFactory(membership=other, starts_at=utc(2026, 3, 4, 8), ends_at=utc(2026, 3, 4, 9))
    api = api_for(manager)
    with django_assert_num_queries(3):
        assert len(api.get(url, period).json()) == 3 + 5 * 3


def test_a_chatter_lists_only_their_own(account, member):
    ShiftTemplateFactory(membership=member, weekday=0)
    ShiftTemplateFactory(membership=MembershipFactory(account=account), weekday=0)
    url = f"/api/crm/accounts/{account.pk}/shifts"
    body = api_for(member.user).get(
        url, {"start": "2026-03-02T00:00:00Z", "end": "2026-03-03T00:00:00Z"}
    )
    assert [row["membership_id"] for row in body.json()] == [member.pk]
    weekly = api_for(member.user).get(f"/api/crm/accounts/{account.pk}/weekly-shifts").json()
    assert [row["membership"] for row in weekly] == [member.pk]


def test_create_update_delete_and_their_errors(account, manager, member):
    api = api_for(manager)
    url = f"/api/crm/accounts/{account.pk}/shifts"
    made = api.post(
        url,
        {
            "membership": member.pk,
            "starts_at": "2026-03-02T20:00:00Z",
            "ends_at": "2026-03-03T04:00:00Z",
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    backwards = api.post(
        url,
        {
            "membership": member.pk,
            "starts_at": "2026-03-05T10:00:00Z",
            "ends_at": "2026-03-05T09:00:00Z",
        },
        format="json",
    )
    assert (backwards.status_code, backwards.json()["code"]) == (400, "invalid_shift")
    assert "ends_at" in backwards.json()["errors"]
    overlap = api.post(
        url,
        {
            "membership": member.pk,
            "starts_at": "2026-03-03T03:00:00Z",
            "ends_at": "2026-03-03T05:00:00Z",
        },
        format="json",
    )
    assert (overlap.status_code, overlap.json()["code"]) == (400, "shift_overlap")
    stranger = api.post(
        url,
        {
            "membership": MembershipFactory().pk,
            "starts_at": "2026-03-06T10:00:00Z",
            "ends_at": "2026-03-06T11:00:00Z",
        },
        format="json",
    )
    assert (stranger.status_code, stranger.json()["code"]) == (400, "invalid_member")
    shift_id = made.json()["id"]
    moved = api.put(
        f"{url}/{shift_id}",
        {
            "membership": member.pk,
            "starts_at": "2026-03-02T21:00:00Z",
            "ends_at": "2026-03-03T05:00:00Z",
        },
        format="json",
    )
    assert moved.status_code == 200 and moved.json()["starts_at"] == "2026-03-02T21:00:00Z"
    assert api.delete(f"{url}/{shift_id}").status_code == 204
    assert not Shift.objects.exists()


def test_a_chatter_cannot_edit_and_another_accounts_shift_is_404(account, manager, member):
    url = f"/api/crm/accounts/{account.pk}/shifts"
    refused = api_for(member.user).post(
        url,
        {
            "membership": member.pk,
            "starts_at": "2026-03-02T08:00:00Z",
            "ends_at": "2026-03-02T09:00:00Z",
        },
        format="json",
    )
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    elsewhere = ShiftFactory()
    api = api_for(manager)
    assert api.delete(f"{url}/{elsewhere.pk}").status_code == 404
    theirs = f"/api/crm/accounts/{elsewhere.account_id}/shifts/{elsewhere.pk}"
    assert api.delete(theirs).json()["code"] == "account_not_found"
    assert Shift.objects.filter(pk=elsewhere.pk).exists()


def test_weekly_shifts_and_one_day_of_them(account, manager, member):
    api = api_for(manager)
    url = f"/api/crm/accounts/{account.pk}/weekly-shifts"
    made = api.post(
        url,
        {
            "membership": member.pk,
            "weekday": 5,
            "start_time": "22:00",
            "duration_minutes": 480,
            "active_from": "2026-10-01",
        },
        format="json",
    )
    assert made.status_code == 201, made.json()
    weekly_id = made.json()["id"]
    assert made.json()["active_from"] == "2026-10-03"  # the first Saturday
    cancelled = api.put(f"{url}/{weekly_id}/days/2026-10-24", {"cancel": True}, format="json")
    assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
    wrong_day = api.put(f"{url}/{weekly_id}/days/2026-10-25", {"cancel": True}, format="json")
    assert wrong_day.status_code == 404
    listed = api.get(
        f"/api/crm/accounts/{account.pk}/shifts",
        {"start": "2026-10-19T00:00:00+02:00", "end": "2026-11-02T00:00:00+01:00"},
    ).json()
    # the 24th is cancelled; the 31st runs 22:00 CET
    assert [row["starts_at"] for row in listed] == ["2026-10-31T21:00:00Z"]
    assert api.delete(f"{url}/{weekly_id}").status_code == 204
    assert not ShiftTemplate.objects.exists()


def test_my_week_over_the_api(account, member):
    ShiftTemplateFactory(membership=member, weekday=0, start_time=time(9))
    body = api_for(member.user).get("/api/crm/shifts/mine", {"week": "2026-W10"}).json()
    [row] = body["accounts"]
    assert row["time_zone"] == "Europe/Berlin" and row["week"] == "2026-W10"
    assert [s["starts_at"] for s in row["shifts"]] == ["2026-03-02T08:00:00Z"]


def test_clock_in_out_and_the_clock(account, member, manager, redis_client):
    api = api_for(member.user)
    base = f"/api/crm/accounts/{account.pk}"
    assert api.get(f"{base}/clock").json()["clocked_in"] is False
    state = api.post(f"{base}/clock-in").json()
    assert state["clocked_in"] is True and state["work_session_id"]
    ended = api.post(f"{base}/clock-out", {}, format="json")
    assert ended.status_code == 200 and ended.json()["end_reason"] == "manual"
    assert api.post(f"{base}/clock-out", {}, format="json").status_code == 204
    # a manager clocks a member out; a chatter may not clock out the manager
    WorkSessionFactory(account=account, user=member.user)
    WorkSessionFactory(account=account, user=manager)
    refused = api.post(f"{base}/clock-out", {"user": manager.pk}, format="json")
    assert refused.status_code == 403
    by_manager = api_for(manager).post(f"{base}/clock-out", {"user": member.user_id}, format="json")
    assert by_manager.json()["end_reason"] == "manager"


def test_worked_time_totals_and_pages_in_constant_queries(
    account, manager, member, django_assert_num_queries
):
    start = utc(2026, 3, 2)
    for day in range(5):
        started = start + timedelta(days=day, hours=8)
        session = WorkSessionFactory(account=account, user=member.user, started_at=started)
        WorkSession.objects.filter(pk=session.pk).update(
            ended_at=started + timedelta(hours=2), end_reason="manual"
        )
    # one that began before the period counts from its start only
    early = WorkSessionFactory(account=account, user=manager, started_at=start - timedelta(hours=1))
    WorkSession.objects.filter(pk=early.pk).update(
        ended_at=start + timedelta(hours=1), end_reason="idle"
    )
    url = f"/api/crm/accounts/{account.pk}/worked-time"
    params = {"start": "2026-03-02T00:00:00Z", "end": "2026-03-09T00:00:00Z", "limit": 4}
    api = api_for(manager)
    with django_assert_num_queries(3):  # membership, totals, page
        body = api.get(url, params).json()
    totals = {t["user_id"]: t for t in body["totals"]}
    assert totals[member.user_id]["worked_seconds"] == 5 * 7200
    assert totals[manager.pk]["worked_seconds"] == 3600
    assert len(body["results"]) == 4 and body["next_cursor"]
    rest = api_for(manager).get(url, {**params, "cursor": body["next_cursor"]}).json()
    assert len(rest["results"]) == 2 and rest["next_cursor"] is None
    mine = api_for(member.user).get(url, params).json()
    assert [t["user_id"] for t in mine["totals"]] == [member.user_id]
    too_long = api_for(manager).get(
        url, {"start": "2026-01-01T00:00:00Z", "end": "2026-06-01T00:00:00Z"}
    )
    assert too_long.json()["code"] == "invalid_period"
