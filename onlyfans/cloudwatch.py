"""CloudWatch custom metrics of the send pipeline, published once a minute by beat.

Nothing here runs on the send path. Each minute's figures are read where they are already
kept: PostgreSQL for queued, sent and failed messages and queued→sent times (per account, one
statement per minute), Redis for the limiter's refusals (counted by its Lua script) and for
worker errors (a Celery signal), SQS and PostgreSQL for the queue depths at publish time. The
beat task ``cloudwatch_publish_task`` turns a finished minute into one ``PutMetricData`` call
per batch of up to ``CLOUDWATCH_BATCH_SIZE`` data points. When CloudWatch does not answer, the
failure is counted (``crm_cloudwatch_publish_failures_total``) and logged, the minute stays
unpublished and the next run tries it again (up to ``CLOUDWATCH_MAX_CATCHUP_MINUTES`` back).

Dimensions: ``Installation`` (``CLOUDWATCH_INSTALLATION``) on every data point, and ``Account``
(the CRM's creator account id) on the per-account series; the same counts are published
without ``Account`` too, because CloudWatch does not add series up for alarms. Never a fan or
message id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import boto3
import structlog
from botocore.config import Config
from celery import shared_task
from celery.signals import task_failure
from django.conf import settings
from django.db import connection
from prometheus_client import Counter

from config.redis import redis_client
from crm.models import CreatorAccount, Message
from onlyfans.broker import queue_names, sqs_client, sqs_endpoint_url
from onlyfans.dispatch import CAMPAIGN_HELD_SQL
from onlyfans.ratelimit import rate_limit_deferrals

log = structlog.get_logger(__name__)

QUEUED = "OnlyFansMessagesQueued"
PROCESSED = "OnlyFansMessagesProcessed"
FAILED = "OnlyFansMessagesFailed"
QUEUE_DEPTH = "OnlyFansQueueDepth"
PROCESSING_TIME = "OnlyFansProcessingTime"
RATE_LIMIT_DEFERRALS = "OnlyFansRateLimitDeferrals"
WORKER_ERRORS = "OnlyFansWorkerErrors"

CURSOR_KEY = "cloudwatch:published_until"
LOCK_KEY = "cloudwatch:publish:lock"
WORKER_ERRORS_KEY_PREFIX = "cloudwatch:worker_errors:"
# A minute is published this long after it ends, so the last commits of it are in.
SETTLE_SECONDS = 5

PUBLISH_FAILURES = Counter(
    "crm_cloudwatch_publish_failures_total", "PutMetricData calls that failed.", ["reason"]
)
PUBLISHED_DATA_POINTS = Counter(
    "crm_cloudwatch_data_points_total", "Data points published to CloudWatch."
)


# --- Client ------------------------------------------------------------------------------------


def cloudwatch_endpoint_url() -> str | None:
    """``CLOUDWATCH_ENDPOINT_URL``, else the local SQS endpoint (moto serves both), else AWS."""
    return settings.CLOUDWATCH_ENDPOINT_URL or sqs_endpoint_url()


def cloudwatch_client(*, timeout_seconds: float | None = None) -> Any:
    timeout = timeout_seconds or settings.CLOUDWATCH_TIMEOUT_SECONDS
    endpoint = cloudwatch_endpoint_url()
    key = secret = None
    if endpoint:
        # A local endpoint (moto) takes the broker URL's dummy credentials; AWS uses IAM.
        broker = urlparse(settings.CELERY_BROKER_URL)
        key, secret = broker.username or "test", broker.password or "test"
    return boto3.client(
        "cloudwatch",
        region_name=settings.CLOUDWATCH_REGION or settings.SQS_REGION,
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            connect_timeout=timeout, read_timeout=timeout, retries={"total_max_attempts": 2}
        ),
    )


# --- Collection --------------------------------------------------------------------------------


@dataclass
class AccountMinute:
    queued: int = 0
    processed: int = 0
    failed: int = 0
    deferrals: int = 0
    times_count: int = 0
    times_sum_ms: float = 0.0
    times_min_ms: float = 0.0
    times_max_ms: float = 0.0


@dataclass
class Minute:
    start: datetime
    accounts: dict[int, AccountMinute] = field(default_factory=dict)
    worker_errors: int = 0

    def account(self, account_id: int) -> AccountMinute:
        return self.accounts.setdefault(account_id, AccountMinute())


_M = Message._meta.db_table
_A = CreatorAccount._meta.db_table
# One statement per minute, per account on its own indexes (message_account_queued,
# message_account_sent, message_account_status); accounts with nothing in the minute drop out.
_MINUTE_SQL = f"""
SELECT a.id, q.n, s.n, s.ms_sum, s.ms_min, s.ms_max, f.n
FROM {_A} a
CROSS JOIN LATERAL (
  SELECT count(*) AS n FROM {_M} m WHERE m.account_id = a.id AND m.direction = 'out'
    AND m.queued_at >= %(start)s AND m.queued_at < %(end)s) q
CROSS JOIN LATERAL (
  SELECT count(*) AS n,
    sum(extract(epoch FROM m.sent_at - m.queued_at) * 1000) AS ms_sum,
    min(extract(epoch FROM m.sent_at - m.queued_at) * 1000) AS ms_min,
    max(extract(epoch FROM m.sent_at - m.queued_at) * 1000) AS ms_max
  FROM {_M} m WHERE m.account_id = a.id AND m.direction = 'out' AND m.status = 'sent'
    AND m.queued_at IS NOT NULL AND m.sent_at >= %(start)s AND m.sent_at < %(end)s) s
CROSS JOIN LATERAL (
  SELECT count(*) AS n FROM {_M} m WHERE m.account_id = a.id AND m.status = 'failed'
    AND m.updated_at >= %(start)s AND m.updated_at < %(end)s) f
WHERE q.n > 0 OR s.n > 0 OR f.n > 0
"""  # noqa: S608 (table names only)


def minute_collect(*, minute: int) -> Minute:
    """The figures of one finished minute (``minute`` = epoch seconds // 60)."""
    start = datetime.fromtimestamp(minute * 60, tz=UTC)
    end = datetime.fromtimestamp((minute + 1) * 60, tz=UTC)
    result = Minute(start=start)
    with connection.cursor() as cursor:
        cursor.execute(_MINUTE_SQL, {"start": start, "end": end})
        for account_id, queued, sent, ms_sum, ms_min, ms_max, failed in cursor.fetchall():
            figures = result.account(account_id)
            figures.queued, figures.processed, figures.failed = queued, sent, failed
            if sent:
                figures.times_count = sent
                figures.times_sum_ms = float(ms_sum)
                figures.times_min_ms = max(0.0, float(ms_min))
                figures.times_max_ms = max(0.0, float(ms_max))
    for account_id, n in rate_limit_deferrals(minute=minute).items():
        result.account(account_id).deferrals = n
    errors = redis_client().hget(f"{WORKER_ERRORS_KEY_PREFIX}{minute}", "total")
    result.worker_errors = int(errors or 0)
    return result


@dataclass(frozen=True)
class QueueDepths:
    send: int
    in_flight: int
    dead_letter: int
    backlog: int
    held: int = 0


# Backlog: what the dispatcher will claim. Held: a campaign's messages waiting while it is not
# running (paused), which the dispatcher leaves alone (the same condition): a long pause is
# not a stuck pipeline.
_BACKLOG_SQL = f"""
SELECT count(*) FILTER (WHERE NOT held), count(*) FILTER (WHERE held) FROM (
  SELECT m.sender_kind = 'campaign' AND {CAMPAIGN_HELD_SQL} AS held
  FROM {_M} m WHERE m.status = 'queued' AND m.dispatched_at IS NULL
) waiting
"""  # noqa: S608


def queue_depths() -> QueueDepths:
    """Messages waiting on the send queue (visible and delayed), held by workers, in the
    dead-letter queue, and waiting in PostgreSQL for the dispatcher."""
    client = sqs_client(timeout_seconds=settings.CLOUDWATCH_TIMEOUT_SECONDS)
    names = queue_names()
    attributes = [
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesDelayed",
        "ApproximateNumberOfMessagesNotVisible",
    ]

    def read(name: str) -> dict[str, str]:
        url = client.get_queue_url(QueueName=name)["QueueUrl"]
        return client.get_queue_attributes(QueueUrl=url, AttributeNames=attributes)["Attributes"]

    send, dead = read(names.send), read(names.dead_letter)
    with connection.cursor() as cursor:
        cursor.execute(_BACKLOG_SQL)
        backlog, held = cursor.fetchone()
    return QueueDepths(
        send=int(send["ApproximateNumberOfMessages"])
        + int(send["ApproximateNumberOfMessagesDelayed"]),
        in_flight=int(send["ApproximateNumberOfMessagesNotVisible"]),
        dead_letter=int(dead["ApproximateNumberOfMessages"]),
        backlog=int(backlog),
        held=int(held),
    )


# --- Data points ---------------------------------------------------------------------------------


def _dimensions(**extra: str) -> list[dict[str, str]]:
    names = [{"Name": "Installation", "Value": settings.CLOUDWATCH_INSTALLATION}]
    return names + [{"Name": name, "Value": value} for name, value in extra.items()]


def _count(name: str, value: int, at: datetime, **dims: str) -> dict[str, Any]:
    return {
        "MetricName": name,
        "Dimensions": _dimensions(**dims),
        "Timestamp": at,
        "Value": float(value),
        "Unit": "Count",
    }


def _times(at: datetime, count: int, total: float, low: float, high: float, **dims: str):
    return {
        "MetricName": PROCESSING_TIME,
        "Dimensions": _dimensions(**dims),
        "Timestamp": at,
        "StatisticValues": {"SampleCount": count, "Sum": total, "Minimum": low, "Maximum": high},
        "Unit": "Milliseconds",
    }


def minute_data_points(minute: Minute) -> list[dict[str, Any]]:
    """Counts per account and for the installation; queued→sent times as statistic sets."""
    at = minute.start
    points: list[dict[str, Any]] = []
    totals = AccountMinute()
    for account_id, f in sorted(minute.accounts.items()):
        account = str(account_id)
        points += [
            _count(QUEUED, f.queued, at, Account=account),
            _count(PROCESSED, f.processed, at, Account=account),
            _count(FAILED, f.failed, at, Account=account),
            _count(RATE_LIMIT_DEFERRALS, f.deferrals, at, Account=account),
        ]
        if f.times_count:
            points.append(
                _times(
                    at,
                    f.times_count,
                    f.times_sum_ms,
                    f.times_min_ms,
                    f.times_max_ms,
                    Account=account,
                )
            )
            totals.times_min_ms = (
                min(totals.times_min_ms, f.times_min_ms) if totals.times_count else f.times_min_ms
            )
            totals.times_max_ms = max(totals.times_max_ms, f.times_max_ms)
            totals.times_count += f.times_count
            totals.times_sum_ms += f.times_sum_ms
        totals.queued += f.queued
        totals.processed += f.processed
        totals.failed += f.failed
        totals.deferrals += f.deferrals
    # The installation's series are published every minute, zeros included, so alarms on a
    # rate see a value rather than missing data.
    points += [
        _count(QUEUED, totals.queued, at),
        _count(PROCESSED, totals.processed, at),
        _count(FAILED, totals.failed, at),
        _count(RATE_LIMIT_DEFERRALS, totals.deferrals, at),
        _count(WORKER_ERRORS, minute.worker_errors, at),
    ]
    if totals.times_count:
        points.append(
            _times(
                at,
                totals.times_count,
                totals.times_sum_ms,
                totals.times_min_ms,
                totals.times_max_ms,
            )
        )
    return points


def depth_data_points(depths: QueueDepths, at: datetime) -> list[dict[str, Any]]:
    return [
        _count(QUEUE_DEPTH, depths.send, at, Queue="send"),
        _count(QUEUE_DEPTH, depths.in_flight, at, Queue="in_flight"),
        _count(QUEUE_DEPTH, depths.dead_letter, at, Queue="dead_letter"),
        _count(QUEUE_DEPTH, depths.backlog, at, Queue="backlog"),
        _count(QUEUE_DEPTH, depths.held, at, Queue="held"),
    ]


def _batches(points: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    size = settings.CLOUDWATCH_BATCH_SIZE
    for i in range(0, len(points), size):
        yield points[i : i + size]


def data_points_put(points: list[dict[str, Any]], *, client: Any = None) -> bool:
    """PutMetricData in batches. False (counted and logged, never raised) when it failed."""
    if not points:
        return True
    try:
        client = client or cloudwatch_client()
        for batch in _batches(points):
            client.put_metric_data(Namespace=settings.CLOUDWATCH_NAMESPACE, MetricData=batch)
    except Exception as error:
        PUBLISH_FAILURES.labels(type(error).__name__).inc()
        log.warning("cloudwatch.publish_failed", error=type(error).__name__, points=len(points))
        return False
    PUBLISHED_DATA_POINTS.inc(len(points))
    return True


# --- The beat task -------------------------------------------------------------------------------


def cloudwatch_publish(*, now: float | None = None) -> dict[str, Any]:
    """Publish every finished minute not yet published (the cursor is in Redis), then the
    queue depths. One run at a time (a Redis lock); safe to call at any moment.

    A minute is marked published only after all its batches went through. Without a cursor
    (first run, or Redis lost it) only the last finished minute is published: at worst that
    minute is counted twice after a Redis loss, never skipped without a trace.
    """
    if not settings.CLOUDWATCH_ENABLED:
        return {"enabled": False}
    now = time.time() if now is None else now
    client = redis_client()
    lock = client.lock(LOCK_KEY, timeout=55, blocking=False)
    if not lock.acquire():
        return {"enabled": True, "busy": True}
    try:
        last_finished = int((now - SETTLE_SECONDS) // 60) - 1
        cursor = client.get(CURSOR_KEY)
        first = int(cursor) if cursor is not None else last_finished
        first = max(first, last_finished - settings.CLOUDWATCH_MAX_CATCHUP_MINUTES + 1)
        cw = cloudwatch_client()
        published = 0
        points = 0
        ok = True
        for minute in range(first, last_finished + 1):
            data = minute_data_points(minute_collect(minute=minute))
            if not data_points_put(data, client=cw):
                ok = False
                break
            client.set(CURSOR_KEY, minute + 1)
            published += 1
            points += len(data)
        if ok:
            try:
                depths = queue_depths()
            except Exception as error:
                log.warning("cloudwatch.depths_unavailable", error=type(error).__name__)
            else:
                depth_points = depth_data_points(depths, datetime.fromtimestamp(now, tz=UTC))
                if data_points_put(depth_points, client=cw):
                    points += len(depth_points)
        log.info("cloudwatch.published", minutes=published, points=points, ok=ok)
        return {"enabled": True, "minutes": published, "points": points, "ok": ok}
    finally:
        try:
            lock.release()
        except Exception:
            log.warning("cloudwatch.lock_lost")


@shared_task(name="onlyfans.cloudwatch.cloudwatch_publish_task", ignore_result=True)
def cloudwatch_publish_task() -> dict[str, Any]:
    """Periodic (beat, every ``CLOUDWATCH_PUBLISH_SECONDS``): publish the finished minutes."""
    return cloudwatch_publish()


@task_failure.connect
def _worker_error_count(**kwargs: Any) -> None:
    """A task raised: counted per minute for ``OnlyFansWorkerErrors`` (never raises itself)."""
    try:
        key = f"{WORKER_ERRORS_KEY_PREFIX}{int(time.time() // 60)}"
        pipe = redis_client().pipeline(transaction=False)
        pipe.hincrby(key, "total", 1)
        pipe.expire(key, 3600)
        pipe.execute()
    except Exception as error:
        log.warning("cloudwatch.worker_error_not_counted", error=type(error).__name__)
