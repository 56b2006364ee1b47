"""The media page's roll-up ("Which content sells", fast at volume).

``MediaItemDay`` holds, per (account, vault item, local day, price, sender), what
``analytics.media_queries`` counts over the raw rows: sent free, previewed, offered, bought and
revenue; ``MediaOfferDay`` the same per message (a pay-per-view message with at least one
paid vault item is one offer) for the price and chatter views; ``MediaItemTotal`` each
item's sums over every day (all time, without summing a year of days). Days are the local
days of the messages' ``sent_at`` in the zone of ``MediaStatsState.zone_name`` (from
``crm.zones``); a purchase counts on the day its message was sent, whenever it was bought.

Written in the transaction of the rows they count, never later:

- ``SENT_MEDIA_CTES``: the statement that marks a message with media sent (``onlyfans.services``)
  also records what the fan got and adds the message's media here (with any purchase already
  recorded for it);
- ``media_stats_purchase_add``: a PPV purchase of a sent message (called where the purchase and
  its ``bought`` fan events are recorded, ``crm.media_send.fan_media_events_record_bought``);
- ``media_stats_link_add``: message media linked to a vault item that arrived later;
- ``mass_media_ctes`` / ``MASS_WITHDRAW_CTES``: a campaign's mass message accepted (or unsent)
  by the platform: its fans' ``campaign_mass`` events, each one fan's copy counted as a
  campaign message to that fan would be (no sender, no previews, no purchases: the platform
  does not tie an unlock to the mass message).

``media_stats_build`` (the migration, ``manage.py media_stats_rebuild``, a zone change) counts
an account from the raw rows. The hooks take the account's advisory lock shared, the build
takes it exclusive, so a build never misses or doubles a row written beside it. Until a build
has finished (``built_at``) and while the account's zone differs from the roll-up's, the page
counts the raw rows: never a silent zero while the roll-up catches up.
"""

from __future__ import annotations

import math
from datetime import date
from functools import reduce

from django.db import connection, transaction
from django.utils import timezone

from crm.models import (
    CreatorAccount,
    FanMediaEvent,
    MediaItemDay,
    MediaItemTotal,
    MediaOfferDay,
    MediaStatsState,
    Message,
    MessageMedia,
    Purchase,
)
from crm.zones import account_zone

# A message carries at most this many media (the pipeline's cap, crm.media_send.MAX_MEDIA):
# the revenue scale is divisible by every share count, so each share is a whole number.
SHARES_MAX = 50
REVENUE_SCALE = reduce(math.lcm, range(1, SHARES_MAX + 1))
LOCK_KEY = 0x6D_7374  # "mst": the account's roll-up (hooks shared, a build exclusive)
BUILD_WORK_MEM = "64MB"

_ITEM = MediaItemDay._meta.db_table
_TOTAL = MediaItemTotal._meta.db_table
_OFFER = MediaOfferDay._meta.db_table
_STATE = MediaStatsState._meta.db_table
_MM = MessageMedia._meta.db_table
_M = Message._meta.db_table
_P = Purchase._meta.db_table
_E = FanMediaEvent._meta.db_table

_ITEM_COLUMNS = (
    "account_id, vault_item_id, day, price_cents, sent_by_id, sent_free, previewed, offered, "
    "bought, revenue_units"
)
_ITEM_UPSERT = """
ON CONFLICT ON CONSTRAINT media_item_day_unique DO UPDATE SET
  sent_free = t.sent_free + EXCLUDED.sent_free, previewed = t.previewed + EXCLUDED.previewed,
  offered = t.offered + EXCLUDED.offered, bought = t.bought + EXCLUDED.bought,
  revenue_units = t.revenue_units + EXCLUDED.revenue_units
"""
_TOTAL_COLUMNS = "account_id, vault_item_id, sent_free, previewed, offered, bought, revenue_units"
_TOTAL_UPSERT = """
ON CONFLICT ON CONSTRAINT media_item_total_unique DO UPDATE SET
  sent_free = t.sent_free + EXCLUDED.sent_free, previewed = t.previewed + EXCLUDED.previewed,
  offered = t.offered + EXCLUDED.offered, bought = t.bought + EXCLUDED.bought,
  revenue_units = t.revenue_units + EXCLUDED.revenue_units
"""


def _days_and_totals(delta: str) -> str:
    """Two CTEs adding ``delta`` (rows of ``_ITEM_COLUMNS``, one per day key) to the days and
    to the items' totals. Rows go in item order, so two statements lock shared rows in the
    same order."""
    return f"""
{delta}_days AS (
  INSERT INTO {_ITEM} AS t ({_ITEM_COLUMNS})
  SELECT {_ITEM_COLUMNS} FROM {delta} ORDER BY vault_item_id, day, price_cents, sent_by_id
  {_ITEM_UPSERT}
),
{delta}_totals AS (
  INSERT INTO {_TOTAL} AS t ({_TOTAL_COLUMNS})
  SELECT account_id, vault_item_id, SUM(sent_free), SUM(previewed), SUM(offered), SUM(bought),
         SUM(revenue_units)
  FROM {delta} GROUP BY 1, 2 ORDER BY 2
  {_TOTAL_UPSERT}
)"""  # noqa: S608 (table names only)


_OFFER_COLUMNS = "account_id, day, price_cents, sent_by_id, offered, bought, revenue_cents"
_OFFER_UPSERT = """
ON CONFLICT ON CONSTRAINT media_offer_day_unique DO UPDATE SET
  offered = t.offered + EXCLUDED.offered, bought = t.bought + EXCLUDED.bought,
  revenue_cents = t.revenue_cents + EXCLUDED.revenue_cents
"""
# One media row's figures (``mm`` of message ``m``, ``pd``: the message's PPV purchases in
# cents, null when none, ``sh``: its paid media), as the columns after the key.
_FIGURES = f"""
  COUNT(*) FILTER (WHERE m.price_cents = 0) AS sent_free,
  COUNT(*) FILTER (WHERE m.price_cents > 0 AND mm.is_preview) AS previewed,
  COUNT(*) FILTER (WHERE m.price_cents > 0 AND NOT mm.is_preview) AS offered,
  COUNT(pd.cents) FILTER (WHERE m.price_cents > 0 AND NOT mm.is_preview) AS bought,
  COALESCE(SUM(pd.cents * div({REVENUE_SCALE}, sh.n))
           FILTER (WHERE m.price_cents > 0 AND NOT mm.is_preview), 0) AS revenue_units
"""

# With the message's UPDATE … RETURNING as ``src`` (its new status is not visible to the other
# parts of the statement, so the message's columns come from ``src``). Nothing is added for an
# account without a roll-up row: its build counts everything.
_SENT_CTES = f"""
media_stats_src AS (
  SELECT src.id, src.account_id, src.price_cents, src.sent_by_id,
         (src.sent_at AT TIME ZONE s.zone_name)::date AS day
  FROM src JOIN {_STATE} s ON s.account_id = src.account_id
  CROSS JOIN LATERAL (SELECT pg_advisory_xact_lock_shared({LOCK_KEY}, src.account_id::int)) lock
),
media_stats_paid AS (
  SELECT SUM(p.amount_cents) AS cents FROM {_P} p, media_stats_src m
  WHERE p.message_id = m.id AND p.account_id = m.account_id AND p.kind = 'ppv'
    AND m.price_cents > 0
),
media_stats_items AS (
  SELECT m.account_id, mm.vault_item_id, m.day, m.price_cents, m.sent_by_id, {_FIGURES}
  FROM media_stats_src m
  JOIN {_MM} mm ON mm.message_id = m.id AND mm.vault_item_id IS NOT NULL
  CROSS JOIN media_stats_paid pd
  CROSS JOIN (SELECT COUNT(*) AS n FROM {_MM} x, media_stats_src m2
              WHERE x.message_id = m2.id AND NOT x.is_preview) sh
  GROUP BY 1, 2, 3, 4, 5
),{_days_and_totals("media_stats_items")},
media_stats_offers AS (
  INSERT INTO {_OFFER} AS t ({_OFFER_COLUMNS})
  SELECT m.account_id, m.day, m.price_cents, m.sent_by_id, 1, COUNT(pd.cents),
         COALESCE(SUM(pd.cents), 0)
  FROM media_stats_src m CROSS JOIN media_stats_paid pd
  WHERE m.price_cents > 0 AND EXISTS (
    SELECT 1 FROM {_MM} mm
    WHERE mm.message_id = m.id AND NOT mm.is_preview AND mm.vault_item_id IS NOT NULL)
  GROUP BY 1, 2, 3, 4
  {_OFFER_UPSERT}
)"""  # noqa: S608 (table names only)


def sent_media_ctes(fan_events_sql: str) -> str:
    """The CTEs that follow ``src`` in the statement marking a message with media sent: the
    fan's events (``fan_events_sql``) and this roll-up."""
    return f"events AS ({fan_events_sql}), {_SENT_CTES}"


# One PPV purchase of message %(message)s: its paid vault media gain the buy (the first
# purchase of the message only) and the revenue; the message's offer row the same.
_PURCHASE_SQL = f"""
WITH m AS (
  SELECT m.id, m.account_id, m.price_cents, m.sent_by_id,
         (m.sent_at AT TIME ZONE s.zone_name)::date AS day,
         (SELECT COUNT(*) FROM {_P} p WHERE p.message_id = m.id AND p.kind = 'ppv') = 1
           AS first_buy
  FROM {_M} m JOIN {_STATE} s ON s.account_id = m.account_id
  WHERE m.id = %(message)s AND m.status = 'sent' AND m.price_cents > 0
),
sh AS (SELECT COUNT(*) AS n FROM {_MM} x WHERE x.message_id = %(message)s AND NOT x.is_preview),
items AS (
  SELECT m.account_id, mm.vault_item_id, m.day, m.price_cents, m.sent_by_id, 0 AS sent_free,
         0 AS previewed, 0 AS offered, COUNT(*) FILTER (WHERE m.first_buy) AS bought,
         SUM(%(amount)s::bigint * div({REVENUE_SCALE}, sh.n)) AS revenue_units
  FROM m JOIN {_MM} mm ON mm.message_id = m.id AND mm.vault_item_id IS NOT NULL
         AND NOT mm.is_preview
  CROSS JOIN sh
  GROUP BY 1, 2, 3, 4, 5
),{_days_and_totals("items")}
INSERT INTO {_OFFER} AS t ({_OFFER_COLUMNS})
SELECT m.account_id, m.day, m.price_cents, m.sent_by_id, 0, m.first_buy::int, %(amount)s
FROM m
WHERE EXISTS (SELECT 1 FROM {_MM} mm WHERE mm.message_id = m.id AND NOT mm.is_preview
              AND mm.vault_item_id IS NOT NULL)
{_OFFER_UPSERT}
"""  # noqa: S608 (table names only)


def media_stats_purchase_add(*, message_id: int, amount_cents: int) -> None:
    """A PPV purchase of the message was just recorded (in this transaction): add it to the
    day its message was sent. Locks the message row first, so two purchases of one message
    recorded at once count its buy once. Two statements; nothing for a message not sent."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT pg_advisory_xact_lock_shared({LOCK_KEY}, m.account_id::int) "  # noqa: S608
            f"FROM {_M} m WHERE m.id = %s FOR UPDATE",
            [message_id],
        )
        cursor.execute(_PURCHASE_SQL, {"message": message_id, "amount": amount_cents})


# Media rows of sent messages linked to vault item just now (``linked``: the UPDATE's
# RETURNING; the other parts of the statement still see them unlinked).
_LINK_SQL = f"""
WITH linked AS (
  UPDATE {_MM} AS mm SET vault_item_id = v.id
  FROM crm_vaultitem AS v
  WHERE mm.account_id = %(account)s AND mm.vault_item_id IS NULL
    AND v.account_id = mm.account_id AND v.platform_media_id = mm.platform_media_id
  RETURNING mm.message_id, mm.vault_item_id, mm.is_preview
),
lock AS (SELECT pg_advisory_xact_lock_shared({LOCK_KEY}, %(account)s::int) AS x),
m AS (
  SELECT m.id, m.account_id, m.price_cents, m.sent_by_id,
         (m.sent_at AT TIME ZONE s.zone_name)::date AS day
  FROM {_M} m JOIN {_STATE} s ON s.account_id = m.account_id CROSS JOIN lock
  WHERE m.id IN (SELECT message_id FROM linked) AND m.status = 'sent'
),
pd AS (
  SELECT p.message_id, SUM(p.amount_cents) AS cents FROM {_P} p
  WHERE p.message_id IN (SELECT id FROM m WHERE price_cents > 0) AND p.kind = 'ppv'
    AND p.account_id = %(account)s
  GROUP BY 1
),
sh AS (
  SELECT x.message_id, COUNT(*) AS n FROM {_MM} x
  WHERE x.message_id IN (SELECT id FROM m) AND NOT x.is_preview GROUP BY 1
),
items AS (
  SELECT m.account_id, mm.vault_item_id, m.day, m.price_cents, m.sent_by_id, {_FIGURES}
  FROM linked mm JOIN m ON m.id = mm.message_id
  LEFT JOIN pd ON pd.message_id = m.id LEFT JOIN sh ON sh.message_id = m.id
  GROUP BY 1, 2, 3, 4, 5
),{_days_and_totals("items")},
offers AS (
  -- A message whose first paid vault item this is becomes an offer.
  INSERT INTO {_OFFER} AS t ({_OFFER_COLUMNS})
  SELECT m.account_id, m.day, m.price_cents, m.sent_by_id, COUNT(*), COUNT(pd.cents),
         COALESCE(SUM(pd.cents), 0)
  FROM m LEFT JOIN pd ON pd.message_id = m.id
  WHERE m.price_cents > 0
    AND EXISTS (SELECT 1 FROM linked l WHERE l.message_id = m.id AND NOT l.is_preview)
    AND NOT EXISTS (SELECT 1 FROM {_MM} x WHERE x.message_id = m.id AND NOT x.is_preview
                    AND x.vault_item_id IS NOT NULL)
  GROUP BY 1, 2, 3, 4
  {_OFFER_UPSERT}
)
SELECT COUNT(*) FROM linked
"""  # noqa: S608 (table names only)


def media_stats_link_add(*, account_id: int) -> int:
    """Point the account's message media stored before their item was synced at it, and add
    what those media of sent messages now count. One statement; the rows linked."""
    with connection.cursor() as cursor:
        cursor.execute(_LINK_SQL, {"account": account_id})
        return int(cursor.fetchone()[0])


# --- mass sends (a campaign in mass mode: no message of ours per fan) ----------------------
# With ``events``: the fan events just written for one mass chunk (an INSERT's or a DELETE's
# RETURNING ``account_id, fan_id, vault_item_id, kind, price_cents, at``). Each fan's copy
# counts as a campaign message would (sender none): a free one sends each item free, a paid
# one offers each item and is one offer of the message. Nothing for an account without a
# roll-up row: its build counts everything.
_MASS_DELTA = f"""
mass_state AS (
  SELECT s.zone_name FROM {_STATE} s WHERE s.account_id = %(account)s
),
mass_items AS (
  SELECT e.account_id, e.vault_item_id, (e.at AT TIME ZONE s.zone_name)::date AS day,
         e.price_cents, NULL::bigint AS sent_by_id,
         COUNT(*) FILTER (WHERE e.kind = 'sent_free') AS sent_free, 0 AS previewed,
         COUNT(*) FILTER (WHERE e.kind = 'offered') AS offered, 0 AS bought,
         0::numeric AS revenue_units
  FROM events e CROSS JOIN mass_state s
  WHERE e.vault_item_id IS NOT NULL AND e.kind IN ('sent_free', 'offered')
  GROUP BY 1, 2, 3, 4, 5
),
mass_offer_rows AS (
  SELECT e.account_id, (e.at AT TIME ZONE s.zone_name)::date AS day, e.price_cents,
         NULL::bigint AS sent_by_id, COUNT(DISTINCT e.fan_id) AS offered
  FROM events e CROSS JOIN mass_state s
  WHERE e.vault_item_id IS NOT NULL AND e.kind = 'offered'
  GROUP BY 1, 2, 3, 4
)"""  # noqa: S608 (table names only)

_MASS_ADD_CTES = f"""{_MASS_DELTA},{_days_and_totals("mass_items")},
mass_offers AS (
  INSERT INTO {_OFFER} AS t ({_OFFER_COLUMNS})
  SELECT account_id, day, price_cents, sent_by_id, offered, 0, 0 FROM mass_offer_rows
  ORDER BY day, price_cents
  {_OFFER_UPSERT}
)"""  # noqa: S608 (table names only)

# The same rows taken away again (an unsend): they exist, the send or a build counted them.
_MASS_WITHDRAW_CTES = f"""{_MASS_DELTA},
mass_days AS (
  UPDATE {_ITEM} AS t SET sent_free = t.sent_free - d.sent_free, offered = t.offered - d.offered
  FROM mass_items d
  WHERE t.account_id = d.account_id AND t.vault_item_id = d.vault_item_id AND t.day = d.day
    AND t.price_cents = d.price_cents AND t.sent_by_id IS NULL
),
mass_totals AS (
  UPDATE {_TOTAL} AS t SET sent_free = t.sent_free - d.sent_free, offered = t.offered - d.offered
  FROM (SELECT account_id, vault_item_id, SUM(sent_free) AS sent_free, SUM(offered) AS offered
        FROM mass_items GROUP BY 1, 2) d
  WHERE t.account_id = d.account_id AND t.vault_item_id = d.vault_item_id
),
mass_offers AS (
  UPDATE {_OFFER} AS t SET offered = t.offered - d.offered
  FROM mass_offer_rows d
  WHERE t.account_id = d.account_id AND t.day = d.day AND t.price_cents = d.price_cents
    AND t.sent_by_id IS NULL
)"""  # noqa: S608 (table names only)

# Rows an unsend left at zero (a build would not have them).
_MASS_EMPTY_SQL = f"""
WITH d AS (
  DELETE FROM {_ITEM} WHERE account_id = %(account)s AND vault_item_id = ANY(%(items)s)
    AND sent_free = 0 AND previewed = 0 AND offered = 0 AND bought = 0 AND revenue_units = 0
), t AS (
  DELETE FROM {_TOTAL} WHERE account_id = %(account)s AND vault_item_id = ANY(%(items)s)
    AND sent_free = 0 AND previewed = 0 AND offered = 0 AND bought = 0 AND revenue_units = 0
)
DELETE FROM {_OFFER} WHERE account_id = %(account)s AND offered = 0 AND bought = 0
  AND revenue_cents = 0
"""  # noqa: S608 (table names only)


def mass_media_ctes(fan_events_sql: str, *, withdraw: bool = False) -> str:
    """The CTEs of the statement that writes (or, ``withdraw``, deletes) one mass chunk's fan
    events (``fan_events_sql``, RETURNING the columns ``_MASS_DELTA`` reads) and adds them to
    (takes them from) this roll-up. Call ``media_stats_lock_shared`` first."""
    tail = _MASS_WITHDRAW_CTES if withdraw else _MASS_ADD_CTES
    return f"events AS ({fan_events_sql}), {tail}"


def media_stats_lock_shared(*, account_id: int) -> None:
    """The account's roll-up lock, shared, for the rest of the transaction (a writer's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock_shared(%s::int, %s::int)", [LOCK_KEY, account_id]
        )


def media_stats_drop_empty(*, account_id: int, item_ids: list[int]) -> None:
    """Delete the account's roll-up rows an unsend brought to zero (one statement)."""
    if not item_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(_MASS_EMPTY_SQL, {"account": account_id, "items": item_ids})


# --- the build from the raw rows ------------------------------------------------------------
_BUILD_ITEMS_SQL = f"""
WITH m AS (
  SELECT id, account_id, price_cents, sent_by_id, (sent_at AT TIME ZONE %(zone)s)::date AS day
  FROM {_M} WHERE account_id = %(account)s AND status = 'sent'
),
pd AS (
  SELECT message_id, SUM(amount_cents) AS cents FROM {_P}
  WHERE account_id = %(account)s AND kind = 'ppv' AND message_id IS NOT NULL GROUP BY 1
),
sh AS (
  SELECT message_id, COUNT(*) AS n FROM {_MM}
  WHERE account_id = %(account)s AND NOT is_preview GROUP BY 1
),
sent AS (
  SELECT m.account_id, mm.vault_item_id, m.day, m.price_cents, m.sent_by_id, {_FIGURES}
  FROM {_MM} mm JOIN m ON m.id = mm.message_id
  LEFT JOIN pd ON pd.message_id = mm.message_id AND m.price_cents > 0
  LEFT JOIN sh ON sh.message_id = mm.message_id
  WHERE mm.account_id = %(account)s AND mm.vault_item_id IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5
),
-- Mass sends: each fan's copy of a campaign's mass message, as a campaign message counts.
mass AS (
  SELECT account_id, vault_item_id, (at AT TIME ZONE %(zone)s)::date AS day, price_cents,
         NULL::bigint AS sent_by_id, COUNT(*) FILTER (WHERE kind = 'sent_free') AS sent_free,
         0 AS previewed, COUNT(*) FILTER (WHERE kind = 'offered') AS offered, 0 AS bought,
         0::numeric AS revenue_units
  FROM {_E}
  WHERE account_id = %(account)s AND source = 'campaign_mass' AND vault_item_id IS NOT NULL
    AND kind IN ('sent_free', 'offered')
  GROUP BY 1, 2, 3, 4, 5
)
INSERT INTO {_ITEM} ({_ITEM_COLUMNS})
SELECT account_id, vault_item_id, day, price_cents, sent_by_id, SUM(sent_free),
       SUM(previewed), SUM(offered), SUM(bought), SUM(revenue_units)
FROM (SELECT * FROM sent UNION ALL SELECT * FROM mass) x
GROUP BY 1, 2, 3, 4, 5
"""  # noqa: S608 (table names only)

_BUILD_TOTALS_SQL = f"""
INSERT INTO {_TOTAL} ({_TOTAL_COLUMNS})
SELECT account_id, vault_item_id, SUM(sent_free), SUM(previewed), SUM(offered), SUM(bought),
       SUM(revenue_units)
FROM {_ITEM} WHERE account_id = %(account)s GROUP BY 1, 2
"""  # noqa: S608 (table names only)

_BUILD_OFFERS_SQL = f"""
WITH m AS (
  SELECT id, account_id, price_cents, sent_by_id, (sent_at AT TIME ZONE %(zone)s)::date AS day
  FROM {_M} WHERE account_id = %(account)s AND status = 'sent' AND price_cents > 0
),
offer AS (
  SELECT DISTINCT message_id FROM {_MM}
  WHERE account_id = %(account)s AND NOT is_preview AND vault_item_id IS NOT NULL
),
pd AS (
  SELECT message_id, SUM(amount_cents) AS cents FROM {_P}
  WHERE account_id = %(account)s AND kind = 'ppv' AND message_id IS NOT NULL GROUP BY 1
),
sent AS (
  SELECT m.account_id, m.day, m.price_cents, m.sent_by_id, COUNT(*) AS offered,
         COUNT(pd.cents) AS bought, COALESCE(SUM(pd.cents), 0) AS revenue_cents
  FROM m JOIN offer o ON o.message_id = m.id LEFT JOIN pd ON pd.message_id = m.id
  GROUP BY 1, 2, 3, 4
),
-- Mass sends: each fan's paid copy with a vault item is one offer.
mass AS (
  SELECT account_id, (at AT TIME ZONE %(zone)s)::date AS day, price_cents,
         NULL::bigint AS sent_by_id, COUNT(DISTINCT (mass_chunk_id, fan_id)) AS offered,
         0 AS bought, 0 AS revenue_cents
  FROM {_E}
  WHERE account_id = %(account)s AND source = 'campaign_mass' AND kind = 'offered'
    AND vault_item_id IS NOT NULL
  GROUP BY 1, 2, 3, 4
)
INSERT INTO {_OFFER} ({_OFFER_COLUMNS})
SELECT account_id, day, price_cents, sent_by_id, SUM(offered), SUM(bought), SUM(revenue_cents)
FROM (SELECT * FROM sent UNION ALL SELECT * FROM mass) x
GROUP BY 1, 2, 3, 4
"""  # noqa: S608 (table names only)


def media_stats_rebuild_rows(*, account_id: int, zone_name: str) -> None:
    """Replace the account's roll-up rows with the raw rows' figures, days in ``zone_name``
    (a name from ``crm.zones``). Takes the account's roll-up lock exclusive (for the rest of
    the caller's transaction): hooks of this account wait, and those that ran committed."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s::int, %s::int)", [LOCK_KEY, account_id])
        cursor.execute("SELECT set_config('work_mem', %s, true)", [BUILD_WORK_MEM])
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"DELETE FROM {_ITEM} WHERE account_id = %s", [account_id])  # noqa: S608
        cursor.execute(f"DELETE FROM {_OFFER} WHERE account_id = %s", [account_id])  # noqa: S608
        cursor.execute(f"DELETE FROM {_TOTAL} WHERE account_id = %s", [account_id])  # noqa: S608
        params: dict[str, int | str] = {"account": account_id, "zone": zone_name}
        cursor.execute(_BUILD_ITEMS_SQL, params)
        cursor.execute(_BUILD_TOTALS_SQL, params)
        cursor.execute(_BUILD_OFFERS_SQL, params)


def media_stats_build(*, account: CreatorAccount) -> None:
    """Count the account's roll-up from the raw rows, days in its zone now.

    First (its own transaction when called outside one) the state row says the zone and that
    the roll-up is not whole, so hooks start adding to it; then, under the exclusive lock, the
    rows are counted and the state marked built. Until then the page counts the raw rows."""
    zone_name = str(account_zone(account))
    with transaction.atomic():
        MediaStatsState.objects.update_or_create(
            account_id=account.pk, defaults={"zone_name": zone_name, "built_at": None}
        )
    with transaction.atomic():
        media_stats_rebuild_rows(account_id=account.pk, zone_name=zone_name)
        MediaStatsState.objects.filter(account_id=account.pk).update(
            built_at=timezone.now(), zone_name=zone_name
        )


BUILD_DUE_MAX = 20  # accounts per run; the next run takes the rest


def media_stats_build_due() -> int:
    """Build the roll-up of each account that has no whole one in its zone now (new accounts,
    a changed zone, a build that stopped halfway). The number built."""
    states = dict(
        MediaStatsState.objects.filter(built_at__isnull=False).values_list(
            "account_id", "zone_name"
        )
    )
    due = [
        account
        for account in CreatorAccount.objects.only("id", "time_zone").order_by("id")
        if states.get(account.pk) != str(account_zone(account))
    ][:BUILD_DUE_MAX]
    for account in due:
        media_stats_build(account=account)
    return len(due)


def media_stats_zone(*, account_id: int) -> str | None:
    """The zone the account's roll-up is whole in, or None (not built yet): one query."""
    return (
        MediaStatsState.objects.filter(account_id=account_id, built_at__isnull=False)
        .values_list("zone_name", flat=True)
        .first()
    )


def media_stats_days(*, account_id: int, first_day: date, last_day: date) -> int:
    """How many roll-up rows the account has in a range (operations and tests)."""
    return MediaItemDay.objects.filter(
        account_id=account_id, day__gte=first_day, day__lte=last_day
    ).count()
