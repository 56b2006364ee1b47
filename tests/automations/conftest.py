"""Fixtures of the automation tests: an account with fast limits, signed webhooks posted to
the real endpoint, the due pass run in the test thread, repeatable random draws."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from automations import scheduling
from automations.due import DuePass, automation_runs_due_process
from automations.models import Automation
from tests.factories import AutomationFactory, CreatorAccountFactory, MembershipFactory
from tests.onlyfans.conftest import send_queue  # noqa: F401 (the pipeline tests' worker)

WEBHOOK_URL = "/api/onlyfans/webhooks"


@pytest.fixture(autouse=True)
def _seeded() -> None:
    # Delay spreads and control draws repeat from run to run.
    scheduling.rng.seed(19)


@pytest.fixture
def studio():
    """An account with fast send limits (Berlin time), its owner and a chatter."""
    account = CreatorAccountFactory(
        send_rate_per_minute=1000, send_min_interval_ms=0, time_zone="Europe/Berlin"
    )
    owner = MembershipFactory(account=account, role="owner").user
    chatter = MembershipFactory(account=account, role="chatter").user
    return type("Studio", (), {"account": account, "owner": owner, "chatter": chatter})


@pytest.fixture
def make_automation(studio) -> Callable[..., Automation]:
    def make(**fields: Any) -> Automation:
        return AutomationFactory(account=fields.pop("account", studio.account), **fields)

    return make


def webhook_body(event: str, account: Any, payload: dict[str, Any]) -> bytes:
    return json.dumps(
        {"event": event, "account_id": account.platform_account_id, "payload": payload}
    ).encode()


def webhook_post(body: bytes) -> dict[str, Any]:
    """Post a signed webhook body to the real endpoint; its JSON answer."""
    signature = hmac.new(
        settings.ONLYFANS_WEBHOOK_SECRET.encode(), body, hashlib.sha256
    ).hexdigest()
    response = Client().post(
        WEBHOOK_URL, body, content_type="application/json", headers={"Signature": signature}
    )
    assert response.status_code == 200, response.content
    return response.json()


def subscription_body(
    account: Any,
    *,
    fan_id: str,
    event: str = "subscriptions.new",
    subscribed_at: datetime | None = None,
    expires_at: datetime | None = None,
    name: str = "",
) -> bytes:
    payload: dict[str, Any] = {"user": {"id": fan_id, "username": f"fan{fan_id}", "name": name}}
    if subscribed_at is not None:
        payload["subscribedAt"] = subscribed_at.isoformat()
    if expires_at is not None:
        payload["expiresAt"] = expires_at.isoformat()
    return webhook_body(event, account, payload)


@pytest.fixture
def due_pass(django_capture_on_commit_callbacks) -> Callable[..., DuePass]:
    """Run the due pass at ``now`` with its after-commit work (the pipeline's dispatch)."""

    def run(now: datetime | None = None, **kwargs: Any) -> DuePass:
        with django_capture_on_commit_callbacks(execute=True):
            return automation_runs_due_process(now=now, **kwargs)

    return run
