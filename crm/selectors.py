"""Reads, always scoped to what the acting user may see."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Field,
    IntegerField,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone

from crm.errors import ApplicationError, NotFoundError
from crm.models import (
    ApiToken,
    Conversation,
    CreatorAccount,
    Fan,
    FanSearchText,
    Invitation,
    Membership,
    Message,
    MessageMedia,
    NoteMention,
    Purchase,
    SavedReply,
    VaultItem,
)
from crm.response_targets import ReplyTargets, reply_due_expression
from crm.shift_access import shift_access_require

User = AbstractBaseUser | AnonymousUser


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user_id=user.pk).select_related("account")


def managed_memberships(*, user: User) -> list[Membership]:
    """The user's owner and manager memberships (with their accounts), by account name."""
    return list(
        memberships_for_user(user=user)
        .filter(role__in=Membership.MANAGING_ROLES)
        .order_by("account__display_name", "account_id")
    )


def accounts_for_user(*, user: User) -> QuerySet[CreatorAccount]:
    if not user.is_authenticated:
        return CreatorAccount.objects.none()
    return CreatorAccount.objects.filter(memberships__user_id=user.pk)


def membership_get(*, user: User, account_id: int, off_shift_ok: bool = False) -> Membership:
    """The user's membership of the account; NotFoundError when the user is not a member.

    A chatter of a shift-only account off shift gets ``OffShiftError`` (403 ``off_shift``,
    ``crm.shift_access``) unless ``off_shift_ok`` (their schedule and the clock are open to
    them at any time)."""
    membership = memberships_for_user(user=user).filter(account_id=account_id).first()
    if membership is None:
        raise NotFoundError("Creator account not found.", code="account_not_found")
    if not off_shift_ok:
        shift_access_require(user=user, account=membership.account, membership=membership)
    return membership


def manager_membership_get(*, user: User, account_id: int, action: str) -> Membership:
    """The user's owner or manager membership of the account: the one check of "may this
    member manage" that every app uses. NotFoundError when the user is not a member (another
    account looks like none); ApplicationError 403 ``permission_denied`` for a chatter, whose
    message says they cannot ``action`` ("run campaigns", "import fans")."""
    membership = membership_get(user=user, account_id=account_id, off_shift_ok=True)
    if not membership.can_manage_members:
        raise ApplicationError(
            f"Only owners and managers can {action}.", code="permission_denied", status_code=403
        )
    return membership


def _membership_checked(
    *, user: User, account_id: int, membership: Membership | None
) -> Membership:
    """``membership`` when it is the user's membership of the account (a view that has just
    checked access passes it, which saves reading it again), else ``membership_get``."""
    if (
        membership is not None
        and user.is_authenticated
        and membership.user_id == user.pk
        and membership.account_id == account_id
    ):
        return membership
    return membership_get(user=user, account_id=account_id)


def fan_get(*, user: User, fan_id: int) -> Fan:
    """A fan of one of the user's accounts; NotFoundError for anyone else's fan."""
    if not user.is_authenticated:
        raise NotFoundError("Fan not found.", code="fan_not_found")
    fan = (
        Fan.objects.filter(pk=fan_id, account__memberships__user_id=cast(int, user.pk))
        .select_related("account")
        .first()
    )
    if fan is None:
        raise NotFoundError("Fan not found.", code="fan_not_found")
    shift_access_require(user=user, account=fan.account)
    return fan


# --- Web pages and API (appended) ---------------------------------------------------------

FAN_SORTS = {"spend": "Top spenders", "last_seen": "Recently seen"}


def memberships_with_fan_counts(*, user: User) -> QuerySet[Membership]:
    """The user's memberships with their account and its fan count, in one query."""
    return (
        memberships_for_user(user=user)
        .annotate(fan_count=Count("account__fans"))
        .order_by("account__display_name", "account_id")
    )


def fan_conversation_id(*, fan: Fan) -> int | None:
    """The id of the fan's conversation, None when they have none yet (callers checked that
    the user may see the fan)."""
    return (
        Conversation.objects.filter(account_id=fan.account_id, fan_id=fan.pk)
        .values_list("id", flat=True)
        .first()
    )


def fans_without_chat_matching(
    *, user: User, account_id: int, query: str, limit: int = 5
) -> list[Fan]:
    """Fans matching an inbox search who have no message yet (imported fans, say), so the
    inbox can point to them when no conversation matches; NotFoundError for non-members."""
    membership_get(user=user, account_id=account_id)
    fans = fans_search(Fan.objects.filter(account_id=account_id), query.strip())
    return list(
        fans.filter(Q(conversation__isnull=True) | Q(conversation__last_message_at__isnull=True))
        .only("id", "account_id", "username", "display_name")
        .order_by("-lifetime_spend_cents", "id")[:limit]
    )


def fans_search(fans: QuerySet[Fan], query: str) -> QuerySet[Fan]:
    """The fans whose username or name contains ``query``, in any case (icontains compiles to
    UPPER(…) LIKE UPPER(…), which the fan_search_trgm index serves)."""
    return fans.alias(search_text=FanSearchText()).filter(search_text__icontains=query)


def fans_for_account(
    *,
    user: User,
    account_id: int,
    query: str = "",
    tag: str = "",
    subscription_state: str = "",
    sort: str = "spend",
    membership: Membership | None = None,
) -> QuerySet[Fan]:
    """An account's fans, filtered and sorted; NotFoundError when the user is not a member.
    ``membership``: the user's membership of the account when the caller has it already.

    ``tag`` uses ``tags @> ARRAY[tag]`` so the GIN index on tags serves it.
    """
    _membership_checked(user=user, account_id=account_id, membership=membership)
    fans = Fan.objects.filter(account_id=account_id)
    query = query.strip()
    if query:
        fans = fans_search(fans, query)
    tag = tag.strip().lower()
    if tag:
        fans = fans.filter(tags__contains=[tag])
    if subscription_state in Fan.SubscriptionState.values:
        fans = fans.filter(subscription_state=subscription_state)
    if sort == "last_seen":
        # Plain DESC (nulls first) so the (account, -last_seen_at) index serves the sort.
        return fans.order_by("-last_seen_at", "-id")
    return fans.order_by("-lifetime_spend_cents", "id")


def members_for_account(
    *, user: User, account_id: int, membership: Membership | None = None
) -> QuerySet[Membership]:
    """Everyone in the account, owners first; NotFoundError when the user is not a member.
    ``membership``: the user's membership of the account when the caller has it already."""
    _membership_checked(user=user, account_id=account_id, membership=membership)
    rank = Case(
        When(role=Membership.Role.OWNER, then=Value(0)),
        When(role=Membership.Role.MANAGER, then=Value(1)),
        default=Value(2),
        output_field=IntegerField(),
    )
    return (
        Membership.objects.filter(account_id=account_id)
        .select_related("user", "account")
        .order_by(rank, "user__username")
    )


def member_get(*, user: User, account_id: int, membership_id: int) -> Membership:
    """One membership of an account the user belongs to; NotFoundError otherwise."""
    membership = (
        members_for_account(user=user, account_id=account_id).filter(pk=membership_id).first()
    )
    if membership is None:
        raise NotFoundError("Member not found.", code="member_not_found")
    return membership


def fan_recent_purchases(*, fan: Fan, limit: int = 10) -> list[Purchase]:
    return list(fan.purchases.order_by("-purchased_at", "-id")[:limit])


def api_tokens_of_user(*, user: User) -> list[ApiToken]:
    """The user's tokens, newest first (revoked ones too, marked), for the settings page."""
    if not user.is_authenticated:
        return []
    return list(
        ApiToken.objects.filter(user_id=user.pk).order_by("revoked_at", "-created_at", "-id")
    )


# --- Invitations ----------------------------------------------------------------------------

INVITATIONS_LIST_MAX = 100  # crm.invitations caps the open ones at as many
INVITATION_INVALID_MESSAGE = "This invitation is no longer valid."


def invitation_invalid() -> NotFoundError:
    """The one answer for an unknown, expired, used or revoked link: none is told apart."""
    return NotFoundError(INVITATION_INVALID_MESSAGE, code="invitation_invalid")


def invitations_pending_for_account(
    *, user: User, account_id: int, membership: Membership | None = None
) -> list[Invitation]:
    """The account's open invitations, newest first, for its owners and managers (nobody else
    sees them: a chatter gets none); NotFoundError when the user is not a member."""
    membership = _membership_checked(user=user, account_id=account_id, membership=membership)
    if not membership.can_manage_members:
        return []
    return list(
        Invitation.objects.filter(
            account_id=account_id,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .select_related("created_by")
        .defer(*_user_brief_defer("created_by"))
        .order_by("-created_at", "-id")[:INVITATIONS_LIST_MAX]
    )


@dataclass(frozen=True)
class InvitationForVisitor:
    """What the accept page shows: the invitation and whether the visitor is in already."""

    invitation: Invitation
    already_member: bool


def invitation_for_token(*, user: User, token: str) -> InvitationForVisitor:
    """The open invitation the link's token stands for (the token is the visitor's right to
    see it); NotFoundError ``invitation_invalid`` for an unknown, expired, accepted or revoked
    one alike."""
    if not token or len(token) > Invitation.TOKEN_MAX_LENGTH:
        raise invitation_invalid()
    invitation = (
        Invitation.objects.select_related("account")
        .filter(token_hash=Invitation.token_hash_of(token))
        .first()
    )
    if invitation is None or not invitation.is_open(now=timezone.now()):
        raise invitation_invalid()
    already_member = user.is_authenticated and (
        Membership.objects.filter(user_id=user.pk, account_id=invitation.account_id).exists()
    )
    return InvitationForVisitor(invitation=invitation, already_member=already_member)


# --- Inbox ----------------------------------------------------------------------------------

INBOX_PAGE_SIZE = 50
THREAD_PAGE_SIZE = 100
INBOX_SORTS = {"recent": "Newest activity", "waiting": "Waiting, most urgent first"}


@dataclass(frozen=True)
class InboxFilters:
    """What the conversation list shows; every field comes from the URL's query string."""

    query: str = ""
    unread: bool = False
    waiting: bool = False
    mine: bool = False
    mentions: bool = False  # the user is named in a note they have not seen (crm.notes)
    snoozed: bool = False  # only snoozed conversations (crm.snooze); else they are hidden
    tag: str = ""
    subscription_state: str = ""
    sort: str = "recent"

    @property
    def is_default(self) -> bool:
        return self == InboxFilters(sort=self.sort) and self.sort == "recent"


@dataclass(frozen=True)
class ConversationPage:
    conversations: list[Conversation]
    next_cursor: str | None
    # The account's first-reply targets, for the rows' time left (crm.response_targets).
    reply_targets: ReplyTargets | None = None


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]  # oldest first
    older_cursor: str | None


def _cursor_encode(moment: datetime, pk: int) -> str:
    micros = int(moment.timestamp() * 1_000_000)
    return f"{micros}.{pk}"


def _cursor_decode(cursor: str) -> tuple[datetime, int]:
    """``<epoch microseconds>.<id>``; ApplicationError (``invalid_cursor``) when malformed."""
    try:
        micros_text, pk_text = cursor.split(".", 1)
        micros, pk = int(micros_text), int(pk_text)
        moment = datetime.fromtimestamp(micros / 1_000_000, tz=UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise ApplicationError(
            "The page cursor is not valid.", code="invalid_cursor", fields={"cursor": ["Invalid."]}
        ) from exc
    if not 0 <= pk < 2**63:
        raise ApplicationError("The page cursor is not valid.", code="invalid_cursor")
    return moment, pk


def page_cursor_encode(moment: datetime, pk: int) -> str:
    """A keyset page cursor (``<epoch microseconds>.<id>``) for lists ordered by time, id."""
    return _cursor_encode(moment, pk)


def page_cursor_decode(cursor: str) -> tuple[datetime, int]:
    """The time and id a cursor of ``page_cursor_encode`` stands at; ``invalid_cursor``."""
    return _cursor_decode(cursor)


def cursor_moment(cursor: str) -> datetime | None:
    """The time a page cursor stands at (None for none), e.g. to bound what a page shows
    beside its messages; ApplicationError ``invalid_cursor`` when malformed."""
    return _cursor_decode(cursor)[0] if cursor else None


def _row_compare(columns: str, op: str, moment: datetime, pk: int) -> RawSQL:
    # A row comparison, so PostgreSQL walks the (account, time, id) index straight to the page.
    return RawSQL(f"({columns}) {op} (%s, %s)", (moment, pk), output_field=BooleanField())  # noqa: S611


def _user_brief_defer(relation: str) -> list[str]:
    """Every column of a related user but its id and username, which is all a list shows of it
    (a password hash and dates on each of a page's rows cost decoding for nothing)."""
    model = get_user_model()
    keep = {model._meta.pk.name, model.USERNAME_FIELD}  # type: ignore[union-attr]
    return [f"{relation}__{f.name}" for f in model._meta.concrete_fields if f.name not in keep]


# What neither a list row nor the API shows of a fan (notes can hold 10,000 characters).
_FAN_LIST_DEFER = ["fan__email", "fan__notes", "fan__subscribed_at", "fan__subscription_expires_at",
                   "fan__created_at", "fan__updated_at"]  # fmt: skip

SEARCH_PREFILTER_MAX = 1000


def _fans_matching(*, account_id: int, query: str) -> list[int] | QuerySet[Fan, int]:
    """The account's fans whose username or name contains ``query``.

    Fetched first, through the trigram indexes, when they are few: joined into the list's
    query instead, PostgreSQL walked every conversation by recency checking each fan (about a
    second on 100,000 fans for a rare term). A common term (more than the cap) stays a
    subquery: walking by recency finds a page of matches quickly then.
    """
    # No ORDER BY: Fan's default (by spend) made PostgreSQL walk the spend index instead.
    matching = fans_search(Fan.objects.filter(account_id=account_id), query).order_by()
    matching_ids = matching.values_list("id", flat=True)
    ids = list(matching_ids[: SEARCH_PREFILTER_MAX + 1])
    if len(ids) <= SEARCH_PREFILTER_MAX:
        return ids
    return matching_ids


def _sorted_without_index(
    conversations: QuerySet[Conversation], sort: str, targets: ReplyTargets
) -> QuerySet[Conversation]:
    """The same order, by an expression no index serves, for a list already cut to a few
    fans: it is read through the fan index and sorted. Sorted by the plain columns, PostgreSQL
    walked the account's recency index checking each conversation against the ids instead
    (13,800 conversations for a term 300 fans match, 50-300 ms on 100,000)."""
    if sort == "waiting":
        if targets.has_vip:  # already an expression (reply_due_expression)
            return conversations.order_by(F("reply_due_at").asc(), "id")
        key = ExpressionWrapper(F("waiting_since") + timedelta(0), output_field=DateTimeField())
        return conversations.order_by(key.asc(), "id")
    key = ExpressionWrapper(F("last_message_at") + timedelta(0), output_field=DateTimeField())
    return conversations.order_by(key.desc(), "-id")


def conversations_for_account(
    *,
    user: User,
    account_id: int,
    filters: InboxFilters,
    cursor: str = "",
    limit: int = INBOX_PAGE_SIZE,
    membership: Membership | None = None,
) -> ConversationPage:
    """One page of an account's conversations (keyset pagination); NotFoundError for
    non-members. ``membership``: the user's membership of the account when the caller has it.

    ``recent`` sorts by newest activity; ``waiting`` lists only conversations where the fan
    waits for a reply, soonest due first against the first-reply target that applies
    (``crm.response_targets``): overdue ones first, the most overdue on top. With one target
    for every fan that is longest waiting first, read in the waiting index's order; with a VIP
    target the due time depends on the fan's spend, so the account's waiting conversations
    are sorted by it (no index can hold the fan's spend). Conversations without any message
    are not shown.
    """
    membership = _membership_checked(user=user, account_id=account_id, membership=membership)
    targets = ReplyTargets.of(membership.account)
    table = Conversation._meta.db_table
    conversations = (
        Conversation.objects.filter(account_id=account_id)
        .select_related("fan", "assigned_to")
        .defer(*_FAN_LIST_DEFER, *_user_brief_defer("assigned_to"))
    )
    by_due = filters.sort == "waiting" and targets.has_vip
    if filters.sort == "waiting":
        conversations = conversations.filter(waiting_since__isnull=False)
        if by_due:
            conversations = conversations.annotate(
                reply_due_at=reply_due_expression(targets)
            ).order_by("reply_due_at", "id")
        else:
            conversations = conversations.order_by("waiting_since", "id")
    else:
        conversations = conversations.filter(last_message_at__isnull=False).order_by(
            "-last_message_at", "-id"
        )
    query = filters.query.strip()
    if query:
        matching = _fans_matching(account_id=account_id, query=query)
        conversations = conversations.filter(fan_id__in=matching)
        if isinstance(matching, list):
            conversations = _sorted_without_index(conversations, filters.sort, targets)
    if filters.unread:
        conversations = conversations.filter(unread_count__gt=0)
    if filters.waiting and filters.sort != "waiting":
        conversations = conversations.filter(waiting_since__isnull=False)
    if filters.mine:
        conversations = conversations.filter(assigned_to_id=user.pk)
    if filters.mentions:
        conversations = conversations.filter(
            pk__in=NoteMention.objects.filter(
                user_id=cast(int, user.pk), account_id=account_id, cleared_at__isnull=True
            ).values("conversation_id")
        )
    # Snoozed conversations show in their own view and in searches only (crm.snooze).
    if filters.snoozed:
        conversations = conversations.filter(snoozed_at__isnull=False)
    elif not query:
        conversations = conversations.filter(snoozed_at__isnull=True)
    tag = filters.tag.strip().lower()
    if tag:
        conversations = conversations.filter(fan__tags__contains=[tag])
    if filters.subscription_state in Fan.SubscriptionState.values:
        conversations = conversations.filter(fan__subscription_state=filters.subscription_state)
    if cursor:
        moment, pk = _cursor_decode(cursor)
        condition: Q | RawSQL
        if by_due:
            condition = Q(reply_due_at__gt=moment) | Q(reply_due_at=moment, id__gt=pk)
        elif filters.sort == "waiting":
            condition = _row_compare(f"{table}.waiting_since, {table}.id", ">", moment, pk)
        else:
            condition = _row_compare(f"{table}.last_message_at, {table}.id", "<", moment, pk)
        conversations = conversations.filter(condition)
    rows = list(conversations[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        if by_due:
            last_moment = last.reply_due_at  # type: ignore[attr-defined]
        elif filters.sort == "waiting":
            last_moment = last.waiting_since
        else:
            last_moment = last.last_message_at
        assert last_moment is not None
        next_cursor = _cursor_encode(last_moment, last.pk)
    return ConversationPage(conversations=rows, next_cursor=next_cursor, reply_targets=targets)


def conversation_get(
    *, user: User, conversation_id: int, account_id: int | None = None
) -> Conversation:
    """A conversation of one of the user's accounts (with its fan, account and assignee);
    NotFoundError otherwise, and when ``account_id`` is given and does not match."""
    if not user.is_authenticated:
        raise NotFoundError("Conversation not found.", code="conversation_not_found")
    conversations = Conversation.objects.filter(
        pk=conversation_id, account__memberships__user_id=cast(int, user.pk)
    )
    if account_id is not None:
        conversations = conversations.filter(account_id=account_id)
    conversation = conversations.select_related("fan", "account", "assigned_to").first()
    if conversation is None:
        raise NotFoundError("Conversation not found.", code="conversation_not_found")
    shift_access_require(user=user, account=conversation.account)
    return conversation


# A queued campaign message whose campaign is paused is held: it leaves when the campaign
# resumes (the dispatcher skips it). The campaigns table by name, as onlyfans.dispatch reads
# it (crm does not import the campaigns app); only queued campaign messages look.
_HELD_SQL = f"""
CASE WHEN {Message._meta.db_table}.campaign_id IS NOT NULL
      AND {Message._meta.db_table}.status = 'queued'
  THEN EXISTS (SELECT 1 FROM campaigns_campaign c
               WHERE c.id = {Message._meta.db_table}.campaign_id AND c.state = 'paused')
  ELSE false END
"""  # noqa: S608 (table names only)


# The media a message carried, for its bubble's thumbnails: per media, in order,
# ``[vault item id, free preview, type, thumbnail version or null, platform id]``. A message
# without media looks nothing up.
_MEDIA_SQL = f"""
CASE WHEN cardinality({Message._meta.db_table}.media_ids) > 0 THEN (
  SELECT json_agg(json_build_array(mm.vault_item_id, mm.is_preview, v.media_type,
           CASE WHEN v.thumb_name <> '' THEN extract(epoch FROM v.thumb_fetched_at)::bigint END,
           mm.platform_media_id) ORDER BY mm.position)
  FROM {MessageMedia._meta.db_table} mm
  LEFT JOIN {VaultItem._meta.db_table} v ON v.id = mm.vault_item_id
  WHERE mm.message_id = {Message._meta.db_table}.id)::text
END
"""  # noqa: S608 (table names only)


@dataclass(frozen=True)
class MediaThumb:
    """One media of a message as its bubble shows it: our thumbnail (``url``, None without
    one), its kind, and whether it was a free preview of a paid message."""

    url: str | None
    label: str
    is_preview: bool


def _media_thumbs(account_id: int, rows_json: str | None) -> list[MediaThumb]:
    if not rows_json:
        return []
    rows: list[list[Any]] = json.loads(rows_json)  # the json array, as text
    thumbs = []
    for item_id, is_preview, media_type, version, platform_id in rows:
        url = None
        if item_id is not None and version is not None:
            url = f"{reverse('vault_item_thumb', args=[account_id, item_id])}?v={version}"
        label = f"{media_type or 'media'} {platform_id}"
        thumbs.append(MediaThumb(url=url, label=label, is_preview=bool(is_preview)))
    return thumbs


def _messages_with_display(messages: QuerySet[Message]) -> QuerySet[Message]:
    return messages.select_related("sent_by").annotate(
        campaign_paused=RawSQL(_HELD_SQL, [], output_field=BooleanField()),  # noqa: S611
        media_rows=RawSQL(_MEDIA_SQL, [], output_field=TextField()),  # noqa: S611
    )


def _unlocked_mark(messages: list[Message]) -> list[Message]:
    """Set ``unlocked`` on each message: a PPV purchase points at it.

    One query for the page's ids, after the page is taken: as a correlated EXISTS the planner
    hashed every PPV purchase of every account on long threads (tens of ms).
    """
    if not messages:
        return messages
    bought = set(
        Purchase.objects.filter(message_id__in=[m.pk for m in messages], kind=Purchase.Kind.PPV)
        .order_by()
        .values_list("message_id", flat=True)
    )
    for message in messages:
        message.unlocked = message.pk in bought  # type: ignore[attr-defined]
        message.media_thumbs = _media_thumbs(  # type: ignore[attr-defined]
            message.account_id, getattr(message, "media_rows", None)
        )
    return messages


def conversation_messages(
    *, conversation: Conversation, before: str = "", limit: int = THREAD_PAGE_SIZE
) -> MessagePage:
    """The newest ``limit`` messages of a thread before the cursor, returned oldest first.

    The caller got ``conversation`` from a scoped selector. Pay-per-view messages carry
    ``unlocked`` (a PPV purchase points at them).
    """
    table = Message._meta.db_table
    messages = (
        _messages_with_display(Message.objects.filter(conversation_id=conversation.pk))
        # Neither the page nor the API shows these; a page has 100 rows.
        .defer("platform_message_id", "idempotency_key", "dispatched_at", "updated_at")
        .defer(*_user_brief_defer("sent_by"))
        .order_by("-created_at", "-id")
    )
    if before:
        moment, pk = _cursor_decode(before)
        messages = messages.filter(_row_compare(f"{table}.created_at, {table}.id", "<", moment, pk))
    rows = list(messages[: limit + 1])
    older_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        older_cursor = _cursor_encode(rows[-1].created_at, rows[-1].pk)
    rows.reverse()
    return MessagePage(messages=_unlocked_mark(rows), older_cursor=older_cursor)


def conversation_messages_after(
    *, conversation_id: int, after_message_id: int, excluding_sender_id: int, limit: int
) -> list[Message]:
    """The thread's messages after ``after_message_id`` that ``excluding_sender_id`` did not
    send, oldest first (at most the newest ``limit``), as a thread shows them. The caller got
    the conversation from a scoped selector."""
    messages = (
        _messages_with_display(
            Message.objects.filter(conversation_id=conversation_id, id__gt=after_message_id)
        )
        .exclude(direction=Message.Direction.OUT, sent_by_id=excluding_sender_id)
        .order_by("-id")
    )
    rows = list(messages[:limit])
    rows.reverse()
    return _unlocked_mark(rows)


@dataclass(frozen=True)
class UserBrief:
    """Who sent a message or is assigned a conversation, as a row shows them."""

    pk: int
    username: str

    def get_username(self) -> str:
        return self.username


@dataclass(frozen=True)
class FanBrief:
    pk: int
    display_name: str
    username: str
    lifetime_spend_cents: int


@dataclass(frozen=True)
class ConversationDisplay:
    """What the list's row shows of a conversation (``templates/crm/inbox/_row.jinja``)."""

    pk: int
    account_id: int
    fan: FanBrief
    unread_count: int
    waiting_since: datetime | None
    last_message_at: datetime | None
    last_message_preview: str
    last_message_direction: str
    assigned_to: UserBrief | None
    # Snooze (crm.snooze): the row's "snoozed" class and markers.
    snoozed_at: datetime | None = None
    snoozed_until: datetime | None = None
    woke_from_snooze_at: datetime | None = None
    # The account's first-reply targets: the row's time left (crm.response_targets).
    reply_targets: ReplyTargets | None = None


@dataclass(frozen=True)
class MessageDisplay:
    """What a thread's bubble shows of a message (``templates/crm/inbox/_bubble.jinja``)."""

    pk: int
    account_id: int
    conversation_id: int
    conversation: ConversationDisplay
    direction: str
    status: str
    text: str
    price_cents: int
    media_ids: list[str]
    created_at: datetime
    last_error: str
    campaign_id: int | None
    sent_by_id: int | None
    sent_by: UserBrief | None
    campaign_paused: bool
    unlocked: bool
    media_thumbs: list[MediaThumb] = field(default_factory=list)


def _display_sql() -> tuple[str, str]:
    """The live events' two reads, as fixed SQL: a new message (with its conversation) and a
    conversation. Written once per process; an ORM queryset with four joins and a raw
    annotation cost more to compile per event than to run."""
    user = get_user_model()
    user_table = user._meta.db_table
    username = cast("Field[Any, Any]", user._meta.get_field(user.USERNAME_FIELD)).column
    m, c, f = Message._meta.db_table, Conversation._meta.db_table, Fan._meta.db_table
    a = CreatorAccount._meta.db_table
    conversation_columns = f"""
        {c}.id, {c}.account_id, {c}.unread_count, {c}.waiting_since, {c}.last_message_at,
        {c}.last_message_preview, {c}.last_message_direction, {c}.assigned_to_id,
        assignee.{username}, {f}.id, {f}.display_name, {f}.username, {f}.lifetime_spend_cents,
        {c}.snoozed_at, {c}.snoozed_until, {c}.woke_from_snooze_at,
        {a}.reply_target_seconds, {a}.vip_reply_target_seconds, {a}.vip_spend_threshold_cents"""
    conversation_joins = f"""
        JOIN {f} ON {f}.id = {c}.fan_id
        JOIN {a} ON {a}.id = {c}.account_id
        LEFT JOIN {user_table} assignee ON assignee.id = {c}.assigned_to_id"""
    message_sql = f"""
        SELECT {conversation_columns},
               {m}.id, {m}.direction, {m}.status, {m}.text, {m}.price_cents, {m}.media_ids,
               {m}.created_at, {m}.last_error, {m}.campaign_id, {m}.sent_by_id,
               sender.{username}, {_HELD_SQL},
               EXISTS (SELECT 1 FROM {Purchase._meta.db_table} p
                       WHERE p.message_id = {m}.id AND p.kind = %s),
               {_MEDIA_SQL}
        FROM {m}
        JOIN {c} ON {c}.id = {m}.conversation_id {conversation_joins}
        LEFT JOIN {user_table} sender ON sender.id = {m}.sent_by_id
        WHERE {m}.id = %s"""  # noqa: S608 (table and column names only)
    conversation_sql = f"""
        SELECT {conversation_columns} FROM {c} {conversation_joins}
        WHERE {c}.id = %s"""  # noqa: S608 (table and column names only)
    return message_sql, conversation_sql


_DISPLAY_SQL: tuple[str, str] | None = None


def _display_fetch(which: int, params: list[int | str]) -> tuple[Any, ...] | None:
    global _DISPLAY_SQL
    if _DISPLAY_SQL is None:
        _DISPLAY_SQL = _display_sql()
    with connection.cursor() as cursor:
        cursor.execute(_DISPLAY_SQL[which], params)
        return cursor.fetchone()


# How many columns of a display row are the conversation's (``conversation_columns``).
_CONVERSATION_COLUMNS = 19


def _conversation_display(row: tuple[Any, ...]) -> ConversationDisplay:
    (pk, account_id, unread, waiting, last_at, preview, direction, assignee_id, assignee) = row[:9]
    fan_id, display_name, fan_username, spend = row[9:13]
    snoozed_at, snoozed_until, woke_at = row[13:16]
    target, vip_target, vip_threshold = row[16:_CONVERSATION_COLUMNS]
    return ConversationDisplay(
        pk=pk,
        account_id=account_id,
        fan=FanBrief(
            pk=fan_id, display_name=display_name, username=fan_username, lifetime_spend_cents=spend
        ),
        unread_count=unread,
        waiting_since=waiting,
        last_message_at=last_at,
        last_message_preview=preview,
        last_message_direction=direction,
        assigned_to=UserBrief(pk=assignee_id, username=assignee) if assignee_id else None,
        snoozed_at=snoozed_at,
        snoozed_until=snoozed_until,
        woke_from_snooze_at=woke_at,
        reply_targets=ReplyTargets(
            seconds=target, vip_seconds=vip_target, vip_spend_threshold_cents=vip_threshold
        ),
    )


def message_for_display(*, message_id: int) -> MessageDisplay | None:
    """One message as a thread shows it, with its conversation as the list shows it (for
    live events, which run after commit, and the composer's answer). One fixed query."""
    row = _display_fetch(0, [Purchase.Kind.PPV.value, message_id])
    if row is None:
        return None
    conversation = _conversation_display(row)
    first = _CONVERSATION_COLUMNS
    (pk, direction, status, text, price, media, created, error, campaign_id, sender_id) = row[
        first : first + 10
    ]
    sender, paused, unlocked, media_rows = row[first + 10 : first + 14]
    return MessageDisplay(
        pk=pk,
        account_id=conversation.account_id,
        conversation_id=conversation.pk,
        conversation=conversation,
        direction=direction,
        status=status,
        text=text,
        price_cents=price,
        media_ids=list(media or []),
        created_at=created,
        last_error=error,
        campaign_id=campaign_id,
        sent_by_id=sender_id,
        sent_by=UserBrief(pk=sender_id, username=sender) if sender_id else None,
        campaign_paused=bool(paused),
        unlocked=bool(unlocked),
        media_thumbs=_media_thumbs(conversation.account_id, media_rows),
    )


def conversation_for_display(*, conversation_id: int) -> ConversationDisplay | None:
    """One conversation as the list shows it (for live events). One fixed query."""
    row = _display_fetch(1, [conversation_id])
    return _conversation_display(row) if row is not None else None


def conversation_message_get(*, conversation: Conversation, message_id: int) -> Message:
    message = _messages_with_display(
        Message.objects.filter(pk=message_id, conversation_id=conversation.pk)
    ).first()
    if message is None:
        raise NotFoundError("Message not found.", code="message_not_found")
    return _unlocked_mark([message])[0]


def saved_replies_for_account(
    *, user: User, account_id: int, query: str = ""
) -> QuerySet[SavedReply]:
    """An account's saved replies by title; NotFoundError for non-members."""
    membership_get(user=user, account_id=account_id)
    replies = SavedReply.objects.filter(account_id=account_id)
    query = query.strip()
    if query:
        replies = replies.filter(Q(title__icontains=query) | Q(text__icontains=query))
    return replies.order_by("title", "id")


def saved_reply_get(*, user: User, account_id: int, reply_id: int) -> SavedReply:
    reply = saved_replies_for_account(user=user, account_id=account_id).filter(pk=reply_id).first()
    if reply is None:
        raise NotFoundError("Saved reply not found.", code="saved_reply_not_found")
    return reply


def fan_for_display(*, fan_id: int) -> Fan | None:
    """A fan as the inbox's fan panel shows it (for live events)."""
    return (
        Fan.objects.filter(pk=fan_id, conversation__isnull=False)
        .select_related("conversation")
        .first()
    )
