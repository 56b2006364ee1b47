"""Fan sync from the platform: an account's fans, then its chats with their recent history.

A run is a ``FanSync`` row that holds where it got to. ``fan_sync_task`` advances it one step
(a few pages, ``FAN_SYNC_STEP_SECONDS`` of work at most) and publishes itself again, so no
worker is held long and any worker can resume a run from its saved phase and offset. Every
write is idempotent: fans are matched by platform id, then unlinked fans by username (case
folded), and messages by their platform id, so a step run twice, a run resumed after a crash
or a second run over the same data changes nothing.

Rate: each gateway reply says how many requests are left this minute; a step stops early when
fewer than ``FAN_SYNC_RATE_LIMIT_RESERVE`` are left (sends share the gateway's limit), and a 429
makes the run wait ``Retry-After`` on the broker, not in a worker.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, connection, transaction
from django.db.models import F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest, Lower
from django.utils import timezone

from config.celery import task_publish
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError
from crm.models import (
    Conversation,
    CreatorAccount,
    Fan,
    Message,
    fan_username_candidates,
)
from crm.selectors import manager_membership_get
from crm.services import conversation_summaries_recompute
from onlyfans import gateway
from onlyfans.contracts import (
    PlatformChat,
    PlatformFan,
    PlatformMessage,
)
from onlyfans.models import FanSync
from onlyfans.sync_step import StepOutcome, StepResult, sync_step_drive

log = structlog.get_logger(__name__)

FAN_SYNC_TASK = "onlyfans.tasks.fan_sync_task"
_DISPLAY_NAME_MAX = Fan._meta.get_field("display_name").max_length or 200
_ACTIVE = FanSync.ACTIVE_STATES


# --- starting -------------------------------------------------------------------------------


def fan_sync_start(
    *,
    account: CreatorAccount,
    trigger: str,
    requested_by: User | None = None,
    publish: bool = True,
) -> tuple[FanSync, bool]:
    """Queue a sync of the account's fans and chats; ``(run, created)``.

    When a run is already queued or running it is returned instead (``created`` False): no
    explicit lock, the partial unique constraint ``fan_sync_one_active`` decides between
    concurrent starts. The first step is published after commit (``publish=False`` leaves it
    to the schedule, which publishes queued runs nobody advanced).
    """
    if trigger not in FanSync.Trigger.values:
        raise ApplicationError(f"Unknown sync trigger {trigger!r}.", code="invalid_trigger")
    with transaction.atomic():
        active = FanSync.objects.filter(account=account, state__in=_ACTIVE).first()
        if active is not None:
            return active, False
        try:
            with transaction.atomic():
                run = FanSync.objects.create(
                    account=account, trigger=trigger, requested_by=requested_by
                )
        except IntegrityError:
            return FanSync.objects.get(account=account, state__in=_ACTIVE), False
        log.info("fan_sync.queued", sync_id=run.pk, account_id=account.pk, trigger=trigger)
        if publish:
            transaction.on_commit(functools.partial(_publish, sync_id=run.pk, step=0))
    return run, True


def fan_sync_request(*, actor: User, account: CreatorAccount) -> tuple[FanSync, bool]:
    """ "Sync now" from the fans page: owners and managers of a connected account."""
    manager_membership_get(user=actor, account_id=account.pk, action="sync fans")
    if not account.is_connected:
        raise ApplicationError(
            "The account must be reconnected before it can sync.", code="account_disconnected"
        )
    return fan_sync_start(account=account, trigger=FanSync.Trigger.BUTTON, requested_by=actor)


def _publish(*, sync_id: int, step: int, delay_seconds: float = 0.0) -> None:
    """Publish the run's next step. A broker that refuses is logged, not raised: the run is
    in the database and the schedule publishes runs that nobody advanced."""
    try:
        task_publish(
            FAN_SYNC_TASK, args=[sync_id, step], delay_seconds=delay_seconds, ignore_result=True
        )
    except Exception:  # the broker's errors are many (kombu, boto, sockets)
        log.exception("fan_sync.publish_failed", sync_id=sync_id, step=step)
    else:
        log.debug(
            "fan_sync.published", sync_id=sync_id, step=step, delay_seconds=round(delay_seconds)
        )


def fan_syncs_schedule() -> dict[str, int]:
    """Periodic (beat): resume runs nobody advanced, and start runs for connected accounts
    whose last run began more than ``FAN_SYNC_INTERVAL_SECONDS`` ago (or never ran)."""
    now = timezone.now()
    batch = settings.FAN_SYNC_SCHEDULE_BATCH
    stale = now - timedelta(seconds=settings.FAN_SYNC_STALE_SECONDS)
    resumable = (
        FanSync.objects.filter(state__in=_ACTIVE)
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
    cutoff = now - timedelta(seconds=settings.FAN_SYNC_INTERVAL_SECONDS)
    latest = FanSync.objects.filter(account=OuterRef("pk")).order_by("-created_at", "-id")
    due = (
        CreatorAccount.objects.filter(connection_state=CreatorAccount.ConnectionState.CONNECTED)
        .annotate(last_sync_at=Subquery(latest.values("created_at")[:1]))
        .filter(Q(last_sync_at__isnull=True) | Q(last_sync_at__lt=cutoff))
        .order_by(F("last_sync_at").asc(nulls_first=True), "id")[:batch]
    )
    started = sum(
        fan_sync_start(account=account, trigger=FanSync.Trigger.SCHEDULE)[1] for account in due
    )
    if resumed or started:
        log.info("fan_sync.scheduled", resumed=resumed, started=started)
    return {"resumed": resumed, "started": started}


def account_created_sync(*, account: CreatorAccount) -> None:
    """A newly created (connected) account: queue its first sync in the same transaction.

    Nothing is published here (account creation stays free of broker I/O): the schedule
    publishes queued runs within ``FAN_SYNC_SCHEDULE_SECONDS``.
    """
    if account.is_connected:
        fan_sync_start(account=account, trigger=FanSync.Trigger.CONNECT, publish=False)


def account_created_receiver(
    sender: type[CreatorAccount],
    instance: CreatorAccount,
    created: bool,
    raw: bool = False,
    **kwargs: Any,
) -> None:
    """``post_save`` of ``CreatorAccount`` (connected in ``OnlyfansConfig.ready``)."""
    if created and not raw:
        account_created_sync(account=instance)


# --- one step -------------------------------------------------------------------------------


@dataclass
class _Progress:
    """A step's changes to the run, written back once (and on every way out)."""

    phase: str
    offset: int
    fans_seen: int = 0
    fans_created: int = 0
    fans_updated: int = 0
    fans_linked: int = 0
    chats_done: int = 0
    messages_imported: int = 0
    finished: bool = False
    pause_seconds: float | None = None  # set when the gateway's quota ran low
    conversations: set[int] = field(default_factory=set)


def fan_sync_step(*, sync_id: int, step: int) -> StepOutcome:
    """Advance the run ``sync_id`` by one step, if ``step`` is still its next step.

    Claims the row with a lease (one UPDATE: the step number, an active state and an expired
    lease must all match), so a duplicate or superseded delivery does nothing, and two workers
    never advance one run at once. Gateway calls happen outside any transaction; each page's
    writes are their own transaction, so a crash loses at most the page in hand.
    """
    now = timezone.now()
    run = FanSync.objects.filter(pk=sync_id).select_related("account").first()
    if run is None or run.step != step or not run.is_active:
        return StepOutcome(StepResult.SUPERSEDED)
    if run.retry_at is not None and run.retry_at > now + timedelta(seconds=1):
        # Woke before the rate limit's wait was over (SQS delays are capped): wait again.
        return StepOutcome(
            StepResult.WAITING, next_step=step, delay_seconds=(run.retry_at - now).total_seconds()
        )
    lease = now + timedelta(seconds=settings.FAN_SYNC_LEASE_SECONDS)
    claimed = (
        FanSync.objects.filter(pk=sync_id, step=step, state__in=_ACTIVE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(
            step=F("step") + 1,
            lease_until=lease,
            state=FanSync.State.RUNNING,
            started_at=Coalesce(F("started_at"), now),
            retry_at=None,
            updated_at=now,
        )
    )
    if not claimed:
        return StepOutcome(StepResult.BUSY)
    run.refresh_from_db()
    account = run.account
    progress = _Progress(phase=run.phase, offset=run.offset)
    return sync_step_drive(
        run=run,
        progress=progress,
        advance=functools.partial(_advance, account=account, progress=progress),
        save=functools.partial(_progress_save, run, progress),
        fail=functools.partial(_mark_failed, run),
        log_prefix="fan_sync",
        done_counters=("fans_created", "fans_updated", "fans_linked", "messages_imported"),
    )


def fan_sync_task_run(*, sync_id: int, step: int) -> str:
    """What the Celery task does: one step, then publish the next one."""
    outcome = fan_sync_step(sync_id=sync_id, step=step)
    if outcome.next_step is not None:
        _publish(sync_id=sync_id, step=outcome.next_step, delay_seconds=outcome.delay_seconds)
    return outcome.result


def _progress_save(
    run: FanSync,
    progress: _Progress,
    *,
    finished: bool = False,
    retry_in: float | None = None,
    error_code: str = "",
    errors_in_row: int = 0,
) -> None:
    """Write a step's progress back and release the lease."""
    now = timezone.now()
    run.phase, run.offset = progress.phase, progress.offset
    run.fans_seen += progress.fans_seen
    run.fans_created += progress.fans_created
    run.fans_updated += progress.fans_updated
    run.fans_linked += progress.fans_linked
    run.chats_done += progress.chats_done
    run.messages_imported += progress.messages_imported
    run.lease_until = None
    run.retry_at = now + timedelta(seconds=retry_in) if retry_in else None
    run.errors_in_row = errors_in_row
    if error_code or errors_in_row == 0:
        run.last_error_code = error_code
    fields = [
        "phase",
        "offset",
        "fans_seen",
        "fans_created",
        "fans_updated",
        "fans_linked",
        "chats_done",
        "messages_imported",
        "lease_until",
        "retry_at",
        "errors_in_row",
        "last_error_code",
        "updated_at",
    ]
    if finished:
        run.state, run.finished_at = FanSync.State.DONE, now
        fields += ["state", "finished_at"]
    run.save(update_fields=fields)
    progress.fans_seen = progress.fans_created = progress.fans_updated = 0
    progress.fans_linked = progress.chats_done = progress.messages_imported = 0


def _mark_failed(run: FanSync, code: str) -> None:
    """A final failure: the run stops where it was and says why (the page shows the code)."""
    run.state, run.finished_at = FanSync.State.FAILED, timezone.now()
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
    log.warning("fan_sync.failed", sync_id=run.pk, account_id=run.account_id, code=code)


def _advance(*, account: CreatorAccount, progress: _Progress) -> None:
    """Work through pages until the run is done, the step's time is up or the quota is low.

    Always does at least one unit (a page of fans, or one chat), so a step makes progress.
    Progress is in ``progress`` as soon as each unit's writes are committed.
    """
    deadline = time.monotonic() + settings.FAN_SYNC_STEP_SECONDS
    account_platform_id = account.platform_account_id
    chats: list[PlatformChat] = []
    chats_more = False
    while True:
        if progress.phase == FanSync.Phase.FANS:
            limit = settings.FAN_SYNC_FANS_PAGE_SIZE
            page = gateway.fans_page(
                account_platform_id=account_platform_id, offset=progress.offset, limit=limit
            )
            stored = fans_store(account=account, fans=page.items)
            progress.fans_seen += len(page.items)
            progress.fans_created += stored.created
            progress.fans_updated += stored.updated
            progress.fans_linked += stored.linked
            # The platform may answer fewer than ``limit`` on a page that is not the last
            # one (it filters server-side); the next page still starts ``limit`` further.
            progress.offset += limit
            if not page.has_more:
                progress.phase, progress.offset = FanSync.Phase.CHATS, 0
            remaining = page.rate_limit_remaining
        else:
            if not chats:
                limit = settings.FAN_SYNC_CHATS_PAGE_SIZE
                chats_page = gateway.chats_page(
                    account_platform_id=account_platform_id, offset=progress.offset, limit=limit
                )
                chats, chats_more = list(chats_page.items), chats_page.has_more
                remaining = chats_page.rate_limit_remaining
                if not chats:
                    if not chats_more:
                        progress.finished = True
                        return
                    progress.offset += limit
                    continue
            chat = chats[0]
            history = gateway.chat_messages_page(
                account_platform_id=account_platform_id,
                chat_id=chat.fan.platform_fan_id,
                limit=settings.FAN_SYNC_MESSAGES_PER_CHAT,
            )
            imported, stored = chat_store(account=account, chat=chat, messages=history.items)
            chats.pop(0)
            progress.offset += 1
            progress.chats_done += 1
            progress.messages_imported += imported
            progress.fans_created += stored.created
            progress.fans_updated += stored.updated
            progress.fans_linked += stored.linked
            remaining = history.rate_limit_remaining
            if not chats and not chats_more:
                progress.finished = True
                return
        if remaining is not None and remaining <= settings.FAN_SYNC_RATE_LIMIT_RESERVE:
            progress.pause_seconds = float(settings.FAN_SYNC_RATE_LIMIT_WAIT_SECONDS)
            return
        if time.monotonic() >= deadline:
            return


# --- storing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FansStored:
    fan_ids: dict[str, int]  # platform fan id -> our fan id
    created: int = 0
    updated: int = 0
    linked: int = 0


_FAN_SYNC_FIELDS = [
    "platform_fan_id",
    "display_name",
    "subscription_state",
    "subscribed_at",
    "subscription_expires_at",
    "lifetime_spend_cents",
    "updated_at",
]


def _fan_apply(fan: Fan, platform_fan: PlatformFan) -> bool:
    """Copy what the platform says onto ``fan``; True when something changed. Spend never goes
    down (purchases recorded from webhooks may be newer than the platform's total)."""
    changes: dict[str, Any] = {}
    name = platform_fan.display_name[:_DISPLAY_NAME_MAX]
    if name and fan.display_name != name:
        changes["display_name"] = name
    if (
        platform_fan.subscription_state is not None
        and fan.subscription_state != platform_fan.subscription_state
    ):
        changes["subscription_state"] = platform_fan.subscription_state
    if platform_fan.subscribed_at is not None and fan.subscribed_at != platform_fan.subscribed_at:
        changes["subscribed_at"] = platform_fan.subscribed_at
    expires = platform_fan.subscription_expires_at
    if expires is not None and fan.subscription_expires_at != expires:
        changes["subscription_expires_at"] = expires
    spend = platform_fan.spend_cents
    if spend is not None and spend > fan.lifetime_spend_cents:
        changes["lifetime_spend_cents"] = spend
    for name_, value in changes.items():
        setattr(fan, name_, value)
    return bool(changes)


@transaction.atomic
def fans_store(*, account: CreatorAccount, fans: Sequence[PlatformFan]) -> FansStored:
    """Add or update a page of the platform's fans in a few set-based statements.

    A fan is found by platform id; else an unlinked fan (no platform id yet, e.g. imported
    from a spreadsheet) whose username matches case-insensitively is linked to it (usernames
    are unique in any case); else a new fan is created, with a
    suffixed username when another fan holds the name. Locks the matched rows
    (``SELECT … FOR UPDATE``, as ``fan_subscription_update`` does) so a concurrent webhook
    cannot interleave. A concurrent insert of the same fan raises ``IntegrityError``: the
    caller retries the page, which then finds it.
    """
    by_id: dict[str, PlatformFan] = {}
    for platform_fan in fans:
        by_id[platform_fan.platform_fan_id] = platform_fan
    if not by_id:
        return FansStored(fan_ids={})
    names = {f.username.lower() for f in by_id.values() if f.username}
    known: list[Fan] = list(
        Fan.objects.select_for_update()
        .annotate(username_ci=Lower("username"))
        .filter(account=account)
        .filter(
            Q(platform_fan_id__in=list(by_id))
            | Q(platform_fan_id__isnull=True, username_ci__in=list(names))
        )
        .order_by("id")
    )
    linked_fans: dict[str, Fan] = {f.platform_fan_id: f for f in known if f.platform_fan_id}
    unlinked: dict[str, list[Fan]] = {}
    for f in known:
        if not f.platform_fan_id:
            unlinked.setdefault(f.username.lower(), []).append(f)

    now = timezone.now()
    fan_ids: dict[str, int] = {}
    changed: list[Fan] = []
    new: list[PlatformFan] = []
    linked = updated = 0
    for platform_id, platform_fan in by_id.items():
        fan: Fan | None = linked_fans.get(platform_id)
        link = False
        if fan is None and platform_fan.username:
            candidates = unlinked.get(platform_fan.username.lower()) or []
            exact = [c for c in candidates if c.username == platform_fan.username]
            if exact or candidates:
                fan = (exact or candidates)[0]
                candidates.remove(fan)
                fan.platform_fan_id, link = platform_id, True
        if fan is None:
            new.append(platform_fan)
            continue
        fan_ids[platform_id] = fan.pk
        if _fan_apply(fan, platform_fan) or link:
            fan.updated_at = now
            changed.append(fan)
            linked += link
            updated += not link
    if changed:
        Fan.objects.bulk_update(changed, _FAN_SYNC_FIELDS)
    created = _fans_create(account=account, platform_fans=new, now=now)
    fan_ids.update(created)
    return FansStored(fan_ids=fan_ids, created=len(created), updated=updated, linked=linked)


def _fans_create(
    *, account: CreatorAccount, platform_fans: list[PlatformFan], now: datetime
) -> dict[str, int]:
    if not platform_fans:
        return {}
    options = {
        f.platform_fan_id: fan_username_candidates(
            username=f.username, platform_fan_id=f.platform_fan_id
        )
        for f in platform_fans
    }
    # Usernames are unique in any case (fan_unique_username_ci).
    taken = set(
        Fan.objects.annotate(username_ci=Lower("username"))
        .filter(
            account=account,
            username_ci__in=[name.lower() for names in options.values() for name in names],
        )
        .values_list("username_ci", flat=True)
    )
    rows = []
    for platform_fan in platform_fans:
        username = next(n for n in options[platform_fan.platform_fan_id] if n.lower() not in taken)
        taken.add(username.lower())
        fan = Fan(
            account=account,
            platform_fan_id=platform_fan.platform_fan_id,
            username=username,
            display_name=platform_fan.display_name[:_DISPLAY_NAME_MAX],
            lifetime_spend_cents=platform_fan.spend_cents or 0,
        )
        if platform_fan.subscription_state is not None:
            fan.subscription_state = platform_fan.subscription_state
        fan.subscribed_at = platform_fan.subscribed_at
        fan.subscription_expires_at = platform_fan.subscription_expires_at
        rows.append(fan)
    Fan.objects.bulk_create(rows)
    return {str(f.platform_fan_id): f.pk for f in rows}


# Messages go in with the platform's own time, in one statement; ON CONFLICT leaves what the
# webhooks or the send pipeline stored (same platform id) as it is.
_MESSAGES_INSERT_SQL = """
INSERT INTO crm_message (
  account_id, conversation_id, direction, text, price_cents, media_ids, status,
  platform_message_id, idempotency_key, sender_kind, attempts, last_error,
  sent_at, created_at, updated_at)
SELECT %(account_id)s, %(conversation_id)s, r.direction, r.text, r.price_cents, r.media_ids,
  CASE WHEN r.direction = 'in' THEN 'received' ELSE 'sent' END,
  r.platform_message_id, gen_random_uuid(),
  CASE WHEN r.direction = 'in' THEN 'fan' ELSE 'user' END, 0, '',
  CASE WHEN r.direction = 'out' THEN r.created_at END, r.created_at, now()
FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
  platform_message_id text, direction text, text text, price_cents integer,
  media_ids varchar(100)[], created_at timestamptz)
ON CONFLICT (account_id, platform_message_id) WHERE platform_message_id IS NOT NULL DO NOTHING
RETURNING direction, created_at
"""


def _message_row(message: PlatformMessage) -> dict[str, Any]:
    price = message.price_cents
    if price != 0 and not 300 <= price <= 20000:
        price = 0  # outside the platform's own range: keep the message, not the odd price
    return {
        "platform_message_id": message.platform_message_id,
        "direction": Message.Direction.IN if message.from_fan else Message.Direction.OUT,
        "text": message.text,
        "price_cents": price,
        "media_ids": [m[:100] for m in message.media_ids],
        "created_at": (message.created_at or timezone.now()).isoformat(),
    }


@transaction.atomic
def chat_store(
    *, account: CreatorAccount, chat: PlatformChat, messages: Sequence[PlatformMessage]
) -> tuple[int, FansStored]:
    """Store a chat's fan and recent messages; (messages inserted, fans stored).

    Idempotent on the platform message id: messages the webhooks or the send pipeline already
    stored are left alone. While the conversation has an outgoing message in flight (queued or
    sending), the platform's outgoing messages are not imported: one of them may be ours,
    with its platform id not recorded yet, and the pipeline records it. A conversation this
    creates takes the platform's unread count; an existing one keeps its own.
    """
    stored = fans_store(account=account, fans=[chat.fan])
    fan_id = stored.fan_ids[chat.fan.platform_fan_id]
    if not messages:
        return 0, stored
    conversation, _ = Conversation.objects.get_or_create(
        fan_id=fan_id, defaults={"account": account, "unread_count": chat.unread_count}
    )
    in_flight = Message.objects.filter(
        conversation=conversation, status__in=Message.PENDING_STATUSES
    ).exists()
    rows = [_message_row(m) for m in messages if m.from_fan or not in_flight]
    if not rows:
        return 0, stored
    with connection.cursor() as cursor:
        cursor.execute(
            _MESSAGES_INSERT_SQL,
            {
                "account_id": account.pk,
                "conversation_id": conversation.pk,
                "rows": json.dumps(rows),
            },
        )
        inserted = cursor.fetchall()
        if inserted:
            conversation_summaries_recompute(conversation_ids=[conversation.pk])
    if not inserted:
        return 0, stored
    seen = [created_at for direction, created_at in inserted if direction == Message.Direction.IN]
    if seen:
        # GREATEST ignores NULL: a fan never seen takes the newest message's time.
        Fan.objects.filter(pk=fan_id).update(
            last_seen_at=Greatest(F("last_seen_at"), Value(max(seen)))
        )
    transaction.on_commit(
        functools.partial(
            account_event_broadcast,
            account_id=account.pk,
            event="conversation.changed",
            payload={"conversation_id": conversation.pk},
        )
    )
    return len(inserted), stored


# --- reading --------------------------------------------------------------------------------


def fan_syncs_recent(*, user: User, account_id: int, limit: int = 10) -> list[FanSync]:
    """The account's latest runs, newest first; empty for a user who is not a member."""
    return list(
        FanSync.objects.filter(account_id=account_id, account__memberships__user_id=user.pk)
        .select_related("requested_by")
        .order_by("-created_at", "-id")[:limit]
    )
