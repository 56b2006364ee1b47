"""Celery's configuration and the SQS queues it uses.

Queues are predefined (kombu never creates or lists queues on its own): ``send`` carries one
task per outgoing message, ``default`` the periodic and housekeeping tasks, ``bulk`` the heavy
or user-fed work (imports, fan syncs, campaign fan-outs, analytics roll-ups) and ``send-dlq``
receives whatever SQS could not deliver after ``SQS_MAX_RECEIVE_COUNT`` receives.

``bulk`` is served by a worker process of its own: a task of it that runs long (or, on hostile
input, holds the interpreter lock) never delays a send, whose worker is another process.
"""

from __future__ import annotations

import functools
import json
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from django.conf import settings

SEND_QUEUE = "send"
DEFAULT_QUEUE = "default"
BULK_QUEUE = "bulk"
DEAD_LETTER_QUEUE = "send-dlq"

# Tasks on the bulk queue, by name (routes, so that the apps' task modules need not know).
BULK_TASKS = (
    "imports.tasks.fan_import_task",
    "imports.tasks.fan_import_drafts_expire_task",
    "onlyfans.tasks.fan_sync_task",
    "onlyfans.tasks.fan_sync_schedule_task",
    "onlyfans.tasks.vault_sync_task",
    "onlyfans.tasks.vault_sync_schedule_task",
    "campaigns.tasks.campaign_fan_out_task",
    "analytics.tasks.rollups_refresh_task",
    "onlyfans.webhooks.webhook_events_apply_task",
)


@dataclass(frozen=True)
class QueueNames:
    send: str
    default: str
    bulk: str
    dead_letter: str


def queue_names() -> QueueNames:
    prefix = settings.SQS_QUEUE_PREFIX
    return QueueNames(
        send=f"{prefix}{SEND_QUEUE}",
        default=f"{prefix}{DEFAULT_QUEUE}",
        bulk=f"{prefix}{BULK_QUEUE}",
        dead_letter=f"{prefix}{DEAD_LETTER_QUEUE}",
    )


def worker_argv(
    *, hostname: str, concurrency: int, loglevel: str = "INFO", queues: tuple[str, ...] = ()
) -> list[str]:
    """The command line of one Celery worker (threads pool) on ``queues`` (names without the
    prefix; all three when empty), for the processes that tests and benchmarks start."""
    names = queue_names()
    prefix = settings.SQS_QUEUE_PREFIX
    served = [f"{prefix}{q}" for q in queues] or [names.send, names.default, names.bulk]
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", ",".join(served), "--pool", "threads",
        "--concurrency", str(concurrency), "--hostname", hostname, "--loglevel", loglevel,
    ]  # fmt: skip


def _broker_credentials() -> tuple[str | None, str | None]:
    parsed = urlparse(settings.CELERY_BROKER_URL)
    return parsed.username or None, parsed.password or None


def sqs_endpoint_url() -> str | None:
    """The endpoint from the broker URL (``sqs://key:secret@host:port``), None for real AWS."""
    parsed = urlparse(settings.CELERY_BROKER_URL)
    if not parsed.hostname:
        return None
    scheme = "https" if parsed.port == 443 else "http"
    return f"{scheme}://{parsed.hostname}:{parsed.port or 80}"


def sqs_client(*, timeout_seconds: float = 5.0) -> Any:
    key, secret = _broker_credentials()
    return boto3.client(
        "sqs",
        region_name=settings.SQS_REGION,
        endpoint_url=sqs_endpoint_url(),
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            connect_timeout=timeout_seconds,
            read_timeout=timeout_seconds,
            retries={"total_max_attempts": 2},
        ),
    )


def queues_ensure(client: Any = None) -> dict[str, str]:
    """Create the queues (idempotent) with the dead-letter redrive policy; return name -> URL."""
    client = client or sqs_client()
    names = queue_names()
    visibility = str(settings.SQS_VISIBILITY_TIMEOUT_SECONDS)
    dlq_url = client.create_queue(
        QueueName=names.dead_letter, Attributes={"MessageRetentionPeriod": "1209600"}
    )["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.SQS_MAX_RECEIVE_COUNT)}
    )
    urls = {names.dead_letter: dlq_url}
    for name in (names.send, names.default, names.bulk):
        attributes = {"VisibilityTimeout": visibility, "RedrivePolicy": redrive}
        url = client.create_queue(QueueName=name)["QueueUrl"]
        # create_queue refuses changed attributes on an existing queue; set them explicitly.
        client.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        urls[name] = url
    return urls


def _queue_url(name: str) -> str:
    endpoint = sqs_endpoint_url()
    account = settings.SQS_ACCOUNT_ID
    if endpoint:
        return f"{endpoint}/{account}/{name}"
    return f"https://sqs.{settings.SQS_REGION}.amazonaws.com/{account}/{name}"


@functools.cache
def _celery_config() -> dict[str, Any]:
    names = queue_names()
    key, secret = _broker_credentials()
    predefined = {
        name: {"url": _queue_url(name), "access_key_id": key, "secret_access_key": secret}
        for name in (names.send, names.default, names.bulk)
    }
    time_limit = settings.SEND_TASK_TIME_LIMIT_SECONDS
    # A message must stay invisible while a worker holds it, or SQS hands it to another one.
    assert time_limit * 2 < settings.SQS_VISIBILITY_TIMEOUT_SECONDS
    return {
        "broker_url": settings.CELERY_BROKER_URL,
        # kombu's SQS transport, surviving a receive that SQS answers with a 5xx.
        "broker_transport": "onlyfans.broker_transport:Transport",
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            "region": settings.SQS_REGION,
            "visibility_timeout": settings.SQS_VISIBILITY_TIMEOUT_SECONDS,
            "wait_time_seconds": settings.SQS_WAIT_TIME_SECONDS,
            "polling_interval": settings.SQS_POLLING_INTERVAL_SECONDS,
            "predefined_queues": predefined,
            "client-config": {
                "connect_timeout": 3,
                "read_timeout": settings.SQS_WAIT_TIME_SECONDS + 5,
                "retries": {"total_max_attempts": 2},
            },
        },
        "task_default_queue": names.default,
        "task_routes": {
            "onlyfans.tasks.message_send_task": {"queue": names.send},
            **{name: {"queue": names.bulk} for name in BULK_TASKS},
        },
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure": True,
        "task_acks_on_timeout": True,
        "task_time_limit": time_limit,
        "task_soft_time_limit": time_limit - 5,
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_backend": None,
        "task_ignore_result": True,
        "worker_prefetch_multiplier": settings.CELERY_WORKER_PREFETCH_MULTIPLIER,
        # SQS has no broadcast exchange: remote control and events would need SNS.
        "worker_enable_remote_control": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "worker_hijack_root_logger": False,
        # Our handler writes to stderr; Celery's stdout/stderr redirection into its own logger
        # would feed our records back into logging, which drops them.
        "worker_redirect_stdouts": False,
        # Publishing gives up quickly: the outbox (beat) publishes again later.
        "task_publish_retry": True,
        "task_publish_retry_policy": {
            "max_retries": 2,
            "interval_start": 0,
            "interval_step": 0.2,
            "interval_max": 0.5,
        },
        # Tasks outside onlyfans/tasks.py that workers must know.
        "include": ["onlyfans.cloudwatch"],
        "timezone": "UTC",
    }


class _LazyCeleryConfig:
    """Read by ``config_from_object`` after Django settings are importable."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        config = _celery_config()
        if name in config:
            return config[name]
        raise AttributeError(name)

    def __dir__(self) -> list[str]:
        return list(_celery_config())


celery_config = _LazyCeleryConfig()
