"""One delivery of one outgoing message: lock, order, rate limit, gateway, status.

Called by the send task for every SQS delivery. Any number of deliveries of the same message,
in any number of worker processes, send it to the platform once at most: a Redis lock (taken
by the limiter's script with the slot) keeps two deliveries apart, the status is re-checked
under it by the claim, and the gateway replays the idempotency key for an attempt that reached
the platform but was never recorded here.
"""

from __future__ import annotations

import functools
import random
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum

import structlog
from django.conf import settings
from django.db import connection
from redis.exceptions import LockError

from config.redis import redis_client
from crm.models import Conversation, CreatorAccount, Fan, Message, MessageMedia
from onlyfans import gateway, metrics
from onlyfans.contracts import (
    GatewayAccountUnavailable,
    GatewayConflict,
    GatewayError,
    GatewayRateLimited,
    GatewayTransientError,
    SendRequest,
)
from onlyfans.dispatch import (
    AUTOMATION_RUN_TABLE,
    AUTOMATION_TABLE,
    CAMPAIGN_TABLE,
    account_rate_limit,
)
from onlyfans.ratelimit import (
    HeldSlot,
    MessageLock,
    Precedence,
    rate_limit_acquire,
    rate_limit_replies_forget,
    rate_limit_retake,
    rate_limit_slot_usable,
)
from onlyfans.services import (
    account_mark_expired,
    message_mark_failed,
    message_mark_sending,
    message_mark_sent,
    message_requeue,
)

log = structlog.get_logger(__name__)


# A refusal whose wait is at most this long (not the fence's) is waited in the worker, once:
# shorter than a round of the broker costs, and short enough that few threads wait at once.
SHORT_WAIT_SECONDS = 0.4


class Delivery(StrEnum):
    """What one delivery attempt came to (the task's return value and metric label)."""

    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"  # not queued any more (withdrawn, sent or gone)
    BUSY = "busy"  # another delivery holds the message's lock
    PAUSED = "paused"  # the account is disconnected
    ORDERED = "ordered"  # an earlier message of the conversation goes first
    THROTTLED = "throttled"  # the account's rate limit: no slot yet
    RATE_LIMITED = "rate_limited"  # the platform answered 429
    CONFLICT = "conflict"
    RETRYING = "retrying"


@dataclass(frozen=True)
class Outcome:
    """What the task does next: nothing, publish again after ``retry_in`` s, or top up."""

    result: Delivery
    account_id: int | None = None
    retry_in: float | None = None

    @property
    def finished(self) -> bool:
        return self.result in (Delivery.SENT, Delivery.FAILED)


def retry_backoff_seconds(attempt: int) -> float:
    """About 1 s, 2 s, 4 s… after attempts 1, 2, 3…, with ±25 % jitter."""
    base = settings.SEND_RETRY_BASE_SECONDS * 2 ** max(0, attempt - 1)
    return base * random.uniform(0.75, 1.25)


def _error_text(exc: GatewayError) -> str:
    status = f" (HTTP {exc.status})" if exc.status else ""
    return f"{exc.code}{status}: {exc.message}"


def _send_request(
    message: Message,
    chat_id: str,
    block_banned_words: str | None,
    preview_ids: list[str] | None = None,
) -> SendRequest:
    return SendRequest(
        account_platform_id=message.account.platform_account_id,
        chat_id=chat_id,
        text=message.text,
        price_cents=message.price_cents,
        media_ids=tuple(message.media_ids),
        idempotency_key=str(message.idempotency_key),
        block_banned_words=block_banned_words,
        preview_ids=tuple(preview_ids or ()),
    )


def _message_lock(message_id: int) -> MessageLock:
    return MessageLock(
        key=f"send:lock:{message_id}",
        token=uuid.uuid4().hex,
        ttl_ms=settings.SEND_LOCK_TTL_SECONDS * 1000,
    )


def message_deliver(*, message_id: int) -> Outcome:
    """Try to send the message now, under the message's Redis lock.

    The lock is taken by the limiter's script with the slot it grants and released with the
    slot after the status is written (no round trip of its own); a delivery that finds it
    taken does nothing (``Delivery.BUSY``): another one is sending it and owns the outcome.
    Every write to the message happens under it: the claim (``message_mark_sending``, which
    also re-checks the status: a delivery that read the row before another sent it stops
    there), the call and the result; the pause of a disconnected account takes it alone.
    """
    return _deliver(message_id, _message_lock(message_id))


def _requeue_paused(message: Message, lock: MessageLock) -> bool:
    """Back to the backlog (its account is disconnected), under the message's lock; False
    when another delivery holds it."""
    held = redis_client().lock(lock.key, timeout=lock.ttl_ms / 1000, blocking=False)
    if not held.acquire(token=lock.token):
        return False
    try:
        message_requeue(message=message, error="account_disconnected", dispatched=False)
    finally:
        try:
            held.release()
        except LockError:
            log.warning("send.lock_expired", message_id=message.pk)
    return True


_M = Message._meta.db_table
# Hand-written: it runs for every delivery, and the ORM spent more CPU building this query
# (joins and the EXISTS) than PostgreSQL spent answering it.
_DELIVERY_SQL = f"""
SELECT m.id, m.status, m.attempts, m.text, m.price_cents, m.media_ids, m.idempotency_key,
       m.account_id, m.conversation_id, m.sender_kind,
       a.platform_account_id, a.connection_state, a.send_rate_per_minute, a.send_min_interval_ms,
       f.platform_fan_id,
       EXISTS (SELECT 1 FROM {_M} e WHERE e.conversation_id = m.conversation_id
               AND e.direction = 'out' AND e.status IN ('queued', 'sending') AND e.id < m.id),
       COALESCE((SELECT NULLIF(k.block_banned_words, '') FROM {CAMPAIGN_TABLE} k
                 WHERE k.id = m.campaign_id),
                CASE WHEN m.sender_kind = 'user' THEN NULLIF(a.gateway_banned_words, '')
                     WHEN m.sender_kind = 'automation' THEN
                       (SELECT NULLIF(au.block_banned_words, '') FROM {AUTOMATION_RUN_TABLE} r
                        JOIN {AUTOMATION_TABLE} au ON au.id = r.automation_id
                        WHERE r.message_id = m.id) END),
       -- The free previews of a paid message with media (no lookup for one without).
       CASE WHEN m.price_cents > 0 AND cardinality(m.media_ids) > 0
            THEN ARRAY(SELECT mm.platform_media_id FROM {MessageMedia._meta.db_table} mm
                       WHERE mm.message_id = m.id AND mm.is_preview ORDER BY mm.position) END
FROM {_M} m
JOIN {CreatorAccount._meta.db_table} a ON a.id = m.account_id
JOIN {Conversation._meta.db_table} c ON c.id = m.conversation_id
JOIN {Fan._meta.db_table} f ON f.id = c.fan_id
WHERE m.id = %s AND m.direction = 'out'
"""  # noqa: S608 (table names only)


def _delivery_load(message_id: int) -> tuple[Message, SendRequest, bool] | None:
    """The message with its account, the request that sends it (to the fan's platform id,
    screened for banned words as its campaign asks, or a member's message as its account
    asks), and whether an earlier message of the same conversation is still pending."""
    with connection.cursor() as cursor:
        cursor.execute(_DELIVERY_SQL, [message_id])
        row = cursor.fetchone()
    if row is None:
        return None
    (
        pk,
        status,
        attempts,
        text,
        price_cents,
        media_ids,
        key,
        account_id,
        conversation_id,
        sender_kind,
        platform_account_id,
        state,
        per_minute,
        interval_ms,
        chat_id,
        waits,
        block_banned_words,
        preview_ids,
    ) = row
    message = Message(
        id=pk,
        status=status,
        attempts=attempts,
        text=text,
        price_cents=price_cents,
        media_ids=media_ids,
        idempotency_key=key,
        account_id=account_id,
        conversation_id=conversation_id,
        direction=Message.Direction.OUT,
        sender_kind=sender_kind,
    )
    message.account = CreatorAccount(
        id=account_id,
        platform_account_id=platform_account_id,
        connection_state=state,
        send_rate_per_minute=per_minute,
        send_min_interval_ms=interval_ms,
    )
    request = _send_request(message, chat_id, block_banned_words, preview_ids)
    return message, request, waits


# Campaign lane messages give way to one-to-one messages at the limiter (onlyfans.ratelimit).
LANE_SENDER_KINDS = frozenset({Message.SenderKind.CAMPAIGN, Message.SenderKind.AUTOMATION})


def send_precedence(sender_kind: str) -> Precedence:
    """A campaign lane message gives way to replies; every other one is a reply."""
    return Precedence.YIELD if sender_kind in LANE_SENDER_KINDS else Precedence.REPLY


def _deliver(message_id: int, lock: MessageLock) -> Outcome:
    loaded = _delivery_load(message_id)
    if loaded is None:
        return Outcome(Delivery.SKIPPED)
    message, request, waits_for_earlier = loaded
    precedence = send_precedence(message.sender_kind)
    if message.status not in Message.PENDING_STATUSES:
        if precedence is Precedence.REPLY:
            rate_limit_replies_forget(account_id=message.account_id, message_ids=[message.pk])
        return Outcome(Delivery.SKIPPED)
    account = message.account
    if not account.is_connected:
        if not _requeue_paused(message, lock):
            return Outcome(Delivery.BUSY)
        if precedence is Precedence.REPLY:
            rate_limit_replies_forget(account_id=account.pk, message_ids=[message.pk])
        return Outcome(Delivery.PAUSED, account_id=account.pk)
    if waits_for_earlier:
        # Messages of one conversation leave in the order they were queued.
        return Outcome(
            Delivery.ORDERED,
            account_id=account.pk,
            retry_in=max(1.0, account.send_min_interval_ms / 1000),
        )

    limit = account_rate_limit(account)
    acquire = functools.partial(
        rate_limit_acquire,
        account_id=account.pk,
        limit=limit,
        hold=True,
        message_id=message.pk,
        precedence=precedence,
        lock=lock,
    )
    slot = acquire()
    if slot.busy:
        return Outcome(Delivery.BUSY)  # another delivery is sending it right now
    if not slot.granted and not slot.fenced and slot.wait_seconds <= SHORT_WAIT_SECONDS:
        # Woken a little before its slot (an earlier send of the account left later than
        # forecast): wait the limiter's exact wait here rather than go round the broker again
        # (a publish, a receive and a delete, and SQS's whole-second delays). The limiter
        # decides again after the wait, so its guarantees are the script's as before.
        metrics.LIMITER_WAITS.inc()
        time.sleep(slot.wait_seconds)
        slot = acquire()
        if slot.busy:
            return Outcome(Delivery.BUSY)
    if not slot.granted:
        metrics.LIMITER_WAITS.inc()
        log.debug(
            "send.deferred",
            message_id=message.pk,
            account_id=account.pk,
            wait_ms=round(slot.wait_seconds * 1000),
            yielded=slot.yielded,
        )
        return Outcome(Delivery.THROTTLED, account_id=account.pk, retry_in=slot.wait_seconds)
    # The slot and the lock (granted together) are released together, once the outcome is
    # written: the lock must cover the status write, and the slot's release that late only
    # makes the fence and the guard's move of a late call a little more conservative.
    held = HeldSlot(account_id=account.pk, message_id=message.pk, limit=limit, slot=slot, lock=lock)
    try:
        return _send_on_slot(message, request, held)
    finally:
        held.release()


# Retakes of a slot that went stale before its call, at most, in one delivery.
SLOT_RETAKES = 3


def _send_on_slot(message: Message, request: SendRequest, held: HeldSlot) -> Outcome:
    """Claim the message, check the slot is still usable right before the call (retaking it
    if not), call the gateway, record the answer (the caller then releases slot and lock)."""
    account, limit = message.account, held.limit
    if not message_mark_sending(message=message):
        return Outcome(Delivery.SKIPPED)
    for _ in range(SLOT_RETAKES):
        if rate_limit_slot_usable(account_id=account.pk, limit=limit, slot=held.slot):
            break
        # Taken too long ago (a slow or restarting database, a starved worker) or lost with
        # Redis: give it back and take one now, or wait for the next.
        held.slot = rate_limit_retake(
            account_id=account.pk,
            limit=limit,
            stale=held.slot,
            message_id=message.pk,
            precedence=send_precedence(message.sender_kind),
            lock=held.lock,
        )
        log.info(
            "send.slot_retaken",
            message_id=message.pk,
            account_id=account.pk,
            granted=held.slot.granted,
        )
        if not held.slot.granted:
            message_requeue(message=message, undo_attempt=True)
            metrics.SEND_RETRIES.labels("stale_slot").inc()
            return Outcome(
                Delivery.THROTTLED, account_id=account.pk, retry_in=held.slot.wait_seconds
            )
    else:
        message_requeue(message=message, undo_attempt=True)
        metrics.SEND_RETRIES.labels("stale_slot").inc()
        return Outcome(Delivery.THROTTLED, account_id=account.pk, retry_in=1.0)
    started = time.perf_counter()
    try:
        result = gateway.message_send(request)
    except GatewayRateLimited as exc:
        message_requeue(message=message, error="rate_limited", undo_attempt=True)
        metrics.SEND_RETRIES.labels("rate_limited").inc()
        log.info(
            "send.rate_limited",
            message_id=message.pk,
            account_id=account.pk,
            retry_after=exc.retry_after_seconds,
        )
        return Outcome(
            Delivery.RATE_LIMITED, account_id=account.pk, retry_in=exc.retry_after_seconds or 5.0
        )
    except GatewayConflict:
        message_requeue(message=message, error="idempotency_conflict", undo_attempt=True)
        metrics.SEND_RETRIES.labels("conflict").inc()
        return Outcome(Delivery.CONFLICT, account_id=account.pk, retry_in=2.0)
    except GatewayTransientError as exc:
        error = _error_text(exc)
        if message.attempts >= settings.SEND_MAX_ATTEMPTS:
            message_mark_failed(message=message, error=error)
            return Outcome(Delivery.FAILED, account_id=account.pk)
        message_requeue(message=message, error=error)
        metrics.SEND_RETRIES.labels("transient").inc()
        log.info(
            "send.retrying",
            message_id=message.pk,
            account_id=account.pk,
            attempt=message.attempts,
            error_code=exc.code,
        )
        return Outcome(
            Delivery.RETRYING,
            account_id=account.pk,
            retry_in=retry_backoff_seconds(message.attempts),
        )
    except GatewayAccountUnavailable as exc:
        account_mark_expired(account_id=account.pk, reason=exc.code)
        message_requeue(
            message=message, error="account_disconnected", undo_attempt=True, dispatched=False
        )
        return Outcome(Delivery.PAUSED, account_id=account.pk)
    except GatewayError as exc:  # GatewayRejected and anything else: failed for good
        message_mark_failed(message=message, error=_error_text(exc))
        return Outcome(Delivery.FAILED, account_id=account.pk)
    finally:
        metrics.SEND_SLOT_TO_ANSWER.observe(time.monotonic() - held.slot.asked_at)
        metrics.SEND_DURATION.observe(time.perf_counter() - started)
    message_mark_sent(message=message, platform_message_id=result.platform_message_id)
    return Outcome(Delivery.SENT, account_id=account.pk)
