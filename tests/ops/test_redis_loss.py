"""Redis is a cache: losing it never lets an account exceed its limit (the limiter rebuilds a
missing window from what PostgreSQL says was sent), and PostgreSQL down is a 503 with a code."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from crm.models import CreatorAccount, Message
from onlyfans import services
from onlyfans.ratelimit import RateLimit, rate_limit_acquire, rate_limit_rebuild
from tests.factories import ConversationFactory, CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def _arrivals(sandbox, account: CreatorAccount) -> list[float]:
    return sorted(m["arrived_at"] for m in sandbox.messages(account=account.platform_account_id))


def test_flushing_redis_mid_window_lets_no_account_exceed_its_limit(
    send_queue, sandbox, redis_client, django_capture_on_commit_callbacks
):
    # given: 3 a minute; 6 messages queued and the first 3 sent
    account = CreatorAccountFactory(send_rate_per_minute=3, send_min_interval_ms=0)
    fans = [FanFactory(account=account) for _ in range(6)]
    with django_capture_on_commit_callbacks(execute=True):
        for fan in fans:
            services.message_enqueue(fan=fan, text="hello")
    sent = Message.objects.filter(account=account, status=Message.Status.SENT)
    send_queue.drain(until=lambda: sent.count() == 3, timeout=20)
    assert len(_arrivals(sandbox, account)) == 3

    # when: Redis loses everything (the limiter's window, locks, the dispatcher's line), and
    # the other three messages are delivered at once (as redelivered or re-swept tasks would be)
    redis_client.flushall()
    from onlyfans.pipeline import message_deliver

    waiting = Message.objects.filter(account=account, status=Message.Status.QUEUED)
    outcomes = [message_deliver(message_id=m.pk).result for m in waiting]

    # then: the limiter rebuilt the window from PostgreSQL and refused them all: still 3 at
    # the platform inside the minute (without the rebuild: 6)
    assert outcomes == ["throttled"] * 3
    arrivals = _arrivals(sandbox, account)
    assert len(arrivals) == 3, arrivals
    assert sent.count() == 3


def test_rebuild_counts_sent_and_sending_messages_of_the_window(redis_client):
    conversation = ConversationFactory()
    account = conversation.account
    now = timezone.now()

    def outgoing(status: str, **times) -> Message:
        return Message.objects.create(
            account=account,
            conversation=conversation,
            direction="out",
            status=status,
            text="x",
            queued_at=now,
            **times,
        )

    outgoing("sent", sent_at=now - timezone.timedelta(seconds=10))
    outgoing("sent", sent_at=now - timezone.timedelta(seconds=90))  # outside the window
    outgoing("sending")  # its slot was taken a moment ago
    outgoing("queued")
    limit = RateLimit(per_minute=3, min_interval_ms=0)

    # the one sent 10 s ago, the one sending (as now), and one more now: the log was lost,
    # not expired, so a slot granted just before the loss may not be in PostgreSQL yet
    assert rate_limit_rebuild(account_id=account.pk, limit=limit) == 2
    refused = rate_limit_acquire(account_id=account.pk, limit=limit)
    assert not refused.granted
    assert 45 < refused.wait_seconds <= 60.2


def test_an_idle_account_rebuilds_an_empty_window_and_sends_at_once(redis_client):
    account = CreatorAccountFactory()
    limit = RateLimit(per_minute=10, min_interval_ms=3000)
    assert rate_limit_acquire(account_id=account.pk, limit=limit).granted
    assert not rate_limit_acquire(account_id=account.pk, limit=limit).granted


# --- PostgreSQL down: 503 with a code ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server_without_database(settings) -> Iterator[str]:
    """The web server as make run starts it, with PostgreSQL unreachable."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{_free_port()}/fancrm",
        "DATABASE_POOL_MAX_SIZE": "0",
        "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "ERROR",
    }
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the server did not start") from None
            time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=15)


def test_the_api_answers_503_with_a_code_while_postgresql_is_down(server_without_database):
    base = server_without_database
    headers = {"Authorization": "Bearer fcrm_whatever"}

    accounts = httpx.get(f"{base}/api/crm/accounts/", headers=headers, timeout=15)
    send = httpx.post(
        f"{base}/api/onlyfans/messages/send",
        headers=headers,
        json={"fan_id": 1, "text": "hello"},
        timeout=15,
    )
    page = httpx.get(f"{base}/login/", timeout=15)
    ready = httpx.get(f"{base}/readyz", timeout=15)

    for response in (accounts, send):
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["Retry-After"] == "5"
    assert page.status_code in (200, 503)  # the login form needs no query; never a 500
    assert ready.status_code == 503
    assert ready.json()["checks"]["database"]["ok"] is False
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def test_a_stale_slot_is_given_back_when_retaken(redis_client):
    """The send path retakes a slot that a slow database made stale; the old one costs
    nothing (before: it stayed in the window, and a message sent late could land among the
    sends of later slots)."""
    from onlyfans.ratelimit import rate_limit_release, rate_limit_retake

    account = CreatorAccountFactory()
    limit = RateLimit(per_minute=2, min_interval_ms=0)
    stale = rate_limit_acquire(account_id=account.pk, limit=limit, hold=True)

    fresh = rate_limit_retake(account_id=account.pk, limit=limit, stale=stale)

    assert fresh.granted and fresh.member != stale.member
    assert redis_client.zcard(f"ratelimit:send:{account.pk}") == 1
    assert redis_client.zrange(f"ratelimit:held:{account.pk}", 0, -1) == [fresh.member.encode()]
    rate_limit_release(account_id=account.pk, limit=limit, slot=fresh)  # its call answered
    assert rate_limit_acquire(account_id=account.pk, limit=limit).granted
    assert not rate_limit_acquire(account_id=account.pk, limit=limit).granted


def test_a_send_task_that_meets_a_database_restart_tries_again_in_seconds(
    send_queue, sandbox, monkeypatch, django_capture_on_commit_callbacks
):
    """Without this the message waited for the sweep (SEND_REDISPATCH_AFTER_SECONDS, 6 min)."""
    from django.db import OperationalError

    from onlyfans import tasks

    fan = FanFactory(account=CreatorAccountFactory(send_rate_per_minute=1000))
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_enqueue(fan=fan, text="hello")
    [delivery] = send_queue.receive(wait_seconds=5)
    monkeypatch.setattr(tasks, "INFRASTRUCTURE_RETRY_SECONDS", 0.0)

    def database_restarting(**kwargs):
        raise OperationalError("terminating connection due to administrator command")

    with monkeypatch.context() as patch:
        patch.setattr(tasks, "message_deliver", database_restarting)
        with pytest.raises(OperationalError):
            send_queue.run(delivery)

    send_queue.drain(until=lambda: Message.objects.get(pk=message.pk).status == "sent")
    assert len(sandbox.messages(account=fan.account.platform_account_id)) == 1


def test_republishing_after_infrastructure_errors_is_counted_and_bounded(monkeypatch):
    """One new task per failed delivery (the failed one is acknowledged), with a growing
    delay, and none after INFRASTRUCTURE_MAX_RETRIES in a row: the sweep takes over."""
    from django.db import OperationalError

    from onlyfans import metrics, tasks

    def database_away(**kwargs):
        raise OperationalError("connection refused")

    published: list[tuple[tuple, dict, dict]] = []
    monkeypatch.setattr(tasks, "message_deliver", database_away)
    monkeypatch.setattr(
        tasks,
        "task_publish",
        lambda name, *, args, kwargs, **options: published.append((args, kwargs, options)),
    )
    gave_up = metrics.TASK_EXECUTIONS.labels("infrastructure_gave_up")
    before = gave_up._value.get()

    for retries in range(tasks.INFRASTRUCTURE_MAX_RETRIES + 1):
        with pytest.raises(OperationalError):
            tasks.message_send_task(7, infrastructure_retries=retries)

    assert [kwargs["infrastructure_retries"] for _, kwargs, _ in published] == [1, 2, 3, 4, 5, 6]
    assert [options["delay_seconds"] for *_, options in published] == [5, 10, 20, 40, 60, 60]
    assert gave_up._value.get() == before + 1
