"""The fan-out of an individual campaign: a batch of its recipients becomes queued
``Message`` rows in three statements (not one ``message_enqueue`` per fan), and the account's
dispatcher is asked to run on commit. Each batch is one transaction that also moves its
recipients from ``pending`` to ``queued``, so a fan-out stopped anywhere and run again neither
skips nor doubles a fan (and a partial unique index on messages' ``(campaign_id,
conversation_id)`` refuses a second message to one conversation outright). A screened
campaign's first message is a probe of the gateway's verdict on its words.

The campaign's lifecycle (create, launch, pause, cancel, ...) is ``campaigns.services``; the
fan-out task (``campaigns.tasks``) calls ``campaign_fan_out_batch``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient
from campaigns.rules import VARIABLE
from campaigns.services import campaign_progress_on_commit
from crm.models import PREVIEW_LENGTH, Conversation, Fan, Message, MessageMedia, VaultItem

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FanOutResult:
    queued: int
    more: bool
    retry_in: float | None = None  # come back then (a screening probe is still on its way)


# A screened campaign (``block_banned_words``) queues one message first and waits for the
# gateway's verdict on it before queueing the rest: a text with banned words is refused once,
# not once per fan.
SCREENING_WAIT_SECONDS = 2.0
BANNED_WORDS_CODE = "banned_words"


class Screening(StrEnum):
    OPEN = "open"  # screened (its first message went out), or not screened
    PROBE = "probe"  # queue one message and wait for the gateway's verdict on it
    WAIT = "wait"  # that message is on its way
    REFUSED = "refused"  # the gateway listed banned words: the campaign stops


def _screening_step(campaign: Campaign, now: datetime) -> Screening:
    """Where the campaign's screening stands, so the fan-out knows how much to queue."""
    if not campaign.block_banned_words:
        return Screening.OPEN
    messages = Message.objects.filter(campaign_id=campaign.pk)
    if messages.filter(status=Message.Status.SENT).exists():
        return Screening.OPEN
    first = messages.order_by("id").values_list("status", "last_error").first()
    if first is None:
        return Screening.PROBE
    status, error = first
    if status in Message.PENDING_STATUSES:
        return Screening.WAIT
    if not error.startswith(BANNED_WORDS_CODE):
        return Screening.OPEN  # failed for another reason: the text itself was not refused
    # Refused for its words: every fan's copy would be. Nothing more is queued.
    CampaignRecipient.objects.filter(
        campaign_id=campaign.pk, state=CampaignRecipient.State.PENDING
    ).update(state=CampaignRecipient.State.WITHDRAWN)
    campaign.last_error = error[:500]
    campaign.state = Campaign.State.DONE
    campaign.finished_at = now
    campaign.save(update_fields=["last_error", "state", "finished_at", "updated_at"])
    log.warning("campaign.banned_words", campaign_id=campaign.pk, account_id=campaign.account_id)
    campaign_progress_on_commit(campaign)
    return Screening.REFUSED


# The fan-out in three statements, each joining a batch only to real tables through their
# indexes, so no plan can be quadratic: CTEs joined to CTEs are planned as nested loops over
# CTE scans whenever the planner expects one row from the batch (a generic plan of the
# prepared statement, or statistics taken before the snapshot). bench/README.md, Campaigns.
_FAN_OUT_BATCH_SQL = """
WITH batch AS (
  SELECT r.id, r.fan_id FROM {recipients} r
  WHERE r.campaign_id = %(campaign_id)s AND r.state = 'pending'
  ORDER BY r.id LIMIT {size} FOR UPDATE OF r SKIP LOCKED
), gone AS (
  -- Unlinked since the snapshot: nothing can be sent to them.
  UPDATE {recipients} r SET state = 'withdrawn'
  FROM batch b JOIN {fans} f ON f.id = b.fan_id
  WHERE r.id = b.id AND f.platform_fan_id IS NULL
  RETURNING r.id
)
SELECT b.id, b.fan_id, f.platform_fan_id IS NOT NULL
FROM batch b JOIN {fans} f ON f.id = b.fan_id
ORDER BY b.id
"""
_FAN_OUT_CONVERSATIONS_SQL = r"""
-- A campaign message does not answer the fan: waiting_since is left as it is.
INSERT INTO {conversations} AS c (account_id, fan_id, last_message_at, last_message_preview,
  last_message_direction, unread_count, waiting_since, assigned_to_id, created_at)
SELECT %(account_id)s, f.id, %(now)s,
  left(btrim(coalesce((regexp_match({text}, '^\s*([^\n]*\S[^\n]*)'))[1], '')), %(preview)s),
  'out', 0, NULL, NULL, %(now)s
FROM {fans} f WHERE f.id = ANY(%(fan_ids)s::bigint[])
ON CONFLICT (fan_id) DO UPDATE SET last_message_at = EXCLUDED.last_message_at,
  last_message_preview = EXCLUDED.last_message_preview,
  last_message_direction = EXCLUDED.last_message_direction
"""
_FAN_OUT_MESSAGES_SQL = """
WITH messages AS (
  INSERT INTO {messages} (account_id, conversation_id, direction, text, price_cents, media_ids,
    status, platform_message_id, idempotency_key, sender_kind, sent_by_id, campaign_id,
    attempts, last_error, queued_at, dispatched_at, sent_at, created_at, updated_at)
  SELECT %(account_id)s, c.id, 'out', {text}, %(price)s, %(media)s::varchar(100)[],
    'queued', NULL, gen_random_uuid(), 'campaign', NULL, %(campaign_id)s,
    0, '', %(now)s, NULL, NULL, %(now)s, %(now)s
  FROM unnest(%(fan_ids)s::bigint[]) WITH ORDINALITY AS t(fan_id, n)
  JOIN {fans} f ON f.id = t.fan_id
  JOIN {conversations} c ON c.fan_id = t.fan_id
  ORDER BY t.n
  RETURNING id, conversation_id
), media AS (
  -- What each message carries, as a message sent from the inbox records it (the vault item
  -- when the account has it): the fan's marks, the resend guard and the media page count it.
  INSERT INTO {message_media} (account_id, message_id, vault_item_id, platform_media_id,
    is_preview, position)
  SELECT %(account_id)s, m.id, v.id, u.pid, false, u.n - 1
  FROM messages m
  CROSS JOIN (SELECT pid, min(n) AS n FROM unnest(%(media)s::varchar(100)[])
              WITH ORDINALITY AS x(pid, n) WHERE pid <> '' GROUP BY pid) u
  LEFT JOIN {vault} v ON v.account_id = %(account_id)s AND v.platform_media_id = u.pid
)
UPDATE {recipients} r SET state = 'queued', message_id = m.id
FROM messages m JOIN {conversations} c ON c.id = m.conversation_id
WHERE r.campaign_id = %(campaign_id)s AND r.fan_id = c.fan_id AND r.state = 'pending'
"""


def _personalised_sql(text: str) -> tuple[str, dict[str, str]]:
    """The campaign's text as a SQL expression over the fan ``f`` (the same values as
    ``text_personalise``), with its literal parts as parameters."""
    parts: list[str] = []
    params: dict[str, str] = {}

    def param(value: str) -> str:
        name = f"t{len(params)}"
        params[name] = value
        return f"%({name})s::text"

    position = 0
    for match in VARIABLE.finditer(text):
        if match.start() > position:
            parts.append(param(text[position : match.start()]))
        variable, fallback = match.group(1), match.group(2)
        if variable == "name":
            other = param(fallback) if fallback is not None else "f.username"
            parts.append(f"coalesce(nullif(btrim(f.display_name), ''), {other})")
        elif variable == "username":
            parts.append(f"coalesce(nullif(f.username, ''), {param(fallback or '')})")
        else:
            parts.append(param(match.group(0)))
        position = match.end()
    if position < len(text) or not parts:
        parts.append(param(text[position:]))
    return "(" + " || ".join(parts) + ")", params


@transaction.atomic
def campaign_fan_out_batch(*, campaign_id: int, batch_size: int | None = None) -> FanOutResult:
    """Queue the next batch of a running individual campaign's recipients as messages.

    Locks the campaign row (FOR UPDATE) for the batch, so pause and cancel wait for it and the
    next batch sees them; the batch's recipients are taken with SKIP LOCKED. In one
    transaction, three statements take the batch (withdrawing fans unlinked since the
    snapshot), open or touch the conversations, and insert the personalised messages (each
    with its own idempotency key and its media rows) while moving the recipients to
    ``queued``: run again after a crash anywhere, it continues with exactly the recipients
    that have no message yet.
    """
    size = batch_size or settings.CAMPAIGN_FAN_OUT_BATCH_SIZE
    campaign = (
        Campaign.objects.select_for_update(of=("self",))
        .select_related("account")
        .filter(pk=campaign_id)
        .first()
    )
    if (
        campaign is None
        or campaign.state != Campaign.State.RUNNING
        or campaign.send_mode != Campaign.Mode.INDIVIDUAL
    ):
        return FanOutResult(queued=0, more=False)
    screening = _screening_step(campaign, timezone.now())
    if screening == Screening.REFUSED:
        return FanOutResult(queued=0, more=False)
    if screening == Screening.WAIT:
        return FanOutResult(queued=0, more=True, retry_in=SCREENING_WAIT_SECONDS)
    if screening == Screening.PROBE:
        size = 1
    text_sql, text_params = _personalised_sql(campaign.text)
    tables = {
        "recipients": CampaignRecipient._meta.db_table,
        "fans": Fan._meta.db_table,
        "conversations": Conversation._meta.db_table,
        "messages": Message._meta.db_table,
        "message_media": MessageMedia._meta.db_table,
        "vault": VaultItem._meta.db_table,
        "text": text_sql,
        "size": int(size),
    }
    now = timezone.now()
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(_FAN_OUT_BATCH_SQL.format(**tables), {"campaign_id": campaign.pk})
        batch = cursor.fetchall()
        # Recipient order (random at the snapshot) is the order the messages go out.
        fan_ids = [fan_id for _, fan_id, linked in batch if linked]
        if fan_ids:
            params: dict[str, Any] = {
                "campaign_id": campaign.pk,
                "account_id": campaign.account_id,
                "fan_ids": fan_ids,
                "now": now,
                "price": campaign.price_cents,
                "media": list(campaign.media_ids),
                "preview": PREVIEW_LENGTH,
                **text_params,
            }
            cursor.execute(_FAN_OUT_CONVERSATIONS_SQL.format(**tables), params)
            cursor.execute(_FAN_OUT_MESSAGES_SQL.format(**tables), params)
            queued = cursor.rowcount
        else:
            queued = 0
    if not batch:
        return FanOutResult(queued=0, more=False)
    gone = len(batch) - len(fan_ids)
    Campaign.objects.filter(pk=campaign.pk).update(
        fanned_out=F("fanned_out") + queued + gone, updated_at=now
    )
    # A full batch may have left more; an empty one says there was none.
    more = len(batch) >= size or screening == Screening.PROBE
    log.info(
        "campaign.fanned_out",
        campaign_id=campaign.pk,
        account_id=campaign.account_id,
        queued=queued,
        ms=round((time.perf_counter() - started) * 1000),
    )
    from onlyfans.dispatch_coalescer import dispatch_on_commit

    dispatch_on_commit(account_id=campaign.account_id)
    campaign_progress_on_commit(campaign)
    if queued:
        from campaigns.live import campaign_messages_broadcast

        transaction.on_commit(
            functools.partial(
                campaign_messages_broadcast,
                account_id=campaign.account_id,
                campaign_id=campaign.pk,
                fan_ids=fan_ids,
            )
        )
    return FanOutResult(queued=int(queued), more=more)
