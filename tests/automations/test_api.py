"""Automations API: CRUD, on/off, figures, a fan's pending runs and cancel; scoping and
stable error codes; pinned query counts on the lists."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from automations.models import Automation, AutomationRun
from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db

State = AutomationRun.State


@pytest.fixture
def shop():
    account = CreatorAccountFactory()
    owner = MembershipFactory(account=account, role="owner").user
    chatter = MembershipFactory(account=account, role="chatter").user
    return type("Shop", (), {"account": account, "owner": owner, "chatter": chatter})


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def api(shop) -> APIClient:
    return _client(shop.owner)


WELCOME = {
    "name": "Welcome",
    "trigger": "subscribed",
    "text": "Hey {name|babe}!",
    "delay_seconds": 120,
    "delay_spread_seconds": 180,
    "rules": {"spend_min_cents": 0, "exclude_waiting": True},
    "quiet_hours_start": "23:00",
    "quiet_hours_end": "08:00",
    "control_percent": 10,
}


def test_create_read_update_toggle_delete(api, shop):
    response = api.post("/api/automations/", {**WELCOME, "account": shop.account.pk}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["enabled"] is False
    assert body["quiet_hours_start"] == "23:00:00"
    assert body["figures"]["triggered"] == 0
    assert body["figures"]["uplift"]["verdict"] == "not_enough_data"
    automation_id = body["id"]

    response = api.patch(
        f"/api/automations/{automation_id}", {"text": "Welcome, {name}!"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["text"] == "Welcome, {name}!"
    assert response.json()["delay_seconds"] == 120  # left out: kept

    assert api.post(f"/api/automations/{automation_id}/enable").json()["enabled"] is True
    assert api.post(f"/api/automations/{automation_id}/disable").json()["enabled"] is False
    assert api.get(f"/api/automations/{automation_id}").json()["name"] == "Welcome"
    assert api.delete(f"/api/automations/{automation_id}").status_code == 204
    assert not Automation.objects.exists()


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"control_percent": 51}, 400, "validation_error", "control_percent"),
        ({"delay_seconds": 8 * 24 * 3600}, 400, "validation_error", "delay_seconds"),
        ({"text": "x" * 5001}, 400, "validation_error", "text"),
        ({"price_cents": 200}, 400, "invalid_automation", "price_cents"),
        ({"price_cents": 1000}, 400, "invalid_automation", "media_ids"),
        ({"trigger": "expiring_soon"}, 400, "invalid_automation", "trigger_value"),
        ({"rules": {"nope": 1}}, 400, "invalid_automation", "rules"),
        ({"quiet_hours_end": None}, 400, "invalid_automation", "quiet_hours_end"),
    ],
)
def test_bad_input_has_a_stable_code(api, shop, change, status, code, field):
    response = api.post(
        "/api/automations/", {**WELCOME, "account": shop.account.pk, **change}, format="json"
    )
    assert response.status_code == status
    assert response.json()["code"] == code
    assert field in response.json()["errors"]


def test_duplicate_name_is_409(api, shop):
    AutomationFactory(account=shop.account, name="Welcome")
    response = api.post("/api/automations/", {**WELCOME, "account": shop.account.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "duplicate_automation")


def test_scoping(shop):
    theirs = AutomationFactory(account=CreatorAccountFactory())
    mine = AutomationFactory(account=shop.account)
    owner, chatter = _client(shop.owner), _client(shop.chatter)

    for method, url in (
        ("get", f"/api/automations/{theirs.pk}"),
        ("patch", f"/api/automations/{theirs.pk}"),
        ("delete", f"/api/automations/{theirs.pk}"),
        ("post", f"/api/automations/{theirs.pk}/disable"),
        ("get", f"/api/automations/{theirs.pk}/figures"),
    ):
        response = getattr(owner, method)(url, {}, format="json")
        assert (response.status_code, response.json()["code"]) == (404, "automation_not_found")
    listing = owner.get("/api/automations/", {"account": theirs.account_id})
    assert (listing.status_code, listing.json()["code"]) == (404, "account_not_found")

    refused = chatter.get("/api/automations/", {"account": shop.account.pk})
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    created = chatter.post(
        "/api/automations/", {**WELCOME, "account": shop.account.pk}, format="json"
    )
    assert (created.status_code, created.json()["code"]) == (403, "permission_denied")
    assert chatter.get(f"/api/automations/{mine.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled


def test_list_with_figures_in_pinned_queries(api, shop, django_assert_num_queries):
    due = timezone.now() - timedelta(days=1)
    for i in range(6):
        automation = AutomationFactory(account=shop.account, name=f"A{i}", control_percent=10)
        run = AutomationRunFactory(
            automation=automation, state=State.SKIPPED, reason="filtered", due_at=due
        )
        PurchaseFactory(fan=run.fan, amount_cents=700, purchased_at=due + timedelta(hours=2))
        AutomationRunFactory(automation=automation, state=State.HELD_CONTROL, due_at=due)

    # the access check, count, page, run states, outcomes
    with django_assert_num_queries(5):
        response = api.get("/api/automations/", {"account": shop.account.pk})

    body = response.json()
    assert response.status_code == 200
    assert body["count"] == 6
    figures = body["results"][0]["figures"]
    assert figures["triggered"] == 2
    assert figures["skipped"] == {"filtered": 1}
    assert figures["revenue_cents"] == 700
    assert figures["uplift"]["treated_revenue_per_fan_cents"] == 700
    assert figures["uplift"]["control_revenue_per_fan_cents"] == 0
    assert figures["uplift"]["interval_95_cents"] is None


def test_figures_endpoint(api, shop):
    automation = AutomationFactory(account=shop.account)
    AutomationRunFactory(automation=automation, state=State.CANCELLED, reason="fan_replied")
    body = api.get(f"/api/automations/{automation.pk}/figures").json()
    assert body["cancelled"] == {"fan_replied": 1}
    assert body["uplift"]["method"] == "welch_normal_95"


def test_fan_pending_runs_and_cancel(shop, django_assert_num_queries):
    fan = FanFactory(account=shop.account)
    automation = AutomationFactory(account=shop.account, name="Welcome")
    later = AutomationRunFactory(
        automation=automation, fan=fan, due_at=timezone.now() + timedelta(hours=2)
    )
    sooner = AutomationRunFactory(
        automation=automation, fan=fan, due_at=timezone.now() + timedelta(hours=1)
    )
    AutomationRunFactory(automation=automation, fan=fan, state=State.SKIPPED, reason="filtered")
    chatter = _client(shop.chatter)  # any member

    # the fan (scoped), the membership check, the runs with their automation
    with django_assert_num_queries(3):
        response = chatter.get(f"/api/automations/fans/{fan.pk}/pending")

    assert response.status_code == 200
    assert [r["id"] for r in response.json()] == [sooner.pk, later.pk]
    assert response.json()[0]["automation_name"] == "Welcome"

    cancelled = chatter.post(f"/api/automations/runs/{sooner.pk}/cancel")
    assert cancelled.status_code == 200
    assert (cancelled.json()["state"], cancelled.json()["reason"]) == ("cancelled", "manual")
    again = chatter.post(f"/api/automations/runs/{sooner.pk}/cancel")
    assert (again.status_code, again.json()["code"]) == (409, "not_pending")


def test_fan_runs_of_another_account_are_404(api):
    other_fan = FanFactory(account=CreatorAccountFactory())
    run = AutomationRunFactory(
        automation=AutomationFactory(account=other_fan.account), fan=other_fan
    )
    response = api.get(f"/api/automations/fans/{other_fan.pk}/pending")
    assert (response.status_code, response.json()["code"]) == (404, "fan_not_found")
    response = api.post(f"/api/automations/runs/{run.pk}/cancel")
    assert (response.status_code, response.json()["code"]) == (404, "automation_run_not_found")
    run.refresh_from_db()
    assert run.state == State.SCHEDULED
