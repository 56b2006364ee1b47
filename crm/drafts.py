"""Composer drafts: what a member has typed in a conversation and not sent yet.

A draft belongs to one member and one conversation and is never shown to anyone else: every
read here filters on the acting user. The composer saves it as the member types (at most
every 2 s, ``static/js/drafts.js``), renders it back on the next load (another tab, another
device), and the conversation list marks the member's rows that have one. Sending from the
composer deletes it in the send's own statement (``draft_discard_sql``, folded in by the
send service: a send that rolls back keeps it); an empty composer deletes it too. Drafts nobody
touched for ``DRAFT_TTL_DAYS`` are deleted by a periodic task (``crm.tasks.drafts_expire_task``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from crm.errors import ApplicationError
from crm.models import DRAFT_TEXT_MAX_LENGTH, Conversation, Draft, Message
from crm.selectors import User, membership_get

log = structlog.get_logger(__name__)

DRAFTS_EXPIRE_BATCH_SIZE = 1000


# --- Reads --------------------------------------------------------------------------------


def draft_get(*, user: User, conversation: Conversation) -> Draft | None:
    """The user's own draft in the conversation (the caller got ``conversation`` from a
    scoped selector); None when they have none."""
    if not user.is_authenticated:
        return None
    return Draft.objects.filter(user_id=user.pk, conversation_id=conversation.pk).first()


def draft_conversation_ids(
    *, user: User, account_id: int, conversation_ids: Iterable[int]
) -> set[int]:
    """Which of the listed conversations the user has a draft in (the list's "Draft" marker):
    one query for a page, served by the ``draft_unique_user_conversation`` index."""
    ids = list(conversation_ids)
    if not ids or not user.is_authenticated:
        return set()
    return set(
        Draft.objects.filter(user_id=user.pk, account_id=account_id, conversation_id__in=ids)
        .order_by()
        .values_list("conversation_id", flat=True)
    )


# --- Writes -------------------------------------------------------------------------------


def _draft_validate(*, text: str, price_cents: int) -> None:
    errors: dict[str, list[str]] = {}
    if len(text) > DRAFT_TEXT_MAX_LENGTH:
        errors["text"] = [f"At most {DRAFT_TEXT_MAX_LENGTH} characters."]
    if price_cents != 0 and not 300 <= price_cents <= 20000:
        errors["price_cents"] = ["Price must be 0, or between 300 and 20000 cents."]
    if errors:
        raise ApplicationError("The draft is not valid.", code="invalid_draft", fields=errors)


@transaction.atomic
def draft_save(
    *,
    actor: AbstractBaseUser,
    conversation: Conversation,
    text: str,
    price_cents: int = 0,
    composer_since: datetime | None = None,
) -> Draft | None:
    """Keep what the actor has typed in the conversation's composer; any member of the
    account may. An empty composer (blank text, no price) deletes the draft instead and
    returns None. No lock: one upsert on the (user, conversation) constraint, the last
    save wins (they come from one member's own typing).

    ``composer_since``: when the composer that typed it was rendered. A save still on its way
    when the member sent (or one from a tab left open while they sent from another) must not
    bring back what was sent: when the actor has sent in the conversation since then, the
    save is refused, 409 ``draft_stale``.
    """
    membership_get(user=actor, account_id=conversation.account_id)
    _draft_validate(text=text, price_cents=price_cents)
    if composer_since is not None and (
        Message.objects.filter(
            conversation_id=conversation.pk,
            direction=Message.Direction.OUT,
            sent_by_id=actor.pk,
            created_at__gt=composer_since,
        ).exists()
    ):
        raise ApplicationError(
            "You have sent in this conversation since this composer opened.",
            code="draft_stale",
            status_code=409,
        )
    if not text.strip() and not price_cents:
        draft_delete(actor=actor, conversation=conversation)
        return None
    [draft] = Draft.objects.bulk_create(
        [
            Draft(
                account_id=conversation.account_id,
                conversation_id=conversation.pk,
                user_id=actor.pk,
                text=text,
                price_cents=price_cents,
                updated_at=timezone.now(),
            )
        ],
        update_conflicts=True,
        unique_fields=["user", "conversation"],
        update_fields=["text", "price_cents", "updated_at"],
    )
    log.debug("draft.saved", conversation_id=conversation.pk, user_id=actor.pk)
    return draft


@transaction.atomic
def draft_delete(*, actor: AbstractBaseUser, conversation: Conversation) -> bool:
    """Delete the actor's draft in the conversation; True when there was one. Idempotent."""
    membership_get(user=actor, account_id=conversation.account_id)
    deleted, _ = Draft.objects.filter(user_id=actor.pk, conversation_id=conversation.pk).delete()
    return bool(deleted)


def draft_discard_sql(*, conversation: str) -> str:
    """The member sent from this conversation: the DELETE of their draft, which the send
    service folds into the send's own statement (a send that rolls back keeps it; the member
    was checked). ``conversation``: SQL naming the conversation's id; the user's id is the
    one parameter. A plain DELETE: a draft has no dependants and no delete signals, so
    Django's collector (and its own BEGIN and COMMIT) is not needed."""
    return (
        f"DELETE FROM {Draft._meta.db_table}"  # noqa: S608 (a table name and our own SQL)
        f" WHERE conversation_id = {conversation} AND user_id = %s"
    )


def drafts_expire(
    *, now: datetime | None = None, batch_size: int = DRAFTS_EXPIRE_BATCH_SIZE
) -> int:
    """Delete drafts untouched for ``DRAFT_TTL_DAYS``, a batch at a time; how many went.
    Idempotent: a second run finds nothing older than the cut-off."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.DRAFT_TTL_DAYS)
    total = 0
    while True:
        ids = list(
            Draft.objects.filter(updated_at__lt=cutoff)
            .order_by("updated_at")
            .values_list("id", flat=True)[:batch_size]
        )
        if not ids:
            break
        deleted, _ = Draft.objects.filter(pk__in=ids).delete()
        total += deleted
        if len(ids) < batch_size:
            break
    if total:
        log.info("drafts.expired", count=total)
    return total
