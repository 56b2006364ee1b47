"""Who answers a fan: automatic assignment to clocked-in chatters, and the log of every change.

With ``CreatorAccount.auto_assign`` on, a fan's message (``onlyfans.inbound.message_receive``
calls ``conversation_auto_assign`` in its transaction) gives the conversation to a chatter of
the account who is clocked in (an open ``WorkSession`` on that account) when nobody holds it or
its assignee is not clocked in: the chatter with the fewest waiting conversations, below the
account's cap, ties to the least recently assigned (``Membership.last_assigned_at``), then the
oldest membership. Every change, automatic or by hand, is a ``ConversationAssignment`` row.

Manual assignment wins: nothing here replaces an assignee who is clocked in, whoever chose
them. When a manually assigned chatter clocks out nothing moves at once (their conversations
stay theirs, visible as assigned to them); the next message of a fan in one of them finds the
assignee off shift and hands it to a clocked-in chatter, recorded as ``auto_off_shift``, so a
fan never waits on someone who is gone. See docs/shifts.md, "Assignment and response targets".
"""

from __future__ import annotations

import functools
from datetime import datetime

import structlog
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import Conversation, ConversationAssignment, CreatorAccount, Membership, WorkSession
from crm.response_targets import REPLY_TARGET_MAX_SECONDS, REPLY_TARGET_MIN_SECONDS
from crm.selectors import manager_membership_get

log = structlog.get_logger(__name__)

# Who auto-assignment picks from: chatters (owners and managers answer when they choose to).
AUTO_ASSIGN_ROLES = (Membership.Role.CHATTER,)


def _clocked_in(*, account_id: int, user: OuterRef | int) -> Exists:
    # The partial unique index work_session_one_open answers it.
    return Exists(
        WorkSession.objects.filter(account_id=account_id, user_id=user, ended_at__isnull=True)
    )


def _waiting_count(*, account_id: int, exclude_conversation_id: int) -> Subquery:
    """How many of the account's conversations the membership's user holds that a fan waits in
    (snoozed ones aside: someone parked them on purpose). Index conversation_assignee_waiting."""
    return Subquery(
        Conversation.objects.filter(
            account_id=account_id,
            assigned_to_id=OuterRef("user_id"),
            waiting_since__isnull=False,
            snoozed_at__isnull=True,
        )
        .exclude(pk=exclude_conversation_id)
        .order_by()
        .values("assigned_to_id")
        .annotate(n=Count("*"))
        .values("n"),
        output_field=IntegerField(),
    )


def assignment_record(
    *,
    conversation: Conversation,
    from_user_id: int | None,
    to_user_id: int | None,
    by_user_id: int | None,
    reason: str,
    at: datetime,
) -> ConversationAssignment:
    """Log one change of assignee and stamp the new assignee's membership as just assigned.
    Runs in the caller's transaction, which holds the conversation's row."""
    entry = ConversationAssignment.objects.create(
        account_id=conversation.account_id,
        conversation_id=conversation.pk,
        from_user_id=from_user_id,
        to_user_id=to_user_id,
        by_user_id=by_user_id,
        reason=reason,
        at=at,
    )
    if to_user_id is not None:
        Membership.objects.filter(account_id=conversation.account_id, user_id=to_user_id).update(
            last_assigned_at=at
        )
    return entry


def conversation_auto_assign(
    *, account: CreatorAccount, conversation_id: int, now: datetime | None = None
) -> ConversationAssignment | None:
    """Give a conversation a fan waits in to a clocked-in chatter of ``account`` when nobody
    holds it or its assignee is not clocked in; the log entry, or None when nothing changed
    (auto-assignment off, nobody waiting, the assignee clocked in, or every clocked-in chatter
    at the cap: then the conversation keeps whoever it had).

    Locking: the conversation's row (``FOR UPDATE``; the inbound message's UPDATE already
    holds it), then the row of every clocked-in chatter membership of the account, in id order
    (``SELECT … FOR UPDATE``), before their waiting conversations are counted in a statement of
    its own. Two fans' messages at once therefore choose one after the other, the second
    counting the first's assignment (READ COMMITTED takes a new snapshot per statement), so no
    chatter goes over the cap; the order (conversation, then memberships by id) is the one
    ``crm.services.conversation_assign`` follows too, so they cannot deadlock each other.
    Never assigns to anyone without a membership of this account: the candidates are the
    account's memberships.
    """
    if not account.auto_assign:
        return None  # before any transaction: off costs no query, not even a savepoint
    with transaction.atomic():
        return _auto_assign(account=account, conversation_id=conversation_id, now=now)


def _auto_assign(
    *, account: CreatorAccount, conversation_id: int, now: datetime | None
) -> ConversationAssignment | None:
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .only("id", "account_id", "assigned_to_id", "waiting_since")
        .filter(pk=conversation_id, account_id=account.pk)
        .first()
    )
    if conversation is None or conversation.waiting_since is None:
        return None
    current = conversation.assigned_to_id
    if (
        current is not None
        and WorkSession.objects.filter(
            account_id=account.pk, user_id=current, ended_at__isnull=True
        ).exists()
        and Membership.objects.filter(account_id=account.pk, user_id=current).exists()
    ):
        return None  # held by someone at work: manual or automatic, it stays theirs
    locked = list(
        Membership.objects.filter(account_id=account.pk, role__in=AUTO_ASSIGN_ROLES)
        .filter(_clocked_in(account_id=account.pk, user=OuterRef("user_id")))
        .order_by("id")
        .select_for_update(of=("self",))
        .values_list("id", flat=True)
    )
    if not locked:
        log.info("assignment.auto_nobody", account_id=account.pk, conversation_id=conversation_id)
        return None
    chosen = (
        Membership.objects.filter(pk__in=locked)
        .annotate(
            waiting=Coalesce(
                _waiting_count(account_id=account.pk, exclude_conversation_id=conversation_id),
                Value(0),
            )
        )
        .filter(waiting__lt=account.auto_assign_cap)
        .order_by("waiting", F("last_assigned_at").asc(nulls_first=True), "id")
        .values_list("user_id", "waiting")
        .first()
    )
    if chosen is None:
        log.info(
            "assignment.auto_all_at_cap",
            account_id=account.pk,
            conversation_id=conversation_id,
            cap=account.auto_assign_cap,
        )
        return None
    user_id, waiting = chosen
    now = now or timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(assigned_to_id=user_id)
    conversation.assigned_to_id = user_id
    reason = (
        ConversationAssignment.Reason.AUTO_UNASSIGNED
        if current is None
        else ConversationAssignment.Reason.AUTO_OFF_SHIFT
    )
    entry = assignment_record(
        conversation=conversation,
        from_user_id=current,
        to_user_id=user_id,
        by_user_id=None,
        reason=reason,
        at=now,
    )
    log.info(
        "assignment.auto",
        account_id=account.pk,
        conversation_id=conversation.pk,
        from_user_id=current,
        to_user_id=user_id,
        reason=reason,
        waiting_before=waiting,
    )
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=account.pk,
            event="conversation.changed",
            payload={"conversation_id": conversation.pk},
        )
    )
    return entry


# --- The account's settings -------------------------------------------------------------------

AUTO_ASSIGN_CAP_MAX = 500


def assignment_settings_validate(
    *,
    auto_assign_cap: int,
    reply_target_seconds: int,
    vip_spend_threshold_cents: int,
    vip_reply_target_seconds: int,
) -> dict[str, list[str]]:
    """What is wrong with these settings, by field (empty: nothing); the database's check
    constraints hold the same ranges."""
    errors: dict[str, list[str]] = {}
    if not 1 <= auto_assign_cap <= AUTO_ASSIGN_CAP_MAX:
        errors["auto_assign_cap"] = [f"Between 1 and {AUTO_ASSIGN_CAP_MAX} conversations."]
    low, high = REPLY_TARGET_MIN_SECONDS, REPLY_TARGET_MAX_SECONDS
    if not low <= reply_target_seconds <= high:
        errors["reply_target"] = ["Between 30 seconds and 24 hours."]
    if vip_spend_threshold_cents < 0:
        errors["vip_spend_threshold"] = ["Zero or more."]
    if not low <= vip_reply_target_seconds:
        errors["vip_reply_target"] = ["At least 30 seconds."]
    elif vip_reply_target_seconds > reply_target_seconds:
        errors["vip_reply_target"] = [
            "The VIP target is the shorter one: at most the first-reply target."
        ]
    return errors


@transaction.atomic
def assignment_settings_update(
    *,
    actor: AbstractBaseUser | AnonymousUser,
    account_id: int,
    auto_assign: bool,
    auto_assign_cap: int,
    reply_target_seconds: int,
    vip_spend_threshold_cents: int,
    vip_reply_target_seconds: int,
) -> CreatorAccount:
    """Change the account's auto-assignment and first-reply targets (owners and managers).
    ApplicationError ``invalid_settings`` with the fields at fault; nothing changes then."""
    manager_membership_get(
        user=actor, account_id=account_id, action="change assignment and reply targets"
    )
    errors = assignment_settings_validate(
        auto_assign_cap=auto_assign_cap,
        reply_target_seconds=reply_target_seconds,
        vip_spend_threshold_cents=vip_spend_threshold_cents,
        vip_reply_target_seconds=vip_reply_target_seconds,
    )
    if errors:
        raise ApplicationError(
            "Some settings are not valid.", code="invalid_settings", fields=errors
        )
    account = CreatorAccount.objects.select_for_update().get(pk=account_id)
    account.auto_assign = auto_assign
    account.auto_assign_cap = auto_assign_cap
    account.reply_target_seconds = reply_target_seconds
    account.vip_spend_threshold_cents = vip_spend_threshold_cents
    account.vip_reply_target_seconds = vip_reply_target_seconds
    fields = [
        "auto_assign",
        "auto_assign_cap",
        "reply_target_seconds",
        "vip_spend_threshold_cents",
        "vip_reply_target_seconds",
        "updated_at",
    ]
    account.save(update_fields=fields)
    log.info(
        "account.assignment_settings_changed",
        account_id=account_id,
        user_id=actor.pk,
        auto_assign=auto_assign,
    )
    return account
