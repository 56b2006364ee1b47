"""Periodic tasks of the inbox (run by beat, ``config.celery.beat_schedule``)."""

from __future__ import annotations

from celery import shared_task

from crm.drafts import drafts_expire
from crm.snooze import snoozes_wake_due


@shared_task(name="crm.tasks.snoozes_wake_task", ignore_result=True)
def snoozes_wake_task() -> int:
    """Wake the snoozed conversations that are due; idempotent (see ``snoozes_wake_due``)."""
    return snoozes_wake_due()


@shared_task(name="crm.tasks.drafts_expire_task", ignore_result=True)
def drafts_expire_task() -> int:
    """Delete composer drafts older than ``DRAFT_TTL_DAYS``; idempotent."""
    return drafts_expire()
