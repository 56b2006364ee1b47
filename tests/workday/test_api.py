"""The workday API: the review feed and marks, my reviews, payroll, the overview; scoping,
error codes and pinned query counts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import WorkSession
from tests.analytics.fixtures import at, hand_fixture
from tests.factories import CreatorAccountFactory, MembershipFactory
from tests.workday.test_overview import _conversation as _waiting_conversation
from tests.workday.test_review import _conversation, _message

pytestmark = pytest.mark.django_db


def _client(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def hand():
    return hand_fixture()


def test_review_feed_and_mark(hand, django_assert_num_queries):
    owner = _client(hand.owner)
    with django_assert_num_queries(2):  # memberships, the feed
        response = owner.get("/api/workday/review", {"account": hand.account.pk, "price": "paid"})
    assert response.status_code == 200
    body = response.json()
    assert [r["price_cents"] for r in body["results"]] == [2000, 1000]
    row = body["results"][1]
    assert row["sender"] == "alice" and row["fan"]["lifetime_spend_cents"] == 0
    assert row["mark"] is None and body["next_cursor"] is None
    marked = owner.post(
        f"/api/workday/review/{row['message_id']}/mark",
        {"verdict": "good", "comment": "nice upsell"},
        format="json",
    )
    assert marked.status_code == 200 and marked.json()["verdict"] == "good"
    again = owner.get("/api/workday/review", {"account": hand.account.pk, "price": "paid"}).json()
    assert again["results"][1]["mark"]["comment"] == "nice upsell"
    mine = _client(hand.alice).get("/api/workday/reviews/mine").json()
    assert [r["comment"] for r in mine["results"]] == ["nice upsell"]
    assert _client(hand.bob).get("/api/workday/reviews/mine").json()["results"] == []


def test_review_api_refuses_clearly(hand):
    assert _client(hand.alice).get("/api/workday/review").json()["code"] == "permission_denied"
    stranger = MembershipFactory(account=CreatorAccountFactory(), role="owner").user
    client = _client(stranger)
    response = client.get("/api/workday/review", {"account": hand.account.pk})
    assert response.status_code == 404 and response.json()["code"] == "account_not_found"
    message = _message(_conversation(hand.account), timezone.now(), by=hand.alice)
    response = client.post(f"/api/workday/review/{message.pk}/mark", {"verdict": "good"})
    assert response.status_code == 404
    owner = _client(hand.owner)
    bad = owner.post(f"/api/workday/review/{message.pk}/mark", {"verdict": "great"})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"
    assert owner.get("/api/workday/review", {"cursor": "x" * 80}).status_code == 400
    assert (
        owner.get("/api/workday/review", {"cursor": "abc.def"}).json()["code"] == "invalid_cursor"
    )


def test_payroll_api(hand, django_assert_num_queries):
    WorkSession.objects.create(
        account=hand.account, user=hand.alice, started_at=at("2025-03-01T09:00:00"),
        ended_at=at("2025-03-01T13:00:00"), end_reason="manual",
        last_activity_at=at("2025-03-01T09:00:00"),
    )  # fmt: skip
    owner = _client(hand.owner)
    params = {"account": hand.account.pk, "from": "2025-03-01", "to": "2025-03-07"}
    with django_assert_num_queries(7):  # membership, members, rules, four figures
        response = owner.get("/api/workday/payroll", params)
    body = response.json()
    members = {m["username"]: m for m in body["members"]}
    assert members["alice"]["totals"]["credited_cents"] == 1000
    assert members["alice"]["totals"]["worked_seconds"] == 4 * 3600
    assert members["bob"]["totals"]["credited_cents"] == 500
    assert any(s["work_session_id"] is None for s in members["alice"]["shifts"])
    assert _client(hand.alice).get("/api/workday/payroll", params).status_code == 403
    bad = owner.get("/api/workday/payroll", {**params, "to": "2025-02-01"})
    assert bad.status_code == 400 and "to" in bad.json()["errors"]
    everything = owner.get("/api/workday/payroll", {"from": "2025-03-01", "to": "2025-03-07"})
    assert {m["username"] for m in everything.json()["members"]} >= {"alice", "bob"}


def test_overview_api(hand, django_assert_num_queries):
    _waiting_conversation(hand.account, waiting_since=timezone.now() - timedelta(minutes=1))
    owner = _client(hand.owner)
    with django_assert_num_queries(2):
        tiles = owner.get("/api/workday/overview").json()
    assert tiles[0]["account_id"] == hand.account.pk and tiles[0]["waiting"] >= 1
    assert tiles[0]["sends_paused"] is False
    assert _client(hand.alice).get("/api/workday/overview").status_code == 403
