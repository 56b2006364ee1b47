"""The KPI API: same numbers as the page, cents, computed_at, scoping, validation."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from analytics.rollups import account_rollup_rebuild
from tests.analytics.fixtures import hand_fixture
from tests.factories import CreatorAccountFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def hand():
    hand = hand_fixture()
    account_rollup_rebuild(account=hand.account)
    return hand


@pytest.fixture
def api(hand):
    client = APIClient()
    client.force_authenticate(hand.alice)
    return client


def test_kpis_are_the_pages_numbers(api, hand, client):
    response = api.get(
        "/api/analytics/kpis",
        {"account": hand.account.pk, "from": "2025-03-01", "to": "2025-03-07"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["period"] == {"from": "2025-03-01", "to": "2025-03-07", "days": 7}
    assert body["previous_period"] == {"from": "2025-02-22", "to": "2025-02-28", "days": 7}
    assert body["time_zone"] == "UTC" and body["computed_at"]
    kpis = {k["key"]: k for k in body["kpis"]}
    assert kpis["revenue_total"]["unit"] == "cents"
    assert (kpis["revenue_total"]["value"], kpis["revenue_total"]["previous"]) == (3499, 999)
    assert kpis["fans_active"]["value"] == 4
    assert kpis["ppv_conversion"]["value"] == 0.5
    client.force_login(hand.alice)
    page = client.get(
        f"/accounts/{hand.account.pk}/analytics/",
        {"range": "custom", "from": "2025-03-01", "to": "2025-03-07"},
    )
    for kpi in page.context["report"].kpis:
        assert kpis[kpi.key]["value"] == pytest.approx(kpi.value), kpi.key
        assert kpis[kpi.key]["previous"] == pytest.approx(kpi.previous), kpi.key


def test_timeseries_by_week_with_revenue_parts(api, hand):
    response = api.get(
        "/api/analytics/timeseries",
        {
            "account": hand.account.pk,
            "metric": "revenue",
            "interval": "week",
            "from": "2025-03-01",
            "to": "2025-03-07",
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["unit"] == "cents" and body["computed_at"]
    assert body["points"] == [
        {
            "start": "2025-02-24",
            "value": 1999,
            "parts": {"subscription": 999, "tip": 0, "ppv": 1000},
        },
        {
            "start": "2025-03-03",
            "value": 1500,
            "parts": {"subscription": 0, "tip": 1500, "ppv": 0},
        },
    ]
    active = api.get(
        "/api/analytics/timeseries",
        {
            "account": hand.account.pk,
            "metric": "active_fans",
            "from": "2025-03-01",
            "to": "2025-03-02",
        },
    ).json()
    assert [p["value"] for p in active["points"]] == [1, 2]


def test_an_empty_account_is_zeros(hand):
    membership = MembershipFactory(account=CreatorAccountFactory(), role="owner")
    client = APIClient()
    client.force_authenticate(membership.user)
    body = client.get("/api/analytics/kpis", {"account": membership.account_id}).json()
    assert body["period"]["days"] == 30
    assert all(k["value"] in (0, None) for k in body["kpis"])


def test_another_account_is_404(api, hand):
    other = CreatorAccountFactory()
    for path, extra in (
        ("/api/analytics/kpis", {}),
        ("/api/analytics/timeseries", {"metric": "revenue"}),
    ):
        response = api.get(path, {"account": other.pk, **extra})
        assert response.status_code == 404
        assert response.json()["code"] == "account_not_found"


def test_bad_parameters_are_400_with_codes(api, hand):
    base = {"account": hand.account.pk}
    cases = [
        ({"from": "2025-03-07", "to": "2025-03-01"}, "invalid_range"),
        ({"from": "2025-03-01"}, "validation_error"),
        ({"from": "yesterday", "to": "2025-03-01"}, "validation_error"),
        ({"from": "2020-01-01", "to": "2025-01-01"}, "invalid_range"),
    ]
    for params, code in cases:
        response = api.get("/api/analytics/kpis", {**base, **params})
        assert response.status_code == 400, params
        assert response.json()["code"] == code, params
    response = api.get("/api/analytics/timeseries", {**base, "metric": "vibes"})
    assert response.status_code == 400


def test_requires_authentication(hand):
    response = APIClient().get("/api/analytics/kpis", {"account": hand.account.pk})
    assert response.status_code in (401, 403)
