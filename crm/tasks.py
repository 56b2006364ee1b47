"""Periodic tasks of the inbox (run by beat, ``config.celery.beat_schedule``)."""

from __future__ import annotations

from celery import shared_task

from crm.drafts import drafts_expire
from crm.media_stats import media_stats_build_due
from crm.snooze import snoozes_wake_due
from crm.worktime import work_sessions_end_after_shift, work_sessions_end_idle


@shared_task(name="crm.tasks.snoozes_wake_task", ignore_result=True)
def snoozes_wake_task() -> int:
    """Wake the snoozed conversations that are due; idempotent (see ``snoozes_wake_due``)."""
    return snoozes_wake_due()


@shared_task(name="crm.tasks.drafts_expire_task", ignore_result=True)
def drafts_expire_task() -> int:
    """Delete composer drafts older than ``DRAFT_TTL_DAYS``; idempotent."""
    return drafts_expire()


@shared_task(name="crm.tasks.work_sessions_sweep_task", ignore_result=True)
def work_sessions_sweep_task() -> int:
    """Clock out idle members (at their last activity) and, on shift-only accounts,
    chatters whose shift window closed; idempotent. The number of sessions ended."""
    return work_sessions_end_idle() + work_sessions_end_after_shift()


@shared_task(name="crm.tasks.media_stats_build_due_task", ignore_result=True)
def media_stats_build_due_task() -> int:
    """Build the media roll-up of accounts that have none whole (new accounts, a changed
    zone); idempotent. The number of accounts built."""
    return media_stats_build_due()
