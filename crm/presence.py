"""Who listens to an account's live events now: one cheap check before an event is rendered.

Each open socket (``crm.consumers``) is a member of a Redis sorted set per account and kind,
scored by when its claim runs out: set on connect, refreshed every ``WATCH_REFRESH_SECONDS``
while the socket is open, removed on disconnect. A process that dies without disconnecting
leaves members that simply expire (``WATCH_TTL_SECONDS``), and the set itself expires with its
last claim, so an account is never "watched" for ever. Two kinds: ``inbox`` sockets want the
rendered HTML, ``events`` sockets (the JSON API socket) only the payload.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from redis.exceptions import RedisError

from config.redis import redis_client, redis_key_prefix

log = structlog.get_logger(__name__)

WATCH_TTL_SECONDS = 90
WATCH_REFRESH_SECONDS = 30.0
INBOX = "inbox"
EVENTS = "events"
KINDS = (INBOX, EVENTS)


@dataclass(frozen=True)
class Listeners:
    inbox: bool
    events: bool

    @property
    def any(self) -> bool:
        return self.inbox or self.events


NOBODY = Listeners(inbox=False, events=False)


def _key(account_id: int, kind: str) -> str:
    return f"{redis_key_prefix()}:live:watchers:{account_id}:{kind}"


def account_watch(*, account_id: int, kind: str, connection: str) -> None:
    """Claim (or renew) that ``connection`` listens to the account for the next
    ``WATCH_TTL_SECONDS``; stale claims of crashed processes are dropped on the way."""
    now = time.time()
    key = _key(account_id, kind)
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.zremrangebyscore(key, "-inf", now)
        pipe.zadd(key, {connection: now + WATCH_TTL_SECONDS})
        pipe.expire(key, WATCH_TTL_SECONDS)
        pipe.execute()
    except RedisError as exc:
        # Live events are a courtesy: the page still works and catches up on its next load.
        log.warning("presence.watch_failed", account_id=account_id, error=type(exc).__name__)


def account_unwatch(*, account_id: int, kind: str, connection: str) -> None:
    try:
        redis_client().zrem(_key(account_id, kind), connection)
    except RedisError as exc:
        log.warning("presence.unwatch_failed", account_id=account_id, error=type(exc).__name__)


def account_listeners(*, account_id: int) -> Listeners:
    """Which kinds of socket listen to the account now (one Redis round trip)."""
    now = time.time()
    try:
        pipe = redis_client().pipeline(transaction=False)
        for kind in KINDS:
            pipe.zcount(_key(account_id, kind), now, "+inf")
        inbox, events = pipe.execute()
    except RedisError:
        return NOBODY  # nobody can be told anyway while Redis is away
    return Listeners(inbox=bool(inbox), events=bool(events))


def account_watched(*, account_id: int) -> bool:
    """Whether any socket listens to the account's live events now."""
    return account_listeners(account_id=account_id).any
