"""Shared fixtures: the real PostgreSQL (pytest-django), Redis and a local SQS (moto server)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import redis
from django.conf import settings

from tests.factories import (
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    UserFactory,
)


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


@pytest.fixture(scope="session")
def sqs_server() -> Iterator[str]:
    """A moto SQS server on the broker URL's port: reuse one that runs, else start one here."""
    from onlyfans.broker import queues_ensure, sqs_endpoint_url

    endpoint = sqs_endpoint_url()
    assert endpoint is not None
    parsed = urlparse(endpoint)
    server = None
    if not _port_open(parsed.hostname or "127.0.0.1", parsed.port or 80):
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address=parsed.hostname, port=parsed.port, verbose=False)
        server.start()
    queues_ensure()
    yield endpoint
    if server is not None:
        server.stop()


@pytest.fixture
def sqs_queues(sqs_server: str) -> Iterator[dict[str, str]]:
    """Empty send, default and dead-letter queues for one test."""
    from onlyfans.broker import queues_ensure, sqs_client

    client = sqs_client()
    # Recreated rather than purged: SQS allows one purge a minute per queue.
    for url in queues_ensure(client).values():
        client.delete_queue(QueueUrl=url)
    yield queues_ensure(client)


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """The test Redis database, emptied before and after each test that asks for it."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    # Throttle counters and cached reads live in Redis; no test may see another's.
    yield
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture
def account():
    return CreatorAccountFactory()


@pytest.fixture
def other_account():
    return CreatorAccountFactory()


@pytest.fixture
def chatter(account):
    return MembershipFactory(account=account, role="chatter").user


@pytest.fixture
def owner(account):
    return MembershipFactory(account=account, role="owner").user


@pytest.fixture
def fan(account):
    return FanFactory(account=account)


@pytest.fixture
def other_fan(other_account):
    return FanFactory(account=other_account)


@pytest.fixture
def user_factory():
    return UserFactory


# --- sandbox platform (owned by the gateway) ---
# Defaults for tests: instant, never failing, limits out of the way. Tests turn knobs per case.
SANDBOX_TEST_DEFAULTS = {
    "latency_ms": 0.0,
    "fail_rate": 0.0,
    "timeout_rate": 0.0,
    "fail_next": 0,
    "rate_limit_per_minute": 100_000,
    "min_interval_ms": 0,
    "timeout_sleep_ms": 2_000,
}


class SandboxHelper:
    """What a test needs from the sandbox platform, over its control endpoints."""

    def __init__(self, url: str) -> None:
        import httpx

        self.url = url
        self._http = httpx.Client(base_url=url, timeout=15.0)

    def reset(self, **cfg: object) -> None:
        self._http.post("/_sandbox/reset", json={**SANDBOX_TEST_DEFAULTS, **cfg}).raise_for_status()

    def configure(self, **cfg: object) -> dict:
        response = self._http.post("/_sandbox/config", json=cfg)
        response.raise_for_status()
        assert not response.json()["unknown"], response.json()["unknown"]
        return response.json()["config"]

    def messages(self, account: str | None = None) -> list[dict]:
        params = {"account": account} if account else {}
        response = self._http.get("/_sandbox/messages", params=params)
        response.raise_for_status()
        return response.json()["data"]

    def stats(self) -> dict:
        response = self._http.get("/_sandbox/stats")
        response.raise_for_status()
        return response.json()

    def emit_webhooks(
        self,
        *,
        url: str,
        count: int = 1,
        account_id: str | None = None,
        events: list[dict] | None = None,
        secret: str | None = None,
        duplicate: bool = False,
        **extra: object,
    ) -> list[dict]:
        """Post ``count`` generated (or the given) events to ``url``; returns what was posted."""
        spec: dict[str, object] = {"url": url, "count": count, "duplicate": duplicate, **extra}
        if account_id:
            spec["account_id"] = account_id
        if events is not None:
            spec["events"] = events
        spec["secret"] = secret or settings.ONLYFANS_WEBHOOK_SECRET
        response = self._http.post("/_sandbox/webhooks/emit", json=spec)
        response.raise_for_status()
        return response.json()["data"]

    def close(self) -> None:
        self._http.close()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[str]:
    """The sandbox platform on the host and port of ONLYFANS_API_BASE_URL, for the session."""
    from onlyfans.sandbox.server import SandboxServer

    parsed = urlparse(settings.ONLYFANS_API_BASE_URL)
    host = parsed.hostname or "127.0.0.1"
    config = {
        "api_key": settings.ONLYFANS_API_KEY,
        "webhook_secret": settings.ONLYFANS_WEBHOOK_SECRET,
        **SANDBOX_TEST_DEFAULTS,
    }
    original_url = settings.ONLYFANS_API_BASE_URL
    try:
        server = SandboxServer(host, parsed.port or 80, **config)
    except OSError:
        # Another test session (a colleague's, an xdist worker) holds the port: take a free
        # one and point this session's gateway at it, so sessions never share sandbox state.
        server = SandboxServer(host, 0, **config)
        settings.ONLYFANS_API_BASE_URL = server.url
    server.start()
    yield server.url
    server.stop()
    settings.ONLYFANS_API_BASE_URL = original_url


@pytest.fixture
def sandbox(sandbox_server: str) -> Iterator[SandboxHelper]:
    """The sandbox, emptied and back to test defaults; configure it per test."""
    helper = SandboxHelper(sandbox_server)
    helper.reset()
    yield helper
    helper.close()
