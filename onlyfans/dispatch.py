"""The per-account dispatcher: moves an account's backlog from the database to the broker.

Only about the next minute of each account's sends sits on SQS at a time (capped by
``SEND_DISPATCH_MAX_PER_ACCOUNT``, and all accounts together by ``SEND_DISPATCH_MAX_TOTAL``;
accounts that find the broker full wait in line in Redis, oldest backlog first), each task
published with the delay the rate limiter
forecasts for it, so a backlog of thousands waits in PostgreSQL, workers do not spin, and no
delay comes near the queue's visibility timeout. Dispatch runs after an enqueue commits, after
every finished send (to top up), and from the periodic outbox sweep.
"""

from __future__ import annotations

import math
from datetime import timedelta

import structlog
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError

from crm.models import CreatorAccount, Message
from onlyfans.ratelimit import RateLimit, rate_limit_forecast
from onlyfans.redis_conn import redis_client

log = structlog.get_logger(__name__)

PENDING = (Message.Status.QUEUED, Message.Status.SENDING)
MAX_SQS_DELAY_SECONDS = 900


def account_rate_limit(account: CreatorAccount) -> RateLimit:
    return RateLimit(
        per_minute=account.send_rate_per_minute, min_interval_ms=account.send_min_interval_ms
    )


def dispatch_budget(account: CreatorAccount) -> int:
    """How many of the account's messages may be on the broker at once."""
    horizon = settings.SEND_DISPATCH_HORIZON_SECONDS
    by_rate = math.ceil(account.send_rate_per_minute * horizon / 60)
    if account.send_min_interval_ms:
        by_rate = min(by_rate, math.ceil(horizon * 1000 / account.send_min_interval_ms))
    return max(1, min(by_rate, settings.SEND_DISPATCH_MAX_PER_ACCOUNT))


def task_publish(*, message_id: int, delay_seconds: float) -> None:
    """Publish the send task for one message, delayed on SQS itself (not in a worker)."""
    from onlyfans.tasks import message_send_task

    delay = min(MAX_SQS_DELAY_SECONDS, max(0, math.ceil(delay_seconds)))
    # kombu's SQS transport turns this message property into SQS DelaySeconds.
    message_send_task.apply_async((message_id,), delay_seconds=delay)  # type: ignore[call-arg]


WAITING_KEY = "dispatch:waiting"


def broker_in_flight() -> int:
    """Messages of all accounts whose task is on the broker (or being sent) right now."""
    return Message.objects.filter(status__in=PENDING, dispatched_at__isnull=False).count()


def _dispatch_once(account_id: int) -> int:
    account = CreatorAccount.objects.filter(pk=account_id).first()
    if account is None or not account.is_connected:
        redis_client().zrem(WAITING_KEY, account_id)
        return 0
    pending = Message.objects.filter(account_id=account_id, status__in=PENDING)
    in_flight = pending.filter(dispatched_at__isnull=False).count()
    account_free = dispatch_budget(account) - in_flight
    if account_free <= 0:
        # Its own sends will top it up as they finish.
        redis_client().zrem(WAITING_KEY, account_id)
        return 0
    total_free = settings.SEND_DISPATCH_MAX_TOTAL - broker_in_flight()
    budget = min(account_free, total_free)
    ids = list(
        pending.filter(status=Message.Status.QUEUED, dispatched_at__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[: max(budget, 1)]
    )
    if not ids:
        redis_client().zrem(WAITING_KEY, account_id)
        return 0
    if budget <= 0 or (budget < account_free and len(ids) == budget):
        # The broker holds all it may: wait in line, oldest backlog first, for a free place.
        redis_client().zadd(WAITING_KEY, {str(account_id): ids[0] if budget <= 0 else ids[-1] + 1})
        if budget <= 0:
            return 0
    else:
        redis_client().zrem(WAITING_KEY, account_id)
    delays = rate_limit_forecast(
        account_id=account_id, limit=account_rate_limit(account), count=in_flight + len(ids)
    )[in_flight:]
    Message.objects.filter(pk__in=ids, dispatched_at__isnull=True).update(
        dispatched_at=timezone.now()
    )
    published = 0
    for message_id, delay in zip(ids, delays, strict=True):
        try:
            task_publish(message_id=message_id, delay_seconds=delay)
        except Exception:
            # SQS is unreachable: the rest stay in the backlog for the sweep to publish.
            Message.objects.filter(pk__in=ids[published:], status=Message.Status.QUEUED).update(
                dispatched_at=None
            )
            log.warning("dispatch.publish_failed", account_id=account_id, exc_info=True)
            break
        published += 1
    log.info("dispatch.published", account_id=account_id, published=published, in_flight=in_flight)
    return published


def waiting_dispatch(*, max_accounts: int = 8) -> int:
    """Give free places on the broker to accounts waiting in line for one, oldest first."""
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


def account_dispatch(*, account_id: int) -> int:
    """Publish the next of the account's queued messages that fit its budget.

    Concurrency: one dispatcher per account at a time, by a non-blocking Redis lock. A caller
    that finds the lock taken leaves a "dispatch again" flag instead of waiting, and the holder
    loops until the flag stays clear, so no request ever queues behind another's dispatch.
    """
    client = redis_client()
    again_key = f"dispatch:again:{account_id}"
    published = 0
    try:
        client.set(again_key, 1, ex=300)
        while client.exists(again_key):
            lock = client.lock(f"dispatch:lock:{account_id}", timeout=60, blocking=False)
            if not lock.acquire():
                return published
            try:
                while client.delete(again_key):
                    published += _dispatch_once(account_id)
            finally:
                lock.release()
    except RedisError:
        log.warning("dispatch.redis_unavailable", account_id=account_id, exc_info=True)
    return published


def account_dispatch_on_commit(*, account_id: int) -> None:
    transaction.on_commit(lambda: account_dispatch(account_id=account_id))


def outbox_sweep() -> dict[str, int]:
    """Re-publish what was lost between the database and the broker, then dispatch backlogs.

    A pending message whose task was published long ago (longer than SQS would keep it
    invisible) and has not run is put back in the backlog; every connected account with a
    backlog is then dispatched. Duplicate deliveries this may cause are harmless: the send
    task locks the message and re-reads its status, and the gateway replays the same key.
    """
    stale_before = timezone.now() - timedelta(seconds=settings.SEND_REDISPATCH_AFTER_SECONDS)
    # A worker that died mid-send left "sending": the task time limit is far below this age.
    stale = Message.objects.filter(status__in=PENDING, dispatched_at__lt=stale_before).update(
        status=Message.Status.QUEUED, dispatched_at=None
    )
    account_ids = list(
        Message.objects.filter(
            Q(status=Message.Status.QUEUED, dispatched_at__isnull=True),
            account__connection_state=CreatorAccount.ConnectionState.CONNECTED,
        )
        .values_list("account_id", flat=True)
        .distinct()
    )
    published = sum(account_dispatch(account_id=account_id) for account_id in account_ids)
    published += waiting_dispatch()
    log.info("outbox.swept", stale=stale, accounts=len(account_ids), published=published)
    return {"stale": stale, "accounts": len(account_ids), "published": published}
