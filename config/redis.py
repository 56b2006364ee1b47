"""One Redis connection pool per process for locks, the rate limiter and the dispatcher."""

from __future__ import annotations

import functools

import redis
from django.conf import settings


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=3, health_check_interval=30
    )


def redis_key_prefix() -> str:
    """The cache's key prefix, for keys written straight to Redis: each deployment, test run
    and bench keeps its own."""
    return str(settings.CACHES["default"].get("KEY_PREFIX", ""))
