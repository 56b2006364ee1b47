"""The import's Celery task: it advances one import in committed steps and, when its time
budget runs out, publishes itself again (so a million rows never outlive a task's time limit
and a redelivered message resumes from the last checkpoint)."""

from __future__ import annotations

import random

import structlog
from celery import Task, shared_task
from django.conf import settings

from imports import run, services

log = structlog.get_logger(__name__)

MAX_RETRIES = 3


@shared_task(
    bind=True,
    name=services.IMPORT_TASK,
    acks_late=True,
    ignore_result=True,
    time_limit=settings.IMPORT_TASK_TIME_LIMIT_SECONDS,
    soft_time_limit=settings.IMPORT_TASK_TIME_LIMIT_SECONDS - 10,
)
def fan_import_task(self: Task, import_id: int) -> str:
    """Advance the import by up to IMPORT_TASK_BUDGET_SECONDS of work; idempotent. An
    unexpected error is retried (with backoff and jitter) from the last checkpoint, then
    fails the import."""
    try:
        finished = run.fan_import_advance(import_id=import_id)
    except Exception as exc:
        log.exception("fan_import.step_failed", import_id=import_id)
        if self.request.retries < MAX_RETRIES:
            countdown = 2**self.request.retries + random.random()
            raise self.retry(
                exc=exc, countdown=countdown, max_retries=MAX_RETRIES, queue=services.import_queue()
            ) from exc
        run.fan_import_mark_failed(
            import_id=import_id,
            code="import_error",
            message=f"The import stopped on an unexpected error ({type(exc).__name__}).",
        )
        return "failed"
    if not finished:
        services.fan_import_task_publish(import_id=import_id)
        return "continued"
    return "finished"


@shared_task(name="imports.tasks.fan_import_drafts_expire_task", ignore_result=True)
def fan_import_drafts_expire_task() -> int:
    """Periodic (beat, hourly): drafts nobody started leave with their uploads."""
    return services.fan_import_drafts_expire()
