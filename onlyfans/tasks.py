"""Celery tasks of the send pipeline. Each takes ids, loads rows, calls services: idempotent."""

from __future__ import annotations

from typing import Any

import structlog
from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_shutdown
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

from config.celery import task_publish
from onlyfans import metrics
from onlyfans.dispatch import MESSAGE_SEND_TASK, message_task_publish, outbox_sweep
from onlyfans.dispatch_coalescer import dispatch_after_send, dispatch_flush
from onlyfans.pipeline import message_deliver
from onlyfans.services import message_touch_dispatched
from onlyfans.sync import fan_sync_task_run, fan_syncs_schedule
from onlyfans.vault_sync import vault_sync_task_run, vault_syncs_schedule

log = structlog.get_logger(__name__)

INFRASTRUCTURE_RETRY_SECONDS = 5.0
# Republishes after PostgreSQL or Redis was away, one after the other (5, 10, 20, 40, 60, 60 s:
# about 3 minutes); then the message is left to the sweep (SEND_REDISPATCH_AFTER_SECONDS).
INFRASTRUCTURE_MAX_RETRIES = 6
INFRASTRUCTURE_MAX_DELAY_SECONDS = 60.0


@shared_task(name=MESSAGE_SEND_TASK, acks_late=True, ignore_result=True)
def message_send_task(message_id: int, infrastructure_retries: int = 0) -> str:
    """Send one outgoing message, or publish itself again for when it can go.

    A delivery that cannot send yet (rate limit, an earlier message of the same conversation
    still pending, a transient gateway error) publishes a new task delayed on SQS and returns,
    so no worker waits. A finished send tops up the account's share of the queue.
    """
    try:
        outcome = message_deliver(message_id=message_id)
    except (OperationalError, InterfaceError, RedisError):
        _republish_after_infrastructure_error(message_id, infrastructure_retries)
        raise
    metrics.TASK_EXECUTIONS.labels(outcome.result).inc()
    if outcome.retry_in is not None:
        message_task_publish(message_id=message_id, delay_seconds=outcome.retry_in)
        message_touch_dispatched(message_id=message_id)
    elif outcome.finished and outcome.account_id is not None:
        dispatch_after_send(account_id=outcome.account_id)
    return outcome.result


def _republish_after_infrastructure_error(message_id: int, retries: int) -> None:
    """PostgreSQL or Redis was away (a restart): publish the task again in a few seconds
    rather than leave the message to the sweep (6 minutes in production). The caller raises
    after, so the failure is counted and logged (task_acks_on_failure: this delivery is gone,
    the new task is the message's only one). Bounded: after INFRASTRUCTURE_MAX_RETRIES in a
    row the sweep takes over. Never a double send: a delivery re-reads the status under the
    message's lock, and a call that reached the platform before the error is answered from
    the idempotency key's record.
    """
    if retries >= INFRASTRUCTURE_MAX_RETRIES:
        metrics.TASK_EXECUTIONS.labels("infrastructure_gave_up").inc()
        log.warning("send.infrastructure_gave_up", message_id=message_id, retries=retries)
        return
    metrics.TASK_EXECUTIONS.labels("infrastructure_error").inc()
    delay = min(INFRASTRUCTURE_MAX_DELAY_SECONDS, INFRASTRUCTURE_RETRY_SECONDS * 2**retries)
    try:
        task_publish(
            MESSAGE_SEND_TASK,
            args=[message_id],
            kwargs={"infrastructure_retries": retries + 1},
            delay_seconds=delay,
        )
    except Exception:
        log.warning("send.republish_failed", message_id=message_id, exc_info=True)


@shared_task(name="onlyfans.tasks.outbox_sweep_task", ignore_result=True)
def outbox_sweep_task() -> dict[str, Any]:
    """Periodic (beat): publish queued messages that never reached or left the broker."""
    return outbox_sweep()


@shared_task(name="onlyfans.tasks.fan_sync_task", acks_late=True, ignore_result=True)
def fan_sync_task(sync_id: int, step: int = 0) -> str:
    """Advance one fan sync run by one step (a few pages), then publish its next step.

    Idempotent: a delivery whose ``step`` is no longer the run's next one does nothing, so a
    redelivered or superseded task cannot run a page twice at once. A 429 publishes the next
    step delayed by ``Retry-After`` instead of waiting in the worker.
    """
    return fan_sync_task_run(sync_id=sync_id, step=step)


@shared_task(name="onlyfans.tasks.fan_sync_schedule_task", ignore_result=True)
def fan_sync_schedule_task() -> dict[str, int]:
    """Periodic (beat): start due fan syncs and resume runs whose task was lost."""
    return fan_syncs_schedule()


@shared_task(name="onlyfans.tasks.vault_sync_task", acks_late=True, ignore_result=True)
def vault_sync_task(sync_id: int, step: int = 0) -> str:
    """Advance one vault sync run by one step (a few pages), then publish its next step.

    Idempotent like ``fan_sync_task``: a delivery whose ``step`` is not the run's next one
    does nothing; a 429 publishes the next step delayed by ``Retry-After``.
    """
    return vault_sync_task_run(sync_id=sync_id, step=step)


@shared_task(name="onlyfans.tasks.vault_sync_schedule_task", ignore_result=True)
def vault_sync_schedule_task() -> dict[str, int]:
    """Periodic (beat): start due vault syncs and resume runs whose task was lost."""
    return vault_syncs_schedule()


@worker_init.connect
@worker_process_init.connect
def _gateway_warm_up(**kwargs: Any) -> None:
    """Build the SDK client before the first task (in each process of the pool).

    Its first use costs over a second of imports, which would otherwise fall between taking
    a rate-limit slot and reaching the platform.
    """
    from onlyfans.client import api_client, send_channel

    _ = api_client().chats.messages
    send_channel()


@worker_shutdown.connect
def _dispatch_flush(**kwargs: Any) -> None:
    """Run the top-ups finished sends asked for, before the process goes."""
    dispatch_flush()
