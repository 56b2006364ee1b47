"""Internal notes: what members tell one another in a thread, never sent to the fan.

A note is a ``ConversationNote``, a table of its own that the send pipeline never reads, so
no path through it can send one. A note does not touch its conversation (last message,
unread, waiting): the fan is still waiting. Every member watching the account sees a new note
live (``note.created`` on the account's group, rendered once as ``note-<id>``), and a member
named in it (``@username``, members of the account only) finds the conversation under
"Mentions" until they open it or clear it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import cast

import structlog
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as AuthUser
from django.db import transaction
from django.utils import timezone

from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import Conversation, ConversationNote, Membership, Message, NoteMention
from crm.selectors import MessagePage, cursor_moment, membership_get

log = structlog.get_logger(__name__)

User = AbstractBaseUser | AnonymousUser

NOTE_TEXT_MAX_LENGTH = ConversationNote.TEXT_MAX_LENGTH
NOTE_MENTIONS_MAX = 20
NOTES_PAGE_SIZE = 100
NOTE_COMMAND = "/note"
# A username as Django allows it, after an "@" that does not follow a word character (so an
# email address mentions nobody). One character class, one quantifier: it cannot backtrack.
_MENTION = re.compile(r"(?<![\w@])@([\w.@+-]{1,150})")


def note_command_strip(text: str) -> str | None:
    """The note's text when a composer message starts with ``/note`` (any case), else None."""
    head = text.lstrip()
    if head[: len(NOTE_COMMAND)].lower() != NOTE_COMMAND:
        return None
    rest = head[len(NOTE_COMMAND) :]
    if rest and not rest[0].isspace():
        return None  # "/notes…" is a message, not the command
    return rest.strip()


def mention_usernames(text: str) -> list[str]:
    """The ``@username``s a note names, in order, without duplicates (trailing dots and
    the like, which end a sentence, dropped)."""
    names = (match.group(1).rstrip(".-+@") for match in _MENTION.finditer(text))
    return list(dict.fromkeys(name for name in names if name))[:NOTE_MENTIONS_MAX]


def _note_text_clean(text: str) -> str:
    if len(text) > NOTE_TEXT_MAX_LENGTH * 2:  # capped before any parsing
        text = text[: NOTE_TEXT_MAX_LENGTH * 2]
    text = text.strip()
    if not text:
        raise ApplicationError(
            "Write the note first.", code="invalid_note", fields={"text": ["Required."]}
        )
    if len(text) > NOTE_TEXT_MAX_LENGTH:
        raise ApplicationError(
            f"A note can have at most {NOTE_TEXT_MAX_LENGTH} characters.",
            code="note_too_long",
            fields={"text": [f"At most {NOTE_TEXT_MAX_LENGTH} characters."]},
        )
    return text


@transaction.atomic
def note_create(*, actor: AuthUser, conversation: Conversation, text: str) -> ConversationNote:
    """Add a note to the thread; any member of its account may. Mentions resolve only to
    members of the account (anyone else named stays plain text) and never to the author.
    The conversation itself is not changed: a note is not a reply."""
    membership_get(user=actor, account_id=conversation.account_id)
    text = _note_text_clean(text)
    note = ConversationNote.objects.create(
        account_id=conversation.account_id,
        conversation_id=conversation.pk,
        author_id=actor.pk,
        text=text,
    )
    names = mention_usernames(text)
    mentioned: list[int] = []
    if names:
        mentioned = list(
            Membership.objects.filter(account_id=conversation.account_id, user__username__in=names)
            .exclude(user_id=actor.pk)
            .values_list("user_id", flat=True)
        )
        NoteMention.objects.bulk_create(
            NoteMention(
                note=note,
                conversation_id=conversation.pk,
                account_id=conversation.account_id,
                user_id=user_id,
            )
            for user_id in mentioned
        )
    log.info(
        "note.created",
        note_id=note.pk,
        conversation_id=conversation.pk,
        account_id=conversation.account_id,
        mentions=len(mentioned),
    )
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=conversation.account_id,
            event="note.created",
            payload={
                "note_id": note.pk,
                "conversation_id": conversation.pk,
                "mentioned_user_ids": mentioned,
            },
        )
    )
    return note


def mentions_clear(*, actor: AuthUser, conversation: Conversation) -> int:
    """The actor's open mentions in the conversation are seen (it leaves their "Mentions");
    how many were open. Opening a thread calls it, so it reads before it writes: most opens
    find nothing and need no write (nor a transaction: the write is one UPDATE)."""
    open_mentions = NoteMention.objects.filter(
        user_id=actor.pk, conversation_id=conversation.pk, cleared_at__isnull=True
    )
    if not open_mentions.exists():
        return 0
    return open_mentions.update(cleared_at=timezone.now())


# --- Reads ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NotePage:
    notes: list[ConversationNote]  # oldest first
    older_cursor: int | None  # pass back as ``before`` for the page of older notes


def notes_for_conversation(
    *, conversation: Conversation, before: int | None = None, limit: int = NOTES_PAGE_SIZE
) -> NotePage:
    """The newest ``limit`` notes before ``before`` (a note id), oldest first. The caller got
    ``conversation`` from a scoped selector (``crm.selectors.conversation_get``)."""
    notes = (
        ConversationNote.objects.filter(conversation_id=conversation.pk)
        .select_related("author")
        .only("id", "account_id", "conversation_id", "text", "created_at", "author__username")
        .order_by("-created_at", "-id")
    )
    if before is not None:
        notes = notes.filter(id__lt=before)
    rows = list(notes[: limit + 1])
    older = None
    if len(rows) > limit:
        rows = rows[:limit]
        older = rows[-1].pk
    rows.reverse()
    return NotePage(notes=rows, older_cursor=older)


def thread_items(
    *, conversation: Conversation, page: MessagePage, before: str = ""
) -> list[Message | ConversationNote]:
    """A page of the thread with its notes between the messages, each at its time: the notes
    from the page's oldest message (or the thread's start, on its first page) up to
    ``before`` (the cursor that asked for this page; the present for the newest page).
    One query."""
    until = cursor_moment(before)
    notes = ConversationNote.objects.filter(conversation_id=conversation.pk)
    if page.older_cursor is not None and page.messages:
        notes = notes.filter(created_at__gte=page.messages[0].created_at)
    if until is not None:
        notes = notes.filter(created_at__lt=until)
    loaded = list(
        notes.select_related("author")
        .only("id", "account_id", "conversation_id", "text", "created_at", "author__username")
        .order_by("created_at", "id")[:NOTES_PAGE_SIZE]
    )
    if not loaded:
        return list(page.messages)
    items: list[Message | ConversationNote] = [*page.messages, *loaded]
    # Stable: at an equal time a message stays before the note written about it.
    items.sort(key=lambda item: item.created_at)
    return items


def mentions_open_count(*, user: User, account_id: int) -> int:
    """How many conversations of the account name the user in a note they have not seen."""
    if not user.is_authenticated:
        return 0
    return (
        NoteMention.objects.filter(
            user_id=cast(int, user.pk), account_id=account_id, cleared_at__isnull=True
        )
        .values("conversation_id")
        .distinct()
        .count()
    )
