"""Operations endpoints: liveness, readiness and Prometheus metrics.

``/healthz`` says the process answers and touches nothing else. ``/readyz`` checks each
dependency with a short timeout and answers 503 (never 500) when one fails, naming only the
error's type: it is unauthenticated. ``/metrics`` adds scrape-time gauges (queue depths,
pending messages) to the counters; ``settings.METRICS_TOKEN``, when set, must come as a bearer
token.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis
import structlog
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

import onlyfans.metrics  # noqa: F401  (registers the pipeline's counters in this process)
from crm.models import Message
from onlyfans.broker import queue_names, sqs_client

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_SECONDS = 2
SQS_ATTRIBUTES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "not_visible",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


# --- Readiness -------------------------------------------------------------------------------


def _database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis_check() -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CHECK_TIMEOUT_SECONDS,
        socket_timeout=CHECK_TIMEOUT_SECONDS,
    )
    try:
        client.ping()
    finally:
        client.close()


def _queue_attributes(client: Any, queue_name: str, attributes: list[str]) -> dict[str, str]:
    url = client.get_queue_url(QueueName=queue_name)["QueueUrl"]
    return client.get_queue_attributes(QueueUrl=url, AttributeNames=attributes)["Attributes"]


def _sqs_check() -> None:
    client = sqs_client(timeout_seconds=CHECK_TIMEOUT_SECONDS)
    _queue_attributes(client, queue_names().send, ["ApproximateNumberOfMessages"])


def _check(probe: Callable[[], None]) -> dict[str, Any]:
    started = time.monotonic()
    try:
        probe()
    except Exception as error:
        result: dict[str, Any] = {"ok": False, "error": type(error).__name__}
        log.warning("readyz.check_failed", check=probe.__name__, error=type(error).__name__)
    else:
        result = {"ok": True}
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _check(_database_check),
        "redis": _check(_redis_check),
        "sqs": _check(_sqs_check),
    }
    ready = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


# --- Metrics -----------------------------------------------------------------------------------


def _queue_gauges() -> Iterator[Metric]:
    up = GaugeMetricFamily("crm_sqs_up", "Whether the SQS endpoint answered this scrape.")
    depth = GaugeMetricFamily(
        "crm_sqs_queue_messages",
        "Approximate messages in the send and dead-letter queues, by state.",
        labels=["queue", "state"],
    )
    names = queue_names()
    try:
        client = sqs_client(timeout_seconds=CHECK_TIMEOUT_SECONDS)
        for label, queue_name in (("send", names.send), ("dead_letter", names.dead_letter)):
            attributes = _queue_attributes(client, queue_name, list(SQS_ATTRIBUTES))
            for attribute, state in SQS_ATTRIBUTES.items():
                depth.add_metric([label, state], float(attributes.get(attribute, 0)))
    except Exception as error:
        log.warning("metrics.sqs_unavailable", error=type(error).__name__)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    yield depth


def _pending_message_gauges() -> Iterator[Metric]:
    pending = GaugeMetricFamily(
        "crm_messages_pending", "Outgoing messages not yet sent, by status.", labels=["status"]
    )
    try:
        counts = dict(
            Message.objects.filter(status__in=Message.PENDING_STATUSES)
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
    except Exception as error:
        log.warning("metrics.database_unavailable", error=type(error).__name__)
        return
    for status in Message.PENDING_STATUSES:
        pending.add_metric([str(status)], float(counts.get(status, 0)))
    yield pending


class _ScrapeTimeCollector:
    def collect(self) -> Iterator[Metric]:
        yield from _queue_gauges()
        yield from _pending_message_gauges()


def _metrics_authorized(request: HttpRequest) -> bool:
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), str(token).encode()
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _metrics_authorized(request):
        response = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scrape_time = CollectorRegistry(auto_describe=False)
    scrape_time.register(_ScrapeTimeCollector())  # type: ignore[arg-type]
    output = generate_latest(registry) + generate_latest(scrape_time)
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)
