"""Writes for campaigns, their lifecycle: segments, campaigns, launch (the audience snapshot),
pause/resume/cancel, unsend, resend, finish; and the bulk API.

Individual mode sends through the send pipeline: the fan-out (``campaigns.fanout``) turns
batches of the recipients into queued messages. Mass mode sends through the platform's mass
messages (``campaigns.mass``). Both use this module, never the other way round.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient, MassChunk, Segment
from campaigns.rules import (
    SegmentRules,
    segment_rules_parse,
    text_max_length,
    text_variables_check,
)
from campaigns.selectors import (
    WITHDRAWN_PREFIXES,
    auto_mode_choose,
    campaign_membership_get,
    campaign_preflight,
    campaign_unsend_until,
    fan_ids_not_in_account,
    fans_for_segment,
)
from config.celery import task_publish
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import CreatorAccount, Fan, Message
from onlyfans.services import message_validate

log = structlog.get_logger(__name__)

# Campaigns' tasks, published by name (config.celery.task_publish): services never import
# campaigns.tasks, which imports them.
FAN_OUT_TASK = "campaigns.tasks.campaign_fan_out_task"
MASS_SEND_TASK = "campaigns.tasks.campaign_mass_send_task"
START_TASK = "campaigns.tasks.campaign_start_task"
UNSEND_TASK = "campaigns.tasks.campaign_unsend_task"


def campaign_task_publish_or_log(name: str, campaign_id: int, *, delay_seconds: float = 0) -> None:
    """Publish the campaign's task ``name``; when SQS does not take it, log it: the campaigns
    sweep restarts work that stalled (the rows hold the state)."""
    try:
        task_publish(name, args=[campaign_id], delay_seconds=delay_seconds)
    except Exception:
        log.warning("campaign.publish_failed", task=name, exc_info=True)


CANCELLED_ERROR = "cancelled: the campaign was cancelled before this message was sent"


# --- segments -------------------------------------------------------------------------------


@transaction.atomic
def segment_save(
    *,
    actor: AbstractBaseUser,
    account_id: int,
    name: str,
    rules: dict[str, Any] | SegmentRules,
    segment: Segment | None = None,
) -> Segment:
    """Save rules under a name for reuse (owners and managers)."""
    campaign_membership_get(user=actor, account_id=account_id)
    parsed = rules if isinstance(rules, SegmentRules) else segment_rules_parse(rules)
    name = name.strip()
    if not name or len(name) > 100:
        raise ApplicationError(
            "A segment needs a name of at most 100 characters.",
            code="invalid_segment",
            fields={"name": ["Required, at most 100 characters."]},
        )
    clash = Segment.objects.filter(account_id=account_id, name=name)
    if segment is not None:
        clash = clash.exclude(pk=segment.pk)
    if clash.exists():
        raise ApplicationError(
            f"There is already a segment named “{name}”.",
            code="duplicate_segment",
            fields={"name": ["Already used."]},
            status_code=409,
        )
    if segment is None:
        segment = Segment(account_id=account_id, created_by_id=actor.pk)
    segment.name = name
    segment.rules = parsed.as_json()
    segment.save()
    return segment


@transaction.atomic
def segment_delete(*, actor: AbstractBaseUser, segment: Segment) -> None:
    campaign_membership_get(user=actor, account_id=segment.account_id)
    segment.delete()


# --- campaigns ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignInput:
    """What a user sets on a campaign (pages and API parse into this)."""

    name: str
    text: str
    price_cents: int = 0
    media_ids: tuple[str, ...] = ()
    rules: dict[str, Any] | None = None
    segment_id: int | None = None
    mode: str = Campaign.Mode.INDIVIDUAL
    drain_window_minutes: int | None = None
    control_percent: int = 0
    scheduled_at: datetime | None = None
    block_banned_words: str = ""


def _campaign_validate(account: CreatorAccount, data: CampaignInput) -> SegmentRules:
    errors: dict[str, list[str]] = {}
    name = data.name.strip()
    if not name or len(name) > 200:
        errors["name"] = ["Required, at most 200 characters."]
    try:
        message_validate(
            text=data.text, price_cents=data.price_cents, media_ids=list(data.media_ids)
        )
    except ApplicationError as exc:
        errors.update(exc.fields)
    unknown = text_variables_check(data.text)
    if unknown:
        errors.setdefault("text", []).append(
            "Unknown variable: "
            + ", ".join("{" + v + "}" for v in unknown)
            + ". Use {name} or {username}, with a fallback like {name|babe}."
        )
    elif text_max_length(data.text) > settings.MESSAGE_TEXT_MAX_LENGTH:
        errors.setdefault("text", []).append(
            "Too long once the fans' names are filled in; shorten the text."
        )
    if data.mode not in Campaign.Mode.values:
        errors["mode"] = [f"Choose from {', '.join(Campaign.Mode.values)}."]
    if not 0 <= data.control_percent <= 50:
        errors["control_percent"] = ["Between 0 and 50 percent."]
    window = data.drain_window_minutes
    if window is not None and not 1 <= window <= 7 * 24 * 60:
        errors["drain_window_minutes"] = ["Between 1 minute and 7 days."]
    if data.block_banned_words not in Campaign.BannedWords.values:
        errors["block_banned_words"] = [
            f"Choose from {', '.join(v for v in Campaign.BannedWords.values if v)}, or empty."
        ]
    if (
        data.segment_id is not None
        and not Segment.objects.filter(pk=data.segment_id, account_id=account.pk).exists()
    ):
        errors["segment_id"] = ["No such segment in this account."]
    try:
        rules = segment_rules_parse(data.rules or {})
    except ApplicationError as exc:
        errors.update(exc.fields)
        rules = SegmentRules()
    if rules.fan_ids:
        foreign = fan_ids_not_in_account(account_id=account.pk, fan_ids=rules.fan_ids)
        if foreign:
            raise ApplicationError(
                f"{len(foreign)} of the fan ids are not fans of {account.display_name}.",
                code="foreign_fans",
                fields={"fan_ids": [f"Not fans of this account: {_ids_text(foreign)}."]},
                extra={"fan_ids": foreign},
            )
    if errors:
        raise ApplicationError("The campaign is not valid.", code="invalid_campaign", fields=errors)
    return rules


def _ids_text(ids: Sequence[int], shown: int = 20) -> str:
    text = ", ".join(str(i) for i in ids[:shown])
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def _apply(campaign: Campaign, data: CampaignInput, rules: SegmentRules) -> None:
    campaign.name = data.name.strip()
    campaign.text = data.text
    campaign.price_cents = data.price_cents
    campaign.media_ids = list(data.media_ids)
    campaign.rules = rules.as_json()
    campaign.segment_id = data.segment_id
    campaign.mode = data.mode
    campaign.drain_window_minutes = (
        data.drain_window_minutes or settings.CAMPAIGN_DRAIN_WINDOW_DEFAULT_MINUTES
    )
    campaign.control_percent = data.control_percent
    campaign.scheduled_at = data.scheduled_at
    campaign.block_banned_words = data.block_banned_words


@transaction.atomic
def campaign_create(*, actor: AbstractBaseUser, account_id: int, data: CampaignInput) -> Campaign:
    """A draft campaign (owners and managers). Fan ids of another account are refused by name
    (``foreign_fans``), never skipped."""
    membership = campaign_membership_get(user=actor, account_id=account_id)
    rules = _campaign_validate(membership.account, data)
    campaign = Campaign(account=membership.account, created_by_id=actor.pk)
    _apply(campaign, data, rules)
    campaign.save()
    log.info("campaign.created", campaign_id=campaign.pk, account_id=account_id)
    return campaign


@transaction.atomic
def campaign_update(
    *, actor: AbstractBaseUser, campaign: Campaign, data: CampaignInput
) -> Campaign:
    """Change a campaign before it starts (draft or scheduled)."""
    membership = campaign_membership_get(user=actor, account_id=campaign.account_id)
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if not locked.is_editable:
        raise ApplicationError(
            "A campaign that has started cannot be changed.", code="not_editable", status_code=409
        )
    rules = _campaign_validate(membership.account, data)
    _apply(locked, data, rules)
    locked.save()
    return locked


def _rules(campaign: Campaign) -> SegmentRules:
    return segment_rules_parse(campaign.rules)


def campaign_progress_on_commit(campaign: Campaign) -> None:
    """Open campaign pages hear that the campaign moved (they re-read its progress)."""
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=campaign.account_id,
            event="campaign.progress",
            payload={"campaign_id": campaign.pk, "state": campaign.state},
        )
    )


@transaction.atomic
def campaign_launch(
    *, actor: AbstractBaseUser, campaign: Campaign, now: datetime | None = None
) -> Campaign:
    """Send now, or at ``scheduled_at`` when that is in the future (then ``scheduled``).

    Locks the campaign row (SELECT ... FOR UPDATE): two launches cannot both start it."""
    campaign_membership_get(user=actor, account_id=campaign.account_id)
    now = now or timezone.now()
    locked = Campaign.objects.select_for_update().select_related("account").get(pk=campaign.pk)
    if locked.state not in Campaign.EDITABLE_STATES:
        raise ApplicationError(
            f"The campaign is {locked.get_state_display().lower()}; only a draft or scheduled "
            "campaign can be launched.",
            code="not_launchable",
            status_code=409,
        )
    if locked.scheduled_at is not None and locked.scheduled_at > now:
        locked.state = Campaign.State.SCHEDULED
        locked.save(update_fields=["state", "updated_at"])
        delay = (locked.scheduled_at - now).total_seconds()
        transaction.on_commit(lambda: campaign_start_task_publish(locked.pk, delay))
        log.info("campaign.scheduled", campaign_id=locked.pk, account_id=locked.account_id)
        return locked
    return _campaign_start_locked(locked, now=now)


def campaign_start_task_publish(campaign_id: int, delay_seconds: float) -> None:
    """Publish the start task to wake at the scheduled time (SQS holds at most 15 minutes; the
    task publishes itself again until it is due, and the campaigns sweep covers a lost one)."""
    task_publish(START_TASK, args=[campaign_id], delay_seconds=delay_seconds)


@transaction.atomic
def campaign_start(*, campaign_id: int, now: datetime | None = None) -> Campaign | None:
    """A scheduled campaign's time has come: start it (no-op unless scheduled and due)."""
    now = now or timezone.now()
    locked = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(pk=campaign_id, state=Campaign.State.SCHEDULED)
        .first()
    )
    if locked is None or (locked.scheduled_at is not None and locked.scheduled_at > now):
        return None
    return _campaign_start_locked(locked, now=now)


_RECIPIENTS_SNAPSHOT_SQL = """
INSERT INTO {recipients} (campaign_id, fan_id, state, is_control)
SELECT %s, s.id, CASE WHEN s.rn <= s.k THEN 'control' ELSE 'pending' END, s.rn <= s.k
FROM (
  SELECT a.id, row_number() OVER (ORDER BY random()) AS rn,
         (count(*) OVER ()) * %s / 100 AS k
  FROM ({audience}) a
) s
ON CONFLICT (campaign_id, fan_id) DO NOTHING
"""


def _campaign_start_locked(campaign: Campaign, *, now: datetime) -> Campaign:
    """Snapshot the audience (control group chosen at random, stored) and start sending.
    The caller holds the campaign's row lock."""
    rules = _rules(campaign)
    preflight = campaign_preflight(
        account=campaign.account,
        rules=rules,
        media_ids=campaign.media_ids,
        control_percent=campaign.control_percent,
        drain_window_minutes=campaign.drain_window_minutes,
        sample_size=0,
        now=now,
    )
    audience = (
        fans_for_segment(
            account_id=campaign.account_id, rules=rules, media_ids=campaign.media_ids, now=now
        )
        .values("id")
        .query
    )
    audience_sql, audience_params = audience.sql_with_params()
    sql = _RECIPIENTS_SNAPSHOT_SQL.format(
        recipients=CampaignRecipient._meta.db_table, audience=audience_sql
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, campaign.control_percent, *audience_params])
    counts = dict(
        CampaignRecipient.objects.filter(campaign_id=campaign.pk)
        .order_by()
        .values_list("is_control")
        .annotate(n=Count("id"))
        .values_list("is_control", "n")
    )
    campaign.control_total = counts.get(True, 0)
    campaign.recipients_total = counts.get(False, 0)
    campaign.unlinked_skipped = preflight.unlinked
    campaign.preflight = preflight.as_json()
    if campaign.mode == Campaign.Mode.AUTO:
        campaign.sent_as = auto_mode_choose(
            estimates=preflight.estimates, drain_window_minutes=campaign.drain_window_minutes
        )
    else:
        campaign.sent_as = campaign.mode
    campaign.state = Campaign.State.RUNNING
    campaign.launched_at = now
    campaign.save()
    log.info(
        "campaign.launched",
        campaign_id=campaign.pk,
        account_id=campaign.account_id,
        recipients=campaign.recipients_total,
        control=campaign.control_total,
        mode=campaign.sent_as,
    )
    campaign_progress_on_commit(campaign)
    _work_on_commit(campaign)
    return campaign


def _work_on_commit(campaign: Campaign) -> None:
    """Start (or continue) the campaign's sending task after commit."""
    name = MASS_SEND_TASK if campaign.send_mode == Campaign.Mode.MASS else FAN_OUT_TASK
    transaction.on_commit(functools.partial(task_publish, name, args=[campaign.pk]))


# --- pause, resume, cancel, resend ----------------------------------------------------------

_WITHDRAW_SQL = """
UPDATE {messages} SET status = 'failed', last_error = %s, dispatched_at = NULL, updated_at = %s
WHERE campaign_id = %s AND status = 'queued'
"""


def _withdraw_queued(campaign: Campaign, error: str, now: datetime) -> int:
    """Take the campaign's queued messages out of the pipeline without sending them: failed
    with ``error``. The send task's claim (status must still be pending) then refuses them,
    including tasks already on the broker. A message ``sending`` right now finishes."""
    with connection.cursor() as cursor:
        cursor.execute(
            _WITHDRAW_SQL.format(messages=Message._meta.db_table), [error, now, campaign.pk]
        )
        return int(cursor.rowcount)


def _locked_for_action(actor: AbstractBaseUser, campaign: Campaign) -> Campaign:
    campaign_membership_get(user=actor, account_id=campaign.account_id)
    return Campaign.objects.select_for_update().select_related("account").get(pk=campaign.pk)


def _refuse(campaign: Campaign, action: str) -> ApplicationError:
    return ApplicationError(
        f"A {campaign.get_state_display().lower()} campaign cannot be {action}.",
        code="invalid_state",
        status_code=409,
    )


@transaction.atomic
def campaign_pause(*, actor: AbstractBaseUser, campaign: Campaign) -> Campaign:
    """Stop sending for now: the fan-out stops and the campaign's queued messages stay
    ``queued``, held: the dispatcher claims none of a paused campaign's messages (they keep
    their idempotency keys and leave on resume). Messages already handed to the sender (the
    campaign lane's few seconds of sends, one at usual rates) still go. Locks the campaign
    row."""
    locked = _locked_for_action(actor, campaign)
    if locked.state != Campaign.State.RUNNING:
        raise _refuse(locked, "paused")
    locked.state = Campaign.State.PAUSED
    locked.save(update_fields=["state", "updated_at"])
    log.info("campaign.paused", campaign_id=locked.pk, account_id=locked.account_id)
    campaign_progress_on_commit(locked)
    return locked


@transaction.atomic
def campaign_resume(*, actor: AbstractBaseUser, campaign: Campaign) -> Campaign:
    """Carry on: the held messages are claimed again (same keys), the fan-out continues."""
    locked = _locked_for_action(actor, campaign)
    if locked.state != Campaign.State.PAUSED:
        raise _refuse(locked, "resumed")
    locked.state = Campaign.State.RUNNING
    locked.save(update_fields=["state", "updated_at"])
    log.info("campaign.resumed", campaign_id=locked.pk, account_id=locked.account_id)
    from onlyfans.dispatch_coalescer import dispatch_on_commit

    if locked.send_mode == Campaign.Mode.INDIVIDUAL:
        dispatch_on_commit(account_id=locked.account_id)
    campaign_progress_on_commit(locked)
    _work_on_commit(locked)
    return locked


@transaction.atomic
def campaign_cancel(*, actor: AbstractBaseUser, campaign: Campaign) -> Campaign:
    """Send nothing more: recipients not fanned out yet are withdrawn, queued (and held)
    messages leave the pipeline as failed ``cancelled: …``, pending mass chunks are dropped.
    Locks the campaign row."""
    locked = _locked_for_action(actor, campaign)
    if locked.state in Campaign.FINAL_STATES:
        raise _refuse(locked, "cancelled")
    now = timezone.now()
    withdrawn = _withdraw_queued(locked, CANCELLED_ERROR, now)
    CampaignRecipient.objects.filter(
        campaign_id=locked.pk, state=CampaignRecipient.State.PENDING
    ).update(state=CampaignRecipient.State.WITHDRAWN)
    MassChunk.objects.filter(campaign_id=locked.pk, state=MassChunk.State.PENDING).update(
        state=MassChunk.State.CANCELLED, updated_at=now
    )
    locked.state = Campaign.State.CANCELLED
    locked.finished_at = now
    locked.save(update_fields=["state", "finished_at", "updated_at"])
    log.info(
        "campaign.cancelled",
        campaign_id=locked.pk,
        account_id=locked.account_id,
        withdrawn=withdrawn,
    )
    from onlyfans.dispatch_coalescer import dispatch_on_commit

    # Places on the broker the withdrawn messages held go to the account's other messages.
    dispatch_on_commit(account_id=locked.account_id)
    campaign_progress_on_commit(locked)
    return locked


@transaction.atomic
def campaign_unsend(
    *, actor: AbstractBaseUser, campaign: Campaign, now: datetime | None = None
) -> Campaign:
    """Withdraw a mass campaign's message from the fans' chats while the platform's unsend
    window lasts: chunks not sent yet are cancelled (a running campaign stops), and a task
    unsends the sent ones, one limiter slot each. Copies a fan already bought stay viewable
    to them (the platform's rule). Locks the campaign row."""
    locked = _locked_for_action(actor, campaign)
    now = now or timezone.now()
    if locked.unsend_requested_at is not None:
        raise ApplicationError(
            "This campaign is being unsent already.", code="already_unsent", status_code=409
        )
    if (
        locked.send_mode != Campaign.Mode.MASS
        or campaign_unsend_until(campaign=locked, now=now) is None
    ):
        raise ApplicationError(
            "Only a platform mass message can be unsent, and only within the platform's "
            "window after it was sent.",
            code="not_unsendable",
            status_code=409,
        )
    if locked.state not in Campaign.FINAL_STATES:
        MassChunk.objects.filter(campaign_id=locked.pk, state=MassChunk.State.PENDING).update(
            state=MassChunk.State.CANCELLED, updated_at=now
        )
        CampaignRecipient.objects.filter(
            campaign_id=locked.pk, state=CampaignRecipient.State.PENDING
        ).update(state=CampaignRecipient.State.WITHDRAWN)
        locked.state = Campaign.State.CANCELLED
        locked.finished_at = now
    locked.unsend_requested_at = now
    locked.save(update_fields=["state", "finished_at", "unsend_requested_at", "updated_at"])
    log.info("campaign.unsend_requested", campaign_id=locked.pk, account_id=locked.account_id)
    campaign_progress_on_commit(locked)
    campaign_id = locked.pk

    transaction.on_commit(functools.partial(campaign_task_publish_or_log, UNSEND_TASK, campaign_id))
    return locked


@transaction.atomic
def campaign_resend_failed(*, actor: AbstractBaseUser, campaign: Campaign) -> int:
    """Put the campaign's failed messages (not withdrawn ones) back in the pipeline with their
    own idempotency keys, as one retry each; the number put back."""
    locked = _locked_for_action(actor, campaign)
    if locked.state == Campaign.State.CANCELLED:
        raise _refuse(locked, "resent")
    now = timezone.now()
    failed = Message.objects.filter(campaign_id=locked.pk, status=Message.Status.FAILED)
    for prefix in WITHDRAWN_PREFIXES:
        failed = failed.exclude(last_error__startswith=prefix)
    count = failed.update(
        status=Message.Status.QUEUED, attempts=0, dispatched_at=None, queued_at=now, updated_at=now
    )
    if count:
        if locked.state == Campaign.State.DONE:
            locked.state = Campaign.State.RUNNING
            locked.finished_at = None
            locked.save(update_fields=["state", "finished_at", "updated_at"])
        from onlyfans.dispatch_coalescer import dispatch_on_commit

        dispatch_on_commit(account_id=locked.account_id)
        campaign_progress_on_commit(locked)
    log.info("campaign.resent", campaign_id=locked.pk, account_id=locked.account_id, count=count)
    return count


@transaction.atomic
def campaign_finish_if_done(*, campaign_id: int, now: datetime | None = None) -> bool:
    """Mark a running campaign ``done`` once nothing is left to send; True when it did."""
    campaign = (
        Campaign.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(pk=campaign_id, state=Campaign.State.RUNNING)
        .first()
    )
    if campaign is None:
        return False
    if campaign.send_mode == Campaign.Mode.MASS:
        open_chunks = MassChunk.objects.filter(campaign_id=campaign.pk).exclude(
            state__in=[MassChunk.State.SENT, MassChunk.State.FAILED, MassChunk.State.CANCELLED]
        )
        undone = MassChunk.objects.filter(
            campaign_id=campaign.pk, state=MassChunk.State.SENT, is_done=False
        )
        # Recipients not split into chunks yet (the mass task has not run): not done, though
        # no chunk is open (a page view in between marked such a campaign done at once).
        unchunked = CampaignRecipient.objects.filter(
            campaign_id=campaign.pk,
            state=CampaignRecipient.State.PENDING,
            chunk__isnull=True,
            fan__platform_fan_id__isnull=False,
        )
        if open_chunks.exists() or undone.exists() or unchunked.exists():
            return False
    else:
        if CampaignRecipient.objects.filter(
            campaign_id=campaign.pk, state=CampaignRecipient.State.PENDING
        ).exists():
            return False
        if Message.objects.filter(
            campaign_id=campaign.pk, status__in=Message.PENDING_STATUSES
        ).exists():
            return False
    campaign.state = Campaign.State.DONE
    campaign.finished_at = now or timezone.now()
    campaign.save(update_fields=["state", "finished_at", "updated_at"])
    log.info("campaign.done", campaign_id=campaign.pk, account_id=campaign.account_id)
    campaign_progress_on_commit(campaign)
    return True


# --- the bulk API ---------------------------------------------------------------------------


def campaign_account_for_fans(*, actor: AbstractBaseUser, fan_ids: Sequence[int]) -> int:
    """The account a bulk send is for: the one the first fan belongs to, if the actor may see
    it. Every other id must be a fan of the same account (``campaign_create`` says which are
    not)."""
    first = (
        Fan.objects.filter(pk=fan_ids[0], account__memberships__user_id=actor.pk)
        .values_list("account_id", flat=True)
        .first()
        if fan_ids
        else None
    )
    if first is None:
        raise ApplicationError(
            "The first fan id is not a fan of any of your accounts.",
            code="foreign_fans",
            fields={"fan_ids": [f"Not fans of your accounts: {fan_ids[0] if fan_ids else ''}."]},
            extra={"fan_ids": list(fan_ids[:1])},
        )
    return int(first)


@transaction.atomic
def campaign_bulk_send(
    *,
    actor: AbstractBaseUser,
    fan_ids: Sequence[int],
    text: str,
    price_cents: int = 0,
    media_ids: Sequence[str] = (),
    name: str = "",
    mode: str = Campaign.Mode.INDIVIDUAL,
    account_id: int | None = None,
) -> Campaign:
    """Create and launch a campaign to an explicit list of fans (``POST /api/messages/bulk``)."""
    if not fan_ids:
        raise ApplicationError(
            "Give at least one fan id.", code="invalid_campaign", fields={"fan_ids": ["Empty."]}
        )
    if len(fan_ids) > settings.CAMPAIGN_BULK_MAX_FANS:
        raise ApplicationError(
            f"At most {settings.CAMPAIGN_BULK_MAX_FANS:,} fans per bulk send.",
            code="invalid_campaign",
            fields={"fan_ids": ["Too many."]},
        )
    if account_id is None:
        account_id = campaign_account_for_fans(actor=actor, fan_ids=fan_ids)
    now = timezone.now()
    data = CampaignInput(
        name=name.strip() or f"Bulk send {now:%Y-%m-%d %H:%M}",
        text=text,
        price_cents=price_cents,
        media_ids=tuple(media_ids),
        rules={"fan_ids": list(fan_ids)},
        mode=mode,
    )
    campaign = campaign_create(actor=actor, account_id=account_id, data=data)
    return campaign_launch(actor=actor, campaign=campaign, now=now)
