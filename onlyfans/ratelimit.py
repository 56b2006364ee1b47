"""Per-account send rate limiter in Redis, shared by every worker process on every machine.

Two rules, checked and recorded atomically by one Lua script with Redis' own clock:
at most ``limit`` sends in any sliding window of 60 s (a log of send times in a sorted set),
and at least ``min_interval`` between two sends. The window and the interval are widened by a
small guard (``SEND_RATE_GUARD_MS``) so that jitter between taking a slot here and arriving at
the platform cannot show the platform ``limit+1`` sends in its own 60 s, or two sends too close.

Redis is a cache here; PostgreSQL is the source of truth. When an account's log is missing
(Redis restarted and lost its data, or the account was idle for a whole window) the acquire
refuses to grant on an empty log: the window is first rebuilt from the messages PostgreSQL says
went out in the last 60 s, then the acquire runs again. Sent messages count at their
``sent_at`` (after they reached the platform: later than their arrival, so conservative);
messages still ``sending`` count as sent now (their call may still be on its way). A log that
is missing while PostgreSQL shows sends in the window was lost (an idle account's log expires
only a window after its last send), and a slot granted just before the loss may not be in
PostgreSQL yet: the rebuilt window then also holds one send at the present moment. So a Redis
restart can never let an account exceed its limit or its interval.
Each refusal is also counted per account and minute for the CloudWatch publisher
(``onlyfans.cloudwatch``).
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from dataclasses import dataclass

import structlog
from django.conf import settings
from django.db import connection
from redis.commands.core import Script

from crm.models import Message
from onlyfans.redis_conn import redis_client

log = structlog.get_logger(__name__)

WINDOW_MS = 60_000
# Refusals per account and minute, read by the CloudWatch publisher (a hash per minute).
DEFERRALS_KEY_PREFIX = "cloudwatch:deferrals:"
DEFERRALS_TTL_SECONDS = 3600

# Returns {granted, wait_ms, now}; granted -1 means "the log is missing: rebuild it first".
_ACQUIRE = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local member = ARGV[4]
local rebuilt = ARGV[5] == '1'
local account = ARGV[6]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[9] ~= '' then
  redis.call('ZREM', key, ARGV[9])
end
if not rebuilt and redis.call('EXISTS', key) == 0 then
  return {-1, 0, now}
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local wait = 0
local count = redis.call('ZCARD', key)
if count >= limit then
  local freeing = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
  wait = math.max(wait, tonumber(freeing[2]) + window - now)
end
if count > 0 then
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  wait = math.max(wait, tonumber(last[2]) + interval - now)
end
if wait > 0 then
  local deferrals = ARGV[7] .. math.floor(now / 60000)
  redis.call('HINCRBY', deferrals, account, 1)
  redis.call('EXPIRE', deferrals, tonumber(ARGV[8]))
  return {0, wait, now}
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, window + interval + 1000)
return {1, 0, now}
"""

_SNAPSHOT = """
local key = KEYS[1]
local window = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local entries = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
local scores = {}
for i = 2, #entries, 2 do scores[#scores + 1] = entries[i] end
return {now, scores}
"""


@dataclass(frozen=True)
class RateLimit:
    per_minute: int
    min_interval_ms: int

    @property
    def window_ms(self) -> int:
        return WINDOW_MS + settings.SEND_RATE_GUARD_MS

    @property
    def spacing_ms(self) -> int:
        """The minimum interval as enforced: with the guard, unless no interval is asked."""
        return self.min_interval_ms + settings.SEND_RATE_GUARD_MS if self.min_interval_ms else 0


@dataclass(frozen=True)
class Acquired:
    granted: bool
    wait_seconds: float
    member: str = ""  # the slot's entry in the log, for rate_limit_retake


@dataclass(frozen=True)
class LimiterState:
    used_in_window: int
    tokens_left: int
    next_free_in_seconds: float


# Rebuilt entries are members "db:<kind>:<id>", so two workers rebuilding at once add each
# send once; entries older than the window are trimmed by the next acquire.
_REBUILD = """
local key = KEYS[1]
local ttl = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] == '1' then
  redis.call('ZADD', key, now, 'rebuilt:now:' .. now)
end
for i = 3, #ARGV, 2 do
  local score = tonumber(ARGV[i])
  if score < 0 then score = now end
  redis.call('ZADD', key, 'NX', score, ARGV[i + 1])
end
if redis.call('EXISTS', key) == 1 then
  redis.call('PEXPIRE', key, ttl)
end
return #ARGV / 2 - 1
"""


@functools.cache
def _scripts() -> tuple[Script, Script, Script]:
    client = redis_client()
    return (
        client.register_script(_ACQUIRE),
        client.register_script(_SNAPSHOT),
        client.register_script(_REBUILD),
    )


def _key(account_id: int) -> str:
    return f"ratelimit:send:{account_id}"


def rate_limit_acquire(*, account_id: int, limit: RateLimit, _stale: str = "") -> Acquired:
    """Take one send slot for the account now, or say how long until one is free.

    A missing log is rebuilt from PostgreSQL first (one query), then the slot is taken.
    """
    script = _scripts()[0]
    member = uuid.uuid4().hex
    # Retaking a stale slot: removed in the same script, and never a rebuild (the log was
    # there a moment ago; a rebuild would count the message being retaken as sending).
    rebuilt = bool(_stale)
    while True:
        granted, wait_ms, _now = script(
            keys=[_key(account_id)],
            args=[
                limit.window_ms,
                limit.per_minute,
                limit.spacing_ms,
                member,
                int(rebuilt),
                account_id,
                DEFERRALS_KEY_PREFIX,
                DEFERRALS_TTL_SECONDS,
                _stale,
            ],
        )
        if int(granted) != -1:
            return Acquired(
                granted=bool(granted),
                wait_seconds=max(0.0, int(wait_ms) / 1000),
                member=member if granted else "",
            )
        rate_limit_rebuild(account_id=account_id, limit=limit)
        rebuilt = True


def rate_limit_retake(*, account_id: int, limit: RateLimit, stale: Acquired) -> Acquired:
    """Give back a slot taken too long ago to be used now, and take one now if it is free.

    A send must reach the platform right after its slot (within the guard): one delayed
    between the two (a slow or restarting database) would land among the sends of later slots.
    The stale slot is removed, so it costs nothing; the new one is checked against everything
    taken since.
    """
    return rate_limit_acquire(account_id=account_id, limit=limit, _stale=stale.member or "-")


_M = Message._meta.db_table
# The account's sends of the last window as PostgreSQL knows them: messages sent (at sent_at,
# a little after their slot: conservative), messages being sent (their slot was taken when
# they became "sending", updated_at), and campaign mass-message calls (one slot each).
_RECENT_SENDS_SQL = f"""
SELECT 'm' || id, (extract(epoch FROM sent_at) * 1000)::bigint FROM {_M}
  WHERE account_id = %(account)s AND direction = 'out' AND status = 'sent'
    AND sent_at >= %(since)s
UNION ALL
SELECT 'm' || id, -1 FROM {_M}
  WHERE account_id = %(account)s AND status = 'sending' AND updated_at >= %(since)s
UNION ALL
SELECT 'c' || c.id, (extract(epoch FROM c.sent_at) * 1000)::bigint
  FROM campaigns_masschunk c JOIN campaigns_campaign k ON k.id = c.campaign_id
  WHERE k.account_id = %(account)s AND c.sent_at >= %(since)s
"""  # noqa: S608 (table names only)


def rate_limit_rebuild(*, account_id: int, limit: RateLimit) -> int:
    """Fill the account's missing log from the sends PostgreSQL recorded in the last window
    (``sending`` ones at the present moment: -1 in the script's arguments), plus one send now
    when there were any (the log was lost, not expired). Returns how many sends PostgreSQL
    knew of.

    The database is the source of truth: after Redis lost its data no account may exceed its
    limit, so the acquire waits for this before granting.
    """
    from datetime import UTC, datetime, timedelta

    since = datetime.fromtimestamp(time.time(), tz=UTC) - timedelta(
        milliseconds=limit.window_ms + 1000
    )
    with connection.cursor() as cursor:
        cursor.execute(_RECENT_SENDS_SQL, {"account": account_id, "since": since})
        rows = cursor.fetchall()
    if not rows:
        return 0  # idle: nothing sent in the window, nothing in flight
    args: list[int | str] = [limit.window_ms + limit.spacing_ms + 1000, 1]
    for member, score in rows:
        args.extend([int(score), f"db:{member}"])
    _scripts()[2](keys=[_key(account_id)], args=args)
    log.info("ratelimit.rebuilt", account_id=account_id, sends=len(rows))
    return len(rows)


def rate_limit_deferrals(*, minute: int) -> dict[int, int]:
    """Refusals per account in one minute (``minute`` = epoch seconds // 60)."""
    counts = redis_client().hgetall(f"{DEFERRALS_KEY_PREFIX}{minute}")
    return {int(account): int(n) for account, n in counts.items()}


def _snapshot(account_id: int, limit: RateLimit) -> tuple[int, list[int]]:
    script = _scripts()[1]
    now, scores = script(keys=[_key(account_id)], args=[limit.window_ms])
    return int(now), [int(float(s)) for s in scores]


def rate_limit_forecast(*, account_id: int, limit: RateLimit, count: int) -> list[float]:
    """Seconds from now of the next ``count`` free slots, if nothing else takes them.

    Used to publish each task with the delay it will need anyway, so workers do not spin on
    messages that cannot go yet. A forecast send is expected to happen ``lag`` after its slot
    (the schedule's slack plus the pipeline's own latency), and the next slots follow from
    that expected time, as the limiter will see it; without this each message of a burst
    arrived a little before its slot and went round the broker again. Past two windows' worth
    of slots the pattern repeats, so it extrapolates at the steady rate (an estimate for the
    10,000th message of a backlog costs no more than one for the 20th).
    """
    if count <= 0:
        return []
    now, sends = _snapshot(account_id, limit)
    window, per_window, interval = limit.window_ms, limit.per_minute, limit.spacing_ms
    lag = settings.SEND_SCHEDULE_SLACK_MS + settings.SEND_PIPELINE_LAG_MS
    simulated = min(count, 2 * per_window + 2, 1000)
    slots: list[int] = []
    times = list(sends)
    t = now
    for _ in range(simulated):
        if times:
            t = max(t, times[-1] + interval)
        if len(times) >= per_window:
            t = max(t, times[-per_window] + window)
        times.append(t + lag)
        slots.append(t)
    step = max((window + lag) / per_window, interval + lag if interval else 0)
    result = [(s - now) / 1000 for s in slots]
    last = result[-1]
    result.extend(last + (i + 1) * step / 1000 for i in range(count - simulated))
    return result


def rate_limit_state(*, account_id: int, limit: RateLimit) -> LimiterState:
    now, sends = _snapshot(account_id, limit)
    used = len(sends)
    next_free = 0.0
    if used >= limit.per_minute:
        next_free = max(next_free, sends[used - limit.per_minute] + limit.window_ms - now)
    if sends:
        next_free = max(next_free, sends[-1] + limit.spacing_ms - now)
    return LimiterState(
        used_in_window=used,
        tokens_left=max(0, limit.per_minute - used),
        next_free_in_seconds=math.ceil(max(0.0, next_free)) / 1000,
    )
