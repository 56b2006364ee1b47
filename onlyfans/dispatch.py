"""The per-account dispatcher: moves an account's backlog from the database to the broker.

Only about the next minute of each account's sends sits on SQS at a time (capped by
``SEND_DISPATCH_MAX_PER_ACCOUNT``, and all accounts together by ``SEND_DISPATCH_MAX_TOTAL``;
accounts that find the broker full wait in line in Redis, the one whose next send is due
soonest first). Each task is published with the delay the rate limiter forecasts for it, so a
backlog of thousands waits in PostgreSQL, workers do not spin, and no delay comes near the
queue's visibility timeout. Dispatch runs after an enqueue commits, after every finished send
(to top up), and from the periodic outbox sweep.

Two lanes per account: one-to-one messages (chatters, the API, the inbox) are claimed before
campaign messages and take the first free slots; campaign messages hold at most a few seconds
of the account's sends on the broker (``CAMPAIGN_LANE_HORIZON_SECONDS``), so a reply queued
while a campaign drains leaves within about one slot. The limiter decides every send as before.
A paused campaign's messages stay ``queued`` and are not claimed until it runs again.
One-to-one messages are also expected at the limiter at their forecast slots, and campaign
lane sends give way to them there (``onlyfans.ratelimit.Precedence``): a lane task that wakes
at the same slot as a reply, or just before it, is refused and comes back one slot later.
Automations' messages (``sender_kind='automation'``) share the campaign lane and its budget,
claimed before campaign messages (they are few and each is due at its own time).
"""

from __future__ import annotations

import functools
import math
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import BatchPublishError  # type: ignore[attr-defined]  # kombu 5.7
from redis.commands.core import Script
from redis.exceptions import RedisError

from config.celery import app as celery_app
from config.celery import task_publish
from config.redis import redis_client
from crm.models import CreatorAccount, Message
from onlyfans.ratelimit import (
    RateLimit,
    rate_limit_forecast,
    rate_limit_replies_expect,
    rate_limit_replies_forget,
)

log = structlog.get_logger(__name__)

# Published by name (config.celery.task_publish): this module never imports onlyfans.tasks.
MESSAGE_SEND_TASK = "onlyfans.tasks.message_send_task"


def account_rate_limit(account: CreatorAccount) -> RateLimit:
    return RateLimit(
        per_minute=account.send_rate_per_minute, min_interval_ms=account.send_min_interval_ms
    )


def dispatch_budget(account: CreatorAccount) -> int:
    """How many of the account's messages may be on the broker at once."""
    return dispatch_budget_for(account_rate_limit(account))


def dispatch_budget_for(limit: RateLimit) -> int:
    horizon = settings.SEND_DISPATCH_HORIZON_SECONDS
    by_rate = math.ceil(limit.per_minute * horizon / 60)
    if limit.min_interval_ms:
        by_rate = min(by_rate, math.ceil(horizon * 1000 / limit.min_interval_ms))
    return max(1, min(by_rate, settings.SEND_DISPATCH_MAX_PER_ACCOUNT))


def campaign_lane_budget_for(limit: RateLimit) -> int:
    """How many campaign messages of the account may be on the broker at once: the sends of
    ``CAMPAIGN_LANE_HORIZON_SECONDS``, at least one (one at the usual rates of a few sends a
    minute). A reply queued meanwhile is scheduled ahead of them (they are not counted in its
    forecast), and one that wakes with it gives way at the limiter (``Precedence``), so the
    reply waits at most for the send already under way."""
    horizon = settings.CAMPAIGN_LANE_HORIZON_SECONDS
    by_rate = math.floor(limit.per_minute * horizon / 60)
    if limit.min_interval_ms:
        by_rate = min(by_rate, math.floor(horizon * 1000 / limit.min_interval_ms))
    # One place of the account's budget always stays free for a reply.
    return max(1, min(by_rate, dispatch_budget_for(limit) - 1))


def _claim_two_lanes(
    account_id: int,
    *,
    budget: int,
    campaign_budget: int,
    campaign_running: bool = True,
    automation_waiting: bool = True,
) -> tuple[list[int], list[int]]:
    """Claim up to ``budget`` of the account's backlog: one-to-one messages first, then the
    campaign lane up to ``campaign_budget``: automations' messages, then (when a campaign of
    the account runs) campaign messages. (direct ids, campaign lane ids), oldest first."""
    now = timezone.now()
    campaign: list[int] = []
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_DIRECT_SQL, [now, account_id, budget])
        direct = sorted(r[0] for r in cursor.fetchall())
        take = min(budget - len(direct), campaign_budget)
        if take > 0 and automation_waiting:
            cursor.execute(_CLAIM_AUTOMATION_SQL, [now, account_id, take])
            campaign = sorted(r[0] for r in cursor.fetchall())
            take -= len(campaign)
        if take > 0 and campaign_running:
            cursor.execute(_CLAIM_CAMPAIGN_SQL, [now, account_id, take])
            campaign += sorted(r[0] for r in cursor.fetchall())
    return direct, campaign


def _back_to_backlog(message_ids: list[int]) -> None:
    """Claimed messages whose tasks never reached SQS wait for the next dispatch again."""
    Message.objects.filter(pk__in=message_ids, status=Message.Status.QUEUED).update(
        dispatched_at=None
    )


_batch = threading.local()


@contextmanager
def tasks_published_together() -> Iterator[None]:
    """Publish the send tasks of the enclosed dispatch work as SQS batches, on leaving.

    One SendMessageBatch carries up to ten tasks (``onlyfans.broker_transport``). When the
    batch cannot be published, its messages go back to the backlog (``dispatched_at`` cleared)
    for the next dispatch or the sweep; nothing is raised to the caller, as with one publish.
    """
    if getattr(_batch, "producer", None) is not None:
        yield  # already inside a batch: the outermost one publishes
        return
    _batch.ids = []
    try:
        with celery_app.producer_or_acquire() as producer, producer.batch():
            _batch.producer = producer
            try:
                yield
            finally:
                _batch.producer = None
    except Exception as exc:
        # Unpublished (SQS refused the batch, or the work failed and kombu discarded it):
        # back to the backlog now, not after the sweep's stale delay.
        ids = _batch.ids
        if ids:
            _back_to_backlog(ids)
        if not isinstance(exc, BatchPublishError):
            raise
        log.warning("dispatch.batch_publish_failed", messages=len(ids), exc_info=True)
    finally:
        _batch.ids = []


def message_task_publish(*, message_id: int, delay_seconds: float) -> None:
    """Publish the send task for one message to run ``delay_seconds`` from now.

    The task waits on SQS for the whole seconds and carries an ETA for the rest
    (``config.celery.task_publish``): rounding up to whole seconds instead made tasks arrive
    early or late against sub-second slots, and early ones had to be published again.
    """
    # Aim a little after the slot: a task that wakes a few ms early would be refused by the
    # limiter and have to go round the broker again.
    if delay_seconds > 0:
        delay_seconds += settings.SEND_SCHEDULE_SLACK_MS / 1000
    options: dict[str, Any] = {}
    producer = getattr(_batch, "producer", None)
    if producer is not None:
        options["producer"] = producer
        _batch.ids.append(message_id)
    task_publish(
        MESSAGE_SEND_TASK,
        args=[message_id],
        delay_seconds=delay_seconds,
        eta_for_fraction=True,
        **options,
    )
    log.debug("send.scheduled", message_id=message_id, delay_ms=round(delay_seconds * 1000))


WAITING_KEY = "dispatch:waiting"


_M = Message._meta.db_table
_A = CreatorAccount._meta.db_table
# Campaigns' table and the states in which its messages may still be sent, by name: campaigns
# sits above onlyfans and owns the rows; the pipeline only reads a campaign's state (a paused
# campaign's messages wait in the backlog, held) and banned words. A test in
# tests/campaigns/test_pipeline.py holds them to campaigns.models.Campaign.
CAMPAIGN_TABLE = "campaigns_campaign"
# Automations' tables, by name likewise: the pipeline reads only an automation's screening of
# banned words, through the run that links its message (tests/automations hold the names).
AUTOMATION_TABLE = "automations_automation"
AUTOMATION_RUN_TABLE = "automations_automationrun"
_C = CAMPAIGN_TABLE
# Hand-written SQL on the hot path: this runs after every finished send, and the ORM's query
# building cost more CPU than the queries themselves (measured with py-spy on a worker).
# The account's messages on the broker are counted on index message_account_on_broker (only
# what is on the broker), so a deep backlog does not make every pass read it.
_ACCOUNT_SQL = f"""
SELECT a.connection_state, a.send_rate_per_minute, a.send_min_interval_ms,
  b.in_flight, b.waiting_for_slot, b.campaign_in_flight, b.campaign_waiting,
  (SELECT count(*) FROM {_M} m
     WHERE m.status IN ('queued', 'sending') AND m.dispatched_at IS NOT NULL),
  EXISTS (SELECT 1 FROM {_C} c WHERE c.account_id = a.id AND c.state = 'running'),
  EXISTS (SELECT 1 FROM {_M} m WHERE m.account_id = a.id AND m.status = 'queued'
    AND m.dispatched_at IS NULL AND m.sender_kind = 'automation')
FROM {_A} a CROSS JOIN LATERAL (
  SELECT count(*) AS in_flight,
    count(*) FILTER (WHERE m.status = 'queued') AS waiting_for_slot,
    count(*) FILTER (WHERE m.sender_kind IN ('campaign', 'automation')) AS campaign_in_flight,
    count(*) FILTER (WHERE m.status = 'queued' AND m.sender_kind IN ('campaign', 'automation'))
      AS campaign_waiting
  FROM {_M} m WHERE m.account_id = a.id
    AND m.status IN ('queued', 'sending') AND m.dispatched_at IS NOT NULL) b
WHERE a.id = %s
"""  # noqa: S608 (table names only)
# Two lanes: one-to-one messages (chatters, the API, the inbox) are claimed before campaign
# messages, each lane oldest first (indexes message_backlog_direct / message_backlog_campaign /
# message_backlog_automation; the direct one's predicate is written as here).
_CLAIM_DIRECT_SQL = f"""
UPDATE {_M} SET dispatched_at = %s WHERE id IN (
  SELECT id FROM {_M} WHERE account_id = %s AND status = 'queued' AND dispatched_at IS NULL
    AND sender_kind NOT IN ('campaign', 'automation')
  ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id
"""  # noqa: S608
_CLAIM_AUTOMATION_SQL = f"""
UPDATE {_M} SET dispatched_at = %s WHERE id IN (
  SELECT id FROM {_M} WHERE account_id = %s AND status = 'queued' AND dispatched_at IS NULL
    AND sender_kind = 'automation'
  ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
RETURNING id
"""  # noqa: S608
# A campaign message ``m`` held back: its campaign is not running (paused), so it stays queued
# and is not claimed until the campaign resumes (also what onlyfans.cloudwatch counts as held).
CAMPAIGN_HELD_SQL = (
    f"EXISTS (SELECT 1 FROM {_C} c WHERE c.id = m.campaign_id AND c.state <> 'running')"  # noqa: S608
)
_CLAIM_CAMPAIGN_SQL = f"""
UPDATE {_M} SET dispatched_at = %s WHERE id IN (
  SELECT m.id FROM {_M} m WHERE m.account_id = %s AND m.status = 'queued'
    AND m.dispatched_at IS NULL AND m.sender_kind = 'campaign'
    AND NOT {CAMPAIGN_HELD_SQL}
  ORDER BY m.id LIMIT %s FOR UPDATE OF m SKIP LOCKED)
RETURNING id
"""  # noqa: S608
_HAS_BACKLOG_SQL = f"""
SELECT EXISTS (SELECT 1 FROM {_M}
  WHERE account_id = %s AND status = 'queued' AND dispatched_at IS NULL)
"""  # noqa: S608


def _dispatch_once(account_id: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_ACCOUNT_SQL, [account_id])
        row = cursor.fetchone()
    if row is None or row[0] != CreatorAccount.ConnectionState.CONNECTED:
        redis_client().zrem(WAITING_KEY, account_id)
        return 0
    (
        _,
        per_minute,
        min_interval_ms,
        in_flight,
        waiting_for_slot,
        campaign_in_flight,
        campaign_waiting,
        total_in_flight,
        campaign_running,
        automation_waiting,
    ) = row
    limit = RateLimit(per_minute=per_minute, min_interval_ms=min_interval_ms)
    account_free = dispatch_budget_for(limit) - in_flight
    if account_free <= 0:
        # Its own sends will top it up as they finish.
        redis_client().zrem(WAITING_KEY, account_id)
        return 0
    budget = min(account_free, settings.SEND_DISPATCH_MAX_TOTAL - total_in_flight)
    if budget <= 0:
        with connection.cursor() as cursor:
            cursor.execute(_HAS_BACKLOG_SQL, [account_id])
            has_backlog = cursor.fetchone()[0]
        if has_backlog:
            # The broker holds all it may: wait in line, by when the next message is due.
            due = rate_limit_forecast(
                account_id=account_id, limit=limit, count=waiting_for_slot + 1
            )
            redis_client().zadd(WAITING_KEY, {str(account_id): time.time() + due[-1]})
        else:
            redis_client().zrem(WAITING_KEY, account_id)
        return 0
    direct, campaign = _claim_two_lanes(
        account_id,
        budget=budget,
        campaign_budget=campaign_lane_budget_for(limit) - campaign_in_flight,
        # No running campaign: whatever campaign messages wait are held (paused); only
        # automations' messages may be claimed in the lane.
        campaign_running=bool(campaign_running),
        # Known from the account's query: no claim query when none waits.
        automation_waiting=bool(automation_waiting),
    )
    ids = direct + campaign
    if not ids:
        redis_client().zrem(WAITING_KEY, account_id)
        return 0
    # Messages already sending hold their slot in the limiter's log; only the queued ones on
    # the broker still need one, and they take the first free slots. One more slot is the
    # next message's, the account's place in line if the broker's cap stopped it here.
    slots = rate_limit_forecast(
        account_id=account_id, limit=limit, count=waiting_for_slot + len(ids) + 1
    )
    # One-to-one messages take the first free slots after the one-to-one messages already
    # waiting: campaign messages on the broker do not hold them back (the limiter refuses
    # whichever wakes second, and it waits for the next slot). Campaign messages go last.
    direct_from = waiting_for_slot - campaign_waiting
    delays = slots[direct_from : direct_from + len(direct)]
    delays += slots[waiting_for_slot + len(direct) : -1]
    if budget < account_free and len(ids) == budget:
        redis_client().zadd(WAITING_KEY, {str(account_id): time.time() + slots[-1]})
    else:
        redis_client().zrem(WAITING_KEY, account_id)
    # Before their tasks can wake: the campaign lane gives way to these replies at the
    # limiter, so a lane task woken at the same slot (published earlier) does not take it.
    rate_limit_replies_expect(account_id=account_id, due=zip(direct, delays, strict=False))
    published = 0
    for message_id, delay in zip(ids, delays, strict=True):
        try:
            message_task_publish(message_id=message_id, delay_seconds=delay)
        except Exception:
            # SQS is unreachable: the rest stay in the backlog for the sweep to publish.
            _back_to_backlog(ids[published:])
            rate_limit_replies_forget(account_id=account_id, message_ids=direct[published:])
            log.warning("dispatch.publish_failed", account_id=account_id, exc_info=True)
            break
        published += 1
    log.info("dispatch.published", account_id=account_id, published=published, in_flight=in_flight)
    return published


def waiting_dispatch(*, max_accounts: int = 8) -> int:
    """Give free places on the broker to accounts waiting in line, the soonest due first."""
    client = redis_client()
    published = 0
    for _ in range(max_accounts):
        popped = client.zpopmin(WAITING_KEY, 1)
        if not popped:
            break
        account_id = int(popped[0][0])
        done = account_dispatch(account_id=account_id)
        published += done
        if not done and client.zscore(WAITING_KEY, account_id) is not None:
            break  # the broker is full again: it went back in line
    return published


# One dispatcher per account: entering sets the "again" flag and takes the lock if free;
# leaving clears the lock only when nobody asked again meanwhile (one round trip each).
_ENTER = """
redis.call('SET', KEYS[1], 1, 'EX', 300)
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', 60000) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""
_AGAIN_OR_LEAVE = """
if redis.call('DEL', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[2], 60000)
  return 1
end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 0
"""


@functools.cache
def _scripts() -> tuple[Script, Script]:
    client = redis_client()
    return client.register_script(_ENTER), client.register_script(_AGAIN_OR_LEAVE)


def account_dispatch(*, account_id: int) -> int:
    """Publish the next of the account's queued messages that fit its budget.

    Concurrency: one dispatcher per account at a time, by a non-blocking Redis lock. A caller
    that finds the lock taken leaves a "dispatch again" flag instead of waiting, and the holder
    runs once more before it leaves, so no request ever queues behind another's dispatch.
    """
    enter, again_or_leave = _scripts()
    keys = [f"dispatch:again:{account_id}", f"dispatch:lock:{account_id}"]
    token = uuid.uuid4().hex
    published = 0
    try:
        if not enter(keys=keys, args=[token]):
            return 0
        while True:
            with tasks_published_together():
                published += _dispatch_once(account_id)
            if not again_or_leave(keys=keys, args=[token]):
                break
    except RedisError:
        log.warning("dispatch.redis_unavailable", account_id=account_id, exc_info=True)
    return published


def after_send_dispatch_many(*, account_ids: set[int]) -> int:
    """Sends of these accounts finished, so places on the broker are free: the line first,
    then these accounts.

    When accounts in line take the places, these accounts join the line behind them (one with
    no backlog costs one empty look when its turn comes).
    """
    published = waiting_dispatch(max_accounts=len(account_ids) + 1)
    if published:
        now = time.time()
        redis_client().zadd(WAITING_KEY, {str(a): now for a in account_ids}, nx=True)
        return published
    return sum(account_dispatch(account_id=account_id) for account_id in account_ids)


def outbox_sweep() -> dict[str, int]:
    """Re-publish what was lost between the database and the broker, then dispatch backlogs.

    A pending message whose task was published long ago (longer than SQS would keep it
    invisible) and has not run is put back in the backlog; every connected account with a
    backlog is then dispatched. Duplicate deliveries this may cause are harmless: the send
    task locks the message and re-reads its status, and the gateway replays the same key.
    """
    stale_before = timezone.now() - timedelta(seconds=settings.SEND_REDISPATCH_AFTER_SECONDS)
    # A worker that died mid-send left "sending": the task time limit is far below this age.
    stale = Message.objects.filter(
        status__in=Message.PENDING_STATUSES, dispatched_at__lt=stale_before
    ).update(status=Message.Status.QUEUED, dispatched_at=None)
    account_ids = list(
        Message.objects.filter(
            Q(status=Message.Status.QUEUED, dispatched_at__isnull=True),
            account__connection_state=CreatorAccount.ConnectionState.CONNECTED,
        )
        .order_by()
        .values_list("account_id", flat=True)
        .distinct()
    )
    with tasks_published_together():
        published = sum(account_dispatch(account_id=account_id) for account_id in account_ids)
        published += waiting_dispatch()
    log.info("outbox.swept", stale=stale, accounts=len(account_ids), published=published)
    return {"stale": stale, "accounts": len(account_ids), "published": published}
