"""Subscription webhooks answered once stored and applied by the bulk task, in batches
(``onlyfans.webhooks``: ``DEFERRED_EVENTS``, ``webhook_events_apply``): the answer, what the
request costs, exactly once across replays and a worker killed half-way, the sweep."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.test import Client

from automations.models import AutomationRun
from config.celery import beat_schedule
from crm.models import Fan
from onlyfans import inbound, webhooks
from onlyfans.broker import BULK_TASKS, queue_names, sqs_client
from onlyfans.models import WebhookEvent
from onlyfans.webhooks import APPLY_TASK, webhook_events_apply
from tests.automations.conftest import WEBHOOK_URL, subscription_body, webhook_post
from tests.factories import FanFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def deferred(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.ONLYFANS_WEBHOOK_DEFER_SECONDS = 1.0
    monkeypatch.setattr(webhooks, "_kicked_until", 0.0)  # no window left by another test


def pending() -> int:
    return WebhookEvent.objects.filter(payload__isnull=False, applied_at__isnull=True).count()


def post_raw(body: bytes, signature: str | None = None) -> Any:
    signature = (
        signature
        or hmac.new(settings.ONLYFANS_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    )
    return Client().post(
        WEBHOOK_URL, body, content_type="application/json", headers={"Signature": signature}
    )


def test_answered_once_stored_then_applied_with_one_welcome(
    deferred, studio, make_automation, sqs_queues, redis_client, django_assert_num_queries
):
    make_automation(trigger="subscribed")
    body = subscription_body(
        studio.account, fan_id="701", subscribed_at=START, expires_at=START + timedelta(days=30)
    )

    with django_assert_num_queries(1):  # the insert, its account looked up in it
        assert webhook_post(body) == {"status": "accepted"}

    assert not Fan.objects.filter(platform_fan_id="701").exists()
    event = WebhookEvent.objects.get()
    assert (event.account_id, event.handled, event.applied_at) == (studio.account.pk, False, None)
    assert (event.payload or {})["user"]["id"] == "701"
    bulk = sqs_client().get_queue_attributes(
        QueueUrl=sqs_queues[queue_names().bulk], AttributeNames=["All"]
    )["Attributes"]
    published = int(bulk["ApproximateNumberOfMessages"]) + int(
        bulk["ApproximateNumberOfMessagesDelayed"]
    )
    assert published == 1

    assert webhook_events_apply() == 1

    fan = Fan.objects.get(account=studio.account, platform_fan_id="701")
    assert fan.subscription_state == Fan.SubscriptionState.ACTIVE
    assert (fan.subscribed_at, fan.subscription_expires_at) == (START, START + timedelta(days=30))
    assert fan.username == "fan701"
    assert AutomationRun.objects.filter(fan=fan, state=AutomationRun.State.SCHEDULED).count() == 1
    event.refresh_from_db()
    assert event.handled is True and event.applied_at is not None

    # The same delivery again: a duplicate, nothing pending, still one run.
    assert webhook_post(body) == {"status": "duplicate"}
    assert pending() == 0
    assert webhook_events_apply() == 0
    assert AutomationRun.objects.filter(fan=fan).count() == 1


def test_a_burst_publishes_one_task_for_many(deferred, studio, sqs_queues, redis_client):
    for i in range(5):
        webhook_post(subscription_body(studio.account, fan_id=f"b{i}", subscribed_at=START))

    bulk = sqs_client().get_queue_attributes(
        QueueUrl=sqs_queues[queue_names().bulk], AttributeNames=["All"]
    )["Attributes"]
    assert (
        int(bulk["ApproximateNumberOfMessages"]) + int(bulk["ApproximateNumberOfMessagesDelayed"])
        == 1
    )
    assert pending() == 5


def test_a_batch_in_a_few_statements_whatever_its_size(
    deferred, studio, make_automation, redis_client, django_assert_max_num_queries
):
    make_automation(trigger="subscribed", name="Welcome")
    make_automation(trigger="renewed", name="Thanks")
    for i in range(60):
        webhook_post(subscription_body(studio.account, fan_id=f"n{i}", subscribed_at=START))
    known = FanFactory(
        account=studio.account,
        platform_fan_id="k1",
        subscription_state=Fan.SubscriptionState.ACTIVE,
        subscribed_at=START - timedelta(days=40),
        subscription_expires_at=START,
    )
    webhook_post(
        subscription_body(
            studio.account,
            fan_id="k1",
            event="subscriptions.renewed",
            expires_at=START + timedelta(days=30),
        )
    )

    with django_assert_max_num_queries(20):  # 61 deliveries: about 19 statements
        assert webhook_events_apply() == 61

    assert Fan.objects.filter(account=studio.account, platform_fan_id__startswith="n").count() == 60
    assert AutomationRun.objects.filter(automation__name="Welcome").count() == 60
    known.refresh_from_db()
    assert known.subscribed_at == START - timedelta(days=40)  # a renewal keeps the start
    assert known.subscription_expires_at == START + timedelta(days=30)
    assert AutomationRun.objects.filter(automation__name="Thanks", fan=known).count() == 1
    assert pending() == 0


def test_events_of_one_fan_in_a_batch_apply_in_order(deferred, studio, redis_client):
    webhook_post(
        subscription_body(
            studio.account, fan_id="o1", subscribed_at=START, expires_at=START + timedelta(days=30)
        )
    )
    webhook_post(
        subscription_body(
            studio.account,
            fan_id="o1",
            event="subscriptions.renewed",
            expires_at=START + timedelta(days=60),
        )
    )
    # An older event delivered late does not shorten the subscription.
    webhook_post(
        subscription_body(
            studio.account,
            fan_id="o1",
            event="subscriptions.renewed",
            expires_at=START + timedelta(days=10),
        )
    )

    assert webhook_events_apply() == 3

    fan = Fan.objects.get(account=studio.account, platform_fan_id="o1")
    assert fan.subscribed_at == START
    assert fan.subscription_expires_at == START + timedelta(days=60)


def test_a_taken_username_gets_a_suffixed_one(deferred, studio, redis_client):
    FanFactory(account=studio.account, platform_fan_id="other", username="fanu1")
    webhook_post(subscription_body(studio.account, fan_id="u1", subscribed_at=START))
    webhook_post(subscription_body(studio.account, fan_id="u2", subscribed_at=START))

    assert webhook_events_apply() == 2

    assert Fan.objects.get(account=studio.account, platform_fan_id="u1").username == "fanu1-u1"
    assert Fan.objects.get(account=studio.account, platform_fan_id="u2").username == "fanu2"


def test_a_missing_start_is_the_delivery_s_arrival(deferred, studio, redis_client):
    webhook_post(subscription_body(studio.account, fan_id="m1"))
    received_at = WebhookEvent.objects.get().received_at

    webhook_events_apply()

    assert Fan.objects.get(platform_fan_id="m1").subscribed_at == received_at


def test_a_worker_killed_half_way_leaves_them_pending_then_exactly_once(
    deferred, studio, make_automation, redis_client
):
    make_automation(trigger="subscribed")
    for i in range(3):
        webhook_post(subscription_body(studio.account, fan_id=f"w{i}", subscribed_at=START))
    real = inbound.fan_subscriptions_apply

    def dies(**kwargs: Any) -> Any:
        real(**kwargs)  # the fans and runs are written ...
        raise SystemExit("worker killed")  # ... and the process dies before the commit

    with (
        mock.patch("onlyfans.webhooks.fan_subscriptions_apply", dies),
        pytest.raises(SystemExit),
    ):
        webhook_events_apply()

    assert pending() == 3
    assert not Fan.objects.filter(platform_fan_id__startswith="w").exists()
    assert AutomationRun.objects.count() == 0

    # The sweep (beat runs the same task) applies them, once.
    assert webhook_events_apply() == 3
    assert webhook_events_apply() == 0
    assert AutomationRun.objects.count() == 3
    assert AutomationRun.objects.values("fan_id").distinct().count() == 3


def test_unknown_account_is_answered_alike_and_ends_ignored(deferred, studio, redis_client):
    body = json.dumps(
        {
            "event": "subscriptions.new",
            "account_id": "acct_nobody",
            "payload": {"user": {"id": "x1"}},
        }
    ).encode()

    response = post_raw(body)

    assert (response.status_code, response.json()) == (200, {"status": "accepted"})
    event = WebhookEvent.objects.get()
    assert event.account_id is None and event.handled is False
    assert event.applied_at is not None and event.payload is None
    assert pending() == 0
    assert post_raw(body).json() == {"status": "duplicate"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "malformed_json"),
        (
            json.dumps({"event": "subscriptions.new", "payload": {"user": {"id": []}}}).encode(),
            400,
            "invalid_payload",
        ),
        (
            json.dumps(
                {"event": "subscriptions.new", "payload": {"user_id": 1, "subscribedAt": "no"}}
            ).encode(),
            400,
            "invalid_payload",
        ),
    ],
)
def test_bad_deliveries_answer_as_before_and_store_nothing(deferred, body, status, code):
    response = post_raw(body)

    assert response.status_code == status
    assert response.json()["code"] == code
    assert WebhookEvent.objects.count() == 0


def test_a_bad_signature_stores_nothing(deferred, studio):
    body = subscription_body(studio.account, fan_id="s1")

    response = post_raw(body, signature="00" * 32)

    assert (response.status_code, response.json()) == (401, {"code": "invalid_signature"})
    assert WebhookEvent.objects.count() == 0


def test_the_task_runs_on_the_bulk_queue_and_beat_sweeps():
    assert APPLY_TASK in BULK_TASKS
    assert APPLY_TASK in {entry["task"] for entry in beat_schedule().values()}
