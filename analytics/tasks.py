"""The roll-up refresh: every minute, and again at once while a backlog remains."""

from __future__ import annotations

import structlog
from celery import shared_task

from analytics.rollups import rollups_refresh
from config.celery import task_publish

log = structlog.get_logger(__name__)


@shared_task(name="analytics.tasks.rollups_refresh_task", ignore_result=True)
def rollups_refresh_task() -> dict[str, int]:
    """Bring the analytics roll-ups up to date. Idempotent: a second delivery recomputes the
    same days from the same rows (or finds nothing new)."""
    result = rollups_refresh()
    log.info("analytics.rollups_refreshed", **result)
    if result["more"]:
        task_publish("analytics.tasks.rollups_refresh_task", ignore_result=True)
    return result
