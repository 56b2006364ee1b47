"""The SQL behind "which content sells": per vault item, per price and per chatter, from the
account's roll-up (``crm.media_stats``: written in the transaction of the rows it counts) when
it is whole in the range's zone, else straight over crm's rows (sent messages, the media they
carried, the PPV purchases of them). Both give the same figures (tests/analytics/test_media.py).

Definitions (docs/vault.md, "Which content sells"), for messages sent in the range (their
``sent_at`` in the account's days; status ``sent``):

- sent free: the item went in a free message (price 0);
- previewed: the item was a free preview of a pay-per-view message: never an offer of it;
- offered: the item was one of the paid media of a pay-per-view message;
- bought: such an offer whose message has a ``ppv`` purchase (whenever it was bought);
- revenue: what the fans paid for those messages (every ``ppv`` purchase pointing at the
  message), shared equally among the message's paid media, so a $20 bundle of two credits each
  item $10 and the items' revenue adds up to the messages';
- the overall views (by price, by chatter) count messages: a pay-per-view message carrying at
  least one paid vault item (matching the filters) is one offer, with all of its revenue.

Callers (``analytics.media_selectors``) check membership first; every statement filters on
the account. Statements are built from fixed fragments only (whitelisted sort keys and
filters); every value is a parameter. Indexes: migration analytics 0004.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction

from crm.media_stats import REVENUE_SCALE
from crm.models import (
    FanMediaEvent,
    MediaItemDay,
    MediaItemTotal,
    MediaOfferDay,
    Message,
    MessageMedia,
    Purchase,
    VaultItem,
    VaultItemList,
)

MESSAGE = Message._meta.db_table
MEDIA = MessageMedia._meta.db_table
PURCHASE = Purchase._meta.db_table
ITEM = VaultItem._meta.db_table
ITEM_LIST = VaultItemList._meta.db_table
ITEM_DAY = MediaItemDay._meta.db_table
ITEM_TOTAL = MediaItemTotal._meta.db_table
OFFER_DAY = MediaOfferDay._meta.db_table
EVENT = FanMediaEvent._meta.db_table

# Sort keys (the page's and the API's ``sort``), each the SQL of its column in the figures.
SORT_COLUMNS: dict[str, str] = {
    "sent_free": "COALESCE(f.sent_free, 0)",
    "previewed": "COALESCE(f.previewed, 0)",
    "offered": "COALESCE(f.offered, 0)",
    "bought": "COALESCE(f.bought, 0)",
    # No offers, no conversion: such items come last in either direction.
    "conversion": "f.bought::numeric / NULLIF(f.offered, 0)",
    "revenue": "COALESCE(f.revenue, 0)",
    "revenue_per_offer": "f.revenue / NULLIF(f.offered, 0)",
    "created": "vi.platform_created_at",
}
# These need only the bought offers (or nothing) to rank every item: the page's figures are
# then counted for the page's items alone. The others count every item's sends first.
CHEAP_SORTS = frozenset({"revenue", "bought", "created"})


@dataclass(frozen=True)
class MediaFilter:
    """What the page is looking at: the account, the range (None: all time), the items (type,
    list, label) and, for a chatter's own view, whose messages."""

    account_id: int
    start: datetime | None = None
    end: datetime | None = None
    media_type: str = ""
    list_id: int | None = None
    label: str = ""
    sent_by_id: int | None = None
    # Count from the roll-up: the range is whole local days ``first_day``..``last_day`` (None:
    # all time) in the zone the roll-up is cut in (``analytics.media_selectors`` decides).
    rollup: bool = False
    first_day: date | None = None
    last_day: date | None = None

    def params(self) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "start": self.start,
            "end": self.end,
            "media_type": self.media_type,
            "list": self.list_id,
            "label": self.label,
            "sent_by": self.sent_by_id,
            "first_day": self.first_day,
            "last_day": self.last_day,
        }

    @property
    def all_time_totals(self) -> bool:
        """Counted from the items' all-time totals (no range, everyone's messages)."""
        return self.rollup and self.first_day is None and self.sent_by_id is None

    @property
    def has_item_filters(self) -> bool:
        return bool(self.media_type or self.label or self.list_id is not None)

    def day_sql(self, alias: str = "d") -> str:
        """The conditions on a roll-up row: this account's, in the range's days (by whom)."""
        sql = f"{alias}.account_id = %(account)s"
        if self.first_day is not None:
            sql += f" AND {alias}.day >= %(first_day)s AND {alias}.day <= %(last_day)s"
        if self.sent_by_id is not None:
            sql += f" AND {alias}.sent_by_id = %(sent_by)s"
        return sql

    def message_sql(self, alias: str = "m") -> str:
        """The conditions on a message: this account's, sent, in the range (by whom)."""
        sql = f"{alias}.account_id = %(account)s AND {alias}.status = 'sent'"
        if self.start is not None:
            sql += f" AND {alias}.sent_at >= %(start)s AND {alias}.sent_at < %(end)s"
        if self.sent_by_id is not None:
            sql += f" AND {alias}.sent_by_id = %(sent_by)s"
        return sql

    def mass_sql(self, alias: str = "e") -> str:
        """The conditions on a fan's copy of a campaign's mass message (``campaign_mass``
        events: no message of ours, no sender): this account's, in the range; none in a
        chatter's own view."""
        sql = f"{alias}.account_id = %(account)s AND {alias}.source = 'campaign_mass'"
        sql += f" AND {alias}.kind IN ('sent_free', 'offered')"
        if self.start is not None:
            sql += f" AND {alias}.at >= %(start)s AND {alias}.at < %(end)s"
        if self.sent_by_id is not None:
            sql += " AND false"
        return sql

    def item_sql(self, alias: str = "vi") -> str:
        """The conditions on a vault item: this account's, of the type, list and label."""
        sql = f"{alias}.account_id = %(account)s"
        if self.media_type:
            sql += f" AND {alias}.media_type = %(media_type)s"
        if self.label:
            sql += f" AND {alias}.labels @> ARRAY[%(label)s]::varchar[]"
        if self.list_id is not None:
            sql += (
                f" AND EXISTS (SELECT 1 FROM {ITEM_LIST} vil"  # noqa: S608
                f" WHERE vil.item_id = {alias}.id AND vil.vault_list_id = %(list)s)"
            )
        return sql


@dataclass(frozen=True)
class Figures:
    sent_free: int
    previewed: int
    offered: int
    bought: int
    revenue_cents: int

    @property
    def conversion(self) -> float | None:
        return self.bought / self.offered if self.offered else None

    @property
    def revenue_per_offer_cents(self) -> int | None:
        return round(self.revenue_cents / self.offered) if self.offered else None


@dataclass(frozen=True)
class ItemRow:
    item_id: int
    media_type: str
    duration_seconds: int | None
    platform_created_at: datetime
    labels: list[str]
    suggested_price_cents: int | None
    is_gone: bool
    has_thumb: bool
    figures: Figures


@dataclass(frozen=True)
class GroupRow:
    """One price point or one chatter: offers, buys and revenue (and, per item, the
    previews and free sends at that key)."""

    key: int | None  # the price in cents, or the sender's user id (None: no member)
    offered: int
    bought: int
    revenue_cents: int

    @property
    def conversion(self) -> float | None:
        return self.bought / self.offered if self.offered else None

    @property
    def revenue_per_offer_cents(self) -> int | None:
        return round(self.revenue_cents / self.offered) if self.offered else None


# A month of an account's roll-up days (about 160,000 rows at the bench's volume) summed per
# item: the default 4 MB spills the hash aggregate to disk.
STATEMENT_WORK_MEM = "32MB"


def _fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    # JIT compilation costs these plans (cost above jit_above_cost at volume) seconds and buys
    # nothing at these sizes: off for this one statement, inside its own transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        # One round trip for both settings (a constant, not input).
        cursor.execute(f"SET LOCAL jit = off; SET LOCAL work_mem = '{STATEMENT_WORK_MEM}'")
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _rows_cte(f: MediaFilter, items: str) -> str:
    """``rows``: every media row of the chosen items (``items``: SQL giving their ids) in the
    range's sent messages; ``paid``: each bought message among them, what was paid for it and
    among how many paid media it is shared."""
    return f"""
    rows AS (
        SELECT mm.vault_item_id AS item_id, mm.message_id, mm.is_preview, m.price_cents,
               m.sent_by_id
        FROM {MEDIA} mm JOIN {MESSAGE} m ON m.id = mm.message_id
        WHERE mm.account_id = %(account)s AND mm.vault_item_id IN ({items})
          AND {f.message_sql()}
        UNION ALL
        -- Each fan's copy of a campaign's mass message (never bought: no message to tie to).
        SELECT e.vault_item_id, NULL::bigint, false, e.price_cents, NULL::bigint
        FROM {EVENT} e
        WHERE e.vault_item_id IN ({items}) AND {f.mass_sql()}
    ),
    paid AS (
        SELECT o.message_id, SUM(p.amount_cents) AS cents,
               (SELECT COUNT(*) FROM {MEDIA} x
                WHERE x.message_id = o.message_id AND NOT x.is_preview) AS shares
        FROM (SELECT DISTINCT message_id FROM rows WHERE price_cents > 0 AND NOT is_preview) o
        JOIN {PURCHASE} p ON p.message_id = o.message_id AND p.account_id = %(account)s
             AND p.kind = 'ppv'
        GROUP BY o.message_id
    )"""  # noqa: S608


FIGURE_COLUMNS = """
    COUNT(*) FILTER (WHERE r.price_cents = 0) AS sent_free,
    COUNT(*) FILTER (WHERE r.price_cents > 0 AND r.is_preview) AS previewed,
    COUNT(*) FILTER (WHERE r.price_cents > 0 AND NOT r.is_preview) AS offered,
    COUNT(pd.message_id) FILTER (WHERE r.price_cents > 0 AND NOT r.is_preview) AS bought,
    COALESCE(SUM(pd.cents::numeric / pd.shares)
             FILTER (WHERE r.price_cents > 0 AND NOT r.is_preview), 0) AS revenue
"""

ITEM_COLUMNS = """vi.id, vi.media_type, vi.duration_seconds, vi.platform_created_at, vi.labels,
    vi.suggested_price_cents, vi.gone_at IS NOT NULL, vi.thumb_name <> ''"""

OUT_COLUMNS = """COALESCE(f.sent_free, 0), COALESCE(f.previewed, 0), COALESCE(f.offered, 0),
    COALESCE(f.bought, 0), ROUND(COALESCE(f.revenue, 0))::bigint"""


def _revenue_key(f: MediaFilter) -> str:
    """``key``: every item's bought offers and revenue in the range, from the bought messages
    alone (the cheap way to rank by revenue or buys)."""
    return f"""
    bought AS (
        SELECT p.message_id, SUM(p.amount_cents) AS cents
        FROM {PURCHASE} p JOIN {MESSAGE} m ON m.id = p.message_id
        WHERE p.account_id = %(account)s AND p.kind = 'ppv' AND p.message_id IS NOT NULL
          AND m.price_cents > 0 AND {f.message_sql()}
        GROUP BY p.message_id
    ),
    shares AS MATERIALIZED (
        SELECT b.cents, ARRAY(SELECT x.vault_item_id FROM {MEDIA} x
                              WHERE x.message_id = b.message_id AND NOT x.is_preview) AS items
        FROM bought b
    ),
    f AS (
        SELECT item AS item_id, COUNT(*) AS bought,
               SUM(s.cents::numeric / cardinality(s.items)) AS revenue
        FROM shares s, unnest(s.items) AS item
        WHERE item IS NOT NULL
        GROUP BY item
    )"""  # noqa: S608


def _rollup_figures(f: MediaFilter) -> str:
    """``f``: every item's figures in the range, summed from the roll-up's days (all time:
    read from the items' totals)."""
    if f.all_time_totals:
        return f"""
    f AS (
        SELECT d.vault_item_id AS item_id, d.sent_free, d.previewed, d.offered, d.bought,
               d.revenue_units / {REVENUE_SCALE} AS revenue
        FROM {ITEM_TOTAL} d
        WHERE d.account_id = %(account)s
    )"""  # noqa: S608
    return f"""
    f AS (
        SELECT d.vault_item_id AS item_id, SUM(d.sent_free) AS sent_free,
               SUM(d.previewed) AS previewed, SUM(d.offered) AS offered,
               SUM(d.bought) AS bought, SUM(d.revenue_units) / {REVENUE_SCALE} AS revenue
        FROM {ITEM_DAY} d
        WHERE {f.day_sql()}
        GROUP BY d.vault_item_id
    )"""  # noqa: S608


def _rollup_ranked(f: MediaFilter, sort: str, order: str, page: str) -> str:
    """A range from the roll-up's days, sorted by a cheap key: rank every item by the days
    that sold (revenue, buys) or by nothing (newest), then sum the page's items' days."""
    key_cte = (
        f"""
    f AS (
        SELECT d.vault_item_id AS item_id, SUM(d.bought) AS bought,
               SUM(d.revenue_units) / {REVENUE_SCALE} AS revenue
        FROM {ITEM_DAY} d
        WHERE {f.day_sql()} AND (d.bought > 0 OR d.revenue_units > 0)
        GROUP BY d.vault_item_id
    )"""  # noqa: S608
        if sort != "created"
        else "f AS (SELECT NULL::bigint AS item_id)"
    )
    return f"""
    WITH {key_cte},
    {_chosen_cte(f, order, page)},
    fig AS (
        SELECT d.vault_item_id AS item_id, SUM(d.sent_free) AS sent_free,
               SUM(d.previewed) AS previewed, SUM(d.offered) AS offered,
               SUM(d.bought) AS bought, SUM(d.revenue_units) / {REVENUE_SCALE} AS revenue
        FROM {ITEM_DAY} d
        WHERE {f.day_sql()} AND d.vault_item_id IN (SELECT id FROM chosen)
        GROUP BY d.vault_item_id
    )
    SELECT {ITEM_COLUMNS}, {OUT_COLUMNS.replace("f.", "fig.")}, c.total
    FROM chosen c JOIN {ITEM} vi ON vi.id = c.id LEFT JOIN fig ON fig.item_id = c.id
    ORDER BY c.n
    """  # noqa: S608


def _chosen_cte(f: MediaFilter, order: str, page: str) -> str:
    """The page's items ranked by ``order`` against the key figures in ``f`` (a CTE named
    ``f`` before it), with their rank and how many items match: the cheap sorts' first step,
    on the roll-up and on the raw rows alike."""
    return f"""chosen AS (
        SELECT vi.id, row_number() OVER (ORDER BY {order}) AS n, COUNT(*) OVER () AS total
        FROM {ITEM} vi LEFT JOIN f ON f.item_id = vi.id
        WHERE {f.item_sql()}
        ORDER BY {order} {page}
    )"""  # noqa: S608


def item_rows(
    *, f: MediaFilter, sort: str, descending: bool, limit: int | None, offset: int = 0
) -> tuple[list[ItemRow], int]:
    """The items matching ``f`` with their figures, ordered by ``sort`` (a ``SORT_COLUMNS``
    key; ties: newest item first), one page (``limit`` None: every item, for the CSV), and
    how many items match. One statement."""
    column = SORT_COLUMNS[sort]
    direction = "DESC" if descending else "ASC"
    order = f"{column} {direction} NULLS LAST, vi.platform_created_at DESC, vi.id DESC"
    page = "" if limit is None else "LIMIT %(limit)s OFFSET %(offset)s"
    params = {**f.params(), "limit": limit, "offset": offset}
    if f.rollup and not f.all_time_totals and sort in CHEAP_SORTS:
        sql = _rollup_ranked(f, sort, order, page)
    elif f.rollup:
        sql = f"""
        WITH {_rollup_figures(f)}
        SELECT {ITEM_COLUMNS}, {OUT_COLUMNS}, COUNT(*) OVER ()
        FROM {ITEM} vi LEFT JOIN f ON f.item_id = vi.id
        WHERE {f.item_sql()}
        ORDER BY {order} {page}
        """  # noqa: S608
    elif sort in CHEAP_SORTS:
        # Rank every item by the cheap key, then count the page's items' figures.
        key_cte = _revenue_key(f) if sort != "created" else "f AS (SELECT NULL::bigint AS item_id)"
        sql = f"""
        WITH {key_cte},
        {_chosen_cte(f, order, page)},
        {_rows_cte(f, "SELECT id FROM chosen")},
        fig AS (
            SELECT r.item_id, {FIGURE_COLUMNS}
            FROM rows r LEFT JOIN paid pd ON pd.message_id = r.message_id
            GROUP BY r.item_id
        )
        SELECT {ITEM_COLUMNS}, {OUT_COLUMNS.replace("f.", "fig.")}, c.total
        FROM chosen c JOIN {ITEM} vi ON vi.id = c.id LEFT JOIN fig ON fig.item_id = c.id
        ORDER BY c.n
        """  # noqa: S608
    else:
        sql = f"""
        WITH {_rows_cte(f, f"SELECT vi.id FROM {ITEM} vi WHERE {f.item_sql()}")},
        f AS (
            SELECT r.item_id, {FIGURE_COLUMNS}
            FROM rows r LEFT JOIN paid pd ON pd.message_id = r.message_id
            GROUP BY r.item_id
        )
        SELECT {ITEM_COLUMNS}, {OUT_COLUMNS}, COUNT(*) OVER ()
        FROM {ITEM} vi LEFT JOIN f ON f.item_id = vi.id
        WHERE {f.item_sql()}
        ORDER BY {order} {page}
        """  # noqa: S608
    rows = _fetch(sql, params)
    total = int(rows[0][-1]) if rows else 0
    if not rows and offset:
        total = item_count(f=f)
    return [
        ItemRow(
            item_id=r[0],
            media_type=r[1],
            duration_seconds=r[2],
            platform_created_at=r[3],
            labels=list(r[4]),
            suggested_price_cents=r[5],
            is_gone=r[6],
            has_thumb=r[7],
            figures=Figures(int(r[8]), int(r[9]), int(r[10]), int(r[11]), int(r[12])),
        )
        for r in rows
    ], total


def item_count(*, f: MediaFilter) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {ITEM} vi WHERE {f.item_sql()}", f.params())  # noqa: S608
        return int(cursor.fetchone()[0])


def item_figures(*, f: MediaFilter, item_id: int) -> Figures:
    """One item's figures in the range. One statement."""
    if f.rollup:
        (row,) = _fetch(
            f"""
            SELECT COALESCE(SUM(d.sent_free), 0), COALESCE(SUM(d.previewed), 0),
                   COALESCE(SUM(d.offered), 0), COALESCE(SUM(d.bought), 0),
                   COALESCE(SUM(d.revenue_units), 0) / {REVENUE_SCALE}
            FROM {ITEM_TOTAL if f.all_time_totals else ITEM_DAY} d
            WHERE {f.day_sql()} AND d.vault_item_id = %(item)s
            """,  # noqa: S608
            {**f.params(), "item": item_id},
        )
        return Figures(int(row[0]), int(row[1]), int(row[2]), int(row[3]), round(row[4]))
    sql = f"""
    WITH {_rows_cte(f, "%(item)s")}
    SELECT {FIGURE_COLUMNS}
    FROM rows r LEFT JOIN paid pd ON pd.message_id = r.message_id
    """  # noqa: S608
    (row,) = _fetch(sql, {**f.params(), "item": item_id})
    return Figures(int(row[0]), int(row[1]), int(row[2]), int(row[3]), round(row[4]))


GROUPS = {"price": "r.price_cents", "chatter": "r.sent_by_id"}
DAY_GROUPS = {"price": "d.price_cents", "chatter": "d.sent_by_id"}


def _rollup_groups(
    f: MediaFilter, by: str, table: str, item_id: int | None = None
) -> list[GroupRow]:
    """Offers, buys and revenue by price or sender from a roll-up table (``item_id``: that
    item's rows of ``MediaItemDay``, else the messages' ``MediaOfferDay``)."""
    if item_id is not None:
        revenue = f"ROUND(SUM(d.revenue_units) / {REVENUE_SCALE})::bigint"
        where = f"{f.day_sql()} AND d.vault_item_id = %(item)s AND d.price_cents > 0"
    else:
        revenue, where = "SUM(d.revenue_cents)", f.day_sql()
    sql = f"""
    SELECT {DAY_GROUPS[by]}, SUM(d.offered), SUM(d.bought), {revenue}
    FROM {table} d WHERE {where}
    GROUP BY 1 HAVING SUM(d.offered) > 0
    ORDER BY 4 DESC, 2 DESC, 1
    """  # noqa: S608
    rows = _fetch(sql, {**f.params(), "item": item_id})
    return [GroupRow(key, int(o), int(b), int(c)) for key, o, b, c in rows]


def item_groups(*, f: MediaFilter, item_id: int, by: str) -> list[GroupRow]:
    """One item's offers, buys and revenue at each price it was offered at (``by="price"``)
    or by each member who offered it (``by="chatter"``). One statement."""
    if f.rollup:
        return _rollup_groups(f, by, ITEM_DAY, item_id=item_id)
    group = GROUPS[by]
    sql = f"""
    WITH {_rows_cte(f, "%(item)s")}
    SELECT {group},
        COUNT(*) FILTER (WHERE r.price_cents > 0 AND NOT r.is_preview) AS offered,
        COUNT(pd.message_id) FILTER (WHERE r.price_cents > 0 AND NOT r.is_preview),
        ROUND(COALESCE(SUM(pd.cents::numeric / pd.shares)
              FILTER (WHERE r.price_cents > 0 AND NOT r.is_preview), 0))::bigint
    FROM rows r LEFT JOIN paid pd ON pd.message_id = r.message_id
    WHERE r.price_cents > 0 AND NOT r.is_preview
    GROUP BY 1
    ORDER BY 4 DESC, 2 DESC, 1
    """  # noqa: S608
    return [
        GroupRow(key, int(o), int(b), int(c))
        for key, o, b, c in _fetch(sql, {**f.params(), "item": item_id})
    ]


def offer_groups(*, f: MediaFilter, by: str) -> list[GroupRow]:
    """Every pay-per-view message of the range that carries a paid vault item matching ``f``,
    grouped by its price (``by="price"``) or its sender (``by="chatter"``): offers, buys, and
    the messages' whole revenue. One statement."""
    if f.rollup and not f.has_item_filters:
        return _rollup_groups(f, by, OFFER_DAY)
    group = GROUPS[by].replace("r.", "o.")
    sql = f"""
    WITH o AS (
        SELECT m.id, m.price_cents, m.sent_by_id, NULL::bigint AS chunk, NULL::bigint AS fan
        FROM {MESSAGE} m
        WHERE {f.message_sql()} AND m.price_cents > 0
          AND EXISTS (SELECT 1 FROM {MEDIA} mm JOIN {ITEM} vi ON vi.id = mm.vault_item_id
                      WHERE mm.message_id = m.id AND NOT mm.is_preview AND {f.item_sql()})
        UNION ALL
        -- Each fan's paid copy of a mass message with a matching item is one offer.
        SELECT DISTINCT NULL::bigint, e.price_cents, NULL::bigint, e.mass_chunk_id, e.fan_id
        FROM {EVENT} e JOIN {ITEM} vi ON vi.id = e.vault_item_id
        WHERE {f.mass_sql()} AND e.kind = 'offered' AND {f.item_sql()}
    ),
    pd AS (
        SELECT p.message_id, SUM(p.amount_cents) AS cents
        FROM {PURCHASE} p
        WHERE p.account_id = %(account)s AND p.kind = 'ppv'
          AND p.message_id IN (SELECT id FROM o)
        GROUP BY p.message_id
    )
    SELECT {group}, COUNT(*), COUNT(pd.message_id), COALESCE(SUM(pd.cents), 0)
    FROM o LEFT JOIN pd ON pd.message_id = o.id
    GROUP BY 1
    ORDER BY 4 DESC, 2 DESC, 1
    """  # noqa: S608
    return [GroupRow(key, int(o), int(b), int(c)) for key, o, b, c in _fetch(sql, f.params())]
