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
    urls = queues_ensure(client)
    for url in urls.values():
        client.purge_queue(QueueUrl=url)
    yield urls


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
