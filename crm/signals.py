"""Live sockets follow access: whoever loses an account's access loses its live events.

Signals rather than calls in the services because access is also lost outside them: a member
removed or a user deactivated in Django admin, memberships deleted with their user or their
account, a logout (Django's own view). Each tells the user's open sockets to check again once
the change is committed (``crm.broadcasts.user_access_check_broadcast``).
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from crm.broadcasts import user_access_check_broadcast
from crm.models import Membership
from crm.worktime import work_sessions_end_for_member


@receiver(post_delete, sender=Membership, dispatch_uid="crm.membership_deleted_access_check")
def membership_deleted_access_check(sender: Any, instance: Membership, **kwargs: Any) -> None:
    transaction.on_commit(functools.partial(user_access_check_broadcast, user_id=instance.user_id))


@receiver(post_delete, sender=Membership, dispatch_uid="crm.membership_deleted_clock_out")
def membership_deleted_clock_out(sender: Any, instance: Membership, **kwargs: Any) -> None:
    # Their worked time there ends with their membership (the session row stays, for pay).
    work_sessions_end_for_member(account_id=instance.account_id, user_id=instance.user_id)


@receiver(post_save, dispatch_uid="crm.user_saved_access_check")
def user_saved_access_check(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if sender is not get_user_model() or created or instance.is_active:
        return
    transaction.on_commit(functools.partial(user_access_check_broadcast, user_id=instance.pk))


@receiver(user_logged_out, dispatch_uid="crm.user_logged_out_access_check")
def user_logged_out_access_check(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Sent before the session is flushed: the sockets of this session close on its name
    # alone, and the user's other sessions keep theirs.
    session_key = getattr(getattr(request, "session", None), "session_key", None)
    if user is None or not session_key:
        return
    transaction.on_commit(
        functools.partial(user_access_check_broadcast, user_id=user.pk, session_key=session_key)
    )
