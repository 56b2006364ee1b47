"""The vault in the product: reads of an account's media library and the writes members make
(labels, suggested price). The platform's side (the sync, thumbnails) is
``onlyfans.vault_sync``; this module only stores and serves what it brought.

Selectors scope to the acting user's memberships: another account's item is a 404
(``NotFoundError``), never a 403.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models import BooleanField, Exists, OuterRef, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.utils.module_loading import import_string

from crm.errors import ApplicationError, NotFoundError
from crm.models import (
    VAULT_LABEL_MAX_LENGTH,
    VAULT_LABELS_MAX,
    Membership,
    VaultItem,
    VaultItemList,
    VaultList,
    VaultMediaType,
    VaultSync,
)
from crm.selectors import _membership_checked, manager_membership_get

log = structlog.get_logger(__name__)

User = AbstractBaseUser | AnonymousUser

SEARCH_MAX_LENGTH = 100
LABELS_INPUT_MAX_LENGTH = 2000  # the raw "feet, custom, …" text, capped before it is split
PRICE_MIN_CENTS, PRICE_MAX_CENTS = 300, 20000  # the pipeline's PPV range
CURSOR_MAX_LENGTH = 200


# --- thumbnail storage --------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def _storage(config: str) -> Storage:
    spec = json.loads(config)
    backend = import_string(spec["BACKEND"])
    storage: Storage = backend(**(spec.get("OPTIONS") or {}))
    return storage


def vault_thumb_storage() -> Storage:
    """Where our thumbnail copies live: ``VAULT_THUMB_STORAGE`` (a backend class and its
    options; local disk by default, an object store when django-storages is installed)."""
    return _storage(json.dumps(settings.VAULT_THUMB_STORAGE, sort_keys=True, default=str))


# --- input --------------------------------------------------------------------------------
def labels_parse(raw: str | Sequence[str]) -> list[str]:
    """Labels from a comma-separated text (the page) or a list (the API): trimmed, spaces
    collapsed, lower case, duplicates dropped, in the order given.

    Raises ``ApplicationError`` (``invalid_labels``) for a label over
    ``VAULT_LABEL_MAX_LENGTH`` characters or more than ``VAULT_LABELS_MAX`` labels.
    """
    if isinstance(raw, str):
        if len(raw) > LABELS_INPUT_MAX_LENGTH:
            raise ApplicationError("That is too much text for labels.", code="invalid_labels")
        parts: Iterable[str] = raw.split(",")
    else:
        if len(raw) > VAULT_LABELS_MAX * 2:
            raise ApplicationError(
                f"At most {VAULT_LABELS_MAX} labels per item.", code="invalid_labels"
            )
        parts = raw
    labels: list[str] = []
    for part in parts:
        if not isinstance(part, str):
            raise ApplicationError("Labels must be text.", code="invalid_labels")
        label = " ".join(unicodedata.normalize("NFKC", part[:200]).split()).lower()
        if not label:
            continue
        if len(label) > VAULT_LABEL_MAX_LENGTH:
            raise ApplicationError(
                f"“{label[:20]}…” is longer than {VAULT_LABEL_MAX_LENGTH} characters.",
                code="invalid_labels",
            )
        if label not in labels:
            labels.append(label)
    if len(labels) > VAULT_LABELS_MAX:
        raise ApplicationError(
            f"At most {VAULT_LABELS_MAX} labels per item.", code="invalid_labels"
        )
    return labels


def price_parse_dollars(raw: str) -> int | None:
    """A suggested price typed in dollars ("25", "12.50", "$15") as cents; "" is none.
    Raises ``ApplicationError`` (``invalid_price``) outside 3-200 dollars."""
    text = raw.strip().removeprefix("$").strip()[:12]
    if not text:
        return None
    try:
        cents = round(float(text) * 100)
    except ValueError:
        raise ApplicationError(
            "Enter the price in dollars, e.g. 25.", code="invalid_price"
        ) from None
    return price_check_cents(cents)


def price_check_cents(cents: int | None) -> int | None:
    if cents is None:
        return None
    if not PRICE_MIN_CENTS <= cents <= PRICE_MAX_CENTS:
        raise ApplicationError("A suggested price is between $3 and $200.", code="invalid_price")
    return cents


# --- reading ------------------------------------------------------------------------------
@dataclass(frozen=True)
class VaultFilters:
    """What a library page or the picker asks for; every field optional."""

    q: str = ""  # a label or list name, or part of one
    media_type: str = ""
    list_id: int | None = None  # our VaultList id
    label: str = ""
    include_gone: bool = False
    only_sendable: bool = False  # the picker: present, ready, without error

    @classmethod
    def from_query(cls, params: Any) -> VaultFilters:
        """From a request's GET (or any mapping of strings); bad values are dropped."""
        media_type = str(params.get("type") or "")
        list_raw = str(params.get("list") or "")[:20]
        return cls(
            q=" ".join(str(params.get("q") or "")[:SEARCH_MAX_LENGTH].split()),
            media_type=media_type if media_type in VaultMediaType.values else "",
            list_id=int(list_raw) if list_raw.isdigit() else None,
            label=" ".join(str(params.get("label") or "")[:VAULT_LABEL_MAX_LENGTH].split()).lower(),
            include_gone=str(params.get("gone") or "") in ("1", "true", "on"),
            only_sendable=str(params.get("sendable") or "") in ("1", "true", "on"),
        )


@dataclass(frozen=True)
class VaultPage:
    items: list[VaultItem]
    next_cursor: str | None
    lists_by_id: dict[int, VaultList] = field(default_factory=dict)


def _cursor_encode(item: VaultItem) -> str:
    raw = f"{item.platform_created_at.isoformat()}|{item.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[datetime, int]:
    if len(cursor) > CURSOR_MAX_LENGTH:
        raise ApplicationError("That page link is not valid.", code="invalid_cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, pk = raw.split("|")
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive")
        return when, int(pk)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApplicationError("That page link is not valid.", code="invalid_cursor") from None


def _filtered(*, account_id: int, filters: VaultFilters) -> QuerySet[VaultItem]:
    items = VaultItem.objects.filter(account_id=account_id)
    if not filters.include_gone:
        items = items.filter(gone_at__isnull=True)
    if filters.only_sendable:
        items = items.filter(gone_at__isnull=True, is_ready=True, has_error=False)
    if filters.media_type:
        items = items.filter(media_type=filters.media_type)
    if filters.list_id is not None:
        items = items.filter(
            Exists(VaultItemList.objects.filter(item=OuterRef("pk"), vault_list_id=filters.list_id))
        )
    if filters.label:
        items = items.filter(labels__contains=[filters.label])
    if filters.q:
        q = filters.q.lower()
        # The account's lists are few: their ids first, then one EXISTS. Labels match by any
        # part (``unnest`` over a short array per row of the account's index range).
        list_ids = list(
            VaultList.objects.filter(account_id=account_id, name__icontains=q).values_list(
                "pk", flat=True
            )
        )
        label_match = RawSQL(
            'EXISTS (SELECT 1 FROM unnest("crm_vaultitem"."labels") AS l WHERE l LIKE %s)',
            [_like(q)],
            output_field=BooleanField(),
        )
        in_lists = Q(
            Exists(VaultItemList.objects.filter(item=OuterRef("pk"), vault_list_id__in=list_ids))
        )
        items = items.filter(Q(label_match) | in_lists) if list_ids else items.filter(label_match)
    return items


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def vault_items_for_account(
    *,
    user: User,
    account_id: int,
    filters: VaultFilters | None = None,
    cursor: str | None = None,
    limit: int | None = None,
    membership: Membership | None = None,
) -> VaultPage:
    """One page of the account's vault, newest first (keyset on ``platform_created_at``,
    ``id``: index ``vault_item_account_recent``, or ``vault_item_account_type`` with a type),
    each item with its lists. Three queries whatever the page size: the membership, the items,
    their lists (plus one for the list names when ``filters.q`` is set).

    ``membership``: the caller's, when a view has just checked it (saves reading it again).
    Raises ``NotFoundError`` for a user who is not a member and ``ApplicationError``
    (``invalid_cursor``) for a cursor it did not make.
    """
    _membership_checked(user=user, account_id=account_id, membership=membership)
    filters = filters or VaultFilters()
    size = min(max(limit or settings.VAULT_PAGE_SIZE, 1), 200)
    items = _filtered(account_id=account_id, filters=filters)
    if cursor:
        created, pk = _cursor_decode(cursor)
        items = items.filter(
            Q(platform_created_at__lt=created) | Q(platform_created_at=created, pk__lt=pk)
        )
    rows = list(
        items.order_by("-platform_created_at", "-pk").prefetch_related(
            Prefetch("lists", queryset=VaultList.objects.order_by("name", "pk"))
        )[: size + 1]
    )
    next_cursor = _cursor_encode(rows[size - 1]) if len(rows) > size else None
    return VaultPage(items=rows[:size], next_cursor=next_cursor)


def vault_lists_for_account(
    *, user: User, account_id: int, membership: Membership | None = None
) -> list[VaultList]:
    """The account's platform lists (present ones), by name: the page's list filter."""
    _membership_checked(user=user, account_id=account_id, membership=membership)
    return list(
        VaultList.objects.filter(account_id=account_id, gone_at__isnull=True).order_by("name", "pk")
    )


def vault_labels_for_account(
    *, user: User, account_id: int, limit: int = 50, membership: Membership | None = None
) -> list[str]:
    """The labels in use in the account's vault, most used first (the label filter)."""
    _membership_checked(user=user, account_id=account_id, membership=membership)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT l, count(*) FROM crm_vaultitem, unnest(labels) AS l
            WHERE account_id = %s AND gone_at IS NULL
            GROUP BY l ORDER BY count(*) DESC, l LIMIT %s
            """,
            [account_id, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def _not_found() -> NotFoundError:
    return NotFoundError("Vault item not found.", code="vault_item_not_found")


def vault_item_get(
    *, user: User, account_id: int, item_id: int, membership: Membership | None = None
) -> VaultItem:
    """One item of the account, with its lists, for a member; ``NotFoundError`` for anything
    else (another account's item, a non-member)."""
    _membership_checked(user=user, account_id=account_id, membership=membership)
    item = (
        VaultItem.objects.prefetch_related("lists")
        .filter(pk=item_id, account_id=account_id)
        .first()
    )
    if item is None:
        raise _not_found()
    return item


def vault_thumb_for_member(*, user: User, account_id: int, item_id: int) -> tuple[str, datetime]:
    """The storage name and time of an item's thumbnail for a member of its account.

    One query (the membership is joined in); ``NotFoundError`` when the user is no member,
    the item is another account's, or it has no thumbnail yet.
    """
    user_id = user.pk
    if user_id is None:
        raise _not_found()
    row = (
        VaultItem.objects.filter(
            pk=item_id, account_id=account_id, account__memberships__user_id=user_id
        )
        .exclude(thumb_name="")
        .values_list("thumb_name", "thumb_fetched_at")
        .first()
    )
    if row is None or row[1] is None:
        raise _not_found()
    return row[0], row[1]


def vault_sync_latest(*, user: User, account_id: int) -> VaultSync | None:
    """The account's latest vault sync run for a member (the page's status line)."""
    user_id = user.pk
    if user_id is None:
        return None
    return (
        VaultSync.objects.filter(account_id=account_id, account__memberships__user_id=user_id)
        .order_by("-created_at", "-id")
        .first()
    )


# --- writing ------------------------------------------------------------------------------
@transaction.atomic
def vault_item_update(
    *,
    actor: User,
    account_id: int,
    item_id: int,
    labels: list[str] | None = None,
    set_price: bool = False,
    suggested_price_cents: int | None = None,
) -> VaultItem:
    """Set an item's labels (unless None) and/or, with ``set_price``, its suggested price
    (None clears it); owners and managers.

    ``labels`` are normalised as ``labels_parse`` does; the price is checked against the PPV
    range.
    Locks the item row (``SELECT … FOR UPDATE``) so two editors do not interleave; the sync
    never writes these two fields. Raises ``NotFoundError`` for an item the actor may not
    see, ``ApplicationError`` ``permission_denied`` (403) for a chatter.
    """
    manager_membership_get(user=actor, account_id=account_id, action="edit the vault")
    item = VaultItem.objects.select_for_update().filter(pk=item_id, account_id=account_id).first()
    if item is None:
        raise _not_found()
    fields: list[str] = []
    if labels is not None:
        item.labels = labels_parse(labels)
        fields.append("labels")
    if set_price:
        item.suggested_price_cents = price_check_cents(suggested_price_cents)
        fields.append("suggested_price_cents")
    if fields:
        item.save(update_fields=[*fields, "updated_at"])
        log.info("vault.item_updated", account_id=account_id, item_id=item.pk, fields=fields)
    return item
