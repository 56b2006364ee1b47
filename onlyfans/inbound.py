"""Writes for what the platform tells us: fans' messages, purchases, subscriptions, sessions.

Every service here is safe to run twice for the same platform event and safe to race with a
concurrent delivery of it: the database's unique constraints decide who inserted a row, and
counters move with ``F()`` only when this call inserted it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce, Greatest, Now
from django.utils import timezone

from crm.assignment import conversation_auto_assign
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.media_send import fan_media_events_record_bought
from crm.models import (
    Conversation,
    CreatorAccount,
    Fan,
    Message,
    Purchase,
    fan_username_candidates,
    message_preview,
)
from crm.snooze import conversation_wake_for_fan_message
from onlyfans import signals

log = structlog.get_logger(__name__)


_DISPLAY_NAME_MAX = Fan._meta.get_field("display_name").max_length or 200


def _fan_get_or_create(*, account: CreatorAccount, platform_fan: dict[str, Any]) -> Fan:
    """The account's fan with this platform id, created when unknown.

    ``platform_fan`` is ``{"id": str, "username": str?, "name": str?}``. Another fan may hold
    the username already (platform usernames change and get reused): then the new fan gets a
    suffixed one instead of failing the event.
    """
    platform_fan_id = str(platform_fan["id"])
    username = str(platform_fan.get("username") or "")
    display_name = str(platform_fan.get("name") or "")[:_DISPLAY_NAME_MAX]
    fan = Fan.objects.filter(account=account, platform_fan_id=platform_fan_id).first()
    if fan is not None:
        return fan
    for candidate in fan_username_candidates(username=username, platform_fan_id=platform_fan_id):
        try:
            with transaction.atomic():
                return Fan.objects.create(
                    account=account,
                    platform_fan_id=platform_fan_id,
                    username=candidate,
                    display_name=display_name,
                )
        except IntegrityError:
            # Either a concurrent delivery created this fan (use it) or the name is taken.
            fan = Fan.objects.filter(account=account, platform_fan_id=platform_fan_id).first()
            if fan is not None:
                return fan
    raise ApplicationError("Could not store the fan.", code="fan_conflict")


def _message_received_broadcast(*, message: Message) -> None:
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=message.account_id,
            event="message.received",
            payload={
                "message_id": message.pk,
                "conversation_id": message.conversation_id,
                "fan_id": message.conversation.fan_id,
            },
        )
    )


@transaction.atomic
def message_receive(
    *,
    account: CreatorAccount,
    platform_fan: dict[str, Any],
    platform_message_id: str,
    text: str,
    price_cents: int,
    created_at: datetime,
    event_key: str,
    media_ids: list[str] | None = None,
) -> Message:
    """Store a message a fan sent, creating the fan and the conversation when unknown.

    Idempotent on the platform message id: when the account already has that message (a
    replay, or the same message under another webhook key) it is returned and nothing changes.
    No explicit lock: the unique constraints decide races, and the conversation's counters
    move with ``F()``/``GREATEST`` in one UPDATE, so concurrent messages never lose a count and
    ``last_message_at`` never goes back.
    """
    if price_cents != 0 and not 300 <= price_cents <= 20000:
        raise ApplicationError("A message's price must be 0 or 3 to 200.", code="invalid_payload")
    existing = (
        Message.objects.filter(account=account, platform_message_id=platform_message_id)
        .select_related("conversation")
        .first()
    )
    if existing is not None:
        return existing

    fan = _fan_get_or_create(account=account, platform_fan=platform_fan)
    conversation, _ = Conversation.objects.get_or_create(fan=fan, defaults={"account": account})
    try:
        with transaction.atomic():
            message = Message.objects.create(
                account=account,
                conversation=conversation,
                direction=Message.Direction.IN,
                status=Message.Status.RECEIVED,
                sender_kind=Message.SenderKind.FAN,
                text=text,
                price_cents=price_cents,
                media_ids=media_ids or [],
                platform_message_id=platform_message_id,
            )
    except IntegrityError:
        # A concurrent delivery of the same message won: it did the counting.
        return Message.objects.select_related("conversation").get(
            account=account, platform_message_id=platform_message_id
        )

    # A late (older) event counts as unread but does not replace the newer last message.
    is_latest = Q(last_message_at__isnull=True) | Q(last_message_at__lte=created_at)
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=Greatest(F("last_message_at"), Value(created_at)),
        last_message_preview=Case(
            When(is_latest, then=Value(message_preview(text))), default=F("last_message_preview")
        ),
        last_message_direction=Case(
            When(is_latest, then=Value(Message.Direction.IN)),
            default=F("last_message_direction"),
        ),
        unread_count=F("unread_count") + 1,
        waiting_since=Coalesce(F("waiting_since"), Value(created_at)),
    )
    Fan.objects.filter(pk=fan.pk).update(
        last_seen_at=Greatest(F("last_seen_at"), Value(created_at))
    )
    # The fan wrote: a snoozed conversation wakes (nothing to do, no query, when it is not).
    conversation_wake_for_fan_message(conversation=conversation)
    # Nobody at work holds it: a clocked-in chatter gets it (nothing, no query, when off).
    conversation_auto_assign(account=account, conversation_id=conversation.pk)
    log.debug("inbound.message_received", message_id=message.pk, event_key=event_key)
    _message_received_broadcast(message=message)
    signals.fan_message_received.send(
        sender=Message, account=account, message=message, fan_id=fan.pk
    )
    return message


@transaction.atomic
def purchase_record(
    *,
    account: CreatorAccount,
    platform_fan_id: str,
    kind: str,
    amount_cents: int | None,
    purchased_at: datetime,
    platform_event_id: str,
    message_platform_id: str | None = None,
) -> Purchase | None:
    """Record a tip, unlock or subscription payment once; return None when already recorded.

    Idempotent on ``(account, platform_event_id)``: the fan's lifetime spend grows (with
    ``F()``) only when this call inserted the row. An unknown fan is created with a
    placeholder username. The message with ``message_platform_id`` is linked when we have it;
    when ``amount_cents`` is None the linked message's price is used (a PPV unlock whose event
    carried no amount).
    """
    if kind not in Purchase.Kind.values:
        raise ApplicationError(f"Unknown purchase kind {kind!r}.", code="invalid_payload")
    if Purchase.objects.filter(account=account, platform_event_id=platform_event_id).exists():
        return None
    message = None
    if message_platform_id:
        message = Message.objects.filter(
            account=account, platform_message_id=message_platform_id
        ).first()
    if amount_cents is None and message is not None:
        amount_cents = message.price_cents
    if not amount_cents or amount_cents <= 0:
        raise ApplicationError("A purchase needs a positive amount.", code="invalid_payload")

    fan = _fan_get_or_create(account=account, platform_fan={"id": platform_fan_id})
    try:
        with transaction.atomic():
            purchase = Purchase.objects.create(
                account=account,
                fan=fan,
                kind=kind,
                amount_cents=amount_cents,
                purchased_at=purchased_at,
                message=message,
                platform_event_id=platform_event_id,
            )
    except IntegrityError:
        if Purchase.objects.filter(account=account, platform_event_id=platform_event_id).exists():
            return None
        raise
    Fan.objects.filter(pk=fan.pk).update(
        lifetime_spend_cents=F("lifetime_spend_cents") + amount_cents, updated_at=Now()
    )
    if kind == Purchase.Kind.PPV and message is not None:
        # What the fan got: the message's locked media are bought (crm.media_send).
        fan_media_events_record_bought(message=message, price_cents=amount_cents, at=purchased_at)
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=account.pk,
            event="purchase.recorded",
            payload={"purchase_id": purchase.pk, "fan_id": fan.pk, "kind": kind},
        )
    )
    signals.purchase_recorded.send(sender=Purchase, account=account, purchase=purchase)
    return purchase


@dataclass(frozen=True)
class SubscriptionInput:
    """One subscription event for a fan: ``platform_fan`` is ``{"id", "username"?,
    "name"?}``; ``event`` the webhook's name (``subscriptions.new``/``renewed``)."""

    platform_fan: dict[str, Any]
    subscribed_at: datetime | None
    expires_at: datetime | None
    event: str = ""
    state: str = Fan.SubscriptionState.ACTIVE


@dataclass(frozen=True)
class SubscriptionApplied:
    """What one event changed: the fan (as saved at the end of the batch), the fan's state
    and end before the event and its start and end just after it, the event's own times."""

    fan: Fan
    event: str
    previous_state: str
    previous_expires_at: datetime | None
    subscribed_at: datetime | None
    expires_at: datetime | None
    event_subscribed_at: datetime | None
    event_expires_at: datetime | None


# Every fan of a batch in one UPDATE from arrays (``bulk_update``'s CASE per row costs
# quadratic time: seconds for a few hundred fans).
_SUBSCRIPTIONS_UPDATE_SQL = f"""
UPDATE {Fan._meta.db_table} f SET subscription_state = v.state, subscribed_at = v.started,
  subscription_expires_at = v.ends, updated_at = %s
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::timestamptz[])
  AS v(id, state, started, ends)
WHERE f.id = v.id
"""  # noqa: S608 (table name only)


def _fans_locked(*, account: CreatorAccount, platform_fan_ids: list[str]) -> dict[str, Fan]:
    # In id order: two batches with fans in common wait for each other instead of deadlocking.
    return {
        fan.platform_fan_id or "": fan
        for fan in Fan.objects.select_for_update()
        .filter(account=account, platform_fan_id__in=platform_fan_ids)
        .order_by("pk")
    }


def _subscription_change(fan: Fan, change: SubscriptionInput) -> None:
    # A renewal keeps the start; it moves only when the fan (re)subscribes after not being
    # active. The end only moves forward: a late, older event cannot shorten a subscription.
    was_active = fan.subscription_state == Fan.SubscriptionState.ACTIVE
    if change.subscribed_at is not None and (fan.subscribed_at is None or not was_active):
        fan.subscribed_at = change.subscribed_at
    if change.expires_at is not None and (
        fan.subscription_expires_at is None or change.expires_at > fan.subscription_expires_at
    ):
        fan.subscription_expires_at = change.expires_at
    fan.subscription_state = change.state


@transaction.atomic
def fan_subscriptions_apply(
    *, account: CreatorAccount, changes: Sequence[SubscriptionInput]
) -> list[SubscriptionApplied]:
    """Apply subscription events to the account's fans, in order, with a few statements
    whatever their number: the known fans locked (``SELECT … FOR UPDATE``, id order), the
    unknown ones inserted together (``ON CONFLICT DO NOTHING``; one whose username is taken,
    or that a concurrent delivery inserted, is then handled alone by ``_fan_get_or_create``),
    one ``UPDATE`` for all. Events with ``event`` set are sent as
    ``onlyfans.signals.subscriptions_applied`` (one signal), in this transaction.
    """
    for change in changes:
        if change.state not in Fan.SubscriptionState.values:
            raise ApplicationError(
                f"Unknown subscription state {change.state!r}.", code="invalid_payload"
            )
    if not changes:
        return []
    wanted: dict[str, dict[str, Any]] = {}
    for change in changes:
        wanted.setdefault(str(change.platform_fan["id"]), change.platform_fan)
    fans = _fans_locked(account=account, platform_fan_ids=sorted(wanted))
    missing = sorted(set(wanted) - set(fans))
    if missing:
        Fan.objects.bulk_create(
            [
                Fan(
                    account=account,
                    platform_fan_id=platform_fan_id,
                    username=fan_username_candidates(
                        username=str(wanted[platform_fan_id].get("username") or ""),
                        platform_fan_id=platform_fan_id,
                    )[0],
                    display_name=str(wanted[platform_fan_id].get("name") or "")[:_DISPLAY_NAME_MAX],
                )
                for platform_fan_id in missing
            ],
            ignore_conflicts=True,
        )
        fans.update(_fans_locked(account=account, platform_fan_ids=missing))
        for platform_fan_id in sorted(set(wanted) - set(fans)):
            created = _fan_get_or_create(account=account, platform_fan=wanted[platform_fan_id])
            fans[platform_fan_id] = Fan.objects.select_for_update().get(pk=created.pk)
    applied = []
    for change in changes:
        fan = fans[str(change.platform_fan["id"])]
        previous_state, previous_expires_at = fan.subscription_state, fan.subscription_expires_at
        _subscription_change(fan, change)
        applied.append(
            SubscriptionApplied(
                fan=fan,
                event=change.event,
                previous_state=previous_state,
                previous_expires_at=previous_expires_at,
                subscribed_at=fan.subscribed_at,
                expires_at=fan.subscription_expires_at,
                event_subscribed_at=change.subscribed_at,
                event_expires_at=change.expires_at,
            )
        )
    now = timezone.now()
    rows = list(fans.values())
    for fan in rows:
        fan.updated_at = now
    with connection.cursor() as cursor:
        cursor.execute(
            _SUBSCRIPTIONS_UPDATE_SQL,
            [
                now,
                [fan.pk for fan in rows],
                [fan.subscription_state for fan in rows],
                [fan.subscribed_at for fan in rows],
                [fan.subscription_expires_at for fan in rows],
            ],
        )
    signalled = [item for item in applied if item.event]
    if signalled:
        signals.subscriptions_applied.send(sender=Fan, account=account, changes=signalled)
    return applied


def fan_subscription_update(
    *,
    account: CreatorAccount,
    platform_fan: dict[str, Any],
    state: str,
    subscribed_at: datetime | None,
    expires_at: datetime | None,
    event: str = "",
) -> Fan:
    """Set a fan's subscription state, creating the fan when unknown: one event of
    ``fan_subscriptions_apply`` (its rules, its lock, its signal)."""
    applied = fan_subscriptions_apply(
        account=account,
        changes=[
            SubscriptionInput(
                platform_fan=platform_fan,
                subscribed_at=subscribed_at,
                expires_at=expires_at,
                event=event,
                state=state,
            )
        ],
    )
    return applied[0].fan


def _account_dispatch_resume(*, account_id: int) -> None:
    from onlyfans.dispatch_coalescer import dispatch_on_commit

    dispatch_on_commit(account_id=account_id)


@transaction.atomic
def account_connection_set(*, account: CreatorAccount, connected: bool) -> CreatorAccount:
    """Mark the account connected or expired (the send pipeline pauses expired accounts).

    On reconnect the account's backlog is dispatched again after commit, and a fan sync and a
    vault sync start (what happened on the platform meanwhile). No lock: the state is a single
    column written in one UPDATE, and the last event delivered wins.
    """
    state = (
        CreatorAccount.ConnectionState.CONNECTED
        if connected
        else CreatorAccount.ConnectionState.EXPIRED
    )
    changed = (
        CreatorAccount.objects.filter(pk=account.pk)
        .exclude(connection_state=state)
        .update(connection_state=state, updated_at=Now())
    )
    account.connection_state = state
    if connected:
        _account_dispatch_resume(account_id=account.pk)
    if changed and connected:
        from onlyfans.sync import fan_sync_start
        from onlyfans.vault_sync import vault_sync_start

        fan_sync_start(account=account, trigger="connect")
        vault_sync_start(account=account, trigger="connect")
    if changed:
        transaction.on_commit(
            functools.partial(
                account_event_broadcast,
                account_id=account.pk,
                event="account.connection_changed",
                payload={"account_id": account.pk, "connection_state": str(state)},
            )
        )
    return account
