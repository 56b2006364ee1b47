"""Reads, always scoped to what the acting user may see."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from rest_framework.authtoken.models import Token

from crm.errors import NotFoundError
from crm.models import CreatorAccount, Fan, Membership, Purchase

User = AbstractBaseUser | AnonymousUser


def memberships_for_user(*, user: User) -> QuerySet[Membership]:
    if not user.is_authenticated:
        return Membership.objects.none()
    return Membership.objects.filter(user_id=user.pk).select_related("account")


def accounts_for_user(*, user: User) -> QuerySet[CreatorAccount]:
    if not user.is_authenticated:
        return CreatorAccount.objects.none()
    return CreatorAccount.objects.filter(memberships__user_id=user.pk)


def membership_get(*, user: User, account_id: int) -> Membership:
    """The user's membership of the account; NotFoundError when the user is not a member."""
    membership = memberships_for_user(user=user).filter(account_id=account_id).first()
    if membership is None:
        raise NotFoundError("Creator account not found.", code="account_not_found")
    return membership


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


def fans_for_account(
    *,
    user: User,
    account_id: int,
    query: str = "",
    tag: str = "",
    subscription_state: str = "",
    sort: str = "spend",
) -> QuerySet[Fan]:
    """An account's fans, filtered and sorted; NotFoundError when the user is not a member.

    ``tag`` uses ``tags @> ARRAY[tag]`` so the GIN index on tags serves it.
    """
    membership_get(user=user, account_id=account_id)
    fans = Fan.objects.filter(account_id=account_id)
    query = query.strip()
    if query:
        fans = fans.filter(Q(username__icontains=query) | Q(display_name__icontains=query))
    tag = tag.strip().lower()
    if tag:
        fans = fans.filter(tags__contains=[tag])
    if subscription_state in Fan.SubscriptionState.values:
        fans = fans.filter(subscription_state=subscription_state)
    if sort == "last_seen":
        # Plain DESC (nulls first) so the (account, -last_seen_at) index serves the sort.
        return fans.order_by("-last_seen_at", "-id")
    return fans.order_by("-lifetime_spend_cents", "id")


def members_for_account(*, user: User, account_id: int) -> QuerySet[Membership]:
    """Everyone in the account, owners first; NotFoundError when the user is not a member."""
    membership_get(user=user, account_id=account_id)
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


def api_token_get(*, user: User) -> Token | None:
    """The user's API token, or None when they have not created one yet."""
    if not user.is_authenticated:
        return None
    return Token.objects.filter(user_id=user.pk).first()
