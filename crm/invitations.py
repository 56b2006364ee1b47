"""Writes for invitations: how people join a creator account.

Members are never added by typing a username (that would tell anyone with the members page
which usernames exist, and let them pull in any user of the installation). An owner or manager
makes an invitation for a role and passes the one-time link on; whoever opens it signs in, or
creates an account, and joins. Services are the only writers; reads are in crm/selectors.py.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.errors import ApplicationError, NotFoundError
from crm.models import CreatorAccount, Invitation, Membership
from crm.selectors import INVITATIONS_LIST_MAX, invitation_invalid
from crm.services import _actor_membership_for_management, _role_validate

log = structlog.get_logger(__name__)

Role = Membership.Role

INVITATIONS_PENDING_MAX = INVITATIONS_LIST_MAX  # the members page lists every open one
USERNAME_MAX_LENGTH = 150


def _email_normalize(email: str) -> str:
    email = email.strip()
    if not email:
        return ""
    try:
        if len(email) > 254:
            raise ValidationError("too long")
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(
            "Enter a valid email address, or leave it empty.",
            code="invalid_email",
            fields={"email": ["Enter a valid email address."]},
        ) from exc
    return email


@transaction.atomic
def invitation_create(
    *, actor: User, account: CreatorAccount, role: str, email: str = ""
) -> tuple[Invitation, str]:
    """A new invitation to the account and its token, which is shown once (in the link) and
    cannot be read back. Owners may invite any role; managers managers and chatters."""
    actor_membership = _actor_membership_for_management(actor=actor, account=account)
    new_role = _role_validate(role)
    if new_role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise ApplicationError(
            "Only an owner can invite an owner.", code="permission_denied", status_code=403
        )
    email = _email_normalize(email)
    now = timezone.now()
    pending = Invitation.objects.filter(
        account_id=account.pk, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
    ).count()
    if pending >= INVITATIONS_PENDING_MAX:
        raise ApplicationError(
            f"The account has {INVITATIONS_PENDING_MAX} open invitations; revoke some first.",
            code="too_many_invitations",
        )
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        account=account,
        role=new_role,
        email=email,
        token_hash=Invitation.token_hash_of(token),
        created_by=actor,
        expires_at=now + timedelta(days=settings.INVITATION_TTL_DAYS),
    )
    log.info(
        "invitation.created",
        account_id=account.pk,
        invitation_id=invitation.pk,
        role=new_role,
        actor_id=actor.pk,
    )
    return invitation, token


def _invitation_lock(*, token: str) -> Invitation:
    """The open invitation of this token, its row locked (SELECT ... FOR UPDATE) until the
    transaction ends, so that two people opening the same link cannot both join."""
    if not token or len(token) > Invitation.TOKEN_MAX_LENGTH:
        raise invitation_invalid()
    invitation = (
        Invitation.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(token_hash=Invitation.token_hash_of(token))
        .first()
    )
    if invitation is None or not invitation.is_open(now=timezone.now()):
        raise invitation_invalid()
    return invitation


def _already_member(invitation: Invitation) -> ApplicationError:
    return ApplicationError(
        f"You are already a member of {invitation.account.display_name}.",
        code="already_member",
        status_code=409,
    )


def _invitation_join(*, invitation: Invitation, user: User) -> Membership:
    if Membership.objects.filter(user_id=user.pk, account_id=invitation.account_id).exists():
        raise _already_member(invitation)
    try:
        with transaction.atomic():  # a concurrent join through another link of the account
            membership = Membership.objects.create(
                user=user, account=invitation.account, role=invitation.role
            )
    except IntegrityError as exc:
        raise _already_member(invitation) from exc
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    log.info(
        "invitation.accepted",
        account_id=invitation.account_id,
        invitation_id=invitation.pk,
        role=invitation.role,
        user_id=user.pk,
    )
    return membership


@transaction.atomic
def invitation_accept(*, token: str, user: User) -> Membership:
    """Join the invitation's account with its role, once.

    Locks the invitation row (SELECT ... FOR UPDATE): one link joins one person, once. A user
    who is a member already is refused (``already_member``) and the link stays open.
    """
    invitation = _invitation_lock(token=token)
    return _invitation_join(invitation=invitation, user=user)


@transaction.atomic
def invitation_accept_new_user(
    *, token: str, username: str, password: str, email: str = ""
) -> Membership:
    """Create a user through an invitation and join with it: both or neither.

    Locks the invitation row first (as ``invitation_accept``), so only someone holding an open
    link ever hears whether a username is taken. Django's password validators apply.
    """
    invitation = _invitation_lock(token=token)
    user_model = get_user_model()
    username = username.strip()
    errors: dict[str, list[str]] = {}
    if not username:
        errors["username"] = ["Choose a username."]
    elif len(username) > USERNAME_MAX_LENGTH:
        errors["username"] = [f"At most {USERNAME_MAX_LENGTH} characters."]
    else:
        try:
            user_model.username_validator(username)
        except ValidationError as exc:
            errors["username"] = list(exc.messages)
    try:
        email = _email_normalize(email)
    except ApplicationError as exc:
        errors.update(exc.fields)
    candidate = user_model(username=username, email=email)
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        errors["password1"] = list(exc.messages)
    if errors:
        raise ApplicationError("Check the fields below.", code="invalid_signup", fields=errors)
    taken = ApplicationError(
        "This username is taken: choose another.",
        code="username_taken",
        fields={"username": ["This username is taken: choose another."]},
    )
    if user_model.objects.filter(username__iexact=username).exists():
        raise taken
    try:
        with transaction.atomic():
            user = user_model.objects.create_user(username=username, email=email, password=password)
    except IntegrityError as exc:
        raise taken from exc
    log.info("user.created_by_invitation", user_id=user.pk, invitation_id=invitation.pk)
    return _invitation_join(invitation=invitation, user=user)


@transaction.atomic
def invitation_revoke(*, actor: User, account: CreatorAccount, invitation_id: int) -> Invitation:
    """Revoke an open invitation of the account: its link stops working at once. Owners and
    managers may; only an owner may revoke an owner's invitation. Idempotent. Locks the row."""
    actor_membership = _actor_membership_for_management(actor=actor, account=account)
    invitation = (
        Invitation.objects.select_for_update()
        .filter(pk=invitation_id, account_id=account.pk)
        .first()
    )
    if invitation is None:
        raise NotFoundError("Invitation not found.", code="invitation_not_found")
    if invitation.role == Role.OWNER and actor_membership.role != Role.OWNER:
        raise ApplicationError(
            "Only an owner can revoke an invitation for an owner.",
            code="permission_denied",
            status_code=403,
        )
    if invitation.accepted_at is not None:
        raise ApplicationError(
            "This invitation was accepted already; remove the member instead.",
            code="invitation_accepted",
        )
    if invitation.revoked_at is None:
        invitation.revoked_at = timezone.now()
        invitation.save(update_fields=["revoked_at"])
        log.info(
            "invitation.revoked",
            account_id=account.pk,
            invitation_id=invitation.pk,
            actor_id=actor.pk,
        )
    return invitation
