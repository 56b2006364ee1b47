"""The Celery app: SQS broker (kombu's SQS transport) in every environment."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.signals import beat_init, setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("fancrm")
app.config_from_object("onlyfans.broker:celery_config", namespace=None)
app.autodiscover_tasks()


def beat_schedule() -> dict[str, dict[str, Any]]:
    """Every periodic task of every app, in one place: what beat runs, and how often."""
    from django.conf import settings

    every = {
        "cloudwatch-publish": (
            "onlyfans.cloudwatch.cloudwatch_publish_task",
            settings.CLOUDWATCH_PUBLISH_SECONDS,
        ),
        "send-outbox-sweep": (
            "onlyfans.tasks.outbox_sweep_task",
            settings.SEND_OUTBOX_SWEEP_SECONDS,
        ),
        "fan-sync-schedule": (
            "onlyfans.tasks.fan_sync_schedule_task",
            settings.FAN_SYNC_SCHEDULE_SECONDS,
        ),
        "vault-sync-schedule": (
            "onlyfans.tasks.vault_sync_schedule_task",
            settings.VAULT_SYNC_SCHEDULE_SECONDS,
        ),
        "campaigns-sweep": (
            "campaigns.tasks.campaigns_sweep_task",
            settings.CAMPAIGN_SWEEP_SECONDS,
        ),
        "import-drafts-expire": ("imports.tasks.fan_import_drafts_expire_task", 3600),
        "analytics-rollups-refresh": ("analytics.tasks.rollups_refresh_task", 60),
        "inbox-snoozes-wake": ("crm.tasks.snoozes_wake_task", settings.SNOOZE_WAKE_SECONDS),
        "inbox-drafts-expire": ("crm.tasks.drafts_expire_task", settings.DRAFT_CLEANUP_SECONDS),
        # Shifts: idle clock-out and the shift-only window's close (crm/worktime.py).
        "work-sessions-sweep": ("crm.tasks.work_sessions_sweep_task", 60),
        # The media page's roll-up: accounts without a whole one, or whose zone changed.
        "media-stats-build": ("crm.tasks.media_stats_build_due_task", 60),
        # automations: due runs to the send pipeline; the scan triggers.
        "automations-due": (
            "automations.tasks.automation_runs_due_task",
            settings.AUTOMATION_DUE_SECONDS,
        ),
        "automations-scan": (
            "automations.tasks.automation_scans_task",
            settings.AUTOMATION_SCAN_SECONDS,
        ),
        # Deferred subscription webhooks a lost task left (onlyfans/webhooks.py).
        "webhook-events-apply": (
            "onlyfans.webhooks.webhook_events_apply_task",
            settings.ONLYFANS_WEBHOOK_SWEEP_SECONDS,
        ),
    }
    return {
        name: {"task": task, "schedule": float(seconds)} for name, (task, seconds) in every.items()
    }


# The periodic tasks that pick up work a lost task left (a message, a sync, a campaign, a
# webhook): a starting beat runs them at once rather than an interval later. On a fresh
# ``make run`` the demo's first syncs are queued before the broker is up; they start with the
# workers, not a minute after.
RESUME_AT_BEAT_START = (
    "send-outbox-sweep",
    "fan-sync-schedule",
    "vault-sync-schedule",
    "campaigns-sweep",
    "webhook-events-apply",
)


@beat_init.connect
def _resume_at_beat_start(**kwargs: object) -> None:
    import structlog

    schedule = beat_schedule()
    for name in RESUME_AT_BEAT_START:
        try:
            task_publish(schedule[name]["task"])
        except Exception:  # the broker is not up yet: the interval's run comes as before
            structlog.get_logger(__name__).warning(
                "beat.resume_publish_failed", entry=name, exc_info=True
            )


@app.on_after_configure.connect
def _beat_schedule_set(sender: Celery, **kwargs: object) -> None:
    # After configuration: the settings the intervals come from are loaded by then.
    sender.conf.beat_schedule = beat_schedule()


@setup_logging.connect
def _keep_django_logging(**kwargs: object) -> None:
    """With a receiver here Celery leaves logging alone: Django's LOGGING (structured events
    on stderr) applies to workers and beat as to the web server."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)


# SQS holds a message back at most 15 minutes (DelaySeconds). A task that must wait longer is
# published for 900 s and, when it runs early, publishes itself again (each caller's task does).
MAX_SQS_DELAY_SECONDS = 900


def task_publish(
    name: str,
    *,
    args: Sequence[Any] = (),
    kwargs: dict[str, Any] | None = None,
    delay_seconds: float = 0.0,
    eta_for_fraction: bool = False,
    **options: Any,
) -> None:
    """Publish the task called ``name`` to run ``delay_seconds`` from now (cut to SQS's cap).

    Tasks are published by name, so a module never imports the tasks it starts (imports
    run one way and without circles: ``lint-imports``). SQS delays in whole seconds (kombu's
    ``delay_seconds``); with ``eta_for_fraction`` the task also carries an ETA for the rest,
    which a worker that receives it holds for under a second (the send pipeline's slots are
    finer than a second). Other ``options`` (``queue``, ``producer``) go to Celery as they are.
    """
    from django.utils import timezone

    # The queues exist (``sqs_ensure_queues``, predefined for kombu): Celery would declare the
    # route's queue with every publish, which on SQS asks for its attributes on each new
    # connection and costs a declare check per task in this process.
    options.setdefault("declare", [])
    delay = min(float(MAX_SQS_DELAY_SECONDS), max(0.0, delay_seconds))
    whole = int(delay)
    if eta_for_fraction and delay - whole >= 0.05:
        options["eta"] = timezone.now() + timedelta(seconds=delay)
    app.send_task(name, args=tuple(args), kwargs=kwargs, delay_seconds=whole, **options)
