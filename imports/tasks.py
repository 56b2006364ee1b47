"""The import's Celery task: it advances one import in committed steps and, when its time
budget runs out, publishes itself again (so a million rows never outlive a task's time limit
and a redelivered message resumes from the last checkpoint)."""

from __future__ import annotations

import random

import structlog
from celery import Task, shared_task
from django.conf import settings

from imports import services

log = structlog.get_logger(__name__)

TASK_NAME = "imports.tasks.fan_import_task"


def _queue() -> str:
    from onlyfans.broker import queue_names

    return queue_names().bulk


def fan_import_task_publish(*, import_id: int) -> bool:
    """Put the import's task on the bulk queue (called on commit; a worker process of its
    own serves it, so an import never delays a send). A broker that does not
    answer is logged, not raised: the import stays queued and its page offers to queue it
    again (the task is idempotent, so a second publish is harmless)."""
    try:
        fan_import_task.apply_async((import_id,), queue=_queue())
    except Exception:
        log.warning("fan_import.publish_failed", import_id=import_id, exc_info=True)
        return False
    return True


MAX_RETRIES = 3


@shared_task(
    bind=True,
    name=TASK_NAME,
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
        finished = services.fan_import_advance(import_id=import_id)
    except Exception as exc:
        log.exception("fan_import.step_failed", import_id=import_id)
        if self.request.retries < MAX_RETRIES:
            countdown = 2**self.request.retries + random.random()
            raise self.retry(
                exc=exc, countdown=countdown, max_retries=MAX_RETRIES, queue=_queue()
            ) from exc
        services.fan_import_mark_failed(
            import_id=import_id,
            code="import_error",
            message=f"The import stopped on an unexpected error ({type(exc).__name__}).",
        )
        return "failed"
    if not finished:
        fan_import_task_publish(import_id=import_id)
        return "continued"
    return "finished"


@shared_task(name="imports.tasks.fan_import_drafts_expire_task", ignore_result=True)
def fan_import_drafts_expire_task() -> int:
    """Periodic (beat, hourly): drafts nobody started leave with their uploads."""
    return services.fan_import_drafts_expire()


def _beat_schedule_add() -> None:
    from config.celery import app

    app.add_periodic_task(3600.0, fan_import_drafts_expire_task.s(), name="import-drafts-expire")


_beat_schedule_add()
