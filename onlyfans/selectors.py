"""Reads of the send pipeline, scoped to the accounts the acting user is a member of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from django.db import connection
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.errors import NotFoundError
from crm.models import CreatorAccount, Fan, Membership, Message
from crm.selectors import User, accounts_for_user, membership_get
from crm.shift_access import accounts_closed_now, shift_access_require
from onlyfans.broker import queue_names, sqs_client
from onlyfans.dispatch import account_rate_limit
from onlyfans.ratelimit import rate_limit_forecast_last, rate_limit_state

log = structlog.get_logger(__name__)


def outgoing_messages_for_user(*, user: User) -> QuerySet[Message]:
    if not user.is_authenticated:
        return Message.objects.none()
    return Message.objects.filter(
        direction=Message.Direction.OUT, account__memberships__user_id=cast(int, user.pk)
    )


def message_get(*, user: User, message_id: int) -> Message:
    message = (
        outgoing_messages_for_user(user=user)
        .filter(pk=message_id)
        .select_related("account")
        .first()
    )
    if message is None:
        raise NotFoundError("Message not found.", code="message_not_found")
    shift_access_require(user=user, account=message.account)
    return message


def failed_messages(*, user: User, account_id: int | None = None) -> QuerySet[Message]:
    """The failed messages of the accounts the user may open now (``crm.shift_access``): a
    chatter off shift sees none of a shift-only account's, and asking for that account by
    ``account_id`` is ``OffShiftError`` (403 ``off_shift``), as its inbox is."""
    qs = outgoing_messages_for_user(user=user).filter(status=Message.Status.FAILED)
    if account_id is not None:
        membership_get(user=user, account_id=account_id)
        qs = qs.filter(account_id=account_id)
    else:
        closed = accounts_closed_now(user=user)
        if closed:
            qs = qs.exclude(account_id__in=closed)
    return qs.order_by("-updated_at", "-id")


# The send API's reads are hand-written: they run on every send, one request at a time per
# web process (Django runs sync views on one thread), and building these queries with the ORM
# cost more CPU than PostgreSQL spent answering them (py-spy on the web server under the
# outside load; figures in bench/README.md).
_SEND_TARGET_SQL = f"""
SELECT f.id, f.platform_fan_id, a.id, a.connection_state, a.send_rate_per_minute,
       a.send_min_interval_ms, a.time_zone, a.banned_words, a.banned_words_policy,
       a.shift_only_access, a.shift_grace_minutes
FROM {Fan._meta.db_table} f JOIN {CreatorAccount._meta.db_table} a ON a.id = f.account_id
WHERE f.id = %s AND EXISTS (
  SELECT 1 FROM {Membership._meta.db_table} mb WHERE mb.account_id = f.account_id
    AND mb.user_id = %s)
"""  # noqa: S608 (table names only)
# On index message_account_pending: the messages ahead of this one in the account's backlog.
_BACKLOG_POSITION_SQL = f"""
SELECT count(*) FROM {Message._meta.db_table}
WHERE account_id = %s AND status IN ('queued', 'sending') AND id < %s
"""  # noqa: S608


def send_target_get(*, user: User, fan_id: int) -> Fan:
    """The fan a send goes to, with what the send API needs of its account (connection, send
    rate, the composer checks' banned words), if the user is a member of its account;
    NotFoundError otherwise (as ``fan_get``).

    Only those fields are loaded (the others load on access, one query each)."""
    if not user.is_authenticated:
        raise NotFoundError("Fan not found.", code="fan_not_found")
    with connection.cursor() as cursor:
        cursor.execute(_SEND_TARGET_SQL, [fan_id, user.pk])
        row = cursor.fetchone()
    if row is None:
        raise NotFoundError("Fan not found.", code="fan_not_found")
    (
        pk,
        platform_fan_id,
        account_id,
        state,
        per_minute,
        interval_ms,
        zone,
        banned,
        policy,
        shift_only,
        grace,
    ) = row
    # As the ORM builds rows it read (the other fields deferred).
    fan = Fan.from_db(
        "default", ["id", "account_id", "platform_fan_id"], [pk, account_id, platform_fan_id]
    )
    fan.account = CreatorAccount.from_db(
        "default",
        [
            "id",
            "connection_state",
            "send_rate_per_minute",
            "send_min_interval_ms",
            "time_zone",
            "banned_words",
            "banned_words_policy",
            "shift_only_access",
            "shift_grace_minutes",
        ],
        # In the model's field order (from_db's rule when some fields are deferred).
        [account_id, state, per_minute, interval_ms, zone, banned, policy, shift_only, grace],
    )
    # Shift-only accounts (crm.shift_access): free when the setting is off.
    shift_access_require(user=user, account=fan.account)
    return fan


def message_estimated_send_at(*, message: Message) -> datetime:
    """When the message should leave, from its place in the account's backlog and the limiter."""
    account = message.account
    with connection.cursor() as cursor:
        cursor.execute(_BACKLOG_POSITION_SQL, [message.account_id, message.pk])
        position = cursor.fetchone()[0]
    delay = rate_limit_forecast_last(
        account_id=account.pk, limit=account_rate_limit(account), count=position + 1
    )
    return timezone.now() + timedelta(seconds=delay)


@dataclass(frozen=True)
class QueueDepths:
    available: int | None
    in_flight: int | None
    delayed: int | None
    dead_letter: int | None


def queue_depths() -> QueueDepths:
    """Approximate counts from SQS itself (None when SQS does not answer)."""
    names = queue_names()
    try:
        client = sqs_client(timeout_seconds=2)
        attrs = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        send_url = client.get_queue_url(QueueName=names.send)["QueueUrl"]
        dlq_url = client.get_queue_url(QueueName=names.dead_letter)["QueueUrl"]
        send = client.get_queue_attributes(QueueUrl=send_url, AttributeNames=attrs)["Attributes"]
        dlq = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=attrs[:1])["Attributes"]
    except Exception:
        log.warning("sqs.unavailable", exc_info=True)
        return QueueDepths(None, None, None, None)
    return QueueDepths(
        available=int(send["ApproximateNumberOfMessages"]),
        in_flight=int(send["ApproximateNumberOfMessagesNotVisible"]),
        delayed=int(send["ApproximateNumberOfMessagesDelayed"]),
        dead_letter=int(dlq["ApproximateNumberOfMessages"]),
    )


def pipeline_status(*, user: User) -> dict[str, Any]:
    """Per account the user can see: today's counts, the backlog, the limiter; plus SQS depths.

    SQS queues are shared by all accounts, so broker depths are reported once, not per account.
    """
    day_start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    mine = Message.objects.filter(account_id=OuterRef("pk"))

    def count(qs: QuerySet[Message]) -> Coalesce:
        # One indexed subquery per figure: a join with Count(filter=...) would read every
        # message the account ever had.
        counted = qs.order_by().values("account_id").annotate(n=Count("*")).values("n")
        return Coalesce(Subquery(counted), 0)

    accounts = list(
        accounts_for_user(user=user)
        .annotate(
            queued=count(mine.filter(status=Message.Status.QUEUED)),
            sending=count(mine.filter(status=Message.Status.SENDING)),
            dispatched=count(
                mine.filter(status__in=Message.PENDING_STATUSES, dispatched_at__isnull=False)
            ),
            sent_today=count(mine.filter(status=Message.Status.SENT, sent_at__gte=day_start)),
            failed_today=count(
                mine.filter(status=Message.Status.FAILED, updated_at__gte=day_start)
            ),
            queued_today=count(
                mine.filter(direction=Message.Direction.OUT, queued_at__gte=day_start)
            ),
            last_processed_at=Subquery(
                mine.filter(sent_at__isnull=False).order_by("-sent_at").values("sent_at")[:1]
            ),
        )
        .order_by("display_name", "id")
    )
    rows = []
    for account in accounts:
        state = rate_limit_state(account_id=account.pk, limit=account_rate_limit(account))
        finished = account.sent_today + account.failed_today  # type: ignore[attr-defined]
        rows.append(
            {
                "account_id": account.pk,
                "display_name": account.display_name,
                "connection_state": account.connection_state,
                "queued": account.queued,  # type: ignore[attr-defined]
                "sending": account.sending,  # type: ignore[attr-defined]
                "on_broker": account.dispatched,  # type: ignore[attr-defined]
                "sent_today": account.sent_today,  # type: ignore[attr-defined]
                "failed_today": account.failed_today,  # type: ignore[attr-defined]
                "queued_today": account.queued_today,  # type: ignore[attr-defined]
                "failure_rate_today": round(account.failed_today / finished, 4)  # type: ignore[attr-defined]
                if finished
                else 0.0,
                "last_processed_at": account.last_processed_at,  # type: ignore[attr-defined]
                "rate_limit": {
                    "per_minute": account.send_rate_per_minute,
                    "min_interval_ms": account.send_min_interval_ms,
                    "tokens_left": state.tokens_left,
                    "next_free_slot_in_seconds": state.next_free_in_seconds,
                },
            }
        )
    depths = queue_depths()
    return {
        "accounts": rows,
        "broker": {
            "queue_depth": depths.available,
            "delayed": depths.delayed,
            "in_flight": depths.in_flight,
            "dead_letter": depths.dead_letter,
        },
    }


def account_get_for_user(*, user: User, account_id: int) -> CreatorAccount:
    account = accounts_for_user(user=user).filter(pk=account_id).first()
    if account is None:
        raise NotFoundError("Creator account not found.", code="account_not_found")
    return account
