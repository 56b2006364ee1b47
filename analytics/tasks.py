"""The roll-up refresh: every minute, and again at once while a backlog remains."""

from __future__ import annotations

import structlog
from celery import current_app, shared_task

from analytics.rollups import rollups_refresh

log = structlog.get_logger(__name__)
REFRESH_SECONDS = 60.0


@shared_task(name="analytics.tasks.rollups_refresh_task", ignore_result=True)
def rollups_refresh_task() -> dict[str, int]:
    """Bring the analytics roll-ups up to date. Idempotent: a second delivery recomputes the
    same days from the same rows (or finds nothing new)."""
    result = rollups_refresh()
    log.info("analytics.rollups_refreshed", **result)
    if result["more"]:
        rollups_refresh_task.delay()
    return result


# Beat imports the task modules before it builds its schedule, so the entry lands in it (the
# send pipeline's schedule is in onlyfans/broker.py; this keeps analytics' own entry here).
current_app.add_periodic_task(
    REFRESH_SECONDS, rollups_refresh_task.s(), name="analytics-rollups-refresh"
)
