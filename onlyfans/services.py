"""Writes of the send pipeline: the only code that changes an outgoing Message's status."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Field, Model
from django.utils import timezone

from crm.broadcasts import account_event_broadcast
from crm.composer_checks import text_fingerprint
from crm.drafts import draft_discard_sql
from crm.errors import ApplicationError
from crm.media_send import (
    SENT_MEDIA_CTES,
    MediaAttachment,
    media_attachment_resolve,
    message_media_insert,
)
from crm.models import Conversation, CreatorAccount, Fan, Message, message_preview
from crm.worktime import WORK_SESSION_OPEN_SQL, work_session_touch
from onlyfans import metrics, signals

log = structlog.get_logger(__name__)

MAX_MEDIA = 50


def _status_broadcast_on_commit(message: Message, *, new: bool = False) -> None:
    """``new`` marks the event of a message's creation: live pages add its bubble and move
    its conversation; other status events change the bubble in place."""
    payload: dict[str, Any] = {
        "message_id": message.pk,
        "conversation_id": message.conversation_id,
        "status": message.status,
        "attempts": message.attempts,
    }
    if new:
        payload["new"] = True
    elif message.status == Message.Status.FAILED:
        payload["error"] = message.last_error
    account_id = message.account_id
    transaction.on_commit(
        lambda: account_event_broadcast(
            account_id=account_id, event="message.status", payload=payload
        )
    )


def message_validate(*, text: str, price_cents: int, media_ids: Sequence[str]) -> None:
    """Check an outgoing message against the platform's rules before it is queued."""
    errors: dict[str, list[str]] = {}
    if not isinstance(text, str) or not text.strip():
        errors["text"] = ["Text is required."]
    elif len(text) > settings.MESSAGE_TEXT_MAX_LENGTH:
        errors["text"] = [f"Text is longer than {settings.MESSAGE_TEXT_MAX_LENGTH} characters."]
    if price_cents != 0 and not 300 <= price_cents <= 20000:
        errors["price_cents"] = ["Price must be 0, or between 300 and 20000 cents ($3 to $200)."]
    elif price_cents and not media_ids:
        errors["media_ids"] = ["A paid message needs at least one media file."]
    if len(media_ids) > MAX_MEDIA:
        errors.setdefault("media_ids", []).append(f"At most {MAX_MEDIA} media files.")
    if any(not isinstance(m, str) or not m.strip() or len(m) > 100 for m in media_ids):
        errors.setdefault("media_ids", []).append("Media ids are non-empty, up to 100 characters.")
    if errors:
        raise ApplicationError("The message is not valid.", code="invalid_message", fields=errors)


def message_enqueue(
    *,
    fan: Fan,
    text: str,
    price_cents: int = 0,
    media_ids: Sequence[str] = (),
    sent_by_id: int | None = None,
    sender_kind: str = Message.SenderKind.USER,
    campaign_id: int | None = None,
    vault_item_ids: Sequence[object] = (),
    preview_item_ids: Sequence[object] = (),
    allow_resend: bool = False,
) -> Message:
    """Queue one outgoing message to a fan; the send pipeline takes it from there.

    The caller has already checked that the acting user may write to ``fan.account``. The row
    is the source of truth (an outbox): the task is published after commit, and if that fails
    the periodic sweep publishes it later.

    Media: our vault item ids (``vault_item_ids``, of which ``preview_item_ids`` stay free in
    a paid message) and/or raw platform ids (``media_ids``), checked by
    ``crm.media_send.media_attachment_resolve`` before anything is written (its refusals:
    ``media_not_found``, ``media_gone``, ``media_not_ready``, the resend guard's 409
    ``media_already_sent`` unless ``allow_resend``). A message without media is one statement
    (``_message_insert``), atomic on its own; one with media is a transaction of three (the
    check, the message, its ``MessageMedia`` rows).
    """
    with_media = bool(vault_item_ids or media_ids or preview_item_ids)
    with transaction.atomic() if with_media else contextlib.nullcontext():
        attachment = None
        if with_media:
            attachment = media_attachment_resolve(
                account_id=fan.account_id,
                fan_id=fan.pk,
                vault_item_ids=vault_item_ids,
                preview_item_ids=preview_item_ids,
                media_ids=[m for m in media_ids if isinstance(m, str)],
                price_cents=price_cents,
                allow_resend=allow_resend,
            )
            if attachment is not None:
                media_ids = attachment.media_ids
        message_validate(text=text, price_cents=price_cents, media_ids=media_ids)
        return _message_queue(
            fan=fan,
            text=text,
            price_cents=price_cents,
            media_ids=media_ids,
            sent_by_id=sent_by_id,
            sender_kind=sender_kind,
            campaign_id=campaign_id,
            attachment=attachment,
        )


def _message_queue(
    *,
    fan: Fan,
    text: str,
    price_cents: int,
    media_ids: Sequence[str],
    sent_by_id: int | None,
    sender_kind: str,
    campaign_id: int | None,
    attachment: MediaAttachment | None,
) -> Message:
    if not fan.platform_fan_id:
        raise ApplicationError(
            "This fan is not linked to the platform yet (imported without a platform id); "
            "run the platform sync to link them before sending.",
            code="fan_not_linked",
            status_code=409,
        )
    now = timezone.now()
    conversation = Conversation(
        account_id=fan.account_id,
        fan=fan,
        last_message_at=now,
        last_message_preview=message_preview(text),
        last_message_direction=Message.Direction.OUT,
        waiting_since=None,
    )
    member = sender_kind == Message.SenderKind.USER and sent_by_id is not None
    message = Message(
        account_id=fan.account_id,
        direction=Message.Direction.OUT,
        status=Message.Status.QUEUED,
        text=text,
        price_cents=price_cents,
        media_ids=list(media_ids),
        sender_kind=sender_kind,
        sent_by_id=sent_by_id,
        campaign_id=campaign_id,
        queued_at=now,
        # A member's text, for the composer's repeated-text check; campaigns are exempt.
        text_fingerprint=text_fingerprint(text) if member else None,
    )
    _message_insert(
        conversation,
        message,
        # An outgoing message answers the fan: nobody is waiting in this conversation any
        # more. An automation's message does not answer anyone (as a campaign's): the wait
        # stays.
        answers=sender_kind != Message.SenderKind.AUTOMATION,
        # What the member had typed is sent: their composer draft goes with it (in the same
        # statement), and the message belongs to their worked time, if they are clocked in.
        member_id=sent_by_id if member else None,
    )
    if attachment is not None:
        message_media_insert(message=message, attachment=attachment)
    metrics.MESSAGES_QUEUED.inc()
    log.info("message.queued", message_id=message.pk, account_id=message.account_id)
    if message.work_session_id is not None and sent_by_id is not None:
        # A send is activity (crm.worktime); only a clocked-in sender costs the Redis call.
        account_id, user_id = message.account_id, sent_by_id
        transaction.on_commit(lambda: work_session_touch(user_id=user_id, account_id=account_id))
    _status_broadcast_on_commit(message, new=True)
    signals.message_queued.send(sender=Message, message=message, fan=fan)

    from onlyfans.dispatch_coalescer import dispatch_on_commit

    dispatch_on_commit(account_id=fan.account_id)
    return message


@functools.cache
def _insert_fields(model: type[Model], *, skip: frozenset[str] = frozenset()) -> tuple[Field, ...]:
    """The fields Django's own INSERT writes for ``model``, but the primary key and ``skip``
    (once per process: the statement's columns and every send's values follow them)."""
    return tuple(
        f for f in model._meta.local_concrete_fields if not f.primary_key and f.column not in skip
    )


def _insert_values(obj: Model, fields: tuple[Field, ...]) -> list[Any]:
    """What Django's INSERT would write for ``obj``: defaults, auto timestamps, conversions."""
    return [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]


_MESSAGE_LINKS = frozenset({"conversation_id", "work_session_id"})


@functools.cache
def _message_insert_sql(*, answers: bool, member: bool) -> str:
    """The statement of ``_message_insert``; its parameters: the conversation's values, the
    message's, and for a member's message the account and the member twice (the open worked
    time, the draft)."""
    conversation_columns = [str(f.column) for f in _insert_fields(Conversation)]
    updated = ["last_message_at", "last_message_preview", "last_message_direction"]
    if answers:
        updated.append("waiting_since")
    message_columns = [str(f.column) for f in _insert_fields(Message, skip=_MESSAGE_LINKS)]
    work_session = WORK_SESSION_OPEN_SQL if member else "NULL"
    draft = draft_discard_sql(conversation="(SELECT id FROM conversation)")
    return "".join(
        [
            f"WITH conversation AS (INSERT INTO {Conversation._meta.db_table}"  # noqa: S608
            f" ({', '.join(conversation_columns)})"
            f" VALUES ({', '.join(['%s'] * len(conversation_columns))})"
            " ON CONFLICT (fan_id) DO UPDATE SET "
            + ", ".join(f"{name} = EXCLUDED.{name}" for name in updated)
            + " RETURNING id),",
            f" message AS (INSERT INTO {Message._meta.db_table}"  # noqa: S608 (names only)
            f" ({', '.join(message_columns)}, conversation_id, work_session_id)"
            f" SELECT {', '.join(['%s'] * len(message_columns))}, conversation.id,"
            f" {work_session} FROM conversation"
            " RETURNING id, conversation_id, work_session_id)",
            f", draft AS ({draft})" if member else "",
            " SELECT id, conversation_id, work_session_id FROM message",
        ]
    )


def _message_insert(
    conversation: Conversation, message: Message, *, answers: bool, member_id: int | None
) -> None:
    """One statement: the fan's conversation, created if new, else touched now (an upsert on
    the one-conversation-per-fan constraint), the message in it, and for a member's message
    their draft deleted and their open worked time linked. It runs on every send: one round
    trip, atomic without a transaction of its own (a BEGIN and a COMMIT less). Sets the
    primary keys and links on both objects, as ``Model.save`` would."""
    params = [
        *_insert_values(conversation, _insert_fields(Conversation)),
        *_insert_values(message, _insert_fields(Message, skip=_MESSAGE_LINKS)),
    ]
    if member_id is not None:
        params += [message.account_id, member_id, member_id]
    sql = _message_insert_sql(answers=answers, member=member_id is not None)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        message.pk, conversation.pk, message.work_session_id = cursor.fetchone()
    conversation._state.adding = message._state.adding = False
    conversation._state.db = message._state.db = connection.alias
    message.conversation = conversation


_PENDING_UPDATE_COLUMNS = frozenset(
    {"status", "platform_message_id", "sent_at", "last_error", "dispatched_at"}
)


# The one message (its id the last parameter) while it is pending: every status write's guard.
_PENDING_WHERE = "WHERE id = %s AND status IN ({})".format(
    ", ".join(f"'{status}'" for status in Message.PENDING_STATUSES)
)


def _update_pending(
    message_id: int, *, attempts_delta: int = 0, fan_events: bool = False, **changes: Any
) -> int:
    """Change a message only while it is pending; the number of rows changed (0 or 1).

    Hand-written SQL: this runs twice per send, and building the ORM's UPDATE cost more CPU
    than running it. ``fan_events`` (a message with media being marked sent): the same
    statement records what the fan got (``crm.media_send.SENT_MEDIA_CTES``).
    """
    assert changes.keys() <= _PENDING_UPDATE_COLUMNS, changes.keys()
    columns = [f"{name} = %s" for name in changes]
    values = list(changes.values())
    columns.append("updated_at = %s")
    values.append(timezone.now())
    if attempts_delta:
        columns.append("attempts = attempts + %s")
        values.append(attempts_delta)
    sql = f"UPDATE {Message._meta.db_table} SET {', '.join(columns)} {_PENDING_WHERE}"  # noqa: S608
    if fan_events:
        # Fixed table and column names only.
        sql = (
            f"WITH src AS ({sql} RETURNING id, account_id, conversation_id, price_cents, "  # noqa: S608
            "media_ids, sent_at, platform_message_id, sent_by_id), "
            f"{SENT_MEDIA_CTES} SELECT count(*) FROM src"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, message_id])
        if fan_events:
            return int(cursor.fetchone()[0])
        return cursor.rowcount


_MARK_SENDING_SQL = (
    f"UPDATE {Message._meta.db_table} SET status = 'sending', updated_at = %s, "  # noqa: S608
    f"attempts = attempts + 1 {_PENDING_WHERE} RETURNING attempts"
)


def message_mark_sending(*, message: Message) -> bool:
    """Claim the message for one gateway call (counts an attempt). False if it left pending.

    ``message.attempts`` becomes the row's count (the pipeline read the row before it took the
    message's lock, so another delivery may have counted attempts since)."""
    with connection.cursor() as cursor:
        cursor.execute(_MARK_SENDING_SQL, [timezone.now(), message.pk])
        row = cursor.fetchone()
    claimed = row is not None
    if claimed:
        message.status = Message.Status.SENDING
        message.attempts = row[0]
        log.info(
            "message.sending",
            message_id=message.pk,
            account_id=message.account_id,
            attempt=message.attempts,
        )
        _status_broadcast_on_commit(message)
    return bool(claimed)


def message_mark_sent(
    *, message: Message, platform_message_id: str, sent_at: datetime | None = None
) -> None:
    """The platform accepted the message. Never fails for a delivered message: an id the
    account already holds (which the platform should never give twice) is logged and dropped,
    so the message cannot stay ``sending`` and hold back its conversation."""
    sent_at = sent_at or timezone.now()
    changes: dict[str, Any] = {
        "status": Message.Status.SENT,
        "platform_message_id": platform_message_id,
        "sent_at": sent_at,
        "last_error": "",
    }
    # What the fan got, in the same statement (a message the pipeline loaded has media_ids).
    fan_events = bool(message.media_ids)
    try:
        if connection.in_atomic_block:
            with transaction.atomic():  # a savepoint, so the caller's transaction survives
                updated = _update_pending(message.pk, fan_events=fan_events, **changes)
        else:
            # One statement in autocommit: a refused one leaves nothing to roll back, and
            # BEGIN/COMMIT around it cost two more round trips on every send.
            updated = _update_pending(message.pk, fan_events=fan_events, **changes)
    except IntegrityError:
        log.error(
            "message.platform_id_conflict", message_id=message.pk, account_id=message.account_id
        )
        changes.update(platform_message_id=None, last_error="platform_id_conflict")
        updated = _update_pending(message.pk, fan_events=fan_events, **changes)
        platform_message_id = ""
    if not updated:
        return
    message.status = Message.Status.SENT
    message.platform_message_id = platform_message_id or None
    message.sent_at = sent_at
    metrics.MESSAGES_SENT.inc()
    log.info(
        "message.sent",
        message_id=message.pk,
        account_id=message.account_id,
        attempts=message.attempts,
    )
    _status_broadcast_on_commit(message)


def message_mark_failed(*, message: Message, error: str) -> None:
    """Final failure: the sender sees it in the failed list and may retry it."""
    updated = _update_pending(
        message.pk, status=Message.Status.FAILED, last_error=error[:500], dispatched_at=None
    )
    if not updated:
        return
    message.status = Message.Status.FAILED
    message.last_error = error[:500]
    metrics.MESSAGES_FAILED.inc()
    log.warning(
        "message.failed",
        message_id=message.pk,
        account_id=message.account_id,
        attempts=message.attempts,
        error_code=error.split(":", 1)[0],
    )
    _status_broadcast_on_commit(message)


def message_requeue(
    *, message: Message, error: str = "", undo_attempt: bool = False, dispatched: bool = True
) -> None:
    """Back to ``queued`` after a gateway refusal that a later attempt may overcome.

    ``dispatched`` says whether a task for it is (about to be) on the broker; when False the
    message waits in the database backlog until the account's dispatcher publishes it.
    """
    changes: dict[str, Any] = {
        "status": Message.Status.QUEUED,
        "last_error": error[:500],
        "dispatched_at": timezone.now() if dispatched else None,
    }
    if _update_pending(message.pk, attempts_delta=-1 if undo_attempt else 0, **changes):
        message.status = Message.Status.QUEUED
        _status_broadcast_on_commit(message)


def message_touch_dispatched(*, message_id: int) -> None:
    """The message's task was published again (deferred), so the sweep must not re-publish it."""
    Message.objects.filter(pk=message_id, status__in=Message.PENDING_STATUSES).update(
        dispatched_at=timezone.now()
    )


@transaction.atomic
def message_retry(*, message: Message) -> Message:
    """A failed message goes back to ``queued`` with the same idempotency key."""
    locked = Message.objects.select_for_update().get(pk=message.pk)
    if locked.status != Message.Status.FAILED:
        raise ApplicationError(
            "Only a failed message can be retried.", code="not_failed", status_code=409
        )
    if locked.campaign_id is not None:
        # A campaign's message is resent only through its campaign (campaign_resend_failed):
        # the dispatcher never claims one of a cancelled or finished campaign, a paused one
        # holds it, and the campaign's figures count its resends.
        raise ApplicationError(
            "This message belongs to a campaign; resend its failed messages from the "
            "campaign's page.",
            code="campaign_message",
            status_code=409,
            extra={"campaign_id": locked.campaign_id},
        )
    if locked.sender_kind == Message.SenderKind.AUTOMATION and locked.last_error.startswith(
        "withdrawn:"
    ):
        # Withdrawn because the fan or a member wrote first (automations): sending it now
        # would be what the withdrawal spared the fan, and its run is cancelled.
        raise ApplicationError(
            "This automated message was withdrawn before it was sent; it is not sent again.",
            code="automation_withdrawn",
            status_code=409,
        )
    locked.status = Message.Status.QUEUED
    locked.attempts = 0
    locked.dispatched_at = None
    locked.queued_at = timezone.now()
    locked.save(update_fields=["status", "attempts", "dispatched_at", "queued_at", "updated_at"])
    log.info("message.retried", message_id=locked.pk, account_id=locked.account_id)
    _status_broadcast_on_commit(locked)

    from onlyfans.dispatch_coalescer import dispatch_on_commit

    dispatch_on_commit(account_id=locked.account_id)
    return locked


def account_mark_expired(*, account_id: int, reason: str) -> None:
    """The platform says the creator must reconnect: pause the account's sends."""
    updated = CreatorAccount.objects.filter(
        pk=account_id, connection_state=CreatorAccount.ConnectionState.CONNECTED
    ).update(connection_state=CreatorAccount.ConnectionState.EXPIRED, updated_at=timezone.now())
    if updated:
        log.warning("account.expired", account_id=account_id, reason=reason)
        transaction.on_commit(
            lambda: account_event_broadcast(
                account_id=account_id, event="account.expired", payload={"account_id": account_id}
            )
        )
