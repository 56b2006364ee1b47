"""GET /api/monitoring/onlyfans: who may read it, its shape, and that it agrees with /readyz
and /metrics."""

from __future__ import annotations

import re
import socket

import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

METRICS_AUTH = {"Authorization": "Bearer test-metrics-token"}  # config/settings/test.py

URL = "/api/monitoring/onlyfans"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True))
    return client


def test_anonymous_is_401_and_a_user_who_is_not_staff_is_403(sqs_queues):
    assert Client().get(URL).status_code == 401
    client = Client()
    client.force_login(UserFactory())
    response = client.get(URL)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_monitoring_token_reads_it_and_a_wrong_one_is_401(settings, sqs_queues):
    settings.MONITORING_TOKEN = "mon-s3cret"
    right = Client().get(URL, headers={"Authorization": "Bearer mon-s3cret"})
    wrong = Client().get(URL, headers={"Authorization": "Bearer nope"})
    assert right.status_code == 200
    assert wrong.status_code == 401


def test_without_a_configured_token_no_bearer_value_is_the_monitoring_token(settings):
    settings.MONITORING_TOKEN = ""
    assert Client().get(URL, headers={"Authorization": "Bearer "}).status_code == 401


def test_shape_and_agreement_with_readyz_and_metrics(staff_client, sqs_queues):
    body = staff_client.get(URL).json()
    ready = Client().get("/readyz").json()

    assert body["status"] == "healthy"
    assert ready["status"] == "ok"
    for name in ("sqs", "database", "redis"):
        assert body[name]["status"] == "connected"
        assert body[name]["latency_ms"] >= 0
        assert ready["checks"][name]["ok"] is True
    for name in ("queue_depth", "in_flight", "dead_letter_count", "backlog", "held"):
        assert body[name] == 0
    assert body["last_processed_at"] is None
    assert body["checked_at"]
    metrics = Client().get("/metrics", headers=METRICS_AUTH).content.decode()
    gauge = r'crm_sqs_queue_messages\{{queue="{}",state="visible"\}} (\S+)'
    visible = re.search(gauge.format("send"), metrics)
    dead = re.search(gauge.format("dead_letter"), metrics)
    assert visible and float(visible.group(1)) == body["queue_depth"]
    assert dead and float(dead.group(1)) == body["dead_letter_count"]


def test_a_dependency_down_is_503_like_readyz(settings, staff_client, sqs_queues):
    settings.CELERY_BROKER_URL = f"sqs://test:test@127.0.0.1:{_closed_port()}"

    response = staff_client.get(URL)
    ready = Client().get("/readyz")

    assert response.status_code == ready.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["sqs"]["status"] == "disconnected"
    assert body["sqs"]["error"]
    assert body["database"]["status"] == "connected"
    assert body["queue_depth"] is None
