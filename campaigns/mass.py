"""Mass mode: the campaign goes out as the platform's own mass message, in chunks of
``CAMPAIGN_MASS_CHUNK_SIZE`` fans, one gateway call each, each call taking a slot from the
account's send limiter.

The gateway has no idempotency key for mass messages, so a call's outcome is only certain when
it answered: a chunk is marked ``sending`` (committed) before its call, and a call that timed
out or failed ambiguously (5xx), or a ``sending`` chunk found after a crash, becomes
``ambiguous``. An ambiguous chunk is looked for in the platform's list of recent mass
messages (created after the call started, with the chunk's number of fans, not yet claimed by
another chunk of the account) before anything else: found, it is the chunk's; still missing
after ``CAMPAIGN_MASS_RECONCILE_ATTEMPTS`` reads, it was never made and is sent again. One
chunk per account is in flight at a time (a Redis lock), so two chunks never compete for one
entry of the list.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from redis.exceptions import LockError

from campaigns.models import Campaign, CampaignRecipient, MassChunk
from campaigns.rules import VARIABLE
from campaigns.services import campaign_finish_if_done
from config.redis import redis_client
from crm.broadcasts import account_event_broadcast
from crm.media_send import fan_media_events_record_mass, fan_media_events_withdraw_mass
from crm.models import CreatorAccount
from onlyfans import gateway
from onlyfans.contracts import (
    GatewayAccountUnavailable,
    GatewayError,
    GatewayRateLimited,
    GatewayRejected,
    GatewayTransientError,
    MassMessageStatus,
    MassSendRequest,
)
from onlyfans.dispatch import account_rate_limit
from onlyfans.ratelimit import (
    HeldSlot,
    RateLimit,
    rate_limit_acquire,
    rate_limit_retake,
    rate_limit_slot_usable,
)
from onlyfans.services import account_mark_expired

log = structlog.get_logger(__name__)

LOCK_TTL_SECONDS = 120
# A platform clock a little behind ours must not hide our own message from the reconcile.
CLOCK_SKEW_SECONDS = 5
PROGRESS_POLL_SECONDS = 1.0
BUSY_RETRY_SECONDS = 2.0


class MassResult(StrEnum):
    """What one step of a mass send or unsend came to (the task's return value)."""

    SENT = "sent"
    UNSENT = "unsent"
    DONE = "done"
    DELIVERING = "delivering"
    SKIPPED = "skipped"
    BUSY = "busy"
    PAUSED = "paused"
    THROTTLED = "throttled"
    RATE_LIMITED = "rate_limited"
    RETRYING = "retrying"
    REFUSED = "refused"
    AMBIGUOUS = "ambiguous"
    RECONCILING = "reconciling"
    RECONCILED = "reconciled"
    RESEND = "resend"  # reconciling found the chunk never made: send it again
    DROPPED = "dropped"
    WINDOW_PASSED = "window_passed"


@dataclass(frozen=True)
class MassStep:
    result: MassResult
    retry_in: float | None = None


def mass_text(text: str) -> str:
    """One text for every fan: variables take their fallback (a mass message cannot be
    personalised), ``{name}`` without one is dropped."""
    if not VARIABLE.search(text):
        return text
    generic = VARIABLE.sub(lambda m: m.group(2) or "", text)
    return re.sub(r"[ \t]{2,}", " ", re.sub(r"[ \t]+([,.!?])", r"\1", generic)).strip()


_CHUNKS_SQL = """
WITH numbered AS (
  SELECT r.id, f.platform_fan_id,
         (row_number() OVER (ORDER BY r.id) - 1) / %(size)s AS idx
  FROM {recipients} r JOIN {fans} f ON f.id = r.fan_id
  WHERE r.campaign_id = %(campaign_id)s AND r.state = 'pending' AND r.chunk_id IS NULL
    AND f.platform_fan_id IS NOT NULL
), chunks AS (
  INSERT INTO {chunks} (campaign_id, index, platform_fan_ids, state, platform_mass_id, total,
                        pending, is_done, can_unsend, attempts, reconcile_reads, last_error,
                        updated_at)
  SELECT %(campaign_id)s, idx, array_agg(platform_fan_id ORDER BY id), 'pending', '', 0, 0,
         false, false, 0, 0, '', now()
  FROM numbered GROUP BY idx
  RETURNING id, index
)
UPDATE {recipients} r SET chunk_id = chunks.id
FROM numbered JOIN chunks ON chunks.index = numbered.idx
WHERE r.id = numbered.id
"""


def _chunks_create(campaign: Campaign) -> int:
    """Split the campaign's recipients into chunks (once; the recipients keep their chunk)."""
    from crm.models import Fan

    sql = _CHUNKS_SQL.format(
        recipients=CampaignRecipient._meta.db_table,
        fans=Fan._meta.db_table,
        chunks=MassChunk._meta.db_table,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, {"size": settings.CAMPAIGN_MASS_CHUNK_SIZE, "campaign_id": campaign.pk})
        return int(cursor.rowcount)


# The chunk's recipients become ``mass_sent``; their fans, for what each one got.
_RECIPIENTS_SENT_SQL = f"""
UPDATE {CampaignRecipient._meta.db_table} SET state = 'mass_sent', sent_at = %(now)s
WHERE chunk_id = %(chunk)s AND state = 'pending'
RETURNING fan_id
"""  # noqa: S608 (table names only)


def _chunk_sent(campaign: Campaign, chunk: MassChunk, status: MassMessageStatus) -> None:
    """The platform accepted the chunk (inside the caller's transaction): the chunk and its
    recipients say so, and each recipient fan's media events (what the fan got, for the
    picker's marks, the resend guard and the pre-flight) and the media page's roll-up are
    written with them, a few set-based statements whatever the chunk's size."""
    now = timezone.now()
    chunk.state = MassChunk.State.SENT
    chunk.platform_mass_id = status.platform_mass_id
    chunk.total = status.total or len(chunk.platform_fan_ids)
    chunk.pending = status.pending
    chunk.is_done = status.is_done
    chunk.can_unsend = status.can_unsend
    chunk.unsend_until = _unsend_until(status, now)
    chunk.sent_at = now
    chunk.last_error = ""
    chunk.save()
    with connection.cursor() as cursor:
        cursor.execute(_RECIPIENTS_SENT_SQL, {"chunk": chunk.pk, "now": now})
        fan_ids = [row[0] for row in cursor.fetchall()]
    fan_media_events_record_mass(
        account_id=campaign.account_id,
        campaign_id=campaign.pk,
        chunk_id=chunk.pk,
        platform_mass_id=chunk.platform_mass_id,
        fan_ids=fan_ids,
        media_ids=list(campaign.media_ids),
        price_cents=campaign.price_cents,
        at=now,
        sent_by_id=campaign.created_by_id,
    )
    Campaign.objects.filter(pk=chunk.campaign_id).update(
        fanned_out=F("fanned_out") + len(chunk.platform_fan_ids), updated_at=now
    )


def _unsend_until(status: MassMessageStatus, now: datetime) -> datetime | None:
    if not status.can_unsend or status.unsend_seconds <= 0:
        return None
    return now + timedelta(seconds=status.unsend_seconds)


def _broadcast(campaign: Campaign) -> None:
    account_id, campaign_id, state = campaign.account_id, campaign.pk, campaign.state
    transaction.on_commit(
        lambda: account_event_broadcast(
            account_id=account_id,
            event="campaign.progress",
            payload={"campaign_id": campaign_id, "state": state},
        )
    )


def _claimed_ids(account_id: int) -> set[str]:
    return set(
        MassChunk.objects.filter(campaign__account_id=account_id)
        .exclude(platform_mass_id="")
        .values_list("platform_mass_id", flat=True)
    )


def _reconcile(campaign: Campaign, chunk: MassChunk) -> MassStep:
    """Find an ambiguous chunk's message in the platform's list, or give it up as not made."""
    account = campaign.account
    try:
        listed = gateway.mass_messages_list(account_platform_id=account.platform_account_id)
    except GatewayError as exc:
        log.info("campaign.mass_reconcile_unavailable", campaign_id=campaign.pk, code=exc.code)
        return MassStep(
            MassResult.RECONCILING, retry_in=settings.CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS
        )
    claimed = _claimed_ids(account.pk)
    since = (chunk.started_at or timezone.now()) - timedelta(seconds=CLOCK_SKEW_SECONDS)
    size = len(chunk.platform_fan_ids)
    for status in listed:
        if (
            status.platform_mass_id not in claimed
            and status.total == size
            and (status.created_at is None or status.created_at >= since)
            and not status.is_canceled
        ):
            with transaction.atomic():
                _chunk_sent(campaign, chunk, status)
            log.info(
                "campaign.mass_reconciled_found",
                campaign_id=campaign.pk,
                chunk=chunk.index,
                platform_mass_id=status.platform_mass_id,
            )
            return MassStep(MassResult.RECONCILED, retry_in=0)
    chunk.reconcile_reads += 1
    if chunk.reconcile_reads < settings.CAMPAIGN_MASS_RECONCILE_ATTEMPTS:
        chunk.save(update_fields=["reconcile_reads", "updated_at"])
        return MassStep(
            MassResult.RECONCILING, retry_in=settings.CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS
        )
    # Not on the platform after every read: the call never made it. Send it again.
    chunk.state = MassChunk.State.PENDING
    chunk.reconcile_reads = 0
    chunk.save(update_fields=["state", "reconcile_reads", "updated_at"])
    log.info("campaign.mass_reconciled_missing", campaign_id=campaign.pk, chunk=chunk.index)
    return MassStep(MassResult.RESEND, retry_in=0)


def _send_chunk(campaign: Campaign, chunk: MassChunk) -> MassStep:
    """Send one chunk on a held limiter slot, as the send pipeline sends a message: the slot
    holds the account's next one back until the call is answered, and is confirmed (or
    retaken) right before the call, so a late request cannot land among later sends."""
    account: CreatorAccount = campaign.account
    limit = account_rate_limit(account)
    slot = rate_limit_acquire(account_id=account.pk, limit=limit, hold=True)
    if not slot.granted:
        return MassStep(MassResult.THROTTLED, retry_in=max(slot.wait_seconds, 0.05))
    held = HeldSlot(account_id=account.pk, limit=limit, slot=slot)
    try:
        return _send_chunk_on_slot(campaign, chunk, limit, held)
    finally:
        held.release()


def _send_chunk_on_slot(
    campaign: Campaign, chunk: MassChunk, limit: RateLimit, held: HeldSlot
) -> MassStep:
    account: CreatorAccount = campaign.account
    # Committed before the call: a crash during it leaves ``sending``, which is reconciled.
    chunk.state = MassChunk.State.SENDING
    chunk.attempts += 1
    chunk.started_at = timezone.now()
    chunk.save(update_fields=["state", "attempts", "started_at", "updated_at"])
    if not rate_limit_slot_usable(account_id=account.pk, limit=limit, slot=held.slot):
        # Taken too long ago (a slow database, a starved worker) or lost with Redis.
        held.slot = rate_limit_retake(account_id=account.pk, limit=limit, stale=held.slot)
        if not held.slot.granted:
            chunk.state = MassChunk.State.PENDING  # no call was made
            chunk.attempts -= 1
            chunk.save(update_fields=["state", "attempts", "updated_at"])
            return MassStep(MassResult.THROTTLED, retry_in=max(held.slot.wait_seconds, 0.05))
    request = MassSendRequest(
        account_platform_id=account.platform_account_id,
        user_ids=tuple(chunk.platform_fan_ids),
        text=mass_text(campaign.text),
        price_cents=campaign.price_cents,
        media_ids=tuple(campaign.media_ids),
        block_banned_words=campaign.block_banned_words or None,
    )
    try:
        status = gateway.mass_message_send(request)
    except GatewayRateLimited as exc:
        chunk.state = MassChunk.State.PENDING  # a 429 made nothing
        chunk.save(update_fields=["state", "updated_at"])
        return MassStep(MassResult.RATE_LIMITED, retry_in=exc.retry_after_seconds or 5.0)
    except GatewayTransientError as exc:
        chunk.state = MassChunk.State.AMBIGUOUS
        chunk.last_error = f"{exc.code}: {exc.message}"[:500]
        chunk.save(update_fields=["state", "last_error", "updated_at"])
        log.warning(
            "campaign.mass_ambiguous", campaign_id=campaign.pk, chunk=chunk.index, code=exc.code
        )
        return MassStep(
            MassResult.AMBIGUOUS, retry_in=settings.CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS
        )
    except GatewayAccountUnavailable as exc:
        account_mark_expired(account_id=account.pk, reason=exc.code)
        chunk.state = MassChunk.State.PENDING
        chunk.save(update_fields=["state", "updated_at"])
        return MassStep(MassResult.PAUSED, retry_in=60.0)
    except GatewayError as exc:
        # Refused (a 422 listing banned words, a bad price...): every chunk would be refused
        # alike, so the campaign stops with the reason shown.
        error = f"{exc.code}: {exc.message}"[:500]
        with transaction.atomic():
            MassChunk.objects.filter(
                campaign_id=campaign.pk,
                state__in=[MassChunk.State.PENDING, MassChunk.State.SENDING],
            ).update(state=MassChunk.State.FAILED, last_error=error, updated_at=timezone.now())
            Campaign.objects.filter(pk=campaign.pk).update(last_error=error)
        log.warning("campaign.mass_refused", campaign_id=campaign.pk, code=exc.code)
        return MassStep(MassResult.REFUSED, retry_in=0)
    with transaction.atomic():
        _chunk_sent(campaign, chunk, status)
    return MassStep(MassResult.SENT, retry_in=0)


def _account_lock(account_id: int):  # type: ignore[no-untyped-def]
    return redis_client().lock(
        f"campaign:mass:lock:{account_id}", timeout=LOCK_TTL_SECONDS, blocking=False
    )


def campaign_mass_step(*, campaign_id: int) -> MassStep:
    """Advance a running mass campaign by one step: create its chunks, reconcile an ambiguous
    chunk, send the next chunk, or read the platform's progress; ``retry_in`` says when the
    task should run again (None: nothing left)."""
    campaign = Campaign.objects.select_related("account").filter(pk=campaign_id).first()
    if (
        campaign is None
        or campaign.state != Campaign.State.RUNNING
        or campaign.send_mode != Campaign.Mode.MASS
    ):
        return MassStep(MassResult.SKIPPED)
    if not MassChunk.objects.filter(campaign_id=campaign.pk).exists():
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if not MassChunk.objects.filter(campaign_id=campaign.pk).exists():
                created = _chunks_create(locked)
                log.info("campaign.mass_chunks", campaign_id=campaign.pk, chunks=created)
    lock = _account_lock(campaign.account_id)
    if not lock.acquire():
        return MassStep(MassResult.BUSY, retry_in=BUSY_RETRY_SECONDS)
    try:
        chunk = (
            MassChunk.objects.filter(
                campaign_id=campaign.pk,
                state__in=[
                    MassChunk.State.SENDING,
                    MassChunk.State.AMBIGUOUS,
                    MassChunk.State.PENDING,
                ],
            )
            .order_by("index")
            .first()
        )
        if chunk is not None and chunk.state == MassChunk.State.SENDING:
            # Found mid-call: the worker that made the call is gone.
            chunk.state = MassChunk.State.AMBIGUOUS
            chunk.save(update_fields=["state", "updated_at"])
        if chunk is not None and chunk.state == MassChunk.State.AMBIGUOUS:
            step = _reconcile(campaign, chunk)
        elif chunk is not None:
            step = _send_chunk(campaign, chunk)
        else:
            step = _progress_step(campaign)
    finally:
        # Expired meanwhile: another step may have run, which is harmless.
        with contextlib.suppress(LockError):
            lock.release()
    _broadcast(campaign)
    return step


def _progress_step(campaign: Campaign) -> MassStep:
    if campaign_mass_refresh(campaign_id=campaign.pk):
        campaign_finish_if_done(campaign_id=campaign.pk)
        return MassStep(MassResult.DONE)
    return MassStep(MassResult.DELIVERING, retry_in=PROGRESS_POLL_SECONDS)


def campaign_mass_refresh(*, campaign_id: int) -> bool:
    """Read the platform's counters of the campaign's sent chunks that are not done yet;
    True when every sent chunk is done (and no chunk waits to be sent)."""
    campaign = Campaign.objects.select_related("account").filter(pk=campaign_id).first()
    if campaign is None:
        return True
    chunks = list(MassChunk.objects.filter(campaign_id=campaign_id))
    done = True
    for chunk in chunks:
        if chunk.state in (
            MassChunk.State.PENDING,
            MassChunk.State.SENDING,
            MassChunk.State.AMBIGUOUS,
        ):
            done = False
            continue
        if chunk.state != MassChunk.State.SENT or (chunk.is_done and not chunk.can_unsend):
            continue
        try:
            status = gateway.mass_message_retrieve(
                account_platform_id=campaign.account.platform_account_id,
                platform_mass_id=chunk.platform_mass_id,
            )
        except GatewayError:
            done = done and chunk.is_done
            continue
        now = timezone.now()
        MassChunk.objects.filter(pk=chunk.pk).update(
            total=status.total or chunk.total,
            pending=status.pending,
            is_done=status.is_done,
            can_unsend=status.can_unsend,
            unsend_until=_unsend_until(status, now),
            updated_at=now,
        )
        done = done and status.is_done
    return done


# --- unsend ------------------------------------------------------------------------------------


def _chunk_unsent(chunk: MassChunk, now: datetime, *, account_id: int) -> None:
    with transaction.atomic():
        MassChunk.objects.filter(pk=chunk.pk).update(
            state=MassChunk.State.UNSENT,
            can_unsend=False,
            unsent_at=now,
            pending=0,
            last_error="",
            updated_at=now,
        )
        CampaignRecipient.objects.filter(
            chunk_id=chunk.pk, state=CampaignRecipient.State.MASS_SENT
        ).update(state=CampaignRecipient.State.UNSENT)
        # Withdrawn from the fans' chats: they no longer have its media (marks, resend guard,
        # pre-flight and the media page forget it).
        fan_media_events_withdraw_mass(account_id=account_id, chunk_id=chunk.pk)


def _chunk_unsend_refused(chunk: MassChunk, error: str) -> None:
    MassChunk.objects.filter(pk=chunk.pk).update(
        can_unsend=False, last_error=error[:500], updated_at=timezone.now()
    )


def _unsend_chunk(campaign: Campaign, chunk: MassChunk) -> MassStep:
    account: CreatorAccount = campaign.account
    now = timezone.now()
    if not chunk.can_unsend or (chunk.unsend_until is not None and chunk.unsend_until <= now):
        _chunk_unsend_refused(chunk, "unsend_not_allowed: the platform's unsend window had passed")
        return MassStep(MassResult.WINDOW_PASSED, retry_in=0)
    slot = rate_limit_acquire(account_id=account.pk, limit=account_rate_limit(account))
    if not slot.granted:
        return MassStep(MassResult.THROTTLED, retry_in=max(slot.wait_seconds, 0.05))
    try:
        gateway.mass_message_unsend(
            account_platform_id=account.platform_account_id,
            platform_mass_id=chunk.platform_mass_id,
        )
    except GatewayRateLimited as exc:
        return MassStep(MassResult.RATE_LIMITED, retry_in=exc.retry_after_seconds or 5.0)
    except GatewayAccountUnavailable as exc:
        account_mark_expired(account_id=account.pk, reason=exc.code)
        return MassStep(MassResult.PAUSED, retry_in=60.0)
    except GatewayTransientError as exc:
        # Unknown outcome: calling again is harmless (an unsent message is refused, and the
        # refusal below reads whether it was unsent).
        log.warning(
            "campaign.mass_unsend_retry", campaign_id=campaign.pk, chunk=chunk.index, code=exc.code
        )
        return MassStep(
            MassResult.RETRYING, retry_in=settings.CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS
        )
    except GatewayRejected as exc:
        try:
            status = gateway.mass_message_retrieve(
                account_platform_id=account.platform_account_id,
                platform_mass_id=chunk.platform_mass_id,
            )
        except GatewayError:
            return MassStep(
                MassResult.RETRYING, retry_in=settings.CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS
            )
        if status.is_canceled:  # an earlier call did it, its answer was lost
            _chunk_unsent(chunk, now, account_id=campaign.account_id)
            return MassStep(MassResult.UNSENT, retry_in=0)
        _chunk_unsend_refused(chunk, f"{exc.code}: {exc.message}")
        log.info("campaign.mass_unsend_refused", campaign_id=campaign.pk, chunk=chunk.index)
        return MassStep(MassResult.REFUSED, retry_in=0)
    _chunk_unsent(chunk, now, account_id=campaign.account_id)
    log.info(
        "campaign.mass_unsent",
        campaign_id=campaign.pk,
        chunk=chunk.index,
        platform_mass_id=chunk.platform_mass_id,
    )
    return MassStep(MassResult.UNSENT, retry_in=0)


def campaign_unsend_step(*, campaign_id: int) -> MassStep:
    """Unsend the next chunk of a campaign whose unsend was asked for (one limiter slot per
    call, one chunk of the account in flight at a time, as for sending). A chunk whose send
    is ambiguous is reconciled first: found, it is unsent too; never made, it is dropped.
    ``retry_in`` None: nothing left to unsend."""
    campaign = Campaign.objects.select_related("account").filter(pk=campaign_id).first()
    if campaign is None or campaign.unsend_requested_at is None:
        return MassStep(MassResult.SKIPPED)
    lock = _account_lock(campaign.account_id)
    if not lock.acquire():
        return MassStep(MassResult.BUSY, retry_in=BUSY_RETRY_SECONDS)
    try:
        unknown = (
            MassChunk.objects.filter(
                campaign_id=campaign.pk,
                state__in=[MassChunk.State.SENDING, MassChunk.State.AMBIGUOUS],
            )
            .order_by("index")
            .first()
        )
        chunk = (
            MassChunk.objects.filter(campaign_id=campaign.pk, state=MassChunk.State.SENT)
            .exclude(platform_mass_id="")
            .filter(can_unsend=True)
            .order_by("index")
            .first()
        )
        if unknown is not None:
            if unknown.state == MassChunk.State.SENDING:
                unknown.state = MassChunk.State.AMBIGUOUS
                unknown.save(update_fields=["state", "updated_at"])
            step = _reconcile(campaign, unknown)
            if step.result == MassResult.RESEND:  # never made: nothing to send or unsend
                MassChunk.objects.filter(pk=unknown.pk).update(
                    state=MassChunk.State.CANCELLED, updated_at=timezone.now()
                )
                step = MassStep(MassResult.DROPPED, retry_in=0)
        elif chunk is not None:
            step = _unsend_chunk(campaign, chunk)
        else:
            step = MassStep(MassResult.DONE)
    finally:
        with contextlib.suppress(LockError):
            lock.release()
    _broadcast(campaign)
    return step


def campaign_progress_refresh(*, campaign: Campaign) -> None:
    """Bring a campaign's state up to date before it is shown: a running one that has nothing
    left is done; a mass one reads the platform's counters of messages still delivering."""
    mass_delivering = (
        campaign.send_mode == Campaign.Mode.MASS
        and campaign.launched_at is not None
        and MassChunk.objects.filter(
            campaign_id=campaign.pk, state=MassChunk.State.SENT, is_done=False
        ).exists()
    )
    if mass_delivering:
        campaign_mass_refresh(campaign_id=campaign.pk)
    if campaign.state == Campaign.State.RUNNING:
        campaign_finish_if_done(campaign_id=campaign.pk)
    campaign.refresh_from_db()
