"""The collision guard: a send is not queued when the thread moved on since its author looked.

A send carries ``after_message_id``, the newest message its author had on screen. When, since
then, the fan wrote again or someone else sent in that thread (another member, a campaign), or
another member has taken the thread ("I'm on it", ``crm.team_presence``), the send is refused
with 409 ``thread_changed`` / ``thread_claimed`` and the newer messages, unless ``force``.
Without ``after_message_id`` only a claim can stop it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError

from crm import selectors, team_presence
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import Conversation, Message
from crm.serializers import ThreadMessageSerializer

# A stale composer shows what is new; more than this and "and N more" is the honest summary.
NEWER_SHOWN = 20


class ThreadChangedError(ApplicationError):
    """The thread has messages its author had not seen; ``messages`` holds them (oldest first,
    as a thread shows them)."""

    def __init__(self, messages: list[Message]) -> None:
        super().__init__(
            "The conversation changed since you looked: read what is new, then send anyway "
            "or edit.",
            code="thread_changed",
            status_code=409,
            extra={"messages": ThreadMessageSerializer(messages, many=True).data},
        )
        self.messages = messages


def messages_unseen(
    *, conversation_id: int, author_id: int, after_message_id: int
) -> list[Message]:
    """What the fan or anyone but the author added to the thread after ``after_message_id``.
    One query on the thread index (``message_thread``), newest ``NEWER_SHOWN`` of them."""
    return selectors.conversation_messages_after(
        conversation_id=conversation_id,
        after_message_id=after_message_id,
        excluding_sender_id=author_id,
        limit=NEWER_SHOWN,
    )


def message_send_guarded(
    *,
    account_id: int,
    conversation_id: int | None,
    author: User,
    after_message_id: int | None,
    force: bool,
    send: Callable[[], Message],
) -> Message:
    """Queue the message with ``send()`` unless the guard stops it: ``ThreadChangedError``, or
    409 ``thread_claimed`` when another member took the thread. The guard runs only when the
    send says what its author saw (``after_message_id``), and ``force`` skips it. Sending ends
    the author's own claim and typing. ``conversation_id`` is None for a fan with no thread
    yet (nothing to collide with); the caller checked the author may see it.

    Lock: while guarding, holds the conversation's row (``SELECT … FOR UPDATE``) from the check
    until the send commits, so of two guarded sends into one thread the second waits and then
    sees the first.
    """
    if conversation_id is None or after_message_id is None or force:
        message = send()
    else:
        with transaction.atomic():
            claim = team_presence.claim_by_other(conversation_id=conversation_id, user_id=author.pk)
            if claim is not None:
                raise team_presence.thread_claimed_error(claim)
            Conversation.objects.select_for_update().filter(pk=conversation_id).values_list(
                "pk", flat=True
            ).first()
            unseen = messages_unseen(
                conversation_id=conversation_id,
                author_id=author.pk,
                after_message_id=after_message_id,
            )
            if unseen:
                raise ThreadChangedError(unseen)
            message = send()
    member = team_presence.member_for_user(author)
    thread = message.conversation_id
    transaction.on_commit(lambda: _presence_after_send(account_id, thread, member))
    return message


def _presence_after_send(
    account_id: int, conversation_id: int, member: team_presence.Member
) -> None:
    try:
        typed = team_presence.typing_clear(conversation_id=conversation_id, member=member)
        released = team_presence.claim_release(conversation_id=conversation_id, member=member)
    except RedisError:
        return  # the message is queued; typing and the claim expire by themselves
    if typed or released:
        account_event_broadcast(
            account_id=account_id,
            event="presence.changed",
            payload={"conversation_id": conversation_id},
        )


def unseen_summary(message: Message, *, now: datetime | None = None) -> str:
    """ "{name} answered 40 s ago" or "The fan wrote 2 min ago": who added it, and when."""
    seconds = max(0, int(((now or timezone.now()) - message.created_at).total_seconds()))
    ago = f"{seconds} s" if seconds < 90 else f"{seconds // 60} min"
    if message.direction == Message.Direction.IN:
        return f"The fan wrote {ago} ago"
    if message.sent_by_id is not None and message.sent_by is not None:
        return f"{message.sent_by.get_username()} answered {ago} ago"
    return f"A campaign sent {ago} ago"
