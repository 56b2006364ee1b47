"""Which content sells: the media page's, its CSV's and its API's reads, scoped to an account
the acting user is a member of (another account, or another account's item, is a 404).

Chatters see the items and price views (what sells helps them sell) and, in the chatter
views, only their own row: their colleagues' conversion is for owners and managers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from analytics import media_queries as q
from analytics.periods import Period
from crm.errors import NotFoundError
from crm.media_stats import media_stats_zone
from crm.models import Membership, VaultItem, VaultList
from crm.selectors import User, membership_get

PAGE_SIZE = 50
TOP_MEDIA = 10
LABELS_MAX = 200


@dataclass(frozen=True)
class MediaScope:
    """What one request looks at: the range (None: all time), the item filters, the sort."""

    period: Period | None
    media_type: str = ""
    list_id: int | None = None
    label: str = ""
    sort: str = "revenue"
    descending: bool = True
    # The roll-up's zone per account, looked up once per scope (one request).
    rollup_zones: dict[int, str | None] = field(default_factory=dict, compare=False, repr=False)

    def media_filter(
        self, *, account_id: int, sent_by_id: int | None = None, items: bool = True
    ) -> q.MediaFilter:
        """The filter of this scope (``items``: with its type, list and label), counted from
        the account's roll-up when it is whole in the range's zone (one query to know)."""
        period = self.period
        if account_id not in self.rollup_zones:
            self.rollup_zones[account_id] = media_stats_zone(account_id=account_id)
        zone = self.rollup_zones[account_id]
        rollup = zone is not None and (period is None or str(period.zone) == zone)
        return q.MediaFilter(
            account_id=account_id,
            start=period.start if period else None,
            end=period.end if period else None,
            media_type=self.media_type if items else "",
            list_id=self.list_id if items else None,
            label=self.label if items else "",
            sent_by_id=sent_by_id,
            rollup=rollup,
            first_day=period.first_day if period else None,
            last_day=period.last_day if period else None,
        )


@dataclass
class ItemsPage:
    rows: list[q.ItemRow]
    total: int
    page: int
    pages: int


@dataclass
class ChatterGroup:
    row: q.GroupRow
    name: str
    role: str


@dataclass
class Breakdown:
    """By price or by chatter: the rows, and whether a chatter sees only their own."""

    by: str
    rows: list[q.GroupRow]
    names: dict[int, tuple[str, str]] = field(default_factory=dict)
    own_only: bool = False

    def chatters(self) -> list[ChatterGroup]:
        return [
            ChatterGroup(
                r,
                *(self.names.get(r.key, ("former member", "")) if r.key else ("nobody", "")),
            )
            for r in self.rows
        ]


def media_membership(*, user: User, account_id: int) -> Membership:
    """The user's membership of the account (NotFoundError otherwise): anyone of it may see
    the media page; ``chatter_scope`` says whose offers a chatter view shows."""
    return membership_get(user=user, account_id=account_id)


def chatter_scope(membership: Membership) -> int | None:
    """Whose messages a chatter view counts: everyone's for owners and managers, a
    chatter's own otherwise."""
    return None if membership.can_manage_members else membership.user_id


def media_items(*, membership: Membership, scope: MediaScope, page: int = 1) -> ItemsPage:
    """One page of the account's items with their figures, in the scope's order."""
    f = scope.media_filter(account_id=membership.account_id)
    rows, total = q.item_rows(
        f=f,
        sort=scope.sort,
        descending=scope.descending,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    return ItemsPage(rows=rows, total=total, page=page, pages=max(1, -(-total // PAGE_SIZE)))


def media_items_all(*, membership: Membership, scope: MediaScope) -> list[q.ItemRow]:
    """Every matching item with its figures (the CSV)."""
    rows, _ = q.item_rows(
        f=scope.media_filter(account_id=membership.account_id),
        sort=scope.sort,
        descending=scope.descending,
        limit=None,
    )
    return rows


def top_media(*, account_id: int, period: Period, limit: int = TOP_MEDIA) -> list[q.ItemRow]:
    """The analytics page's "top media by revenue": the period's best items that earned."""
    rows, _ = q.item_rows(
        f=MediaScope(period=period).media_filter(account_id=account_id),
        sort="revenue",
        descending=True,
        limit=limit,
    )
    return [r for r in rows if r.figures.revenue_cents > 0]


def _names(account_id: int, rows: list[q.GroupRow]) -> dict[int, tuple[str, str]]:
    """(username, role) of each sender; a former member has no role."""
    ids = {r.key for r in rows if r.key is not None}
    if not ids:
        return {}
    roles = dict(
        Membership.objects.filter(account_id=account_id, user_id__in=ids).values_list(
            "user_id", "role"
        )
    )
    users = get_user_model().objects.filter(pk__in=ids).values_list("pk", "username")
    return {pk: (name, roles.get(pk, "")) for pk, name in users}


def media_breakdown(*, membership: Membership, scope: MediaScope, by: str) -> Breakdown:
    """Every offer of the range by price (``by="price"``) or by sender (``"chatter"``)."""
    own = chatter_scope(membership) if by == "chatter" else None
    f = scope.media_filter(account_id=membership.account_id, sent_by_id=own)
    rows = q.offer_groups(f=f, by=by)
    names = _names(membership.account_id, rows) if by == "chatter" else {}
    return Breakdown(by=by, rows=rows, names=names, own_only=own is not None)


def media_item_get(*, membership: Membership, item_id: int) -> VaultItem:
    """One item of the membership's account; NotFoundError for another account's."""
    item = (
        VaultItem.objects.filter(account_id=membership.account_id, pk=item_id)
        .only(
            "id",
            "account_id",
            "media_type",
            "duration_seconds",
            "platform_created_at",
            "labels",
            "suggested_price_cents",
            "gone_at",
            "thumb_name",
            "platform_media_id",
        )
        .first()
    )
    if item is None:
        raise NotFoundError("Vault item not found.", code="vault_item_not_found")
    return item


def media_item_breakdown(
    *, membership: Membership, scope: MediaScope, item_id: int, by: str
) -> Breakdown:
    """One item's offers by price or by the member who offered it (a chatter: their own)."""
    own = chatter_scope(membership) if by == "chatter" else None
    f = scope.media_filter(account_id=membership.account_id, sent_by_id=own)
    rows = q.item_groups(f=f, item_id=item_id, by=by)
    names = _names(membership.account_id, rows) if by == "chatter" else {}
    return Breakdown(by=by, rows=rows, names=names, own_only=own is not None)


def media_item_figures(*, membership: Membership, scope: MediaScope, item_id: int) -> q.Figures:
    """One item's figures for the range (the item page's header)."""
    f = scope.media_filter(account_id=membership.account_id, items=False)
    return q.item_figures(f=f, item_id=item_id)


def vault_lists(*, account_id: int) -> list[VaultList]:
    return list(VaultList.objects.filter(account_id=account_id, gone_at=None).only("id", "name"))


def vault_labels(*, account_id: int) -> list[str]:
    """The labels in use on the account's items (the label filter's choices)."""
    table = VaultItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT unnest(labels) AS label FROM {table}"  # noqa: S608
            " WHERE account_id = %s AND labels <> '{}' ORDER BY 1 LIMIT %s",
            [account_id, LABELS_MAX],
        )
        return [label for (label,) in cursor.fetchall()]


def figures_dict(figures: q.Figures | q.GroupRow) -> dict[str, Any]:
    """Figures as the API and the CSV give them (cents as integers, ratios 0..1)."""
    out: dict[str, Any] = {}
    if isinstance(figures, q.Figures):
        out.update(sent_free=figures.sent_free, previewed=figures.previewed)
    out.update(
        offered=figures.offered,
        bought=figures.bought,
        conversion=figures.conversion,
        revenue_cents=figures.revenue_cents,
        revenue_per_offer_cents=figures.revenue_per_offer_cents,
    )
    return out
