"""Media in outgoing messages ("Sending media" and "What each fan got").

- ``media_attachment_resolve``: the vault item ids (and raw platform ids) a sender picked,
  checked against the account's vault and the fan's history in one query, before anything
  is queued: ``media_not_found`` / ``media_gone`` / ``media_not_ready`` (422) and the resend
  guard ``media_already_sent`` (409) unless ``allow_resend``.
- ``message_media_insert``: the message's ``MessageMedia`` rows (one statement).
- ``FAN_EVENTS_FROM_SENT_SQL`` / ``fan_media_events_record_bought``: what the fan got, into
  ``FanMediaEvent`` when a message with media is marked sent (in the same statement as the
  status change, see ``onlyfans.services.message_mark_sent``, with ``SENT_MEDIA_CTES``) and
  when a PPV unlock is recorded; both also add to the media page's roll-up
  (``crm.media_stats``). The partial unique constraints make the events idempotent
  (``ON CONFLICT DO NOTHING``).
- ``fan_media_events_record_mass`` / ``fan_media_events_withdraw_mass``: a campaign sent as
  the platform's mass message has no message of ours per fan: when the platform accepts a
  chunk, its fans' events (``source=campaign_mass``, with the campaign and chunk) and the
  roll-up are written in one statement; an unsend deletes them again.
- ``fan_media_marks``: the per-fan state of a page of items (the picker's marks), one query on
  ``fan_media_event_fan_item``.
- ``fan_media_history``: the fan panel's list, keyset-paginated on ``fan_media_event_fan_recent``.

Callers have scoped the fan or account to the acting user already.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any, TypeVar

from django.db import connection

from crm.errors import ApplicationError
from crm.media_stats import (
    mass_media_ctes,
    media_stats_drop_empty,
    media_stats_lock_shared,
    media_stats_purchase_add,
    sent_media_ctes,
)
from crm.models import (
    Conversation,
    CreatorAccount,
    FanMediaEvent,
    Message,
    MessageMedia,
    VaultItem,
)
from crm.zones import zone_named

T = TypeVar("T")

MAX_MEDIA = 50  # the pipeline's own cap (onlyfans.services.MAX_MEDIA)
HISTORY_PAGE_SIZE = 20

_V = VaultItem._meta.db_table
_E = FanMediaEvent._meta.db_table
_MM = MessageMedia._meta.db_table
_M = Message._meta.db_table
_C = Conversation._meta.db_table

Kind = FanMediaEvent.Kind
# Which of a fan's events for one item says the most: bought beats offered beats sent free.
_KIND_RANK = {Kind.BOUGHT: 3, Kind.OFFERED: 2, Kind.SENT_FREE: 1}


# --- the per-fan state of an item -----------------------------------------------------------
@dataclass(frozen=True)
class MediaMark:
    """What one fan has of one item: ``state`` is ``bought``, ``offered``, ``sent_free`` or
    ``never``; ``price_cents`` and ``at`` are those of the event that decided it (the latest
    of its kind)."""

    state: str
    price_cents: int = 0
    at: datetime | None = None

    @property
    def received(self) -> bool:
        return self.state != "never"

    @property
    def how(self) -> str:
        return {"bought": "bought", "offered": "offered", "sent_free": "sent"}.get(self.state, "")


NEVER_SENT = MediaMark(state="never")


def _mark_fold(
    marks: dict[Any, MediaMark], key: object, kind: str, price: int, at: datetime
) -> None:
    current = marks.get(key)
    better = current is None or _KIND_RANK[Kind(kind)] > _KIND_RANK[Kind(current.state)]
    later = (
        current is not None and current.state == kind and (current.at is None or at > current.at)
    )
    if better or later:
        marks[key] = MediaMark(state=kind, price_cents=price, at=at)


def fan_media_marks(*, fan_id: int, item_ids: Sequence[int]) -> dict[int, MediaMark]:
    """The fan's state of each of ``item_ids`` (absent: never sent). One query on the index
    ``(fan, vault_item)`` whatever the fan's history holds; none for no items."""
    if not item_ids:
        return {}
    rows = (
        FanMediaEvent.objects.filter(fan_id=fan_id, vault_item_id__in=list(item_ids))
        .order_by()
        .values_list("vault_item_id", "kind", "price_cents", "at")
    )
    marks: dict[int, MediaMark] = {}
    for item_id, kind, price, at in rows:
        _mark_fold(marks, item_id, kind, price, at)
    return marks


# --- choosing media for a message -----------------------------------------------------------
@dataclass(frozen=True)
class MediaChoice:
    platform_media_id: str
    vault_item_id: int | None
    is_preview: bool
    media_type: str = ""


@dataclass(frozen=True)
class MediaAttachment:
    """The media of one message, in order, as the pipeline will send them."""

    media: tuple[MediaChoice, ...]

    @property
    def media_ids(self) -> list[str]:
        return [m.platform_media_id for m in self.media]

    @property
    def preview_ids(self) -> list[str]:
        return [m.platform_media_id for m in self.media if m.is_preview]


@dataclass(frozen=True)
class AlreadySent:
    """An item of the message the fan already has, for the resend guard's answer."""

    vault_item_id: int | None
    platform_media_id: str
    media_type: str
    mark: MediaMark

    def as_json(self) -> dict[str, object]:
        return {
            "vault_item_id": self.vault_item_id,
            "platform_media_id": self.platform_media_id,
            "how": self.mark.how,
            "price_cents": self.mark.price_cents,
            "at": self.mark.at.isoformat() if self.mark.at else None,
        }


class MediaAlreadySentError(ApplicationError):
    """409 ``media_already_sent``: the fan already received or bought some of the items."""

    def __init__(self, items: list[AlreadySent], *, zone: tzinfo = UTC) -> None:
        self.items = items
        phrases = "; ".join(_already_phrase(a, zone) for a in items)
        super().__init__(
            f"This fan already {phrases} — send anyway?",
            code="media_already_sent",
            status_code=409,
            extra={"items": [a.as_json() for a in items]},
        )


def _already_phrase(item: AlreadySent, zone: tzinfo) -> str:
    """ "bought photo 123 ($25) on 3 Nov": the day in the account's zone (``zone``)."""
    name = f"{item.media_type or 'media'} {item.platform_media_id}"
    mark = item.mark
    local = mark.at.astimezone(zone) if mark.at else None
    when = f" on {local.day} {local:%b}" if local else ""
    if mark.state == Kind.BOUGHT:
        return f"bought {name} (${mark.price_cents / 100:g}){when}"
    if mark.state == Kind.OFFERED:
        return f"was offered {name} (${mark.price_cents / 100:g}, not bought){when}"
    return f"got {name} free{when}"


def _dedupe(values: Sequence[T]) -> list[T]:
    seen: set[T] = set()
    out = []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


# The account's items asked for (by our id or the platform's) and, in the same statement, the
# fan's events for them (by item, or by platform id for raw ids), told apart by the first
# column. One round trip for the whole check.
_RESOLVE_SQL = f"""
SELECT 'i', v.id, v.platform_media_id, v.media_type, v.gone_at IS NOT NULL, v.is_ready,
       v.has_error, NULL, NULL, NULL
FROM {_V} v
WHERE v.account_id = %(account_id)s
  AND (v.id = ANY(%(item_ids)s::bigint[]) OR v.platform_media_id = ANY(%(raw_ids)s::text[]))
UNION ALL
SELECT 'e', e.vault_item_id, e.platform_media_id, NULL, NULL, NULL, NULL, e.kind,
       e.price_cents, e.at
FROM {_E} e
WHERE %(guard)s AND e.fan_id = %(fan_id)s
  AND (e.vault_item_id = ANY(%(item_ids)s::bigint[])
       OR e.platform_media_id = ANY(%(raw_ids)s::text[]))
"""  # noqa: S608 (table names only)


def _id_list(values: Sequence[object], *, field: str) -> list[int]:
    ids = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _invalid(field, "Vault item ids are numbers.")
        text = str(value).strip()
        if not text.isdigit() or len(text) > 18:
            raise _invalid(field, "Vault item ids are numbers.")
        ids.append(int(text))
    return ids


def _invalid(field: str, message: str) -> ApplicationError:
    return ApplicationError(
        "The message is not valid.", code="invalid_message", fields={field: [message]}
    )


def media_attachment_resolve(
    *,
    account_id: int,
    fan_id: int,
    vault_item_ids: Sequence[object] = (),
    preview_item_ids: Sequence[object] = (),
    media_ids: Sequence[str] = (),
    price_cents: int = 0,
    allow_resend: bool = False,
) -> MediaAttachment | None:
    """The media a sender chose, checked, or None when they chose none (no query then).

    Vault items come first, in the order given, then raw platform ids (scripts) not already
    among them; a raw id that is one of the account's vault items is checked like one.
    Raises ``ApplicationError``: ``invalid_message`` (previews not among the items, previews
    without a price or with nothing left locked, too many), 422 ``media_not_found`` (not an
    item of this account: another account's item looks the same), ``media_gone``,
    ``media_not_ready``, each with ``vault_item_ids``; ``MediaAlreadySentError`` (409) when
    the fan already received or bought some and ``allow_resend`` is false.
    """
    if len(vault_item_ids) + len(media_ids) > MAX_MEDIA:
        field = "vault_item_ids" if vault_item_ids else "media_ids"
        raise _invalid(field, f"At most {MAX_MEDIA} media files.")
    item_ids = _dedupe(_id_list(vault_item_ids, field="vault_item_ids"))
    previews = set(_id_list(preview_item_ids, field="preview_item_ids"))
    raw_ids = [str(m).strip() for m in _dedupe(list(media_ids)) if str(m).strip()]
    if not item_ids and not raw_ids:
        if previews:
            raise _invalid("preview_item_ids", "Free previews must be among the chosen media.")
        return None
    if len(item_ids) + len(raw_ids) > MAX_MEDIA:
        raise _invalid("vault_item_ids", f"At most {MAX_MEDIA} media files.")
    if not previews <= set(item_ids):
        raise _invalid("preview_item_ids", "Free previews must be among the chosen media.")
    if previews and not price_cents:
        raise _invalid("preview_item_ids", "Free previews are for a paid message: set a price.")
    if previews and len(previews) >= len(item_ids) + len(raw_ids):
        raise _invalid("preview_item_ids", "At least one media must stay locked behind the price.")

    with connection.cursor() as cursor:
        cursor.execute(
            _RESOLVE_SQL,
            {
                "account_id": account_id,
                "fan_id": fan_id,
                "item_ids": item_ids,
                "raw_ids": raw_ids,
                "guard": not allow_resend,
            },
        )
        rows = cursor.fetchall()
    by_id: dict[int, tuple[str, str, bool, bool, bool]] = {}
    by_platform: dict[str, int] = {}
    events: list[tuple[int | None, str, str, int, datetime]] = []
    for tag, pk, platform_id, media_type, gone, ready, error, kind, price, at in rows:
        if tag == "i":
            by_id[pk] = (platform_id, media_type, gone, ready, error)
            by_platform[platform_id] = pk
        else:
            events.append((pk, platform_id, kind, price, at))

    missing = [i for i in item_ids if i not in by_id]
    if missing:
        raise ApplicationError(
            "Some of the chosen media are not in this account's vault.",
            code="media_not_found",
            status_code=422,
            extra={"vault_item_ids": missing},
        )
    # Raw ids that are vault items are checked as items; others go as they are (scripts).
    chosen: list[tuple[int | None, str, str]] = [(i, by_id[i][0], by_id[i][1]) for i in item_ids]
    for raw in raw_ids:
        pk = by_platform.get(raw)
        if pk is not None and pk in item_ids:
            continue
        chosen.append((pk, raw, by_id[pk][1] if pk is not None else ""))
    gone = [pk for pk, _, _ in chosen if pk is not None and by_id[pk][2]]
    if gone:
        raise ApplicationError(
            "Some of the chosen media were removed from the vault on the platform.",
            code="media_gone",
            status_code=422,
            extra={"vault_item_ids": gone},
        )
    not_ready = [pk for pk, _, _ in chosen if pk is not None and (not by_id[pk][3] or by_id[pk][4])]
    if not_ready:
        raise ApplicationError(
            "Some of the chosen media are still processing on the platform (or failed to).",
            code="media_not_ready",
            status_code=422,
            extra={"vault_item_ids": not_ready},
        )
    if events:
        marks_by_item: dict[int, MediaMark] = {}
        marks_by_platform: dict[str, MediaMark] = {}
        for pk, platform_id, kind, price, at in events:
            _mark_fold(marks_by_platform, platform_id, kind, price, at)
            if pk is not None:
                _mark_fold(marks_by_item, pk, kind, price, at)
        already = []
        for pk, platform_id, media_type in chosen:
            mark = marks_by_item.get(pk) if pk is not None else None
            mark = mark or marks_by_platform.get(platform_id)
            if mark is not None:
                already.append(AlreadySent(pk, platform_id, media_type, mark))
        if already:
            # The account's zone for the days in the answer: a query on this path only.
            zone_name = (
                CreatorAccount.objects.filter(pk=account_id)
                .values_list("time_zone", flat=True)
                .first()
            )
            raise MediaAlreadySentError(already, zone=zone_named(zone_name or ""))
    return MediaAttachment(
        media=tuple(
            MediaChoice(
                platform_media_id=platform_id,
                vault_item_id=pk,
                is_preview=pk is not None and pk in previews,
                media_type=media_type,
            )
            for pk, platform_id, media_type in chosen
        )
    )


def message_media_insert(*, message: Message, attachment: MediaAttachment) -> None:
    """The message's media rows, in order: one INSERT. Inside the caller's transaction."""
    MessageMedia.objects.bulk_create(
        [
            MessageMedia(
                account_id=message.account_id,
                message_id=message.pk,
                vault_item_id=choice.vault_item_id,
                platform_media_id=choice.platform_media_id,
                is_preview=choice.is_preview,
                position=position,
            )
            for position, choice in enumerate(attachment.media)
        ]
    )


# --- what the fan got -----------------------------------------------------------------------
# Each media of a message, as one row per (message, media): its vault item (from the message's
# media rows, else the account's vault by platform id) and whether it was a free preview. The
# message's columns come from ``src`` (the UPDATE's RETURNING when marking sent).
_MESSAGE_MEDIA_ROWS = f"""
FROM src
JOIN {_C} c ON c.id = src.conversation_id
CROSS JOIN LATERAL unnest(src.media_ids) AS u(pid)
LEFT JOIN {_MM} mm ON mm.message_id = src.id AND mm.platform_media_id = u.pid
LEFT JOIN {_V} v ON mm.id IS NULL AND v.account_id = src.account_id AND v.platform_media_id = u.pid
"""

_EVENT_COLUMNS = (
    "account_id, fan_id, vault_item_id, platform_media_id, kind, price_cents, at, message_id, "
    "platform_message_id, source, sent_by_id, created_at"
)

# Run with the message's UPDATE as CTE ``src``: a sent message's media become the fan's
# events in the statement that marks it sent (no round trip of its own). A preview, or any
# media of a free message, was sent free; the rest was offered at the message's price.
FAN_EVENTS_FROM_SENT_SQL = f"""
INSERT INTO {_E} ({_EVENT_COLUMNS})
SELECT src.account_id, c.fan_id, COALESCE(mm.vault_item_id, v.id), u.pid,
       CASE WHEN src.price_cents > 0 AND NOT COALESCE(mm.is_preview, false)
            THEN 'offered' ELSE 'sent_free' END,
       CASE WHEN src.price_cents > 0 AND NOT COALESCE(mm.is_preview, false)
            THEN src.price_cents ELSE 0 END,
       src.sent_at, src.id, COALESCE(src.platform_message_id, ''), 'ours', src.sent_by_id, now()
{_MESSAGE_MEDIA_ROWS}
ON CONFLICT DO NOTHING
"""
# What follows ``src`` in that statement: the fan's events and the media page's roll-up.
SENT_MEDIA_CTES = sent_media_ctes(FAN_EVENTS_FROM_SENT_SQL)

_FAN_EVENTS_BOUGHT_SQL = f"""
WITH src AS (
  SELECT id, account_id, conversation_id, media_ids, platform_message_id, sent_by_id
  FROM {_M} WHERE id = %(message_id)s
)
INSERT INTO {_E} ({_EVENT_COLUMNS})
SELECT src.account_id, c.fan_id, COALESCE(mm.vault_item_id, v.id), u.pid, 'bought',
       %(price)s, %(at)s, src.id, COALESCE(src.platform_message_id, ''), 'ours',
       src.sent_by_id, now()
{_MESSAGE_MEDIA_ROWS}
WHERE NOT COALESCE(mm.is_preview, false)
ON CONFLICT DO NOTHING
"""  # noqa: S608 (table names only)


def fan_media_events_record_bought(*, message: Message, price_cents: int, at: datetime) -> int:
    """The fan bought a PPV message (a purchase just recorded in this transaction, once per
    purchase): its locked media become ``bought`` events (the price paid, when), and the
    media page's roll-up gains the purchase (``crm.media_stats``). Events: one statement, a
    no-op when already recorded. Returns the events added."""
    if not message.media_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _FAN_EVENTS_BOUGHT_SQL, {"message_id": message.pk, "price": price_cents, "at": at}
        )
        added = cursor.rowcount
    media_stats_purchase_add(message_id=message.pk, amount_cents=price_cents)
    return added


# --- mass sends -------------------------------------------------------------------------------
_MASS_RETURNING = "RETURNING account_id, fan_id, vault_item_id, kind, price_cents, at"

# Each fan of the chunk gets each distinct media of the campaign: offered at its price, or
# sent free (a campaign carries no previews). Rows in (fan, media) order.
_MASS_EVENTS_SQL = f"""
INSERT INTO {_E} ({_EVENT_COLUMNS}, campaign_id, mass_chunk_id)
SELECT %(account)s, f.fan_id, v.id, u.pid,
       CASE WHEN %(price)s > 0 THEN 'offered' ELSE 'sent_free' END, %(price)s, %(at)s, NULL,
       %(platform_mass_id)s, 'campaign_mass', %(sent_by)s, now(), %(campaign)s, %(chunk)s
FROM unnest(%(fan_ids)s::bigint[]) AS f(fan_id)
CROSS JOIN (SELECT pid, min(n) AS n FROM unnest(%(media)s::text[]) WITH ORDINALITY AS x(pid, n)
            WHERE pid <> '' GROUP BY pid) u
LEFT JOIN {_V} v ON v.account_id = %(account)s AND v.platform_media_id = u.pid
ORDER BY f.fan_id, u.n
ON CONFLICT DO NOTHING
{_MASS_RETURNING}
"""  # noqa: S608 (table names only)
_MASS_RECORD_SQL = f"WITH {mass_media_ctes(_MASS_EVENTS_SQL)} SELECT COUNT(*) FROM events"  # noqa: S608

_MASS_DELETE_SQL = f"""
DELETE FROM {_E}
WHERE source = 'campaign_mass' AND mass_chunk_id = %(chunk)s AND account_id = %(account)s
{_MASS_RETURNING}
"""  # noqa: S608 (table names only)
_MASS_WITHDRAW_SQL = f"""
WITH {mass_media_ctes(_MASS_DELETE_SQL, withdraw=True)}
SELECT COUNT(*),
       COALESCE(array_agg(DISTINCT vault_item_id) FILTER (WHERE vault_item_id IS NOT NULL), '{{}}')
FROM events
"""  # noqa: S608 (table names only)


def fan_media_events_record_mass(
    *,
    account_id: int,
    campaign_id: int,
    chunk_id: int,
    platform_mass_id: str,
    fan_ids: Sequence[int],
    media_ids: Sequence[str],
    price_cents: int,
    at: datetime,
    sent_by_id: int | None,
) -> int:
    """The platform accepted one chunk of a campaign's mass message (in the caller's
    transaction): each of ``fan_ids`` got each of ``media_ids``, offered at ``price_cents``
    (sent free at 0), from that campaign and chunk, by ``sent_by_id`` (who made the
    campaign). The media page's roll-up counts each fan's copy as a campaign message to that
    fan (``crm.media_stats``). Two statements (the roll-up's lock, then events and roll-up
    together), none without fans or media; a replay adds nothing. Returns the events added."""
    if not fan_ids or not media_ids:
        return 0
    media_stats_lock_shared(account_id=account_id)
    with connection.cursor() as cursor:
        cursor.execute(
            _MASS_RECORD_SQL,
            {
                "account": account_id,
                "campaign": campaign_id,
                "chunk": chunk_id,
                "platform_mass_id": platform_mass_id[:64],
                "fan_ids": list(fan_ids),
                "media": [str(m) for m in media_ids],
                "price": price_cents,
                "at": at,
                "sent_by": sent_by_id,
            },
        )
        return int(cursor.fetchone()[0])


def fan_media_events_withdraw_mass(*, account_id: int, chunk_id: int) -> int:
    """A chunk of a mass message was unsent from the platform: its fans no longer have its
    media, so its events are deleted and taken out of the roll-up (rows left at zero go, as a
    build would not have them). Three statements; a second call removes nothing. Returns the
    events removed."""
    media_stats_lock_shared(account_id=account_id)
    with connection.cursor() as cursor:
        cursor.execute(_MASS_WITHDRAW_SQL, {"account": account_id, "chunk": chunk_id})
        removed, item_ids = cursor.fetchone()
    if removed:
        media_stats_drop_empty(account_id=account_id, item_ids=list(item_ids))
    return int(removed)


# --- the fan panel's history ----------------------------------------------------------------
@dataclass(frozen=True)
class MediaHistoryPage:
    events: list[FanMediaEvent]
    next_cursor: str | None


def _history_cursor(event: FanMediaEvent) -> str:
    raw = f"{event.at.isoformat()}|{event.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _history_cursor_decode(cursor: str) -> tuple[datetime, int]:
    if len(cursor) > 200:
        raise ApplicationError("That page link is not valid.", code="invalid_cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when_text, pk = raw.split("|")
        when = datetime.fromisoformat(when_text)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApplicationError("That page link is not valid.", code="invalid_cursor") from None


def fan_media_history(
    *, fan_id: int, cursor: str = "", limit: int = HISTORY_PAGE_SIZE
) -> MediaHistoryPage:
    """The fan's media events, newest first (keyset on ``(at, id)``, index
    ``fan_media_event_fan_recent``), each with its item, message and sender: one query."""
    from django.db.models import Q

    events = (
        FanMediaEvent.objects.filter(fan_id=fan_id)
        .select_related("vault_item", "sent_by", "message")
        .only(
            "id",
            "kind",
            "price_cents",
            "at",
            "source",
            "platform_media_id",
            "platform_message_id",
            "message_id",
            "message__campaign_id",
            "message__sender_kind",
            "campaign_id",
            "vault_item__id",
            "vault_item__account_id",
            "vault_item__media_type",
            "vault_item__thumb_name",
            "vault_item__gone_at",
            "sent_by__id",
            "sent_by__username",
        )
        .order_by("-at", "-id")
    )
    if cursor:
        at, pk = _history_cursor_decode(cursor)
        events = events.filter(Q(at__lt=at) | Q(at=at, id__lt=pk))
    rows = list(events[: limit + 1])
    next_cursor = _history_cursor(rows[limit - 1]) if len(rows) > limit else None
    return MediaHistoryPage(events=rows[:limit], next_cursor=next_cursor)


# --- the composer's picker ------------------------------------------------------------------
@dataclass(frozen=True)
class PickerItem:
    """A vault item as the picker shows it to one fan: the item, the fan's mark, and why it
    cannot be chosen ("" when it can)."""

    item: VaultItem
    mark: MediaMark

    @property
    def unavailable(self) -> str:
        if self.item.gone_at is not None:
            return "Removed on the platform"
        if self.item.has_error:
            return "Error on the platform"
        if not self.item.is_ready:
            return "Still processing"
        return ""


@dataclass(frozen=True)
class PickerPage:
    items: list[PickerItem]
    next_cursor: str | None


def media_picker_page(
    *,
    user: Any,
    account_id: int,
    fan_id: int | None,
    filters: Any = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> PickerPage:
    """One page of the account's vault for the composer's picker, each item with the open
    fan's mark: the vault selector's queries (membership, items, their lists) and one for the
    marks (none without a fan: the campaign builder), whatever the page size or the fan's
    history. The caller scoped the fan to ``account_id``; ``NotFoundError`` for a non-member,
    ``invalid_cursor`` as the vault's."""
    from crm.vault import vault_items_for_account

    page = vault_items_for_account(
        user=user, account_id=account_id, filters=filters, cursor=cursor, limit=limit
    )
    marks = (
        fan_media_marks(fan_id=fan_id, item_ids=[item.pk for item in page.items])
        if fan_id is not None
        else {}
    )
    return PickerPage(
        items=[PickerItem(item=item, mark=marks.get(item.pk, NEVER_SENT)) for item in page.items],
        next_cursor=page.next_cursor,
    )


def vault_items_chosen(*, account_id: int, item_ids: Sequence[int]) -> list[VaultItem]:
    """The account's items among ``item_ids``, in that order (the composer's chips when it is
    shown again with what was chosen). One query; none for no ids."""
    if not item_ids:
        return []
    items = {
        item.pk: item
        for item in VaultItem.objects.filter(account_id=account_id, pk__in=list(item_ids)).only(
            "id",
            "account_id",
            "platform_media_id",
            "media_type",
            "thumb_name",
            "thumb_fetched_at",
            "gone_at",
            "is_ready",
            "has_error",
        )
    }
    return [items[i] for i in item_ids if i in items]


def vault_items_for_platform_ids(
    *, account_id: int, platform_ids: Sequence[str]
) -> tuple[list[int], list[str]]:
    """Our ids of the account's items with these platform ids, in that order, and the platform
    ids that are no item of the account (a campaign's stored media shown as the picker's chips
    again). One query; none for no ids."""
    if not platform_ids:
        return [], []
    by_platform = dict(
        VaultItem.objects.filter(
            account_id=account_id, platform_media_id__in=list(platform_ids)
        ).values_list("platform_media_id", "pk")
    )
    return (
        [by_platform[p] for p in platform_ids if p in by_platform],
        [p for p in platform_ids if p not in by_platform],
    )


def vault_items_sendable(
    *, account_id: int, item_ids: Sequence[int]
) -> tuple[list[VaultItem], dict[int, str]]:
    """The account's items among ``item_ids`` in order, and why each that cannot be sent
    cannot ("Not in this account's vault", "Removed on the platform", …). One query."""
    items = vault_items_chosen(account_id=account_id, item_ids=item_ids)
    found = {item.pk for item in items}
    problems = {i: "Not in this account's vault" for i in item_ids if i not in found}
    for item in items:
        reason = PickerItem(item=item, mark=NEVER_SENT).unavailable
        if reason:
            problems[item.pk] = reason
    return items, problems


def vault_items_problems_message(items: Sequence[VaultItem], problems: dict[int, str]) -> str:
    """``vault_items_sendable``'s refusals as one line for a form or an API error: each item
    by its type and platform id ("photo #123: Removed on the platform"), one not in the
    account's vault by our id ("Item 7: Not in this account's vault")."""
    names = {item.pk: f"{item.media_type} #{item.platform_media_id}" for item in items}
    return "; ".join(f"{names.get(i, f'Item {i}')}: {why}" for i, why in problems.items())
