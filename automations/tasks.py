"""Periodic tasks of automations (run by beat, ``config.celery.beat_schedule``). Both are
idempotent: a second delivery finds the runs made or handled already."""

from __future__ import annotations

import structlog
from celery import shared_task

from automations.due import automation_runs_due_process
from automations.runs import automation_scans_run
from config.celery import task_publish

log = structlog.get_logger(__name__)

DUE_TASK = "automations.tasks.automation_runs_due_task"
SCAN_TASK = "automations.tasks.automation_scans_task"


@shared_task(name=DUE_TASK, acks_late=True, ignore_result=True)
def automation_runs_due_task() -> int:
    """Hand due runs to the send pipeline, a batch at a time; when due runs are left (and
    their accounts have room), publish itself again rather than wait for beat."""
    result = automation_runs_due_process()
    if result.handled or result.accounts_full:
        log.info(
            "automation.due_pass",
            enqueued=result.enqueued,
            held=result.held,
            cancelled=result.cancelled,
            skipped=result.skipped,
            accounts_full=result.accounts_full,
            more=result.more,
        )
    if result.more:
        try:
            task_publish(DUE_TASK)
        except Exception:
            log.warning("automation.due_publish_failed", exc_info=True)  # beat comes back
    return result.handled


@shared_task(name=SCAN_TASK, acks_late=True, ignore_result=True)
def automation_scans_task() -> int:
    """Create the runs of the scan triggers (expiring, expired, PPV not unlocked, no reply)."""
    return automation_scans_run()
