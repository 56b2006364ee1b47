"""Celery tasks of campaigns. Each takes an id, calls a service and is idempotent: a second
delivery of the same SQS message finds nothing left to do, or does the next step."""

from __future__ import annotations

import time
from datetime import timedelta

import structlog
from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from campaigns.fanout import campaign_fan_out_batch
from campaigns.models import Campaign, CampaignRecipient, MassChunk
from campaigns.services import (
    FAN_OUT_TASK,
    MASS_SEND_TASK,
    START_TASK,
    UNSEND_TASK,
    campaign_finish_if_done,
    campaign_start,
    campaign_start_task_publish,
    campaign_task_publish_or_log,
)

log = structlog.get_logger(__name__)


@shared_task(name=FAN_OUT_TASK, acks_late=True, ignore_result=True)
def campaign_fan_out_task(campaign_id: int) -> int:
    """Queue batches of an individual campaign's recipients as messages (each batch its own
    transaction) for up to ``CAMPAIGN_FAN_OUT_TASK_SECONDS``, then publish itself for the
    rest. A duplicate delivery queues the batches after (or nothing)."""
    deadline = time.monotonic() + settings.CAMPAIGN_FAN_OUT_TASK_SECONDS
    queued = 0
    while True:
        result = campaign_fan_out_batch(campaign_id=campaign_id)
        queued += result.queued
        if not result.more:
            return queued
        if result.retry_in is not None:
            campaign_task_publish_or_log(
                FAN_OUT_TASK, campaign_id, delay_seconds=max(1, round(result.retry_in))
            )
            return queued
        if time.monotonic() >= deadline:
            campaign_task_publish_or_log(FAN_OUT_TASK, campaign_id)
            return queued


@shared_task(name=START_TASK, acks_late=True, ignore_result=True)
def campaign_start_task(campaign_id: int) -> str:
    """Start a scheduled campaign when its time has come; until then publish itself again."""
    campaign = Campaign.objects.filter(pk=campaign_id).only("state", "scheduled_at").first()
    if campaign is None or campaign.state != Campaign.State.SCHEDULED:
        return "skipped"
    now = timezone.now()
    if campaign.scheduled_at is not None and campaign.scheduled_at > now:
        campaign_start_task_publish(campaign_id, (campaign.scheduled_at - now).total_seconds())
        return "waiting"
    return "started" if campaign_start(campaign_id=campaign_id, now=now) else "skipped"


def _publish_again_after(retry_in: float | None, name: str, campaign_id: int) -> None:
    """A mass step's task runs again when its step asks (``retry_in`` seconds, within SQS's
    delay cap); None: nothing left to do."""
    if retry_in is not None:
        campaign_task_publish_or_log(name, campaign_id, delay_seconds=round(retry_in))


@shared_task(name=MASS_SEND_TASK, acks_late=True, ignore_result=True)
def campaign_mass_send_task(campaign_id: int) -> str:
    """Send a mass campaign's next chunk (one limiter slot each), reconciling an ambiguous one
    first; publishes itself again for the next chunk or when the limiter says wait."""
    from campaigns.mass import campaign_mass_step

    step = campaign_mass_step(campaign_id=campaign_id)
    _publish_again_after(step.retry_in, MASS_SEND_TASK, campaign_id)
    return step.result


@shared_task(name=UNSEND_TASK, acks_late=True, ignore_result=True)
def campaign_unsend_task(campaign_id: int) -> str:
    """Unsend a mass campaign's next chunk from the platform; publishes itself again for the
    next one or when the limiter says wait."""
    from campaigns.mass import campaign_unsend_step

    step = campaign_unsend_step(campaign_id=campaign_id)
    _publish_again_after(step.retry_in, UNSEND_TASK, campaign_id)
    return step.result


def campaigns_sweep() -> dict[str, int]:
    """Start due scheduled campaigns, restart stalled fan-outs and mass sends, refresh mass
    progress and mark finished campaigns done."""
    from campaigns.mass import campaign_mass_refresh

    now = timezone.now()
    started = 0
    for campaign_id in Campaign.objects.filter(
        state=Campaign.State.SCHEDULED, scheduled_at__lte=now
    ).values_list("id", flat=True):
        started += campaign_start(campaign_id=campaign_id, now=now) is not None
    stalled_before = now - timedelta(seconds=settings.CAMPAIGN_STALLED_AFTER_SECONDS)
    running = list(
        Campaign.objects.filter(state=Campaign.State.RUNNING).values_list(
            "id", "sent_as", "updated_at"
        )
    )
    restarted = done = 0
    for campaign_id, sent_as, updated_at in running:
        if sent_as == Campaign.Mode.MASS:
            campaign_mass_refresh(campaign_id=campaign_id)
            if (
                updated_at < stalled_before
                and MassChunk.objects.filter(
                    campaign_id=campaign_id,
                    state__in=[MassChunk.State.PENDING, MassChunk.State.AMBIGUOUS],
                ).exists()
            ):
                campaign_task_publish_or_log(MASS_SEND_TASK, campaign_id)
                restarted += 1
        elif (
            updated_at < stalled_before
            and CampaignRecipient.objects.filter(
                campaign_id=campaign_id, state=CampaignRecipient.State.PENDING
            ).exists()
        ):
            campaign_task_publish_or_log(FAN_OUT_TASK, campaign_id)
            restarted += 1
        done += campaign_finish_if_done(campaign_id=campaign_id, now=now)
    # Unsends that stalled (a lost task): chunks still to unsend while their window lasts.
    for campaign_id in (
        MassChunk.objects.filter(
            campaign__unsend_requested_at__isnull=False,
            updated_at__lt=stalled_before,
        )
        .filter(
            Q(state=MassChunk.State.SENT, can_unsend=True, unsend_until__gt=now)
            | Q(state__in=[MassChunk.State.SENDING, MassChunk.State.AMBIGUOUS])
        )
        .order_by()
        .values_list("campaign_id", flat=True)
        .distinct()
    ):
        campaign_task_publish_or_log(UNSEND_TASK, campaign_id)
        restarted += 1
    result = {"started": started, "restarted": restarted, "done": done}
    if any(result.values()):
        log.info("campaigns.swept", **result)
    return result


@shared_task(name="campaigns.tasks.campaigns_sweep_task", ignore_result=True)
def campaigns_sweep_task() -> dict[str, int]:
    """Periodic (beat, every ``CAMPAIGN_SWEEP_SECONDS``)."""
    return campaigns_sweep()
