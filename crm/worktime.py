"""Worked time: clock-in and out, activity, the idle clock-out, shift-only access.

A member's worked time on an account is a ``WorkSession``: opened by clocking in, closed by
clocking out, by the idle sweep (``SHIFT_IDLE_MINUTES`` after the last activity, ended at that
activity), by a manager, or by leaving the account. Pay counts these, not the schedule.
See docs/shifts.md.
"""

from __future__ import annotations

from django.db.models import Subquery

from crm.models import WorkSession


def work_session_open_subquery(*, account_id: int, user_id: int) -> Subquery:
    """The id of the user's open session on the account (NULL when clocked out), as an SQL
    subquery: the send path folds it into the message's INSERT instead of a query of its own.
    The partial unique index ``work_session_one_open`` answers it."""
    return Subquery(
        WorkSession.objects.filter(
            account_id=account_id, user_id=user_id, ended_at__isnull=True
        ).values("id")[:1]
    )
