"""Fixtures of the campaign tests: an account with owner, a fan builder, campaign helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from campaigns import fanout, services
from campaigns.models import Campaign
from tests.factories import CreatorAccountFactory, FanFactory, MembershipFactory
from tests.onlyfans.conftest import send_queue  # noqa: F401 (the pipeline tests' worker)


@pytest.fixture
def shop():
    """An account with fast send limits, its owner and a manager."""
    account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
    owner = MembershipFactory(account=account, role="owner").user
    manager = MembershipFactory(account=account, role="manager").user
    return type("Shop", (), {"account": account, "owner": owner, "manager": manager})


@pytest.fixture
def make_fan(shop) -> Callable[..., Any]:
    def make(**kwargs: Any) -> Any:
        return FanFactory(account=kwargs.pop("account", shop.account), **kwargs)

    return make


@pytest.fixture
def make_campaign(shop) -> Callable[..., Campaign]:
    def make(*, actor: Any = None, account: Any = None, **fields: Any) -> Campaign:
        data = services.CampaignInput(
            name=fields.pop("name", "Spring sale"),
            text=fields.pop("text", "Hi {name}!"),
            **fields,
        )
        return services.campaign_create(
            actor=actor or shop.owner, account_id=(account or shop.account).pk, data=data
        )

    return make


def fan_out_all(campaign_id: int, *, batch_size: int = 1000) -> int:
    """Run the fan-out batches in the test thread until none is left; messages queued."""
    total = 0
    while True:
        result = fanout.campaign_fan_out_batch(campaign_id=campaign_id, batch_size=batch_size)
        total += result.queued
        if not result.more:
            return total


@pytest.fixture
def no_tasks(monkeypatch) -> list[tuple[str, tuple]]:
    """Record the campaign tasks services publish instead of sending them to SQS (other
    tasks, the send pipeline's, go to SQS as usual)."""
    published: list[tuple[str, tuple]] = []
    from config.celery import app

    real_send_task = app.send_task

    def send_task(name: str, *, args: tuple = (), **options: Any) -> Any:
        if name.startswith("campaigns."):
            published.append((name, tuple(args)))
            return None
        return real_send_task(name, args=args, **options)

    monkeypatch.setattr(app, "send_task", send_task)
    return published
