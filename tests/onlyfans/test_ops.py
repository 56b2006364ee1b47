from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from django.test import Client

from crm.models import Message
from onlyfans.broker import queue_names, queues_ensure, sqs_client
from onlyfans.metrics import MESSAGES_SENT
from tests.factories import MessageFactory

METRICS_AUTH = {"Authorization": "Bearer test-metrics-token"}  # config/settings/test.py


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def fresh_queues(settings, sqs_server) -> Iterator[dict[str, str]]:
    """Empty queues of this test's own (the shared ones may be purged once a minute only)."""
    settings.SQS_QUEUE_PREFIX = f"fancrm-test-ops-{uuid.uuid4().hex[:12]}-"
    client = sqs_client()
    urls = queues_ensure(client)
    yield urls
    for url in urls.values():
        client.delete_queue(QueueUrl=url)


@pytest.fixture
def sqs_down(settings):
    settings.CELERY_BROKER_URL = f"sqs://test:test@127.0.0.1:{_closed_port()}"


def test_healthz_needs_nothing():
    # No django_db mark: any database query here would fail the test.
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_200_when_every_service_answers(fresh_queues):
    response = Client().get("/readyz")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "redis", "sqs"}
    for check in body["checks"].values():
        assert check["ok"] is True
        assert check["latency_ms"] >= 0


@pytest.mark.django_db
def test_readyz_is_503_when_sqs_is_unreachable(sqs_down):
    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert body["checks"]["sqs"]["ok"] is False
    assert body["checks"]["sqs"]["error"]
    # Unauthenticated: the answer names the error type, not hosts or credentials.
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_is_503_when_redis_is_unreachable(settings, fresh_queues):
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
    assert response.json()["checks"]["sqs"]["ok"] is True


@pytest.mark.django_db
def test_metrics_show_counters_queue_depths_and_pending_messages(fresh_queues):
    MESSAGES_SENT.inc(0)
    MessageFactory.create_batch(
        2,
        direction=Message.Direction.OUT,
        status=Message.Status.QUEUED,
        sender_kind=Message.SenderKind.USER,
    )
    MessageFactory.create(
        direction=Message.Direction.OUT,
        status=Message.Status.SENDING,
        sender_kind=Message.SenderKind.USER,
    )
    sqs_client().send_message(QueueUrl=fresh_queues[queue_names().send], MessageBody="{}")

    response = Client().get("/metrics", headers=METRICS_AUTH)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "crm_messages_sent_total" in text
    assert "crm_sqs_up 1.0" in text
    assert 'crm_sqs_queue_messages{queue="send",state="visible"} 1.0' in text
    assert 'crm_sqs_queue_messages{queue="dead_letter",state="visible"} 0.0' in text
    assert 'crm_sqs_queue_messages{queue="send",state="not_visible"}' in text
    assert 'crm_sqs_queue_messages{queue="send",state="delayed"}' in text
    assert 'crm_messages_pending{status="queued"} 2.0' in text
    assert 'crm_messages_pending{status="sending"} 1.0' in text


@pytest.mark.django_db
def test_metrics_still_answer_when_sqs_is_down(sqs_down):
    response = Client().get("/metrics", headers=METRICS_AUTH)

    assert response.status_code == 200
    text = response.content.decode()
    assert "crm_sqs_up 0.0" in text
    assert "crm_sqs_queue_messages{" not in text
    assert "crm_messages_sent_total" in text
    assert 'crm_messages_pending{status="queued"} 0.0' in text


@pytest.mark.django_db
def test_metrics_with_multiprocess_dir_use_a_fresh_registry(monkeypatch, tmp_path, sqs_down):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    response = Client().get("/metrics", headers=METRICS_AUTH)

    assert response.status_code == 200
    text = response.content.decode()
    # The process-local default registry is not used; scrape-time gauges still are.
    assert "python_gc_objects_collected_total" not in text
    assert "crm_sqs_up 0.0" in text


@pytest.mark.django_db
def test_metrics_token_is_required_when_set(settings, sqs_down):
    settings.METRICS_TOKEN = "s3cret"
    client = Client()

    missing = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    right = client.get("/metrics", headers={"Authorization": "Bearer s3cret"})

    assert missing.status_code == 401
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert right.status_code == 200
    assert "crm_messages_sent_total" in right.content.decode()


def test_ops_endpoints_refuse_post():
    assert Client().post("/healthz").status_code == 405
