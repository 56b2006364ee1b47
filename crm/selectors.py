"""Reads, always scoped to what the acting user may see."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from crm.errors import NotFoundError
from crm.models import CreatorAccount, Fan, Membership

User = AbstractBaseUser | AnonymousUser


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user_id=user.pk).select_related("account")


def accounts_for_user(*, user: User) -> QuerySet[CreatorAccount]:
    if not user.is_authenticated:
        return CreatorAccount.objects.none()
    return CreatorAccount.objects.filter(memberships__user_id=user.pk)


def account_ids_for_user(*, user: User) -> list[int]:
    return list(memberships_for_user(user=user).values_list("account_id", flat=True))


def membership_get(*, user: User, account_id: int) -> Membership:
    """The user's membership of the account; NotFoundError when the user is not a member."""
    membership = memberships_for_user(user=user).filter(account_id=account_id).first()
    if membership is None:
        raise NotFoundError("Creator account not found.", code="account_not_found")
    return membership


def fan_get(*, user: User, fan_id: int) -> Fan:
    """A fan of one of the user's accounts; NotFoundError for anyone else's fan."""
    fan = (
        Fan.objects.filter(pk=fan_id, account__memberships__user_id=user.pk)
        .select_related("account")
        .first()
    )
    if fan is None:
        raise NotFoundError("Fan not found.", code="fan_not_found")
    return fan
