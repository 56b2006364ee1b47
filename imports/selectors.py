"""Reads of imports, always scoped to the acting user's memberships."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db.models import QuerySet

from crm.errors import NotFoundError
from crm.models import Membership
from crm.selectors import manager_membership_get
from imports.models import FanImport

HISTORY_LENGTH = 50


def import_membership_get(*, user: User, account_id: int) -> Membership:
    """The user's membership of the account if they may import fans (owners and managers):
    NotFoundError for another account, ApplicationError 403 for a chatter."""
    return manager_membership_get(user=user, account_id=account_id, action="import fans")


def fan_import_get(*, user: User, import_id: int, account_id: int | None = None) -> FanImport:
    """An import of one of the user's accounts (owners and managers); NotFoundError for
    another account's, or when ``account_id`` is given and it is not that account's."""
    fan_import = (
        FanImport.objects.filter(pk=import_id, account__memberships__user_id=user.pk)
        .select_related("account", "created_by")
        .first()
    )
    if fan_import is None or (account_id is not None and fan_import.account_id != account_id):
        raise NotFoundError("Import not found.", code="import_not_found")
    import_membership_get(user=user, account_id=fan_import.account_id)
    return fan_import


def fan_imports_for_account(*, user: User, account_id: int) -> QuerySet[FanImport]:
    """The account's imports, newest first (the history list; index account, -created_at)."""
    import_membership_get(user=user, account_id=account_id)
    return (
        FanImport.objects.filter(account_id=account_id)
        .select_related("created_by")
        .order_by("-created_at", "-id")[:HISTORY_LENGTH]
    )
