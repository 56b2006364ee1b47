"""Vault sync from the platform: an account's lists, its media items with thumbnails, the
items it removed, and each chat's media as the fans' history.

A run is a ``VaultSync`` row (``crm.models``) that holds where it got to. ``vault_sync_task``
advances it one step (a few pages, ``FAN_SYNC_STEP_SECONDS`` of work at most) and publishes
itself again, so a run resumes anywhere from its saved phase, offset and cursor. Built like
the fan sync (``onlyfans.sync``) and sharing its pacing settings and rules:

- Rate: a step stops early when the reply says fewer than ``FAN_SYNC_RATE_LIMIT_RESERVE``
  requests are left this minute; a 429 makes the run wait ``Retry-After`` on the broker.
- Idempotent writes: items by platform id (labels and suggested prices are ours and never
  touched), fan history by the ``FanMediaEvent`` unique constraints.
- Never deletes. An item the pass did not see is asked for by id before it is marked gone
  (a listing by offset can skip an item when another is removed meanwhile); one that comes
  back loses its ``gone_at``.
- Thumbnails: the platform's file URLs are signed and short-lived. Each is fetched while the
  page that carried it is fresh, made small with Pillow and kept through
  ``VAULT_THUMB_STORAGE``; the URL itself is never stored or logged.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.celery import task_publish
from crm.errors import ApplicationError
from crm.media_stats import media_stats_link_add
from crm.models import (
    CreatorAccount,
    Fan,
    FanMediaEvent,
    MessageMedia,
    VaultItem,
    VaultItemList,
    VaultList,
    VaultSync,
)
from crm.selectors import manager_membership_get
from crm.vault import vault_labels_cache_drop, vault_thumb_storage
from onlyfans import gateway
from onlyfans.contracts import (
    GatewayError,
    PlatformMediaMessage,
    PlatformVaultItem,
    PlatformVaultList,
)
from onlyfans.sync_step import StepOutcome, StepResult, sync_step_drive

log = structlog.get_logger(__name__)

VAULT_SYNC_TASK = "onlyfans.tasks.vault_sync_task"
LISTS_PAGE_SIZE = 100
_ACTIVE = VaultSync.ACTIVE_STATES
_Phase = VaultSync.Phase


# --- starting -------------------------------------------------------------------------------


def vault_sync_start(
    *,
    account: CreatorAccount,
    trigger: str,
    requested_by: User | None = None,
    publish: bool = True,
) -> tuple[VaultSync, bool]:
    """Queue a sync of the account's vault; ``(run, created)``.

    A run already queued or running is returned instead (``created`` False); the partial
    unique constraint ``vault_sync_one_active`` decides between concurrent starts, no lock.
    The first step is published after commit (``publish=False`` leaves it to the schedule).
    """
    if trigger not in VaultSync.Trigger.values:
        raise ApplicationError(f"Unknown sync trigger {trigger!r}.", code="invalid_trigger")
    with transaction.atomic():
        active = VaultSync.objects.filter(account=account, state__in=_ACTIVE).first()
        if active is not None:
            return active, False
        try:
            with transaction.atomic():
                run = VaultSync.objects.create(
                    account=account, trigger=trigger, requested_by=requested_by
                )
        except IntegrityError:
            return VaultSync.objects.get(account=account, state__in=_ACTIVE), False
        log.info("vault_sync.queued", sync_id=run.pk, account_id=account.pk, trigger=trigger)
        if publish:
            transaction.on_commit(functools.partial(_publish, sync_id=run.pk, step=0))
    return run, True


def vault_sync_request(*, actor: User, account: CreatorAccount) -> tuple[VaultSync, bool]:
    """ "Refresh" on the vault page: owners and managers of a connected account."""
    manager_membership_get(user=actor, account_id=account.pk, action="refresh the vault")
    if not account.is_connected:
        raise ApplicationError(
            "The account must be reconnected before its vault can sync.",
            code="account_disconnected",
        )
    return vault_sync_start(account=account, trigger=VaultSync.Trigger.BUTTON, requested_by=actor)


def _publish(*, sync_id: int, step: int, delay_seconds: float = 0.0) -> None:
    """Publish the run's next step; a refusing broker is logged (the schedule resumes it)."""
    try:
        task_publish(
            VAULT_SYNC_TASK, args=[sync_id, step], delay_seconds=delay_seconds, ignore_result=True
        )
    except Exception:  # the broker's errors are many (kombu, boto, sockets)
        log.exception("vault_sync.publish_failed", sync_id=sync_id, step=step)


def vault_syncs_schedule() -> dict[str, int]:
    """Periodic (beat): resume runs nobody advanced, and start runs for connected accounts
    whose last run began more than ``VAULT_SYNC_INTERVAL_SECONDS`` ago (or never ran)."""
    now = timezone.now()
    batch = settings.FAN_SYNC_SCHEDULE_BATCH
    stale = now - timedelta(seconds=settings.FAN_SYNC_STALE_SECONDS)
    resumable = (
        VaultSync.objects.filter(state__in=_ACTIVE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .filter(Q(started_at__isnull=True) | Q(updated_at__lt=stale))
        .order_by("updated_at")
        .values_list("pk", "step")[:batch]
    )
    resumed = 0
    for sync_id, step in resumable:
        _publish(sync_id=sync_id, step=step)
        resumed += 1
    cutoff = now - timedelta(seconds=settings.VAULT_SYNC_INTERVAL_SECONDS)
    latest = VaultSync.objects.filter(account=OuterRef("pk")).order_by("-created_at", "-id")
    due = (
        CreatorAccount.objects.filter(connection_state=CreatorAccount.ConnectionState.CONNECTED)
        .annotate(last_sync_at=Subquery(latest.values("created_at")[:1]))
        .filter(Q(last_sync_at__isnull=True) | Q(last_sync_at__lt=cutoff))
        .order_by(F("last_sync_at").asc(nulls_first=True), "id")[:batch]
    )
    started = sum(
        vault_sync_start(account=account, trigger=VaultSync.Trigger.SCHEDULE)[1] for account in due
    )
    if resumed or started:
        log.info("vault_sync.scheduled", resumed=resumed, started=started)
    return {"resumed": resumed, "started": started}


def account_connected_vault_sync(*, account: CreatorAccount, publish: bool = True) -> None:
    """An account was created connected or reconnected: queue a vault sync (in the caller's
    transaction; ``publish=False`` leaves the first step to the schedule)."""
    if account.is_connected:
        vault_sync_start(account=account, trigger=VaultSync.Trigger.CONNECT, publish=publish)


def account_created_receiver(
    sender: type[CreatorAccount],
    instance: CreatorAccount,
    created: bool,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    """``post_save`` of ``CreatorAccount`` (connected in ``OnlyfansConfig.ready``): no broker
    I/O on account creation, the schedule publishes the queued run."""
    if created and not raw:
        account_connected_vault_sync(account=instance, publish=False)


# --- one step -------------------------------------------------------------------------------


@dataclass
class _Progress:
    """A step's changes to the run, written back once (and on every way out)."""

    phase: str
    offset: int
    cursor_id: int
    pass_started_at: datetime
    # Chats quiet since the last finished run's pass began are not read again (None: all).
    history_since: datetime | None = None
    lists_seen: int = 0
    items_seen: int = 0
    items_created: int = 0
    items_updated: int = 0
    items_gone: int = 0
    thumbs_fetched: int = 0
    thumbs_failed: int = 0
    chats_done: int = 0
    events_imported: int = 0
    finished: bool = False
    pause_seconds: float | None = None


_COUNTERS = (
    "lists_seen",
    "items_seen",
    "items_created",
    "items_updated",
    "items_gone",
    "thumbs_fetched",
    "thumbs_failed",
    "chats_done",
    "events_imported",
)


def vault_sync_step(*, sync_id: int, step: int) -> StepOutcome:
    """Advance the run ``sync_id`` by one step, if ``step`` is still its next step.

    Claims the row with a lease in one UPDATE (step number, active state and an expired
    lease must all match), so duplicate or superseded deliveries do nothing and two workers
    never advance one run at once. Gateway calls and file fetches happen outside any
    transaction; each page's writes are one transaction, so a crash loses at most that page.
    """
    now = timezone.now()
    run = VaultSync.objects.filter(pk=sync_id).select_related("account").first()
    if run is None or run.step != step or not run.is_active:
        return StepOutcome(StepResult.SUPERSEDED)
    if run.retry_at is not None and run.retry_at > now + timedelta(seconds=1):
        return StepOutcome(
            StepResult.WAITING, next_step=step, delay_seconds=(run.retry_at - now).total_seconds()
        )
    lease = now + timedelta(seconds=settings.FAN_SYNC_LEASE_SECONDS)
    claimed = (
        VaultSync.objects.filter(pk=sync_id, step=step, state__in=_ACTIVE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            step=F("step") + 1,
            lease_until=lease,
            state=VaultSync.State.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            pass_started_at=Coalesce(F("pass_started_at"), now),
            retry_at=None,
            updated_at=now,
        )
    )
    if not claimed:
        return StepOutcome(StepResult.BUSY)
    run.refresh_from_db()
    account = run.account
    assert run.pass_started_at is not None
    progress = _Progress(
        phase=run.phase,
        offset=run.offset,
        cursor_id=run.cursor_id,
        pass_started_at=run.pass_started_at,
        history_since=_history_since(run),
    )
    return sync_step_drive(
        run=run,
        progress=progress,
        advance=functools.partial(_advance, account=account, progress=progress),
        save=functools.partial(_progress_save, run, progress),
        fail=functools.partial(_mark_failed, run),
        log_prefix="vault_sync",
        done_counters=(
            "items_created",
            "items_updated",
            "items_gone",
            "thumbs_fetched",
            "events_imported",
        ),
    )


def _history_since(run: VaultSync) -> datetime | None:
    """When the account's last finished run began its pass: chats with no message since then
    have nothing new to import (the fan sync and webhooks keep ``last_message_at``)."""
    return (
        VaultSync.objects.filter(account_id=run.account_id, state=VaultSync.State.DONE)
        .exclude(pk=run.pk)
        .order_by("-created_at", "-id")
        .values_list("pass_started_at", flat=True)
        .first()
    )


def vault_sync_task_run(*, sync_id: int, step: int) -> str:
    """What the Celery task does: one step, then publish the next one."""
    outcome = vault_sync_step(sync_id=sync_id, step=step)
    if outcome.next_step is not None:
        _publish(sync_id=sync_id, step=outcome.next_step, delay_seconds=outcome.delay_seconds)
    return outcome.result


def _progress_save(
    run: VaultSync,
    progress: _Progress,
    *,
    finished: bool = False,
    retry_in: float | None = None,
    error_code: str = "",
    errors_in_row: int = 0,
) -> None:
    """Write a step's progress back and release the lease."""
    now = timezone.now()
    run.phase, run.offset, run.cursor_id = progress.phase, progress.offset, progress.cursor_id
    for name in _COUNTERS:
        setattr(run, name, getattr(run, name) + getattr(progress, name))
        setattr(progress, name, 0)
    run.lease_until = None
    run.retry_at = now + timedelta(seconds=retry_in) if retry_in else None
    run.errors_in_row = errors_in_row
    if error_code or errors_in_row == 0:
        run.last_error_code = error_code
    fields = [
        "phase",
        "offset",
        "cursor_id",
        *_COUNTERS,
        "lease_until",
        "retry_at",
        "errors_in_row",
        "last_error_code",
        "updated_at",
    ]
    if finished:
        run.state, run.finished_at = VaultSync.State.DONE, now
        fields += ["state", "finished_at"]
    run.save(update_fields=fields)
    if finished:
        vault_labels_cache_drop(run.account_id)


def _mark_failed(run: VaultSync, code: str) -> None:
    """A final failure: the run stops where it was and says why (the page shows the code)."""
    run.state, run.finished_at = VaultSync.State.FAILED, timezone.now()
    run.last_error_code, run.lease_until, run.retry_at = code[:100], None, None
    run.save(
        update_fields=[
            "state",
            "finished_at",
            "last_error_code",
            "lease_until",
            "retry_at",
            "updated_at",
        ]
    )
    log.warning("vault_sync.failed", sync_id=run.pk, account_id=run.account_id, code=code)


def _advance(*, account: CreatorAccount, progress: _Progress) -> None:
    """Work through the phases until the run is done, the step's time is up or the quota is
    low. Always does at least one unit (a page, a batch of checks, one chat)."""
    deadline = time.monotonic() + settings.FAN_SYNC_STEP_SECONDS
    acct = account.platform_account_id
    while True:
        remaining: int | None
        if progress.phase == _Phase.LISTS:
            lists_page = gateway.vault_lists_page(
                account_platform_id=acct, offset=progress.offset, limit=LISTS_PAGE_SIZE
            )
            vault_lists_store(account=account, lists=lists_page.items)
            progress.lists_seen += len(lists_page.items)
            progress.offset += LISTS_PAGE_SIZE
            if not lists_page.has_more:
                vault_lists_mark_gone(account=account, seen_since=progress.pass_started_at)
                progress.phase, progress.offset = _Phase.ITEMS, 0
            remaining = lists_page.rate_limit_remaining
        elif progress.phase == _Phase.ITEMS:
            limit = settings.VAULT_SYNC_PAGE_SIZE
            page = gateway.vault_items_page(
                account_platform_id=acct, offset=progress.offset, limit=limit
            )
            _items_store_with_thumbs(account=account, items=page.items, progress=progress)
            progress.items_seen += len(page.items)
            progress.offset += limit
            if not page.has_more:
                vault_history_link(account=account)
                progress.phase, progress.offset, progress.cursor_id = _Phase.GONE, 0, 0
            remaining = page.rate_limit_remaining
        elif progress.phase == _Phase.GONE:
            candidates = list(
                VaultItem.objects.filter(
                    account=account,
                    gone_at__isnull=True,
                    synced_at__lt=progress.pass_started_at,
                    pk__gt=progress.cursor_id,
                )
                .order_by("pk")
                .values_list("pk", "platform_media_id")[: settings.VAULT_SYNC_GONE_BATCH]
            )
            if not candidates:
                progress.phase, progress.offset, progress.cursor_id = _Phase.CHATS, 0, 0
                continue
            remaining = None
            for pk, platform_media_id in candidates:
                item, remaining = gateway.vault_item_get(
                    account_platform_id=acct, platform_media_id=platform_media_id
                )
                if item is None:
                    progress.items_gone += vault_item_mark_gone(account=account, item_id=pk)
                else:
                    # Listed again by id: the pass skipped it (the list moved under it).
                    _items_store_with_thumbs(account=account, items=[item], progress=progress)
                progress.cursor_id = pk
                if remaining is not None and remaining <= settings.FAN_SYNC_RATE_LIMIT_RESERVE:
                    break
        else:
            fans = Fan.objects.filter(
                account=account,
                platform_fan_id__isnull=False,
                pk__gt=progress.cursor_id,
                conversation__isnull=False,
            )
            if progress.history_since is not None:
                fans = fans.filter(conversation__last_message_at__gte=progress.history_since)
            fan = fans.order_by("pk").only("pk", "platform_fan_id").first()
            if fan is None:
                progress.finished = True
                return
            assert fan.platform_fan_id is not None
            media_page = gateway.chat_media_page(
                account_platform_id=acct,
                chat_id=fan.platform_fan_id,
                offset=0,
                limit=settings.VAULT_SYNC_CHAT_MEDIA_PER_CHAT,
            )
            progress.events_imported += fan_media_history_store(
                account=account, fan=fan, messages=media_page.items
            )
            progress.chats_done += 1
            progress.cursor_id = fan.pk
            remaining = media_page.rate_limit_remaining
        if remaining is not None and remaining <= settings.FAN_SYNC_RATE_LIMIT_RESERVE:
            progress.pause_seconds = float(settings.FAN_SYNC_RATE_LIMIT_WAIT_SECONDS)
            return
        if time.monotonic() >= deadline:
            return


# --- storing --------------------------------------------------------------------------------


@transaction.atomic
def vault_lists_store(*, account: CreatorAccount, lists: Sequence[PlatformVaultList]) -> int:
    """Add or update a page of the account's platform lists (seen now: not gone)."""
    if not lists:
        return 0
    now = timezone.now()
    rows = [
        VaultList(
            account=account,
            platform_list_id=item.platform_list_id,
            name=item.name or item.platform_list_id,
            list_type=item.list_type,
            photo_count=item.photo_count,
            video_count=item.video_count,
            gif_count=item.gif_count,
            audio_count=item.audio_count,
            gone_at=None,
            synced_at=now,
        )
        for item in {i.platform_list_id: i for i in lists}.values()
    ]
    VaultList.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["account", "platform_list_id"],
        update_fields=[
            "name",
            "list_type",
            "photo_count",
            "video_count",
            "gif_count",
            "audio_count",
            "gone_at",
            "synced_at",
        ],
    )
    return len(rows)


def vault_lists_mark_gone(*, account: CreatorAccount, seen_since: datetime) -> int:
    """Lists the full pass did not see are gone (kept, with their memberships)."""
    return VaultList.objects.filter(
        account=account, gone_at__isnull=True, synced_at__lt=seen_since
    ).update(gone_at=timezone.now())


def vault_item_mark_gone(*, account: CreatorAccount, item_id: int) -> int:
    """The platform no longer has the item: mark it gone, never delete it (messages and fan
    history point at it)."""
    return VaultItem.objects.filter(pk=item_id, account=account, gone_at__isnull=True).update(
        gone_at=timezone.now(), updated_at=timezone.now()
    )


def _thumb_fetch(*, account: CreatorAccount, item: PlatformVaultItem) -> str | None:
    """Fetch, shrink and keep one item's thumbnail; the storage name, or None on failure
    (the next sync tries again). Never raises for the file: a thumbnail is not worth a run."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    assert item.thumb_url is not None
    try:
        data = gateway.media_file_fetch(
            url=item.thumb_url, max_bytes=settings.VAULT_THUMB_MAX_BYTES
        )
    except GatewayError as exc:
        log.info(
            "vault_sync.thumb_failed",
            account_id=account.pk,
            platform_media_id=item.platform_media_id,
            code=exc.code,
        )
        return None
    try:
        with Image.open(io.BytesIO(data)) as source:
            image = ImageOps.exif_transpose(source).convert("RGB")
        size = settings.VAULT_THUMB_SIZE
        image.thumbnail((size, size))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=82, optimize=True)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        log.info(
            "vault_sync.thumb_unreadable",
            account_id=account.pk,
            platform_media_id=item.platform_media_id,
        )
        return None
    content = out.getvalue()
    digest = hashlib.sha256(content).hexdigest()[:16]
    name = f"vault/{account.pk}/{item.platform_media_id}-{digest}.jpg"
    storage = vault_thumb_storage()
    if not storage.exists(name):
        name = storage.save(name, ContentFile(content))
    return name


def _items_store_with_thumbs(
    *, account: CreatorAccount, items: Sequence[PlatformVaultItem], progress: _Progress
) -> None:
    """Fetch the thumbnails the page's items still lack (now, while their URLs are valid),
    then store the page."""
    if not items:
        return
    ids = [i.platform_media_id for i in items]
    have = set(
        VaultItem.objects.filter(account=account, platform_media_id__in=ids)
        .exclude(thumb_name="")
        .values_list("platform_media_id", flat=True)
    )
    thumbs: dict[str, str] = {}
    # A slow file server must not hold the run past its lease: what is left of the page's
    # thumbnails waits for the next sync.
    budget_ends = time.monotonic() + settings.VAULT_THUMB_PAGE_BUDGET_SECONDS
    for item in items:
        if time.monotonic() >= budget_ends:
            break
        if item.thumb_url and item.platform_media_id not in have:
            name = _thumb_fetch(account=account, item=item)
            if name is None:
                progress.thumbs_failed += 1
            else:
                thumbs[item.platform_media_id] = name
                progress.thumbs_fetched += 1
    created, updated = vault_items_store(account=account, items=items, thumbs=thumbs)
    progress.items_created += created
    progress.items_updated += updated


# The platform's description of an item, one statement a page: RETURNING tells new rows from
# changed ones (xmax = 0 on an insert). Labels and suggested prices are not in the list.
_ITEMS_UPSERT_SQL = """
INSERT INTO crm_vaultitem AS v (
  account_id, platform_media_id, media_type, duration_seconds, platform_created_at, is_ready,
  has_error, has_custom_preview, likes_count, tips_cents, gone_at, thumb_name,
  thumb_fetched_at, labels, suggested_price_cents, synced_at, created_at, updated_at)
SELECT %(account_id)s, r.platform_media_id, r.media_type, r.duration_seconds,
  coalesce(r.platform_created_at, %(now)s), r.is_ready, r.has_error, r.has_custom_preview,
  r.likes_count,
  r.tips_cents, NULL, coalesce(r.thumb_name, ''), CASE WHEN r.thumb_name IS NOT NULL
  THEN %(now)s END, '{}', NULL, %(now)s, %(now)s, %(now)s
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
  platform_media_id text, media_type text, duration_seconds integer,
  platform_created_at timestamptz, is_ready boolean, has_error boolean,
  has_custom_preview boolean, likes_count integer, tips_cents bigint, thumb_name text)
ON CONFLICT (account_id, platform_media_id) DO UPDATE SET
  media_type = EXCLUDED.media_type,
  duration_seconds = EXCLUDED.duration_seconds,
  -- An item the platform sends without a time (so: now) keeps the one it had.
  platform_created_at = CASE WHEN EXCLUDED.platform_created_at = %(now)s
    THEN v.platform_created_at ELSE EXCLUDED.platform_created_at END,
  is_ready = EXCLUDED.is_ready,
  has_error = EXCLUDED.has_error,
  has_custom_preview = EXCLUDED.has_custom_preview,
  likes_count = EXCLUDED.likes_count,
  tips_cents = EXCLUDED.tips_cents,
  gone_at = NULL,
  thumb_name = CASE WHEN EXCLUDED.thumb_name <> '' THEN EXCLUDED.thumb_name ELSE v.thumb_name END,
  thumb_fetched_at = coalesce(EXCLUDED.thumb_fetched_at, v.thumb_fetched_at),
  synced_at = EXCLUDED.synced_at,
  updated_at = CASE WHEN (v.media_type, v.duration_seconds, v.platform_created_at, v.is_ready,
      v.has_error, v.has_custom_preview, v.likes_count, v.tips_cents, v.thumb_name)
    IS DISTINCT FROM (EXCLUDED.media_type, EXCLUDED.duration_seconds,
      CASE WHEN EXCLUDED.platform_created_at = %(now)s THEN v.platform_created_at
        ELSE EXCLUDED.platform_created_at END, EXCLUDED.is_ready, EXCLUDED.has_error,
      EXCLUDED.has_custom_preview, EXCLUDED.likes_count, EXCLUDED.tips_cents,
      CASE WHEN EXCLUDED.thumb_name <> '' THEN EXCLUDED.thumb_name ELSE v.thumb_name END)
    OR v.gone_at IS NOT NULL THEN EXCLUDED.updated_at ELSE v.updated_at END
RETURNING v.id, v.platform_media_id, (v.xmax = 0) AS inserted, v.updated_at = %(now)s AS changed
"""


@transaction.atomic
def vault_items_store(
    *,
    account: CreatorAccount,
    items: Sequence[PlatformVaultItem],
    thumbs: dict[str, str] | None = None,
) -> tuple[int, int]:
    """Add or update a page of the platform's items and their list memberships; ``(created,
    changed)``. Seen now, so not gone (an item that came back loses ``gone_at``). ``thumbs``
    maps platform ids to the storage names fetched for them. Lists an item names that the
    lists phase did not store (made meanwhile) are added from the item's own description.
    """
    by_id = {i.platform_media_id: i for i in items}
    if not by_id:
        return 0, 0
    thumbs = thumbs or {}
    now = timezone.now()
    rows = [
        {
            "platform_media_id": i.platform_media_id[:100],
            "media_type": i.media_type,
            "duration_seconds": i.duration_seconds,
            "platform_created_at": i.created_at.isoformat() if i.created_at else None,
            "is_ready": i.is_ready,
            "has_error": i.has_error,
            "has_custom_preview": i.has_custom_preview,
            "likes_count": i.likes_count,
            "tips_cents": i.tips_cents,
            "thumb_name": thumbs.get(i.platform_media_id),
        }
        for i in by_id.values()
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            _ITEMS_UPSERT_SQL, {"account_id": account.pk, "rows": json.dumps(rows), "now": now}
        )
        returned = cursor.fetchall()
    item_ids = {platform_id: pk for pk, platform_id, _, _ in returned}
    inserted = {pk for pk, _, was_inserted, _ in returned if was_inserted}
    changed = {pk for pk, _, _, was_changed in returned if was_changed}
    changed |= _memberships_replace(account=account, items=by_id, item_ids=item_ids, now=now)
    return len(inserted), len(changed - inserted)


def _memberships_replace(
    *,
    account: CreatorAccount,
    items: dict[str, PlatformVaultItem],
    item_ids: dict[str, int],
    now: datetime,
) -> set[int]:
    """Make each item's list memberships what the platform says; the items that changed."""
    refs = {ref.platform_list_id: ref for i in items.values() for ref in i.lists}
    lists = dict(
        VaultList.objects.filter(account=account, platform_list_id__in=list(refs)).values_list(
            "platform_list_id", "pk"
        )
    )
    missing = [ref for pid, ref in refs.items() if pid not in lists]
    if missing:
        VaultList.objects.bulk_create(
            [
                VaultList(
                    account=account,
                    platform_list_id=ref.platform_list_id,
                    name=ref.name or ref.platform_list_id,
                    list_type=ref.list_type,
                    synced_at=now,
                )
                for ref in missing
            ],
            ignore_conflicts=True,
        )
        lists = dict(
            VaultList.objects.filter(account=account, platform_list_id__in=list(refs)).values_list(
                "platform_list_id", "pk"
            )
        )
    wanted = {
        (item_ids[pid], lists[ref.platform_list_id])
        for pid, item in items.items()
        if pid in item_ids
        for ref in item.lists
        if ref.platform_list_id in lists
    }
    current = set(
        VaultItemList.objects.filter(item_id__in=list(item_ids.values())).values_list(
            "item_id", "vault_list_id"
        )
    )
    stale, new = current - wanted, wanted - current
    if stale:
        condition = Q()
        for item_id, list_id in stale:
            condition |= Q(item_id=item_id, vault_list_id=list_id)
        VaultItemList.objects.filter(condition).delete()
    if new:
        VaultItemList.objects.bulk_create(
            [VaultItemList(item_id=i, vault_list_id=v) for i, v in new], ignore_conflicts=True
        )
    touched = {i for i, _ in stale | new}
    if touched:
        VaultItem.objects.filter(pk__in=touched).update(updated_at=now)
    return touched


def vault_history_link(*, account: CreatorAccount) -> int:
    """Point fan history and message media stored before their item was synced at it."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE crm_fanmediaevent AS t SET vault_item_id = v.id
            FROM crm_vaultitem AS v
            WHERE t.account_id = %s AND t.vault_item_id IS NULL
              AND v.account_id = t.account_id AND v.platform_media_id = t.platform_media_id
            """,
            [account.pk],
        )
        linked = cursor.rowcount
    # Message media too, and what they now count on the media page (crm.media_stats).
    return linked + media_stats_link_add(account_id=account.pk)


@transaction.atomic
def fan_media_history_store(
    *, account: CreatorAccount, fan: Fan, messages: Sequence[PlatformMediaMessage]
) -> int:
    """What the creator sent this fan, from the chat's media on the platform, as
    ``platform_history`` events; how many were new.

    A free message (or a paid message's preview) is ``sent_free``; a paid one ``offered`` at
    its price, and ``bought`` too when the platform says the fan opened it. Messages the
    product sent itself (their media are in ``MessageMedia``) are skipped: those events are
    ours. Idempotent on ``fan_media_event_unique_history``.
    """
    from crm.models import Message

    outgoing = [m for m in messages if not m.from_fan and m.media]
    if not outgoing:
        return 0
    ours = set(
        MessageMedia.objects.filter(
            account=account,
            message__platform_message_id__in=[m.platform_message_id for m in outgoing],
        ).values_list("message__platform_message_id", flat=True)
    )
    media_ids = {media.platform_media_id for m in outgoing for media in m.media}
    items = dict(
        VaultItem.objects.filter(account=account, platform_media_id__in=media_ids).values_list(
            "platform_media_id", "pk"
        )
    )
    known_messages = dict(
        Message.objects.filter(
            account=account, platform_message_id__in=[m.platform_message_id for m in outgoing]
        ).values_list("platform_message_id", "pk")
    )
    now = timezone.now()
    events: dict[tuple[str, str], FanMediaEvent] = {}
    # Oldest first, so the first time a fan got a media is the one kept.
    for message in sorted(outgoing, key=lambda m: (m.created_at or now, m.platform_message_id)):
        if message.platform_message_id in ours:
            continue
        previews = set(message.preview_ids)
        for media in message.media:
            pid = media.platform_media_id[:100]
            free = message.price_cents == 0 or media.platform_media_id in previews
            kinds = [FanMediaEvent.Kind.SENT_FREE] if free else [FanMediaEvent.Kind.OFFERED]
            if not free and message.is_opened:
                kinds.append(FanMediaEvent.Kind.BOUGHT)
            for kind in kinds:
                if (pid, kind) in events:
                    continue
                events[(pid, kind)] = FanMediaEvent(
                    account=account,
                    fan=fan,
                    vault_item_id=items.get(media.platform_media_id),
                    platform_media_id=pid,
                    kind=kind,
                    price_cents=0 if free else min(message.price_cents, 2**31 - 1),
                    at=message.created_at or now,
                    message_id=known_messages.get(message.platform_message_id),
                    platform_message_id=message.platform_message_id[:64],
                    source=FanMediaEvent.Source.PLATFORM_HISTORY,
                )
    if not events:
        return 0
    existing = set(
        FanMediaEvent.objects.filter(
            fan=fan,
            source=FanMediaEvent.Source.PLATFORM_HISTORY,
            platform_media_id__in=[pid for pid, _ in events],
        ).values_list("platform_media_id", "kind")
    )
    new = [event for key, event in events.items() if key not in existing]
    if new:
        # A concurrent run's rows are skipped by the unique constraint, not raised.
        FanMediaEvent.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


# --- reading --------------------------------------------------------------------------------


def vault_syncs_recent(*, user: User, account_id: int, limit: int = 5) -> list[VaultSync]:
    """The account's latest runs, newest first; empty for a user who is not a member."""
    return list(
        VaultSync.objects.filter(account_id=account_id, account__memberships__user_id=user.pk)
        .select_related("requested_by")
        .order_by("-created_at", "-id")[:limit]
    )
