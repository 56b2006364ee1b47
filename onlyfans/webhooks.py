"""The platform gateway's webhooks: ``POST /api/onlyfans/webhooks``.

Each delivery is verified (``Signature``: hex HMAC-SHA256 of the raw body), its payload
validated (the same way whether its ``account_id`` is ours or not), recorded once by a hash of
its raw body (a ``WebhookEvent`` row inserted in the same transaction as the handling, so a
replay or a concurrent duplicate changes nothing) and handled by a service in
``onlyfans.inbound``. ``X-OFAPI-Idempotency-Key`` is not signed, so it keys nothing: a replay
under another key is still the same body; it is only logged. What handlers write is keyed by
the platform's own ids inside the signed body (message, transaction, unlocked message and fan),
else by the body's hash too. Answers: 200 ``accepted`` (handled, or ignored: an unknown account
or event, indistinguishable on purpose) / ``duplicate``; 401 ``invalid_signature``; 400
``malformed_json`` / ``invalid_event`` / ``invalid_payload``.

Subscription events (``DEFERRED_EVENTS``) come in bursts, so they are answered once stored:
validated as above, then the delivery with its payload is inserted in one statement (its
account looked up in it, duplicates decided by its unique key) and the answer goes; a task on
the bulk queue applies the stored deliveries a second later, hundreds per transaction
(``webhook_events_apply``), and beat sweeps up those a lost task left. The answers are the
same as when handled in the request (``ONLYFANS_WEBHOOK_DEFER_SECONDS`` 0, as in tests).

Payloads we accept (field names are the gateway's; we are lenient where its docs disagree):

- ``messages.received``: ``id``, ``fromUser{id, username?, name?}``, ``text?``, ``price?``
  (dollars), ``isFree?``, ``media?`` (ids or ``{id}`` objects), ``createdAt?``. ``isTip`` is
  not counted here: the tip itself arrives as a transaction.
- ``messages.ppv.unlocked``: fan in ``user.id`` | ``user_id`` | ``userId`` | ``fromUser.id``;
  amount (dollars) in ``price`` | ``amount`` | ``amountGross`` (else the unlocked message's
  own price); message in ``messageId`` | ``message_id`` | ``message.id`` | ``id``; time in
  ``createdAt`` | ``unlockedAt``. One fan unlocks one message once, so the purchase is keyed
  by message and fan, whatever the webhook key.
- tips: ``transactions.new`` with ``type: "tip"``, or any event whose payload has
  ``type: "tip"``: ``amountGross`` (dollars; else ``amount``), fan in ``user.id`` | ``user_id``
  | ``fromUser.id``, ``id`` (the transaction, keys the purchase), ``createdAt?``,
  ``messageId?``. Other transaction types are ignored: unlocks come as their own event.
- ``subscriptions.new`` / ``subscriptions.renewed``: fan in ``user`` | ``fan`` |
  ``subscriber`` | ``fromUser`` (``{id, username?, name?}``) or ``user_id``; optional
  ``subscribedAt``, ``expiresAt`` | ``expiredAt``.
- ``accounts.session_expired`` / ``accounts.reconnected``: only ``account_id``. A body seen
  before is a replay, so an identical later event is a no-op (a captured ``session_expired``
  cannot disconnect the account again); the send pipeline still learns of an expired session
  from the gateway's own answers.
- ``messages.sent`` and any other event: recorded and ignored.

Times are ISO 8601 strings (naive ones are UTC) or Unix seconds; a missing time is "now".
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

import structlog
from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.celery import task_publish
from config.redis import redis_client, redis_key_prefix
from crm.errors import ApplicationError
from crm.models import CreatorAccount, Fan, Purchase
from onlyfans.inbound import (
    SubscriptionInput,
    account_connection_set,
    fan_subscriptions_apply,
    message_receive,
    purchase_record,
)
from onlyfans.metrics import WEBHOOKS_RECEIVED
from onlyfans.models import WebhookEvent

log = structlog.get_logger(__name__)

IDEMPOTENCY_HEADER = "X-OFAPI-Idempotency-Key"
_DELIVERY_KEY_LOG_MAX = 100
_EVENT_NAME_MAX = WebhookEvent._meta.get_field("event").max_length or 100
_ID_MAX = 64

Handler = Callable[[dict[str, Any], str], Callable[[CreatorAccount], object]]


# --- Signature -----------------------------------------------------------------------------


def _signature_valid(body: bytes, signature: str | None) -> bool:
    if not signature:
        return False
    secret = settings.ONLYFANS_WEBHOOK_SECRET.encode()
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())


# --- Payload fields: wrong types become ApplicationError("invalid_payload") ---------------------


def _invalid(message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid_payload")


def _first(payload: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = payload.get(name)
        if value is not None:
            return value
    return None


def _platform_id(value: Any, field: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _invalid(f"{field} must be a string or an integer.")
    text = str(value).strip()
    if not text or len(text) > _ID_MAX:
        raise _invalid(f"{field} must be 1 to {_ID_MAX} characters.")
    return text


def _optional_str(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _invalid(f"{field} must be a string.")
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{field} must be an object.")
    return value


def _dollars_to_cents(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _invalid(f"{field} must be a number of dollars.")
    try:
        dollars = Decimal(str(value).strip())
    except InvalidOperation:
        raise _invalid(f"{field} must be a number of dollars.") from None
    if not dollars.is_finite() or dollars < 0 or dollars > 1_000_000:
        raise _invalid(f"{field} is out of range.")
    return int((dollars * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _timestamp(value: Any, field: str) -> datetime:
    if value is None:
        return timezone.now()
    parsed: datetime | None = None
    if isinstance(value, str):
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        try:
            parsed = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError):
            parsed = None
    if parsed is None:
        raise _invalid(f"{field} must be an ISO 8601 time.")
    if timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _platform_fan(value: Any, field: str) -> dict[str, Any]:
    user = _object(value, field)
    return {
        "id": _platform_id(user.get("id"), f"{field}.id"),
        "username": _optional_str(user.get("username"), f"{field}.username"),
        "name": _optional_str(user.get("name"), f"{field}.name"),
    }


def _fan_id_from(payload: dict[str, Any]) -> str:
    for name in ("user", "fromUser"):
        if payload.get(name) is not None:
            return _platform_fan(payload[name], f"payload.{name}")["id"]
    for name in ("user_id", "userId"):
        if payload.get(name) is not None:
            return _platform_id(payload[name], f"payload.{name}")
    raise _invalid("payload.user.id or payload.user_id is required.")


def _media_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid("payload.media must be a list.")
    ids = []
    for item in value:
        media_id = item.get("id") if isinstance(item, dict) else item
        ids.append(_platform_id(media_id, "payload.media[].id"))
    return ids


# --- Handlers: parse the payload (whatever the account), then act on a known account --------
# Each parser validates the whole payload before anything is written and returns the action,
# so a delivery for an account we do not have is answered exactly as one for an account we do.

Action = Callable[[CreatorAccount], object]


def _message_received(payload: dict[str, Any], event_key: str) -> Action:
    is_free = payload.get("isFree")
    price = payload.get("price")
    kwargs: dict[str, Any] = {
        "platform_fan": _platform_fan(payload.get("fromUser"), "payload.fromUser"),
        "platform_message_id": _platform_id(payload.get("id"), "payload.id"),
        "text": _optional_str(payload.get("text"), "payload.text"),
        "price_cents": 0 if is_free is True or price is None else _dollars_to_cents(price, "price"),
        "created_at": _timestamp(payload.get("createdAt"), "payload.createdAt"),
        "event_key": event_key,
        "media_ids": _media_ids(payload.get("media")),
    }
    return lambda account: message_receive(account=account, **kwargs)


def _ppv_unlocked(payload: dict[str, Any], event_key: str) -> Action:
    fan_id = _fan_id_from(payload)
    message = payload.get("message")
    raw_message_id = _first(payload, "messageId", "message_id")
    if raw_message_id is None and isinstance(message, dict):
        raw_message_id = message.get("id")
    if raw_message_id is None:
        raw_message_id = payload.get("id")
    message_id = (
        _platform_id(raw_message_id, "payload.messageId") if raw_message_id is not None else None
    )
    amount = _first(payload, "price", "amount", "amountGross")
    kwargs: dict[str, Any] = {
        "platform_fan_id": fan_id,
        "kind": Purchase.Kind.PPV,
        "amount_cents": None if amount is None else _dollars_to_cents(amount, "payload.price"),
        "purchased_at": _timestamp(_first(payload, "createdAt", "unlockedAt"), "payload.createdAt"),
        # One fan unlocks one message once; without a message id, the signed body is the key.
        "platform_event_id": f"ppv:{message_id}:{fan_id}" if message_id else event_key,
        "message_platform_id": message_id,
    }
    return lambda account: purchase_record(account=account, **kwargs)


def _tip(payload: dict[str, Any], event_key: str) -> Action:
    amount = _first(payload, "amountGross", "amount")
    if amount is None:
        raise _invalid("payload.amountGross is required.")
    transaction_id = payload.get("id")
    message_id = _first(payload, "messageId", "message_id")
    kwargs: dict[str, Any] = {
        "platform_fan_id": _fan_id_from(payload),
        "kind": Purchase.Kind.TIP,
        "amount_cents": _dollars_to_cents(amount, "payload.amountGross"),
        "purchased_at": _timestamp(payload.get("createdAt"), "payload.createdAt"),
        # The transaction's id; without one, the signed body (never the unsigned header).
        "platform_event_id": (
            f"txn:{_platform_id(transaction_id, 'payload.id')}"
            if transaction_id is not None
            else event_key
        ),
        "message_platform_id": (
            _platform_id(message_id, "payload.messageId") if message_id is not None else None
        ),
    }
    return lambda account: purchase_record(account=account, **kwargs)


def _subscription_input(
    payload: dict[str, Any], *, event: str, received_at: datetime | None = None
) -> SubscriptionInput:
    """The event's fan and times (validated); a missing start is the delivery's arrival."""
    fan: dict[str, Any] | None = None
    for name in ("user", "fan", "subscriber", "fromUser"):
        if payload.get(name) is not None:
            fan = _platform_fan(payload[name], f"payload.{name}")
            break
    if fan is None:
        fan = {"id": _fan_id_from(payload)}
    subscribed_at = payload.get("subscribedAt")
    expires_at = _first(payload, "expiresAt", "expiredAt")
    return SubscriptionInput(
        platform_fan=fan,
        state=Fan.SubscriptionState.ACTIVE,
        subscribed_at=(
            received_at
            if subscribed_at is None and received_at is not None
            else _timestamp(subscribed_at, "payload.subscribedAt")
        ),
        expires_at=None if expires_at is None else _timestamp(expires_at, "payload.expiresAt"),
        event=event,
    )


def _subscription(payload: dict[str, Any], event_key: str, *, event: str) -> Action:
    change = _subscription_input(payload, event=event)
    return lambda account: fan_subscriptions_apply(account=account, changes=[change])


def _session_expired(payload: dict[str, Any], event_key: str) -> Action:
    return lambda account: account_connection_set(account=account, connected=False)


def _reconnected(payload: dict[str, Any], event_key: str) -> Action:
    return lambda account: account_connection_set(account=account, connected=True)


HANDLERS: dict[str, Handler] = {
    "messages.received": _message_received,
    "messages.ppv.unlocked": _ppv_unlocked,
    "transactions.new": _tip,
    "subscriptions.new": functools.partial(_subscription, event="subscriptions.new"),
    "subscriptions.renewed": functools.partial(_subscription, event="subscriptions.renewed"),
    "accounts.session_expired": _session_expired,
    "accounts.reconnected": _reconnected,
}
# Events we know and deliberately do not handle (our own sends are recorded by the pipeline).
KNOWN_UNHANDLED = frozenset({"messages.sent"})


def _handler_for(event: str, payload: dict[str, Any]) -> Handler | None:
    is_tip = payload.get("type") == "tip"
    if event == "transactions.new":
        return _tip if is_tip else None
    return HANDLERS.get(event) or (_tip if is_tip else None)


# --- The service and the view -------------------------------------------------------------------


class WebhookResult(StrEnum):
    """What became of one delivery (the metric's ``result`` label and the log's)."""

    PROCESSED = "processed"  # handled in the request's transaction
    DEFERRED = "deferred"  # stored; a task applies it (``DEFERRED_EVENTS``)
    IGNORED = "ignored"  # an unknown account or an event nobody handles
    DUPLICATE = "duplicate"  # its key was seen before


def webhook_process(
    *, event_key: str, event: str, platform_account_id: str | None, payload: dict[str, Any]
) -> tuple[WebhookResult, int | None]:
    """Record the delivery once and handle it (or have it handled); return
    ``(result, account_id)``.

    ``result`` is ``processed``, ``deferred`` (stored, a task applies it: the subscription
    events, ``DEFERRED_EVENTS``), ``ignored`` (unknown account or unhandled event) or
    ``duplicate``. The payload is validated first, whether the account exists or not (an
    ``ApplicationError`` for both alike).
    """
    handler = _handler_for(event, payload)
    action = handler(payload, event_key) if handler is not None else None
    if event in DEFERRED_EVENTS and settings.ONLYFANS_WEBHOOK_DEFER_SECONDS > 0:
        return _webhook_store(
            event_key=event_key,
            event=event,
            platform_account_id=platform_account_id,
            payload=payload,
        )
    return _webhook_handle(
        event_key=event_key, event=event, platform_account_id=platform_account_id, action=action
    )


@transaction.atomic
def _webhook_handle(
    *, event_key: str, event: str, platform_account_id: str | None, action: Action | None
) -> tuple[WebhookResult, int | None]:
    """Record and handle in one transaction. The ``WebhookEvent`` insert comes first: a
    concurrent delivery of the same key waits on its unique index, then finds it taken. An
    ``ApplicationError`` from a handler rolls the record back, so a corrected redelivery is
    handled."""
    account = None
    if platform_account_id:
        account = CreatorAccount.objects.filter(platform_account_id=platform_account_id).first()
    account_id = account.pk if account is not None else None
    handled = account is not None and action is not None
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                event_key=event_key, event=event, account=account, handled=handled
            )
    except IntegrityError:
        return WebhookResult.DUPLICATE, account_id
    if account is None or action is None:
        return WebhookResult.IGNORED, account_id
    action(account)
    return WebhookResult.PROCESSED, account_id


# --- Deferred deliveries: stored in one statement, applied in batches by a bulk task -------------

# Subscriptions come in bursts (a promotion, a free trial: thousands a minute) and nothing waits
# on them but the automations, whose runs are due later anyway: they are answered once stored.
DEFERRED_EVENTS = frozenset({"subscriptions.new", "subscriptions.renewed"})
APPLY_TASK = "onlyfans.webhooks.webhook_events_apply_task"
_APPLY_KICK_KEY = "webhook-events-apply-kick"
# One task run applies at most this long, then publishes itself again for the rest.
_APPLY_BUDGET_SECONDS = 20.0

_WE = WebhookEvent._meta.db_table
_CA = CreatorAccount._meta.db_table
# The delivery, its account looked up by the platform's id, in one statement: a known
# account's is pending (its payload kept until applied), an unknown one's ended (ignored).
# The unique key decides duplicates, concurrent ones too.
_STORE_SQL = f"""
INSERT INTO {_WE} (event_key, event, account_id, handled, received_at, payload, applied_at)
SELECT %(event_key)s, %(event)s, a.id, false, now(),
  CASE WHEN a.id IS NULL THEN NULL ELSE %(payload)s::jsonb END,
  CASE WHEN a.id IS NULL THEN now() END
FROM (SELECT (SELECT id FROM {_CA} WHERE platform_account_id = %(platform_account_id)s) AS id) a
ON CONFLICT (event_key) DO NOTHING
RETURNING account_id
"""  # noqa: S608 (table names only)


def _webhook_store(
    *, event_key: str, event: str, platform_account_id: str | None, payload: dict[str, Any]
) -> tuple[WebhookResult, int | None]:
    with connection.cursor() as cursor:
        cursor.execute(
            _STORE_SQL,
            {
                "event_key": event_key,
                "event": event,
                "payload": json.dumps(payload),
                "platform_account_id": platform_account_id,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return WebhookResult.DUPLICATE, None
    account_id = row[0]
    if account_id is None:
        return WebhookResult.IGNORED, None
    _apply_soon()
    return WebhookResult.DEFERRED, int(account_id)


def _apply_soon() -> None:
    """Publish the apply task once per ``ONLYFANS_WEBHOOK_DEFER_SECONDS`` (a Redis key, set
    if absent, for that long): the deliveries meanwhile are applied together. A failure here
    loses nothing: the rows wait for the sweep."""
    global _kicked_until
    delay = settings.ONLYFANS_WEBHOOK_DEFER_SECONDS
    now = time.monotonic()
    if now < _kicked_until:
        return  # this process saw the key taken (or took it) within the window: no round trip
    _kicked_until = now + delay
    try:
        key = f"{redis_key_prefix()}:{_APPLY_KICK_KEY}"
        if not redis_client().set(key, "1", nx=True, px=max(1, int(delay * 1000))):
            return
        task_publish(APPLY_TASK, delay_seconds=delay, eta_for_fraction=True)
    except Exception:
        log.warning("webhook.apply_publish_failed", exc_info=True)


_kicked_until = 0.0


def _events_apply_batch(limit: int) -> int:
    """Apply up to ``limit`` pending deliveries (oldest first) in one transaction; return how
    many were taken. The rows are locked (``SKIP LOCKED``: two tasks take different ones) and
    marked applied in the transaction that applies them: a worker killed half-way leaves
    them pending, whole, for the next task or the sweep, and a delivery is never applied
    twice. An account's deliveries go in one ``fan_subscriptions_apply``; if that fails, one
    by one, so one bad delivery does not hold the others (it ends ``handled = false``)."""
    with transaction.atomic():
        events = list(
            WebhookEvent.objects.select_for_update(skip_locked=True)
            .filter(payload__isnull=False, applied_at__isnull=True)
            .order_by("pk")
            .only("pk", "event_key", "event", "account_id", "payload", "received_at")[:limit]
        )
        if not events:
            return 0
        by_account: dict[int | None, list[WebhookEvent]] = {}
        for item in events:
            by_account.setdefault(item.account_id, []).append(item)
        accounts = CreatorAccount.objects.in_bulk([pk for pk in by_account if pk is not None])
        handled: list[int] = []
        failed: list[int] = []
        for account_id, items in by_account.items():
            account = accounts.get(account_id) if account_id is not None else None
            if account is None:  # the account was deleted meanwhile
                failed += [item.pk for item in items]
                continue
            changes: list[tuple[WebhookEvent, SubscriptionInput]] = []
            for item in items:
                try:
                    change = _subscription_input(
                        item.payload or {}, event=item.event, received_at=item.received_at
                    )
                except ApplicationError:
                    failed.append(item.pk)
                    continue
                changes.append((item, change))
            ok, bad = _account_changes_apply(account, changes)
            handled += ok
            failed += bad
        now = timezone.now()
        WebhookEvent.objects.filter(pk__in=handled).update(applied_at=now, handled=True)
        if failed:
            WebhookEvent.objects.filter(pk__in=failed).update(applied_at=now, handled=False)
            log.warning("webhook.apply_failed", events=len(failed))
    log.info("webhook.events_applied", events=len(events), handled=len(handled))
    return len(events)


def _account_changes_apply(
    account: CreatorAccount, changes: list[tuple[WebhookEvent, SubscriptionInput]]
) -> tuple[list[int], list[int]]:
    if not changes:
        return [], []
    try:
        with transaction.atomic():
            fan_subscriptions_apply(account=account, changes=[change for _, change in changes])
        return [item.pk for item, _ in changes], []
    except (ApplicationError, IntegrityError):
        if len(changes) == 1:
            log.warning(
                "webhook.apply_failed",
                event_key=changes[0][0].event_key,
                account_id=account.pk,
                exc_info=True,
            )
            return [], [changes[0][0].pk]
    ok: list[int] = []
    bad: list[int] = []
    for pair in changes:
        one_ok, one_bad = _account_changes_apply(account, [pair])
        ok += one_ok
        bad += one_bad
    return ok, bad


def webhook_events_apply(*, limit: int | None = None, budget_seconds: float | None = None) -> int:
    """Apply the pending deliveries, a batch per transaction, until none is left or the time
    budget is spent (then the task publishes itself again). Returns how many were applied."""
    limit = limit or settings.ONLYFANS_WEBHOOK_APPLY_BATCH
    budget = _APPLY_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + budget
    total = 0
    while True:
        taken = _events_apply_batch(limit)
        total += taken
        if taken < limit:
            return total
        if time.monotonic() >= deadline:
            try:
                task_publish(APPLY_TASK)
            except Exception:
                log.warning("webhook.apply_publish_failed", exc_info=True)  # the sweep
            return total


@shared_task(name=APPLY_TASK, acks_late=True, ignore_result=True)
def webhook_events_apply_task() -> int:
    """Apply deferred webhooks (published by their answers, ``_apply_soon``, and by beat as
    the sweep of those a lost task left). Idempotent: applied rows are not pending."""
    return webhook_events_apply()


def _event_key(body: bytes) -> str:
    """The delivery's key: a hash of the raw body, which the signature covers.

    ``X-OFAPI-Idempotency-Key`` is not signed: keyed on it, a captured delivery replayed under
    a new key would be handled again (a tip counted twice, an old ``session_expired``
    disconnecting the account). It is only logged. The platform's own ids inside the body
    (message, transaction, unlocked message) key the records the handlers write as well.
    """
    return f"sha256:{hashlib.sha256(body).hexdigest()}"


def _delivery_key(request: HttpRequest) -> str | None:
    key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
    return key[:_DELIVERY_KEY_LOG_MAX] or None


def _metric_event(event: str | None) -> str:
    # Bounded label values: anything the gateway invents is "other".
    if event in HANDLERS or event in KNOWN_UNHANDLED:
        return event
    return "other"


def _answer(
    status: int,
    body: dict[str, str],
    *,
    result: str,
    event: str | None = None,
    account_id: int | None = None,
    platform_account_id: str | None = None,
    event_key: str | None = None,
    delivery_key: str | None = None,
    started: float,
) -> JsonResponse:
    WEBHOOKS_RECEIVED.labels(event=_metric_event(event), result=result).inc()
    log.info(
        "webhook.received",
        event_name=event,
        account_id=account_id,
        platform_account_id=platform_account_id,
        event_key=event_key,
        delivery_key=delivery_key,
        result=result,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return JsonResponse(body, status=status)


@csrf_exempt
@require_POST
def webhook_receive(request: HttpRequest) -> JsonResponse:
    started = time.monotonic()
    body = request.body
    if not _signature_valid(body, request.headers.get("Signature")):
        return _answer(
            401, {"code": "invalid_signature"}, result="invalid_signature", started=started
        )
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _answer(400, {"code": "malformed_json"}, result="malformed_json", started=started)
    event = data.get("event") if isinstance(data, dict) else None
    if not isinstance(event, str) or not event.strip() or len(event) > _EVENT_NAME_MAX:
        return _answer(400, {"code": "invalid_event"}, result="invalid_event", started=started)
    event_key = _event_key(body)
    platform_account_id = data.get("account_id")
    payload = data.get("payload")
    context: dict[str, Any] = {
        "event": event,
        "event_key": event_key,
        "delivery_key": _delivery_key(request),
        "started": started,
    }
    if platform_account_id is not None and not isinstance(platform_account_id, str):
        return _answer(400, {"code": "invalid_payload"}, result="invalid_payload", **context)
    context["platform_account_id"] = platform_account_id
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        return _answer(400, {"code": "invalid_payload"}, result="invalid_payload", **context)

    try:
        result, account_id = webhook_process(
            event_key=event_key,
            event=event,
            platform_account_id=platform_account_id,
            payload=payload,
        )
    except ApplicationError as error:
        return _answer(
            400, {"code": error.code, "message": error.message}, result=error.code, **context
        )
    # "processed" and "ignored" (an unknown account among them) answer alike: the answer does
    # not tell whether an account exists. Logs and metrics keep the difference.
    answer = "duplicate" if result is WebhookResult.DUPLICATE else "accepted"
    return _answer(200, {"status": answer}, result=result, account_id=account_id, **context)
