"""Writes for creator accounts, members, fans and API tokens. Services are the only writers."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from crm.assignment import assignment_record
from crm.authentication import api_token_hash, api_token_key_new
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError, NotFoundError
from crm.models import (
    ApiToken,
    Conversation,
    ConversationAssignment,
    CreatorAccount,
    Fan,
    Membership,
    Message,
    SavedReply,
    VaultItem,
)
from crm.selectors import manager_membership_get, membership_get

log = structlog.get_logger(__name__)

FAN_TAG_MAX_LENGTH = 50
FAN_TAGS_MAX_COUNT = 30
FAN_NOTES_MAX_LENGTH = 10_000

Role = Membership.Role


# --- Fans ---------------------------------------------------------------------------------


def fan_tags_normalize(tags: list[str]) -> list[str]:
    """Tags lower-cased, stripped and de-duplicated in order; ApplicationError if invalid."""
    normalized: list[str] = []
    for raw in tags:
        tag = raw.strip().lower()
        if not tag:
            continue
        if "," in tag:
            raise ApplicationError(
                "A tag cannot contain a comma.", code="invalid_tag", fields={"tags": [tag]}
            )
        if len(tag) > FAN_TAG_MAX_LENGTH:
            raise ApplicationError(
                f"A tag can have at most {FAN_TAG_MAX_LENGTH} characters.",
                code="invalid_tag",
                fields={"tags": [tag]},
            )
        if tag not in normalized:
            normalized.append(tag)
    if len(normalized) > FAN_TAGS_MAX_COUNT:
        raise ApplicationError(
            f"A fan can have at most {FAN_TAGS_MAX_COUNT} tags.", code="too_many_tags"
        )
    return normalized


@transaction.atomic
def fan_update(*, actor: User, fan: Fan, tags: list[str], notes: str) -> Fan:
    """Set a fan's tags and notes (the fan page). Any member of the fan's account may do it.

    The same write as the inbox's (``fan_tag_add``, ``fan_notes_set``): it locks the fan row
    and tells the account's open inboxes on commit, so an edit here shows there live."""
    try:
        locked = _fan_locked(actor=actor, fan=fan)
    except NotFoundError as exc:
        raise NotFoundError("Fan not found.", code="fan_not_found") from exc
    notes = _fan_notes_clean(notes)
    locked.tags = fan_tags_normalize(tags)
    locked.notes = notes
    _fan_save(locked, fields=["tags", "notes"])
    return locked


# --- Members ------------------------------------------------------------------------------


def _actor_membership_for_management(*, actor: User, account: CreatorAccount) -> Membership:
    return manager_membership_get(user=actor, account_id=account.pk, action="manage members")


def _role_validate(role: str) -> Role:
    if role not in Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}.", code="invalid_role", fields={"role": ["Unknown role."]}
        )
    return Role(role)


def _owners_lock(*, account_id: int) -> list[int]:
    """Lock the account's owner rows so two concurrent demotions cannot remove the last owner."""
    return list(
        Membership.objects.select_for_update()
        .filter(account_id=account_id, role=Role.OWNER)
        .order_by("id")
        .values_list("id", flat=True)
    )


@transaction.atomic
def membership_update_role(*, actor: User, membership: Membership, role: str) -> Membership:
    """Change a member's role.

    Locks the account's owner memberships (SELECT ... FOR UPDATE) before the last-owner check.
    """
    actor_membership = _actor_membership_for_management(actor=actor, account=membership.account)
    new_role = _role_validate(role)
    if actor_membership.role != Role.OWNER and Role.OWNER in (membership.role, new_role):
        raise ApplicationError(
            "Only an owner can change an owner or make someone an owner.",
            code="permission_denied",
            status_code=403,
        )
    owner_ids = _owners_lock(account_id=membership.account_id)
    membership.refresh_from_db(fields=["role"])
    if membership.role == new_role:
        return membership
    if membership.role == Role.OWNER and owner_ids == [membership.pk]:
        raise ApplicationError(
            "The last owner of an account cannot be demoted. Make someone else owner first.",
            code="last_owner",
        )
    membership.role = new_role
    membership.save(update_fields=["role"])
    return membership


@transaction.atomic
def membership_delete(*, actor: User, membership: Membership) -> None:
    """Remove a member from the account. Their open sockets for it close once this commits
    (``crm.signals``, which covers deletes outside this service too).

    Locks the account's owner memberships (SELECT ... FOR UPDATE) before the last-owner check.
    """
    actor_membership = _actor_membership_for_management(actor=actor, account=membership.account)
    owner_ids = _owners_lock(account_id=membership.account_id)
    membership.refresh_from_db(fields=["role"])
    if membership.role == Role.OWNER:
        if actor_membership.role != Role.OWNER:
            raise ApplicationError(
                "Only an owner can remove an owner.", code="permission_denied", status_code=403
            )
        if owner_ids == [membership.pk]:
            raise ApplicationError(
                "The last owner of an account cannot be removed.", code="last_owner"
            )
    membership.delete()


# --- API tokens ---------------------------------------------------------------------------


API_TOKEN_NAME_MAX_LENGTH = 100
API_TOKENS_PER_USER_MAX = 20


@transaction.atomic
def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """A new named token for the user: the row (hash only) and the key, which is shown once
    and cannot be read back. Locks the user's row so the per-user cap holds."""
    name = " ".join(name.split())
    if not name:
        raise ApplicationError(
            "Give the token a name.", code="invalid_name", fields={"name": ["Required."]}
        )
    if len(name) > API_TOKEN_NAME_MAX_LENGTH:
        raise ApplicationError(
            "The name is too long.",
            code="invalid_name",
            fields={"name": [f"At most {API_TOKEN_NAME_MAX_LENGTH} characters."]},
        )
    get_user_model().objects.select_for_update().filter(pk=user.pk).first()
    if (
        ApiToken.objects.filter(user=user, revoked_at__isnull=True).count()
        >= API_TOKENS_PER_USER_MAX
    ):
        raise ApplicationError(
            f"You have {API_TOKENS_PER_USER_MAX} tokens; revoke one first.", code="too_many_tokens"
        )
    key = api_token_key_new()
    token = ApiToken.objects.create(
        user=user, name=name, key_hash=api_token_hash(key), key_prefix=key[:12]
    )
    log.info("api_token.created", user_id=user.pk, token_id=token.pk)
    return token, key


@transaction.atomic
def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens; it stops working at once. Idempotent."""
    token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
    if token is None:
        raise NotFoundError("No such token.", code="token_not_found")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        log.info("api_token.revoked", user_id=user.pk, token_id=token.pk)
    return token


# --- Inbox ----------------------------------------------------------------------------------

SAVED_REPLY_TITLE_MAX_LENGTH = 100


def _conversation_changed_on_commit(conversation: Conversation) -> None:
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=conversation.account_id,
            event="conversation.changed",
            payload={"conversation_id": conversation.pk},
        )
    )


def _fan_changed_on_commit(fan: Fan) -> None:
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=fan.account_id,
            event="fan.changed",
            payload={"fan_id": fan.pk},
        )
    )


def conversation_open(*, actor: User, fan: Fan) -> Conversation:
    """The fan's conversation, created (empty) when there is none yet, so a fan who never
    wrote (an imported one) can be messaged from the inbox. Any member may open one. A fan
    not linked to the platform is refused: nothing could be sent to them yet."""
    membership_get(user=actor, account_id=fan.account_id)
    if fan.platform_fan_id is None:
        raise ApplicationError(
            "This fan is not linked to the platform yet, so they cannot be messaged: a sync "
            "of the account links imported fans by username.",
            code="fan_not_linked",
            status_code=409,
        )
    conversation, created = Conversation.objects.get_or_create(
        fan=fan, defaults={"account_id": fan.account_id}
    )
    if created:
        log.info(
            "conversation.opened",
            account_id=fan.account_id,
            conversation_id=conversation.pk,
            user_id=actor.pk,
        )
    return conversation


@transaction.atomic
def conversation_mark_read(*, actor: User, conversation: Conversation) -> bool:
    """Set the unread count to zero; True when it changed (then every open list hears it)."""
    membership_get(user=actor, account_id=conversation.account_id)
    changed = Conversation.objects.filter(pk=conversation.pk, unread_count__gt=0).update(
        unread_count=0
    )
    if changed:
        conversation.unread_count = 0
        _conversation_changed_on_commit(conversation)
    return bool(changed)


@transaction.atomic
def conversation_assign(
    *, actor: User, conversation: Conversation, assignee_id: int | None
) -> Conversation:
    """Give the conversation to one member of its account (or to nobody). Owners and managers.

    Locks the conversation's row, then writes the change to the assignment log and stamps the
    assignee's membership (``crm.assignment.assignment_record``); auto-assignment never
    replaces an assignee who is clocked in, so this choice holds while they work.
    """
    manager_membership_get(
        user=actor, account_id=conversation.account_id, action="assign conversations"
    )
    if (
        assignee_id is not None
        and not Membership.objects.filter(
            user_id=assignee_id, account_id=conversation.account_id
        ).exists()
    ):
        raise ApplicationError(
            "Conversations can only be assigned to members of the account.",
            code="invalid_assignee",
            fields={"assignee": ["Not a member of this account."]},
        )
    previous = (
        Conversation.objects.select_for_update()
        .filter(pk=conversation.pk)
        .values_list("assigned_to_id", flat=True)
        .first()
    )
    Conversation.objects.filter(pk=conversation.pk).update(assigned_to_id=assignee_id)
    conversation.assigned_to_id = assignee_id
    if previous != assignee_id:
        assignment_record(
            conversation=conversation,
            from_user_id=previous,
            to_user_id=assignee_id,
            by_user_id=actor.pk,
            reason=ConversationAssignment.Reason.MANUAL,
            at=timezone.now(),
        )
    log.info(
        "conversation.assigned",
        conversation_id=conversation.pk,
        account_id=conversation.account_id,
        assignee_id=assignee_id,
    )
    _conversation_changed_on_commit(conversation)
    return conversation


def _fan_locked(*, actor: User, fan: Fan) -> Fan:
    """The fan's row, locked until the transaction ends, once the actor is known to be a
    member of its account. Every write of tags and notes starts here and ends in
    ``_fan_save``, so concurrent edits never lose one another's change."""
    membership_get(user=actor, account_id=fan.account_id)
    return Fan.objects.select_for_update().get(pk=fan.pk)


def _fan_save(fan: Fan, *, fields: list[str]) -> None:
    """Save the locked fan's changed ``fields`` and tell open inboxes on commit."""
    fan.save(update_fields=[*fields, "updated_at"])
    _fan_changed_on_commit(fan)


def _fan_notes_clean(notes: str) -> str:
    if len(notes) > FAN_NOTES_MAX_LENGTH:
        raise ApplicationError(
            f"Notes can have at most {FAN_NOTES_MAX_LENGTH} characters.",
            code="notes_too_long",
            fields={"notes": ["Too long."]},
        )
    return notes.strip()


@transaction.atomic
def fan_tag_add(*, actor: User, fan: Fan, tag: str) -> Fan:
    """Add one tag (normalised). Locks the fan row so concurrent edits do not lose a tag."""
    locked = _fan_locked(actor=actor, fan=fan)
    if not tag.strip():
        raise ApplicationError("Type a tag first.", code="invalid_tag", fields={"tag": ["Empty."]})
    locked.tags = fan_tags_normalize([*locked.tags, tag])
    _fan_save(locked, fields=["tags"])
    return locked


@transaction.atomic
def fan_tag_remove(*, actor: User, fan: Fan, tag: str) -> Fan:
    """Remove one tag if the fan has it. Locks the fan row like ``fan_tag_add``."""
    locked = _fan_locked(actor=actor, fan=fan)
    normalized = tag.strip().lower()
    if normalized in locked.tags:
        locked.tags = [t for t in locked.tags if t != normalized]
        _fan_save(locked, fields=["tags"])
    return locked


@transaction.atomic
def fan_notes_set(*, actor: User, fan: Fan, notes: str) -> Fan:
    locked = _fan_locked(actor=actor, fan=fan)
    locked.notes = _fan_notes_clean(notes)
    _fan_save(locked, fields=["notes"])
    return locked


def _saved_reply_validate(*, title: str, text: str, price_cents: int) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not title.strip():
        errors["title"] = ["A title is required."]
    elif len(title.strip()) > SAVED_REPLY_TITLE_MAX_LENGTH:
        errors["title"] = [f"At most {SAVED_REPLY_TITLE_MAX_LENGTH} characters."]
    if not text.strip():
        errors["text"] = ["A text is required."]
    elif len(text) > settings.MESSAGE_TEXT_MAX_LENGTH:
        errors["text"] = [f"At most {settings.MESSAGE_TEXT_MAX_LENGTH} characters."]
    if price_cents != 0 and not 300 <= price_cents <= 20000:
        errors["price_cents"] = ["Price must be 0, or between $3 and $200."]
    return errors


@transaction.atomic
def saved_reply_save(
    *,
    actor: User,
    account_id: int,
    title: str,
    text: str,
    price_cents: int = 0,
    reply: SavedReply | None = None,
    vault_item_ids: Sequence[int] = (),
) -> SavedReply:
    """Create a saved reply, or change ``reply``. Owners and managers only; titles are unique
    per account. ``vault_item_ids``: media it attaches, each an item of the account (checked
    again, with readiness and the resend guard, when a chatter sends it)."""
    manager_membership_get(user=actor, account_id=account_id, action="manage saved replies")
    errors = _saved_reply_validate(title=title, text=text, price_cents=price_cents)
    item_ids = list(dict.fromkeys(vault_item_ids))
    if len(item_ids) > 50:
        errors["vault_item_ids"] = ["At most 50 media files."]
    elif item_ids:
        found = set(
            VaultItem.objects.filter(account_id=account_id, pk__in=item_ids).values_list(
                "pk", flat=True
            )
        )
        if set(item_ids) - found:
            errors["vault_item_ids"] = ["Some of the chosen media are not in this vault."]
    if errors:
        raise ApplicationError(
            "The saved reply is not valid.", code="invalid_saved_reply", fields=errors
        )
    if reply is None:
        reply = SavedReply(account_id=account_id, created_by=actor)
    elif reply.account_id != account_id:
        raise NotFoundError("Saved reply not found.", code="saved_reply_not_found")
    reply.title = title.strip()
    reply.text = text
    reply.price_cents = price_cents
    reply.vault_item_ids = item_ids
    try:
        with transaction.atomic():
            reply.save()
    except IntegrityError as exc:
        raise ApplicationError(
            "A saved reply with this title exists already.",
            code="duplicate_title",
            fields={"title": ["A saved reply with this title exists already."]},
        ) from exc
    return reply


@transaction.atomic
def saved_reply_delete(*, actor: User, reply: SavedReply) -> None:
    manager_membership_get(user=actor, account_id=reply.account_id, action="manage saved replies")
    reply.delete()


# --- Fans through the API -------------------------------------------------------------------

FAN_EDITABLE_FIELDS = (
    "username",
    "display_name",
    "email",
    "tags",
    "notes",
    "subscription_state",
    "subscribed_at",
    "subscription_expires_at",
)
# What every member may change; the rest of a fan (who they are on the platform, their
# subscription) is for owners and managers.
FAN_CHATTER_FIELDS = ("tags", "notes")


def _fan_fields_apply(fan: Fan, fields: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for name, value in fields.items():
        if name not in FAN_EDITABLE_FIELDS:
            raise ApplicationError(f"{name} cannot be changed.", code="invalid_field")
        if name == "tags":
            value = fan_tags_normalize(list(value))
        elif name == "username":
            value = str(value).strip()
            if not value:
                errors["username"] = ["A username is required."]
        elif name == "email" and value:
            try:
                validate_email(value)
            except ValidationError:
                errors["email"] = ["Enter a valid email address."]
        elif name == "notes" and len(value) > FAN_NOTES_MAX_LENGTH:
            errors["notes"] = [f"At most {FAN_NOTES_MAX_LENGTH} characters."]
        elif name == "subscription_state" and value not in Fan.SubscriptionState.values:
            errors["subscription_state"] = ["Unknown subscription state."]
        setattr(fan, name, value)
    if errors:
        raise ApplicationError("The fan is not valid.", code="invalid_fan", fields=errors)


def _fan_save_unique(fan: Fan, **save_kwargs: Any) -> None:
    try:
        with transaction.atomic():
            fan.save(**save_kwargs)
    except IntegrityError as exc:
        raise ApplicationError(
            "The account already has a fan with this username or platform id.",
            code="duplicate_fan",
            status_code=409,
        ) from exc


@transaction.atomic
def fan_create(*, actor: User, account_id: int, platform_fan_id: str, **fields: Any) -> Fan:
    """Add a fan to an account by hand (owners and managers, who can import them too).
    Username and platform id are unique."""
    manager_membership_get(user=actor, account_id=account_id, action="add fans")
    platform_fan_id = str(platform_fan_id).strip()
    if not platform_fan_id or len(platform_fan_id) > 64:
        raise ApplicationError(
            "A platform fan id of 1 to 64 characters is required.",
            code="invalid_fan",
            fields={"platform_fan_id": ["Required, at most 64 characters."]},
        )
    fan = Fan(account_id=account_id, platform_fan_id=platform_fan_id)
    _fan_fields_apply(fan, {"username": fields.pop("username", ""), **fields})
    _fan_save_unique(fan)
    log.info("fan.created", fan_id=fan.pk, account_id=account_id)
    return fan


@transaction.atomic
def fan_change(*, actor: User, fan: Fan, **fields: Any) -> Fan:
    """Change some of a fan's fields: owners and managers any of ``FAN_EDITABLE_FIELDS``,
    chatters only ``FAN_CHATTER_FIELDS`` (what the fan page and the inbox let them edit)."""
    membership = membership_get(user=actor, account_id=fan.account_id)
    forbidden = sorted(set(fields) - set(FAN_CHATTER_FIELDS))
    if forbidden and not membership.can_manage_members:
        raise ApplicationError(
            "Chatters can change a fan's tags and notes only.",
            code="permission_denied",
            status_code=403,
            fields={name: ["Owners and managers only."] for name in forbidden},
        )
    locked = Fan.objects.select_for_update().get(pk=fan.pk)
    _fan_fields_apply(locked, fields)
    _fan_save_unique(locked, update_fields=[*fields.keys(), "updated_at"])
    _fan_changed_on_commit(locked)
    return locked


@transaction.atomic
def fan_delete(*, actor: User, fan: Fan, force: bool = False) -> None:
    """Delete a fan (owners and managers). A fan with messages or purchases is kept unless an
    owner forces it, because deleting one deletes their history and spend."""
    membership = manager_membership_get(user=actor, account_id=fan.account_id, action="delete fans")
    has_history = (
        Message.objects.filter(conversation__fan_id=fan.pk).exists() or fan.purchases.exists()
    )
    if has_history:
        if not force:
            raise ApplicationError(
                "This fan has messages or purchases; only an owner can delete them, with force.",
                code="fan_has_history",
                status_code=409,
            )
        if membership.role != Role.OWNER:
            raise ApplicationError(
                "Only an owner can force the deletion of a fan with history.",
                code="permission_denied",
                status_code=403,
            )
    log.info("fan.deleted", fan_id=fan.pk, account_id=fan.account_id, forced=force)
    fan.delete()


_CONVERSATION_SUMMARY_SQL = """
UPDATE crm_conversation c SET
  last_message_at = latest.created_at,
  last_message_preview = left(btrim(split_part(btrim(latest.text, E' \\n\\r\\t'), E'\\n', 1)), 140),
  last_message_direction = latest.direction,
  waiting_since = (
    SELECT min(m.created_at) FROM crm_message m
    WHERE m.conversation_id = c.id AND m.direction = 'in'
      AND m.created_at > COALESCE((
        SELECT max(o.created_at) FROM crm_message o
        WHERE o.conversation_id = c.id AND o.direction = 'out'), '-infinity'))
FROM (
  SELECT DISTINCT ON (conversation_id) conversation_id, created_at, text, direction
  FROM crm_message WHERE {scope} = ANY(%s)
  ORDER BY conversation_id, created_at DESC, id DESC
) latest
WHERE c.id = latest.conversation_id
"""


def conversation_summaries_recompute(
    *, account_ids: Sequence[int] = (), conversation_ids: Sequence[int] = ()
) -> int:
    """Recompute the list's denormalised columns (last message, waiting since) from the
    messages, for data loaded in bulk (the demo seed, imports, the platform sync) rather than
    through services: whole accounts, or just the given conversations."""
    if bool(account_ids) == bool(conversation_ids):
        raise ValueError("Pass account_ids or conversation_ids.")
    scope, ids = (
        ("account_id", account_ids) if account_ids else ("conversation_id", conversation_ids)
    )
    with connection.cursor() as cursor:
        cursor.execute(_CONVERSATION_SUMMARY_SQL.format(scope=scope), [list(ids)])
        return cursor.rowcount
