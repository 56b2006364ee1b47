"""Real Celery worker processes on the real SQS queue (slowest tests of the pipeline)."""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from crm.models import Message
from onlyfans import services
from onlyfans.broker import worker_argv
from tests.factories import CreatorAccountFactory, FanFactory

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def worker_processes(sqs_queues, sandbox, redis_client) -> Iterator[list[subprocess.Popen]]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
            **{
                **connection.settings_dict,
                "HOST": connection.settings_dict["HOST"] or "127.0.0.1",
                "PORT": connection.settings_dict["PORT"] or 5432,
            }
        ),
        "ONLYFANS_API_BASE_URL": settings.ONLYFANS_API_BASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "WARNING",
        # Real workers top up through the coalescing thread, as in production.
        "SEND_DISPATCH_COALESCE_MS": "25",
    }
    started: list[subprocess.Popen] = []

    def start(count: int = 2) -> list[subprocess.Popen]:
        for i in range(count):
            started.append(
                subprocess.Popen(
                    worker_argv(hostname=f"test{i}@%h", concurrency=4, loglevel="WARNING"),
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
        return started

    yield start  # type: ignore[misc]
    for proc in started:
        proc.terminate()
    for proc in started:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


@pytest.mark.django_db(transaction=True)
def test_two_workers_never_exceed_the_account_limit(worker_processes, sandbox):
    # given: 5 sends a minute, at least 0.4 s apart, and twice that many messages waiting
    account = CreatorAccountFactory(send_rate_per_minute=5, send_min_interval_ms=400)
    fans = [FanFactory(account=account) for _ in range(4)]
    for i in range(10):
        services.message_enqueue(fan=fans[i % 4], text=f"m{i}")
    # when: two worker processes consume the same queue
    worker_processes(2)
    sent = Message.objects.filter(account=account, status=Message.Status.SENT)
    assert wait_for(lambda: sent.count() >= 5, timeout=40), "workers sent nothing"
    time.sleep(3)  # give them every chance to overshoot
    # then: the platform saw exactly the window's worth, spaced by the minimum interval
    arrivals = sorted(
        m["arrived_at"] for m in sandbox.messages(account=account.platform_account_id)
    )
    assert len(arrivals) == 5
    assert sent.count() == 5
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.39
    assert Message.objects.filter(account=account, status=Message.Status.QUEUED).count() == 5
