"""Writes for creator accounts, members, fans and API tokens. Services are the only writers."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from rest_framework.authtoken.models import Token

from crm.errors import ApplicationError, NotFoundError
from crm.models import CreatorAccount, Fan, Membership

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
    """Set a fan's tags and notes. Any member of the fan's account may do it."""
    if not Membership.objects.filter(user_id=actor.pk, account_id=fan.account_id).exists():
        raise NotFoundError("Fan not found.", code="fan_not_found")
    if len(notes) > FAN_NOTES_MAX_LENGTH:
        raise ApplicationError(
            f"Notes can have at most {FAN_NOTES_MAX_LENGTH} characters.",
            code="notes_too_long",
            fields={"notes": ["Too long."]},
        )
    fan.tags = fan_tags_normalize(tags)
    fan.notes = notes.strip()
    fan.save(update_fields=["tags", "notes", "updated_at"])
    return fan


# --- Members ------------------------------------------------------------------------------


def _actor_membership_for_management(*, actor: User, account: CreatorAccount) -> Membership:
    membership = Membership.objects.filter(user_id=actor.pk, account_id=account.pk).first()
    if membership is None:
        raise NotFoundError("Creator account not found.", code="account_not_found")
    if not membership.can_manage_members:
        raise ApplicationError(
            "Only owners and managers can manage members.",
            code="permission_denied",
            status_code=403,
        )
    return membership


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
def membership_create(
    *, actor: User, account: CreatorAccount, username: str, role: str
) -> Membership:
    """Add an existing user to the account. Owners may add any role; managers not owners."""
    actor_membership = _actor_membership_for_management(actor=actor, account=account)
    new_role = _role_validate(role)
    if new_role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise ApplicationError(
            "Only an owner can add another owner.", code="permission_denied", status_code=403
        )
    user = get_user_model().objects.filter(username=username.strip()).first()
    if user is None:
        raise ApplicationError(
            f"There is no user named {username.strip()!r}.",
            code="user_not_found",
            fields={"username": ["No such user."]},
        )
    if Membership.objects.filter(user_id=user.pk, account_id=account.pk).exists():
        raise ApplicationError(
            f"{user.get_username()} is already a member of {account.display_name}.",
            code="already_member",
            fields={"username": ["Already a member."]},
        )
    return Membership.objects.create(user=user, account=account, role=new_role)


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
    """Remove a member from the account.

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


@transaction.atomic
def api_token_get_or_create(*, user: User) -> Token:
    token, _ = Token.objects.get_or_create(user=user)
    return token


@transaction.atomic
def api_token_reset(*, user: User) -> Token:
    """Replace the user's token with a new one; the old key stops working at once."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)
