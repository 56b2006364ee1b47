"""Per-account send rate limiter in Redis, shared by every worker process on every machine.

Two rules, checked and recorded atomically by one Lua script with Redis' own clock:
at most ``limit`` sends in any sliding window of 60 s (a log of send times in a sorted set),
and at least ``min_interval`` between two sends. The platform judges both by when a request
*arrives*, which is some time after its slot; the limiter makes that delay harmless:

- the window and the interval are widened by a guard ``G`` (``SEND_RATE_GUARD_MS``);
- a slot taken with ``hold=True`` (the send pipeline) stays *held* until its caller says the
  call was answered (``rate_limit_release``). While any held slot of the account is older than
  ``G``, no new slot is granted (the fence), and on release a slot older than ``G`` is moved
  to ``answer - G`` in the log (its request arrived before its answer came back);
- the caller confirms just before the call that its slot is still held
  (``rate_limit_confirm``: not lost with Redis, not past its lease), or gives it back and
  takes a new one (``rate_limit_retake``).

So for two sends j, n of an account, n's slot comes at least ``interval + G`` after j's entry,
and j's request arrived at most ``G`` after its entry: either it was answered within ``G`` of its
slot, or n waited for its answer and j's entry moved to ``answer - G``. Hence their arrivals are
at least ``interval`` apart, and no 60 s of arrivals holds more than ``limit`` (the same argument
over the 60 s + ``G`` window), *whatever* the delay between a slot and its arrival (CPU
starvation, a slow database, a slow network), as long as a request arrives before its answer
and a call that is never answered (its worker died) arrives, if ever, within the lease
(``lease_ms``: ``SEND_SLOT_MAX_AGE_MS`` to start the call plus twice the gateway's timeout).
The cost: ``G`` on the window and the interval (0.3 % of a minute at 200 ms), two more Redis
round trips per send (the release also frees the send's message lock, ``MessageLock``, which
the acquire took: the lock costs none of its own), and an account waits for an answer that
comes later than ``G`` after its slot before its next one. Releasing later than the answer
(the pipeline releases after it recorded the status) only holds the next slot back longer.

Redis is a cache here; PostgreSQL is the source of truth. When an account's log is missing
(Redis restarted and lost its data, or the account was idle for a whole window) the acquire
refuses to grant on an empty log: the window is first rebuilt from the messages PostgreSQL says
went out in the last 60 s, then the acquire runs again. Sent messages count at their
``sent_at`` (after they reached the platform: later than their arrival, so conservative);
messages still ``sending`` count as sent now and are held (their call may still be on its way;
their caller releases them, or the lease ends). A log that is missing while PostgreSQL shows
sends in the window was lost (an idle account's log expires only a window after its last send),
and a slot granted just before the loss may not be in PostgreSQL yet: the rebuilt window then
also holds one send at the present moment. So a Redis restart can never let an account exceed
its limit or its interval.
Each refusal is also counted per account and minute for the CloudWatch publisher
(``onlyfans.cloudwatch``).

Replies first: a one-to-one message (``Precedence.REPLY``) on its way to a slot is expected in
a sorted set of the account (``rate_limit_replies_expect``, by the dispatcher, at the slot it
was forecast; again at each refusal, at the slot it was told). A campaign or automation send
(``Precedence.YIELD``) that would take a slot is refused while a reply is expected before the
slot after it, and told to come back then: the reply takes the next slot whichever task wakes
first, so a reply queued while the campaign lane drains waits at most the send already under
way. And for two windows after a reply's slot the lane leaves the window's last place free
(it takes at most ``limit - 1`` of any window): at saturation the window's next exit can be
several seconds away (a gap in the sends of a minute ago repeats), and the next reply would
wait for it; it finds the place after the interval instead. A reply's expectation ends when it
is granted, when its delivery finds nothing to send, or ``REPLY_PRECEDENCE_MS`` after its slot
(a lost task holds the lane back no longer than that). Only the choice between sends changes;
the window, the interval and the fence hold for all.
"""

from __future__ import annotations

import functools
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import structlog
from django.conf import settings
from django.db import connection
from redis.commands.core import Script
from redis.exceptions import RedisError

from config.redis import redis_client
from crm.models import Message
from onlyfans import metrics

log = structlog.get_logger(__name__)

WINDOW_MS = 60_000
# Refusals per account and minute, read by the CloudWatch publisher (a hash per minute).
DEFERRALS_KEY_PREFIX = "cloudwatch:deferrals:"
DEFERRALS_TTL_SECONDS = 3600
# How long after its slot a reply that has not asked for it still keeps campaign sends back.
REPLY_PRECEDENCE_MS = 10_000


class Precedence(StrEnum):
    """Which sends give way to which when both want an account's next slot."""

    NONE = ""  # neither (the limiter's callers outside the send pipeline)
    REPLY = "reply"  # a one-to-one message: expected, and the campaign lane gives way to it
    YIELD = "yield"  # a campaign or automation send: gives way to an expected reply


# Returns {granted, wait_ms, now}; granted -1 means "the log is missing: rebuild it first",
# -2 "the message's lock is another delivery's" (KEYS[5], when given: a granted slot takes
# the lock, token ARGV[18], for ARGV[19] ms; a refusal leaves it as it was).
# KEYS: the log, the held slots, the expected replies, the "replied lately" flag. ARGV[9],
# ARGV[10]: a stale slot being given back and the member a rebuild gives its message ('' for
# none); the fence ignores the latter's hold. ARGV[15]-[17]: the precedence ('', 'reply',
# 'yield'), the reply's member, how long past its slot a reply stays expected. A refusal's
# 4th and 5th: fenced, yielded.
_ACQUIRE = """
local key = KEYS[1]
local held = KEYS[2]
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local member = ARGV[4]
local rebuilt = ARGV[5] == '1'
local account = ARGV[6]
local own = ARGV[10]
local guard = tonumber(ARGV[11])
local lease = tonumber(ARGV[12])
local fence_wait = tonumber(ARGV[13])
local hold = ARGV[14] == '1'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The message's lock (KEYS[5], token ARGV[18]): held by another delivery, nothing is asked.
local lock = KEYS[5]
if lock then
  local holder = redis.call('GET', lock)
  if holder and holder ~= ARGV[18] then
    return {-2, 0, now}
  end
end
if ARGV[9] ~= '' then
  redis.call('ZREM', key, ARGV[9])
  redis.call('ZREM', held, ARGV[9])
end
if not rebuilt and redis.call('EXISTS', key) == 0 then
  return {-1, 0, now}
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', held, '-inf', now - lease)
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
-- The fence: a call still unanswered more than the guard after its slot may arrive at any
-- moment until it is answered; the next slot waits for that answer.
local fenced = 0
local overdue = redis.call('ZRANGEBYSCORE', held, '-inf', now - guard, 'LIMIT', 0, 2)
for _, m in ipairs(overdue) do
  if m ~= own and fence_wait > wait then
    wait = fence_wait
    fenced = 1
  end
end
-- Replies first: a campaign lane send that the window and the interval would let go now is
-- refused while a reply is expected before the slot after it, and comes back at that slot.
local replies = KEYS[3]
local precedence = ARGV[15]
local reply_hold = tonumber(ARGV[17])
local yielded = 0
if precedence == 'yield' and wait == 0 then
  redis.call('ZREMRANGEBYSCORE', replies, '-inf', now - reply_hold)
  local after = now + interval
  if count + 1 >= limit then
    local first = now
    if count + 1 - limit < count then
      first = tonumber(redis.call('ZRANGE', key, count + 1 - limit, count + 1 - limit,
        'WITHSCORES')[2])
    end
    after = math.max(after, first + window)
  end
  if after > now and #redis.call('ZRANGEBYSCORE', replies, '-inf', '(' .. after,
      'LIMIT', 0, 1) > 0 then
    wait = after - now
    yielded = 1
  elseif limit > 1 and count + 1 >= limit and redis.call('EXISTS', KEYS[4]) == 1 then
    -- Replies were sent lately: the lane leaves the window's last place to them, so the
    -- next reply finds one after the interval, not after the window's next exit.
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(1, tonumber(oldest[2]) + window - now)
    yielded = 1
  end
end
if wait > 0 then
  if precedence == 'reply' then
    redis.call('ZADD', replies, now + wait, ARGV[16])
    if redis.call('PTTL', replies) < wait + reply_hold then
      redis.call('PEXPIRE', replies, wait + reply_hold)
    end
  end
  local deferrals = ARGV[7] .. math.floor(now / 60000)
  redis.call('HINCRBY', deferrals, account, 1)
  redis.call('EXPIRE', deferrals, tonumber(ARGV[8]))
  return {0, wait, now, fenced, yielded}
end
redis.call('ZADD', key, now, member)
redis.call('PEXPIRE', key, window + interval + 1000)
if hold then
  redis.call('ZADD', held, now, member)
  redis.call('PEXPIRE', held, lease)
end
if precedence == 'reply' then
  redis.call('ZREM', replies, ARGV[16])
  redis.call('SET', KEYS[4], 1, 'PX', 2 * window)
end
if lock then
  redis.call('SET', lock, ARGV[18], 'PX', tonumber(ARGV[19]))
end
return {1, 0, now}
"""

# The dispatcher published these replies to take their slots in ARGV[2i+1] ms from now
# (members ARGV[2i]); ARGV[1]: how long past its slot a reply stays expected.
_EXPECT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hold = tonumber(ARGV[1])
local latest = 0
for i = 2, #ARGV, 2 do
  local due = now + tonumber(ARGV[i + 1])
  redis.call('ZADD', KEYS[1], due, ARGV[i])
  latest = math.max(latest, due)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - hold)
if latest > 0 and redis.call('PTTL', KEYS[1]) < latest + hold - now then
  redis.call('PEXPIRE', KEYS[1], latest + hold - now)
end
return 1
"""

# 1 when the slot is still held (not lost with Redis, not past its lease) and in the log.
_CONFIRM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
if redis.call('ZSCORE', KEYS[2], ARGV[1]) and redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 1
end
return 0
"""

# The call of these members (ARGV[4]...) was answered now: no longer held, and an entry older
# than the guard moves to now - guard (its request arrived before the answer). Returns how
# many moved (-1 - moved when the lock given in KEYS[3] was not the caller's any more).
_RELEASE = """
local key = KEYS[1]
local held = KEYS[2]
local guard = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local moved = 0
for i = 4, #ARGV do
  redis.call('ZREM', held, ARGV[i])
  local score = redis.call('ZSCORE', key, ARGV[i])
  if score and tonumber(score) < now - guard then
    redis.call('ZADD', key, now - guard, ARGV[i])
    moved = moved + 1
  end
end
if moved > 0 then
  redis.call('PEXPIRE', key, tonumber(ARGV[2]))
end
-- The message's lock (KEYS[3], token ARGV[3]) goes with its slot; -1: it was not ours any more.
if KEYS[3] then
  if redis.call('GET', KEYS[3]) == ARGV[3] then
    redis.call('DEL', KEYS[3])
  else
    return -1 - moved
  end
end
return moved
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

    @property
    def lease_ms(self) -> int:
        """How long a held slot can hold back the account's next one: its call starts within
        ``SEND_SLOT_MAX_AGE_MS`` of the slot (``rate_limit_slot_usable``), then the gateway's
        timeouts (connecting, then writing the request) bound when the request can arrive."""
        return settings.SEND_SLOT_MAX_AGE_MS + round(2000 * settings.ONLYFANS_API_TIMEOUT_SECONDS)


@dataclass(frozen=True)
class Acquired:
    granted: bool
    wait_seconds: float
    member: str = ""  # the slot's entry in the log, for rate_limit_retake
    # time.monotonic() just before the slot was asked for: the slot is younger than this.
    asked_at: float = 0.0
    # Refused because an earlier call is unanswered (the fence): ``wait_seconds`` is then a
    # guess, not when the window and the interval free the next slot.
    fenced: bool = False
    # Refused to give way to a reply expected before the slot after this one (Precedence).
    yielded: bool = False
    # Nothing asked: the message's lock (``MessageLock``) is another delivery's.
    busy: bool = False


@dataclass(frozen=True)
class MessageLock:
    """A send's lock on its message (``send:lock:<id>``): taken by the acquire script with the
    slot it grants (``Acquired.busy`` when another delivery holds it), released by the
    release script with the slot, so the lock costs no round trip of its own."""

    key: str
    token: str
    ttl_ms: int


@dataclass(frozen=True)
class LimiterState:
    used_in_window: int
    tokens_left: int
    next_free_in_seconds: float


# Rebuilt entries are members "db:<kind>:<id>"; entries older than the window are trimmed by
# the next acquire. A score of -1 is a message still sending: counted now, and held (its call
# may still be on its way). A log that exists by now was rebuilt or granted from by another
# worker since this one found it missing, and already holds everything: adding PostgreSQL's
# view again would count that worker's send twice (its slot, and its message as sending) and
# add another "lost" send now, so an idle account's first sends by two workers at once left
# the window short of real sends.
_REBUILD = """
local key = KEYS[1]
local held = KEYS[2]
local ttl = tonumber(ARGV[1])
local lease = tonumber(ARGV[3])
if redis.call('EXISTS', key) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[2] == '1' then
  redis.call('ZADD', key, now, 'rebuilt:now:' .. now)
end
for i = 4, #ARGV, 2 do
  local score = tonumber(ARGV[i])
  if score < 0 then
    score = now
    redis.call('ZADD', held, 'NX', now, ARGV[i + 1])
    redis.call('PEXPIRE', held, lease)
  end
  redis.call('ZADD', key, 'NX', score, ARGV[i + 1])
end
if redis.call('EXISTS', key) == 1 then
  redis.call('PEXPIRE', key, ttl)
end
return (#ARGV - 3) / 2
"""


@functools.cache
def _scripts() -> tuple[Script, Script, Script, Script, Script, Script]:
    client = redis_client()
    return (
        client.register_script(_ACQUIRE),
        client.register_script(_SNAPSHOT),
        client.register_script(_REBUILD),
        client.register_script(_CONFIRM),
        client.register_script(_RELEASE),
        client.register_script(_EXPECT),
    )


def _key(account_id: int) -> str:
    return f"ratelimit:send:{account_id}"


def _held_key(account_id: int) -> str:
    return f"ratelimit:held:{account_id}"


def _replies_key(account_id: int) -> str:
    return f"ratelimit:replies:{account_id}"


def _replied_key(account_id: int) -> str:
    """Set for two windows after each reply's slot: the lane keeps a place for the next."""
    return f"ratelimit:replied:{account_id}"


def _reply_member(message_id: int | None) -> str:
    return str(message_id) if message_id is not None else ""


def rate_limit_replies_expect(*, account_id: int, due: Iterable[tuple[int, float]]) -> None:
    """These one-to-one messages (id, seconds from now) were published to take the account's
    slots at those times: until they are granted, campaign lane sends give way to them."""
    args: list[int | str] = [REPLY_PRECEDENCE_MS]
    for message_id, seconds in due:
        args.extend([_reply_member(message_id), max(0, round(seconds * 1000))])
    if len(args) > 1:
        _scripts()[5](keys=[_replies_key(account_id)], args=args)


def rate_limit_replies_forget(*, account_id: int, message_ids: Iterable[int]) -> None:
    """These replies will not ask for a slot (withdrawn, sent already, their account paused,
    their task never published)."""
    members = [_reply_member(m) for m in message_ids]
    if members:
        redis_client().zrem(_replies_key(account_id), *members)


def _rebuilt_member(message_id: int | None) -> str:
    """The member a rebuild gives a message's send (see _RECENT_SENDS_SQL)."""
    return f"db:m{message_id}" if message_id is not None else ""


def rate_limit_acquire(
    *,
    account_id: int,
    limit: RateLimit,
    hold: bool = False,
    message_id: int | None = None,
    precedence: Precedence = Precedence.NONE,
    lock: MessageLock | None = None,
) -> Acquired:
    """Take one send slot for the account now, or say how long until one is free.

    A missing log is rebuilt from PostgreSQL first (one query), then the slot is taken.
    ``hold=True``: the slot holds back the account's next one while its call is unanswered
    more than the guard after it, until ``rate_limit_release`` (or its lease ends); the caller
    confirms it with ``rate_limit_slot_usable`` right before the call. ``message_id``: the
    message the slot is for (its own rebuilt entry does not hold it back). ``precedence``:
    a reply's (``REPLY``, with ``message_id``) stays expected while refused and ends when
    granted; a campaign lane send (``YIELD``) gives way to a reply expected before the slot
    after the one it would take (``Acquired.yielded``). ``lock``: the message's lock, taken
    with a granted slot in the same script (``Acquired.busy``, nothing else done, when another
    delivery holds it); released with the slot (``rate_limit_release``).
    """
    return _acquire(
        account_id=account_id,
        limit=limit,
        hold=hold,
        message_id=message_id,
        precedence=precedence,
        lock=lock,
    )


def _acquire(
    *,
    account_id: int,
    limit: RateLimit,
    hold: bool,
    message_id: int | None,
    stale: str = "",
    precedence: Precedence = Precedence.NONE,
    lock: MessageLock | None = None,
) -> Acquired:
    script = _scripts()[0]
    keys = [
        _key(account_id),
        _held_key(account_id),
        _replies_key(account_id),
        _replied_key(account_id),
    ]
    lock_args: list[str | int] = []
    if lock is not None:
        keys.append(lock.key)
        lock_args = [lock.token, lock.ttl_ms]
    member = uuid.uuid4().hex
    own = _rebuilt_member(message_id)
    guard = settings.SEND_RATE_GUARD_MS
    # When the fence holds a slot back, its answer comes at the earliest now and the next
    # slot then waits the interval anyway: come back after that long.
    fence_wait = max(guard, limit.spacing_ms - guard)
    rebuilt = False
    while True:
        asked_at = time.monotonic()
        granted, wait_ms, _now, *refusal = script(
            keys=keys,
            args=[
                limit.window_ms,
                limit.per_minute,
                limit.spacing_ms,
                member,
                int(rebuilt),
                account_id,
                DEFERRALS_KEY_PREFIX,
                DEFERRALS_TTL_SECONDS,
                stale,
                own,
                guard,
                limit.lease_ms,
                fence_wait,
                int(hold),
                precedence.value,
                _reply_member(message_id),
                REPLY_PRECEDENCE_MS,
                *lock_args,
            ],
        )
        if int(granted) == -2:
            return Acquired(granted=False, wait_seconds=0.0, asked_at=asked_at, busy=True)
        if int(granted) != -1:
            return Acquired(
                granted=bool(granted),
                wait_seconds=max(0.0, int(wait_ms) / 1000),
                member=member if granted else "",
                asked_at=asked_at,
                fenced=bool(refusal and int(refusal[0])),
                yielded=len(refusal) > 1 and bool(int(refusal[1])),
            )
        # A stale slot's own message is sending (its caller marked it) but its call was not
        # made: the rebuild must not count it.
        rate_limit_rebuild(
            account_id=account_id, limit=limit, exclude_message_id=message_id if stale else None
        )
        rebuilt = True


def rate_limit_retake(
    *,
    account_id: int,
    limit: RateLimit,
    stale: Acquired,
    message_id: int | None = None,
    precedence: Precedence = Precedence.NONE,
    lock: MessageLock | None = None,
) -> Acquired:
    """Give back a slot that can no longer be used (``rate_limit_slot_usable`` said no), and
    take one now if it is free (held, like the pipeline's slots).

    The stale slot is removed from the log and from the held slots in the same script, so it
    costs nothing; the new one is checked against everything taken since. If Redis lost the
    account's log meanwhile, the log is rebuilt first, without the message being retaken
    (``message_id``: its call was not made). ``precedence`` as for ``rate_limit_acquire``.
    """
    return _acquire(
        account_id=account_id,
        limit=limit,
        hold=True,
        message_id=message_id,
        stale=stale.member or "-",
        precedence=precedence,
        lock=lock,
    )


def rate_limit_slot_usable(*, account_id: int, limit: RateLimit, slot: Acquired) -> bool:
    """Whether a call may start now on this slot: it was taken at most
    ``SEND_SLOT_MAX_AGE_MS`` ago (so the call ends within its lease), and it is still held
    and in the log (Redis did not lose it, and its lease did not end). Call it right before
    the call, after everything else (the database's status claim) is done."""
    held = _scripts()[3](
        keys=[_key(account_id), _held_key(account_id)], args=[slot.member, limit.lease_ms]
    )
    age_ms = (time.monotonic() - slot.asked_at) * 1000
    return bool(held) and age_ms <= settings.SEND_SLOT_MAX_AGE_MS


def rate_limit_release(
    *,
    account_id: int,
    limit: RateLimit,
    slot: Acquired,
    message_id: int | None = None,
    lock: MessageLock | None = None,
) -> bool:
    """The slot's call was answered (or never made): it no longer holds the account back, and
    if the answer came later than the guard after the slot, the slot moves to ``now - guard``
    in the log, so later slots keep their distance from the moment its request may have
    arrived. Returns whether it moved (the call overran the guard).

    Never raises: if Redis does not answer, the slot stays held until its lease ends, which
    only delays the account's next send (and ``lock``, the message's lock released in the same
    script, is held until its TTL ends).
    """
    members = [slot.member]
    if message_id is not None:
        members.append(_rebuilt_member(message_id))  # held by a rebuild while it was sending
    keys = [_key(account_id), _held_key(account_id)]
    if lock is not None:
        keys.append(lock.key)
    try:
        moved = int(
            _scripts()[4](
                keys=keys,
                args=[
                    settings.SEND_RATE_GUARD_MS,
                    limit.window_ms + limit.spacing_ms + 1000,
                    lock.token if lock is not None else "",
                    *members,
                ],
            )
        )
    except RedisError:
        log.warning("ratelimit.release_failed", account_id=account_id, exc_info=True)
        return False
    if moved < 0:
        log.warning("send.lock_expired", message_id=message_id)
        moved = -1 - moved
    return bool(moved)


@dataclass
class HeldSlot:
    """A held slot (``rate_limit_acquire(hold=True)``) of one send or mass-message call:
    released once, as soon as its call is answered (or when the caller ends without one), so
    the account's next send never waits for more. ``slot`` is replaced when it is retaken."""

    account_id: int
    limit: RateLimit
    slot: Acquired
    message_id: int | None = None
    lock: MessageLock | None = None  # released with the slot
    released: bool = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        late = rate_limit_release(
            account_id=self.account_id,
            limit=self.limit,
            slot=self.slot,
            message_id=self.message_id,
            lock=self.lock,
        )
        if late:
            metrics.SEND_SLOT_LATE.inc()
            log.info("send.slot_late", message_id=self.message_id, account_id=self.account_id)


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


def rate_limit_rebuild(
    *, account_id: int, limit: RateLimit, exclude_message_id: int | None = None
) -> int:
    """Fill the account's missing log from the sends PostgreSQL recorded in the last window
    (``sending`` ones at the present moment and held: -1 in the script's arguments), plus one
    send now when there were any (the log was lost, not expired). Returns how many sends
    PostgreSQL knew of.

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
    excluded = f"m{exclude_message_id}"
    args: list[int | str] = [limit.window_ms + limit.spacing_ms + 1000, 1, limit.lease_ms]
    for member, score in rows:
        if member == excluded and int(score) < 0:
            continue
        args.extend([int(score), f"db:{member}"])
    _scripts()[2](keys=[_key(account_id), _held_key(account_id)], args=args)
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
    simulated, step = _simulated_slots(now=now, sends=sends, limit=limit, count=count)
    result = [(s - now) / 1000 for s in simulated]
    last = result[-1]
    result.extend(last + (i + 1) * step / 1000 for i in range(count - len(simulated)))
    return result


def rate_limit_forecast_last(*, account_id: int, limit: RateLimit, count: int) -> float:
    """``rate_limit_forecast(...)[-1]`` without the list: seconds from now of the ``count``-th
    free slot (the send API's estimate for a message at that place in the backlog)."""
    now, sends = _snapshot(account_id, limit)
    simulated, step = _simulated_slots(now=now, sends=sends, limit=limit, count=max(count, 1))
    last = (simulated[-1] - now) / 1000
    return last + (max(count, 1) - len(simulated)) * step / 1000


def _simulated_slots(
    *, now: int, sends: list[int], limit: RateLimit, count: int
) -> tuple[list[int], float]:
    """The first slots (ms, Redis clock) of a forecast of ``count``, at most two windows'
    worth, and the steady step (ms) that follows them."""
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
    return slots, step


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
