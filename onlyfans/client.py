"""One reusable SDK client per process, built from settings.

The official SDK (``onlyfansapi.OnlyFansAPI``) sits on an ``httpx.Client``, which is
thread-safe and keeps a keep-alive connection pool, so one instance serves every thread of a
process. A forked worker (Celery prefork) must not share its parent's sockets: the cache is
keyed by pid. Settings are part of the key too, so ``override_settings`` in tests just works.
Retries are off (``max_retries=0``): the send pipeline owns retries and their idempotency keys.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import httpcore
import httpx
import onlyfansapi
from django.conf import settings
from onlyfansapi._types import Omit

# Enough keep-alive connections for every worker thread sending at once.
POOL_LIMITS = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=60)

_lock = threading.Lock()
_clients: dict[tuple[int, str, str, float], onlyfansapi.OnlyFansAPI] = {}


def api_base_url() -> str:
    """The gateway's origin: the SDK adds ``/api/...`` itself, so a trailing ``/api`` goes."""
    base = settings.ONLYFANS_API_BASE_URL.rstrip("/")
    return base.removesuffix("/api")


def _client_key() -> tuple[int, str, str, float]:
    return (
        os.getpid(),
        api_base_url(),
        settings.ONLYFANS_API_KEY,
        float(settings.ONLYFANS_API_TIMEOUT_SECONDS),
    )


def api_client() -> onlyfansapi.OnlyFansAPI:
    """The process's SDK client for the configured gateway (built on first use)."""
    key = _client_key()
    client = _clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _clients.get(key)
        if client is None:
            _, base_url, api_key, timeout_seconds = key
            timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 5.0))
            client = onlyfansapi.OnlyFansAPI(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=0,
                http_client=httpx.Client(
                    timeout=timeout, limits=POOL_LIMITS, follow_redirects=False
                ),
            )
            _clients[key] = client
    return client


_files_clients: dict[tuple[int, float], httpx.Client] = {}


def files_client() -> httpx.Client:
    """The process's plain HTTP client for the platform's file URLs (its CDN): no API key
    goes there, and redirects are followed (a CDN may redirect to a nearer host)."""
    key = (os.getpid(), float(settings.ONLYFANS_API_TIMEOUT_SECONDS))
    client = _files_clients.get(key)
    if client is not None:
        return client
    with _lock:
        client = _files_clients.get(key)
        if client is None:
            timeout = httpx.Timeout(key[1], connect=min(key[1], 5.0))
            client = httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=3)
            _files_clients[key] = client
    return client


@dataclass(frozen=True)
class SendChannel:
    """The send call's own way to the gateway: an ``httpcore`` pool (thread-safe, keep-alive,
    like the SDK's) and the SDK's own headers, so one send costs the HTTP exchange and not the
    SDK's request building and httpx's models around it (about 0.5 ms of CPU a send,
    bench/deliver_cpu_bench.py). What goes over the wire is the SDK's request."""

    pool: httpcore.ConnectionPool
    origin: str
    headers: tuple[tuple[bytes, bytes], ...]
    timeouts: dict[str, float]


_send_channels: dict[tuple[int, str, str, float], SendChannel] = {}


def send_channel() -> SendChannel:
    """The process's ``SendChannel`` for the configured gateway (built on first use)."""
    key = _client_key()
    channel = _send_channels.get(key)
    if channel is not None:
        return channel
    sdk = api_client()
    with _lock:
        channel = _send_channels.get(key)
        if channel is None:
            _, base_url, api_key, timeout_seconds = key
            origin = httpx.URL(base_url)
            headers = [
                (b"Host", origin.netloc),
                (b"Authorization", f"Bearer {api_key}".encode("ascii")),
            ]
            headers += [
                (name.encode("ascii"), value.encode("ascii"))
                for name, value in sdk.default_headers.items()
                if not isinstance(value, Omit)
            ]
            headers.append((b"X-Stainless-Retry-Count", b"0"))
            channel = SendChannel(
                pool=httpcore.ConnectionPool(
                    max_connections=POOL_LIMITS.max_connections,
                    max_keepalive_connections=POOL_LIMITS.max_keepalive_connections,
                    keepalive_expiry=POOL_LIMITS.keepalive_expiry,
                ),
                origin=str(origin).rstrip("/"),
                headers=tuple(headers),
                timeouts={
                    "connect": min(timeout_seconds, 5.0),
                    "read": timeout_seconds,
                    "write": timeout_seconds,
                    "pool": timeout_seconds,
                },
            )
            _send_channels[key] = channel
    return channel
