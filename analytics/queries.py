"""The SQL behind every analytics figure: plain aggregates over crm's rows, one account at a time.

Callers (``analytics.selectors``) check membership first; every statement here filters on
``account_id`` and reads only that account's rows. Days are cut in the account's time zone
(``AT TIME ZONE``); money is in cents. Each function runs one statement.

Indexes: purchases use ``purchase_account_time``; messages use ``message_account_sent`` and the
analytics indexes of migration 0002 (incoming by time, outgoing by creation time, chatter
replies); fans use ``fan_account_spend``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import connection

from analytics.histogram import SQL_BUCKET
from analytics.models import ActiveGap, AttributionRule, DayRollup, PurchaseCredit
from crm.models import Conversation, Fan, Message, Purchase

FAN = Fan._meta.db_table
CONVERSATION = Conversation._meta.db_table
MESSAGE = Message._meta.db_table
PURCHASE = Purchase._meta.db_table
CREDIT = PurchaseCredit._meta.db_table
GAP = ActiveGap._meta.db_table
DAY_ROLLUP = DayRollup._meta.db_table

# Lifetime-spend bands of the distribution chart: (label, low cents, high cents or None).
SPEND_BANDS: list[tuple[str, int, int | None]] = [
    ("$0", 0, 1),
    ("under $10", 1, 1_000),
    ("$10-50", 1_000, 5_000),
    ("$50-100", 5_000, 10_000),
    ("$100-250", 10_000, 25_000),
    ("$250-500", 25_000, 50_000),
    ("$500-1k", 50_000, 100_000),
    ("$1k+", 100_000, None),
]


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# --- Purchases ---------------------------------------------------------------------------------

PURCHASES_BY_DAY = f"""
SELECT (purchased_at AT TIME ZONE %(tz)s)::date AS day, kind, SUM(amount_cents), COUNT(*)
FROM {PURCHASE}
WHERE account_id = %(account)s AND purchased_at >= %(start)s AND purchased_at < %(end)s
GROUP BY 1, 2
"""  # noqa: S608


def purchases_by_day(
    *, account_id: int, tz: str, start: datetime, end: datetime
) -> list[tuple[date, str, int, int]]:
    """(local day, kind, cents, count) for every day with purchases in [start, end)."""
    rows = _rows(PURCHASES_BY_DAY, {"account": account_id, "tz": tz, "start": start, "end": end})
    return [(day, kind, int(cents), int(count)) for day, kind, cents, count in rows]


# --- Fans --------------------------------------------------------------------------------------

FANS_BY_DAY = f"""
SELECT CASE WHEN created_at < %(start)s THEN NULL
            ELSE (created_at AT TIME ZONE %(tz)s)::date END AS day,
       COUNT(*)
FROM {FAN}
WHERE account_id = %(account)s AND created_at < %(end)s
GROUP BY 1
"""  # noqa: S608


def fans_by_day(
    *, account_id: int, tz: str, start: datetime, end: datetime
) -> tuple[int, dict[date, int]]:
    """Fans who joined before ``start``, and per local day in [start, end) how many joined."""
    before = 0
    per_day: dict[date, int] = {}
    for day, count in _rows(
        FANS_BY_DAY, {"account": account_id, "tz": tz, "start": start, "end": end}
    ):
        if day is None:
            before = int(count)
        else:
            per_day[day] = int(count)
    return before, per_day


ACTIVE_FANS = f"""
WITH activity AS (
    SELECT c.fan_id, m.created_at AS at
    FROM {MESSAGE} m JOIN {CONVERSATION} c ON c.id = m.conversation_id
    WHERE m.account_id = %(account)s AND m.direction = 'in'
      AND m.created_at >= %(low)s AND m.created_at < %(high)s
    UNION ALL
    SELECT fan_id, purchased_at FROM {PURCHASE}
    WHERE account_id = %(account)s AND purchased_at >= %(low)s AND purchased_at < %(high)s
)
SELECT COUNT(DISTINCT fan_id) FILTER (WHERE at >= %(a_low)s AND at < %(a_high)s),
       COUNT(DISTINCT fan_id) FILTER (WHERE at >= %(b_low)s AND at < %(b_high)s)
FROM activity
"""  # noqa: S608


def active_fans_two_windows(
    *, account_id: int, first: tuple[datetime, datetime], second: tuple[datetime, datetime]
) -> tuple[int, int]:
    """Distinct fans who wrote a message or bought something in each of two time windows."""
    low = min(first[0], second[0])
    high = max(first[1], second[1])
    params = {
        "account": account_id,
        "low": low,
        "high": high,
        "a_low": first[0],
        "a_high": first[1],
        "b_low": second[0],
        "b_high": second[1],
    }
    ((a, b),) = _rows(ACTIVE_FANS, params)
    return int(a), int(b)


ACTIVE_FANS_BY_BUCKET = f"""
WITH activity AS (
    SELECT c.fan_id, m.created_at AS at
    FROM {MESSAGE} m JOIN {CONVERSATION} c ON c.id = m.conversation_id
    WHERE m.account_id = %(account)s AND m.direction = 'in'
      AND m.created_at >= %(start)s AND m.created_at < %(end)s
    UNION ALL
    SELECT fan_id, purchased_at FROM {PURCHASE}
    WHERE account_id = %(account)s AND purchased_at >= %(start)s AND purchased_at < %(end)s
)
SELECT date_trunc(%(interval)s, at AT TIME ZONE %(tz)s)::date AS bucket, COUNT(DISTINCT fan_id)
FROM activity GROUP BY 1
"""  # noqa: S608


def active_fans_by_bucket(
    *, account_id: int, tz: str, interval: str, start: datetime, end: datetime
) -> dict[date, int]:
    """Per chart bucket (its first local day), the distinct fans active in it (within the
    range: a bucket cut by the range counts only its days inside)."""
    params = {"account": account_id, "tz": tz, "interval": interval, "start": start, "end": end}
    return {bucket: int(count) for bucket, count in _rows(ACTIVE_FANS_BY_BUCKET, params)}


SPEND_DISTRIBUTION = f"""
SELECT {
    ", ".join(
        f"COUNT(*) FILTER (WHERE lifetime_spend_cents >= {low}"
        + (f" AND lifetime_spend_cents < {high})" if high is not None else ")")
        for _, low, high in SPEND_BANDS
    )
}
FROM {FAN} WHERE account_id = %(account)s
"""  # noqa: S608


def spend_distribution(*, account_id: int) -> list[tuple[str, int]]:
    """Fans per lifetime-spend band (all of the account's fans, as the fans page shows them)."""
    ((*counts,),) = _rows(SPEND_DISTRIBUTION, {"account": account_id})
    return [(label, int(n)) for (label, _, _), n in zip(SPEND_BANDS, counts, strict=True)]


# --- Reading the roll-ups ---------------------------------------------------------------------

ROLLUP_ROWS = f"""
SELECT NULL::date, NULL::integer, 0::bigint, 0::bigint, 0::bigint, 0,
       COALESCE(SUM(new_fans), 0)::integer, 0, 0, 0, 0, 0, NULL::integer[], 0::bigint, 0,
       NULL::text
FROM {DAY_ROLLUP} WHERE account_id = %(account)s AND user_id IS NULL AND day < %(low)s
UNION ALL
SELECT day, user_id, revenue_subscription, revenue_tip, revenue_ppv, purchases, new_fans,
       messages_sent, messages_received, ppv_sent, ppv_unlocked, replies,
       CASE WHEN replies > 0 THEN response_histogram END,
       credited_cents, credited_purchases,
       CASE WHEN user_id IS NULL AND day >= %(first)s THEN by_rule::text END
FROM {DAY_ROLLUP}
WHERE account_id = %(account)s AND day >= %(low)s AND day <= %(last)s
  AND (user_id IS NULL OR day >= %(first)s)
"""  # noqa: S608


def rollup_rows(*, account_id: int, low: date, first: date, last: date) -> list[tuple[Any, ...]]:
    """The account's day rows from ``low`` to ``last`` and its chatters' from ``first`` on
    (the columns of ROLLUP_ROWS; ``by_rule`` as JSON text, only where it is used), after a
    first row without a day whose ``new_fans`` counts the fans who joined before ``low``."""
    return _rows(ROLLUP_ROWS, {"account": account_id, "low": low, "first": first, "last": last})


# --- Active fans from the roll-up's gap counts ---------------------------------------------------
# A fan active at all in [a, b] has exactly one active day d in it with next_day > b (its last).

ACTIVE_GAPS = f"""
SELECT 'window', %(b1)s::date,
       COALESCE(SUM(fans) FILTER (WHERE day >= %(a1)s AND day <= %(b1)s AND next_day > %(b1)s), 0)
FROM {GAP} WHERE account_id = %(account)s AND day >= %(a1)s AND day <= %(b1)s
UNION ALL
SELECT 'window', %(b2)s::date,
       COALESCE(SUM(fans) FILTER (WHERE day >= %(a2)s AND day <= %(b2)s AND next_day > %(b2)s), 0)
FROM {GAP} WHERE account_id = %(account)s AND day >= %(a2)s AND day <= %(b2)s
UNION ALL
SELECT 'bucket', bucket, SUM(fans) FROM (
    SELECT date_trunc(%(interval)s, day)::date AS bucket, next_day, fans
    FROM {GAP} WHERE account_id = %(account)s AND day >= %(first)s AND day <= %(last)s
) g
WHERE next_day > LEAST(%(last)s, (bucket + %(step)s::interval)::date - 1)
GROUP BY bucket
"""  # noqa: S608

STEPS = {"day": "1 day", "week": "7 days", "month": "1 month"}


def active_from_gaps(
    *,
    account_id: int,
    windows: list[tuple[date, date]],
    interval: str,
    first_day: date,
    last_day: date,
) -> tuple[int, int, dict[date, int]]:
    """Distinct active fans of two windows of whole local days (first, last inclusive), and
    per chart bucket of first_day..last_day (the part of it inside), in one statement."""
    (a1, b1), (a2, b2) = windows
    params = {
        "account": account_id,
        "a1": a1,
        "b1": b1,
        "a2": a2,
        "b2": b2,
        "interval": interval,
        "step": STEPS[interval],
        "first": first_day,
        "last": last_day,
    }
    counts: dict[date, int] = {}
    per_bucket: dict[date, int] = {}
    for kind, day, n in _rows(ACTIVE_GAPS, params):
        (counts if kind == "window" else per_bucket)[day] = int(n)
    return counts.get(b1, 0), counts.get(b2, 0), per_bucket


# --- Messages ----------------------------------------------------------------------------------

# Sent = delivered to the platform (status sent), on the day it was sent. A PPV is unlocked
# when a ppv purchase points at it, whenever that happened.
SENT_BY_DAY = f"""
SELECT (m.sent_at AT TIME ZONE %(tz)s)::date AS day, m.sent_by_id,
       COUNT(*),
       COUNT(*) FILTER (WHERE m.price_cents > 0),
       COUNT(*) FILTER (WHERE m.price_cents > 0 AND EXISTS (
           SELECT 1 FROM {PURCHASE} p WHERE p.message_id = m.id AND p.kind = 'ppv'))
FROM {MESSAGE} m
WHERE m.account_id = %(account)s AND m.status = 'sent'
  AND m.sent_at >= %(start)s AND m.sent_at < %(end)s
GROUP BY 1, 2
"""  # noqa: S608


@dataclass(frozen=True)
class SentRow:
    day: date
    sent_by_id: int | None
    sent: int
    ppv_sent: int
    ppv_unlocked: int


def sent_by_day(*, account_id: int, tz: str, start: datetime, end: datetime) -> list[SentRow]:
    params = {"account": account_id, "tz": tz, "start": start, "end": end}
    return [
        SentRow(day, user, int(sent), int(ppv), int(unlocked))
        for day, user, sent, ppv, unlocked in _rows(SENT_BY_DAY, params)
    ]


RECEIVED_BY_DAY = f"""
SELECT (created_at AT TIME ZONE %(tz)s)::date AS day, COUNT(*)
FROM {MESSAGE}
WHERE account_id = %(account)s AND direction = 'in'
  AND created_at >= %(start)s AND created_at < %(end)s
GROUP BY 1
"""  # noqa: S608


def received_by_day(*, account_id: int, tz: str, start: datetime, end: datetime) -> dict[date, int]:
    params = {"account": account_id, "tz": tz, "start": start, "end": end}
    return {day: int(count) for day, count in _rows(RECEIVED_BY_DAY, params)}


# A fan's turn starts with their first message after a chatter's reply (or the first ever);
# the next message a chatter writes answers it. Campaign messages are not answers. Turns are
# looked for from ``lookback`` on, so a wait longer than that is measured from there.
REPLIES_CTE = f"""
WITH m AS (
    SELECT conversation_id, id, created_at, direction, sent_by_id,
           lag(direction) OVER w AS prev_direction
    FROM {MESSAGE}
    WHERE account_id = %(account)s AND created_at >= %(lookback)s AND created_at < %(end)s
      AND (direction = 'in' OR (sender_kind = 'user' AND status <> 'failed'))
    WINDOW w AS (PARTITION BY conversation_id ORDER BY created_at, id)
), turns AS (
    SELECT conversation_id, created_at, direction, sent_by_id,
           lag(created_at) OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS asked_at
    FROM m
    WHERE (direction = 'in' AND prev_direction IS DISTINCT FROM 'in')
       OR (direction = 'out' AND prev_direction = 'in')
), replies AS (
    SELECT conversation_id, created_at, sent_by_id,
           EXTRACT(EPOCH FROM created_at - asked_at) AS seconds
    FROM turns
    WHERE direction = 'out' AND asked_at IS NOT NULL AND created_at >= %(start)s
)
"""  # noqa: S608

RESPONSES = (
    REPLIES_CTE
    + """
SELECT created_at >= %(split)s AS current, sent_by_id, GROUPING(sent_by_id) = 1 AS everyone,
       COUNT(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds)
FROM replies
GROUP BY GROUPING SETS ((created_at >= %(split)s), (created_at >= %(split)s, sent_by_id))
"""
)

RESPONSE_BUCKETS = (
    REPLIES_CTE
    + f"""
SELECT (created_at AT TIME ZONE %(tz)s)::date, sent_by_id, {SQL_BUCKET % "seconds"}, COUNT(*)
FROM replies GROUP BY 1, 2, 3
"""  # noqa: S608
)


@dataclass(frozen=True)
class ResponseRow:
    current: bool  # in the range (False: the previous period)
    sent_by_id: int | None
    everyone: bool  # the account's row (all chatters together)
    replies: int
    median_seconds: float | None


def responses(
    *, account_id: int, start: datetime, split: datetime, end: datetime, lookback: timedelta
) -> list[ResponseRow]:
    """Chatters' replies to a waiting fan in [start, split) (previous) and [split, end)
    (current): per chatter and for everyone, how many and the exact (lower) median time."""
    params = {
        "account": account_id,
        "lookback": start - lookback,
        "start": start,
        "split": split,
        "end": end,
    }
    return [
        ResponseRow(bool(cur), user, bool(everyone), int(n), float(median))
        for cur, user, everyone, n, median in _rows(RESPONSES, params)
    ]


# Of those replies (the current range only), how many came within the first-reply target that
# applies to the fan (crm.response_targets: the VIP one from the threshold on, when shorter),
# by the fan's current spend and the account's current targets.
WITHIN_TARGET = (
    REPLIES_CTE
    + f"""
SELECT r.sent_by_id, GROUPING(r.sent_by_id) = 1 AS everyone, COUNT(*),
       COUNT(*) FILTER (WHERE r.seconds <= CASE
           WHEN %(vip_seconds)s < %(seconds)s AND f.lifetime_spend_cents >= %(vip_threshold)s
           THEN %(vip_seconds)s ELSE %(seconds)s END)
FROM replies r
JOIN {CONVERSATION} c ON c.id = r.conversation_id
JOIN {FAN} f ON f.id = c.fan_id
GROUP BY GROUPING SETS ((), (r.sent_by_id))
"""  # noqa: S608
)


@dataclass(frozen=True)
class WithinTargetRow:
    sent_by_id: int | None
    everyone: bool  # the account's row (all chatters together)
    replies: int
    within: int


def replies_within_target(
    *,
    account_id: int,
    start: datetime,
    end: datetime,
    lookback: timedelta,
    seconds: int,
    vip_seconds: int,
    vip_threshold_cents: int,
) -> list[WithinTargetRow]:
    """Chatters' first replies to a waiting fan in [start, end), per chatter and for everyone:
    how many, and how many within the target that applied (``seconds``, or ``vip_seconds``
    for a fan whose lifetime spend is at least ``vip_threshold_cents``)."""
    params = {
        "account": account_id,
        "lookback": start - lookback,
        "start": start,
        "end": end,
        "seconds": seconds,
        "vip_seconds": vip_seconds,
        "vip_threshold": vip_threshold_cents,
    }
    return [
        WithinTargetRow(user, bool(everyone), int(n), int(within))
        for user, everyone, n, within in _rows(WITHIN_TARGET, params)
    ]


def response_buckets(
    *, account_id: int, tz: str, start: datetime, end: datetime, lookback: timedelta
) -> list[tuple[date, int | None, int, int]]:
    """(local day of the reply, chatter, time bucket, replies) for replies in [start, end)."""
    params = {
        "account": account_id,
        "tz": tz,
        "lookback": start - lookback,
        "start": start,
        "end": end,
    }
    return [(d, u, int(b), int(n)) for d, u, b, n in _rows(RESPONSE_BUCKETS, params)]


FAN_ACTIVE_DAYS = f"""
SELECT DISTINCT fan_id, (at AT TIME ZONE %(tz)s)::date FROM (
    SELECT c.fan_id, m.created_at AS at
    FROM {MESSAGE} m JOIN {CONVERSATION} c ON c.id = m.conversation_id
    WHERE m.account_id = %(account)s AND m.direction = 'in'
      AND m.created_at >= %(start)s AND m.created_at < %(end)s
    UNION ALL
    SELECT fan_id, purchased_at FROM {PURCHASE}
    WHERE account_id = %(account)s AND purchased_at >= %(start)s AND purchased_at < %(end)s
) activity
"""  # noqa: S608


def fan_active_days(
    *, account_id: int, tz: str, start: datetime, end: datetime
) -> list[tuple[int, date]]:
    """(fan, local day) for every day in [start, end) a fan wrote or bought something."""
    params = {"account": account_id, "tz": tz, "start": start, "end": end}
    return [(int(f), d) for f, d in _rows(FAN_ACTIVE_DAYS, params)]


# --- Attribution -------------------------------------------------------------------------------

ATTRIBUTED = f"""
SELECT p.id, p.kind, p.amount_cents, p.purchased_at, p.fan_id, p.message_id,
       CASE WHEN cr.purchase_id IS NOT NULL THEN cr.credited_to_id
            WHEN p.kind = 'ppv' THEN pm.sent_by_id
            WHEN p.kind = 'tip' THEN lc.sent_by_id END AS credited_to_id,
       CASE WHEN cr.purchase_id IS NOT NULL THEN 'reassigned'
            WHEN p.kind = 'ppv' AND pm.sent_by_id IS NOT NULL THEN 'ppv_sender'
            WHEN p.kind = 'tip' AND lc.sent_by_id IS NOT NULL THEN 'last_chatter'
            ELSE 'unattributed' END AS rule,
       CASE WHEN p.kind = 'ppv' THEN pm.sent_by_id
            WHEN p.kind = 'tip' THEN lc.sent_by_id END AS rule_user_id
FROM {PURCHASE} p
LEFT JOIN {CREDIT} cr ON cr.purchase_id = p.id
LEFT JOIN {MESSAGE} pm ON p.kind = 'ppv' AND pm.id = p.message_id AND pm.direction = 'out'
LEFT JOIN {CONVERSATION} c ON p.kind = 'tip' AND c.fan_id = p.fan_id
LEFT JOIN LATERAL (
    SELECT m.sent_by_id FROM {MESSAGE} m
    WHERE m.conversation_id = c.id AND m.direction = 'out' AND m.sender_kind = 'user'
      AND m.sent_by_id IS NOT NULL AND m.status <> 'failed'
      AND m.created_at <= p.purchased_at AND m.created_at > p.purchased_at - %(window)s
    ORDER BY m.created_at DESC, m.id DESC LIMIT 1
) lc ON TRUE
WHERE p.account_id = %(account)s {{where}}
"""  # noqa: S608

IN_RANGE = "AND p.purchased_at >= %(start)s AND p.purchased_at < %(end)s"

ATTRIBUTION_TOTALS = f"""
WITH a AS ({ATTRIBUTED.format(where=IN_RANGE)})
SELECT credited_to_id, rule, COUNT(*), SUM(amount_cents) FROM a GROUP BY 1, 2
"""  # noqa: S608

ATTRIBUTION_BY_DAY = f"""
WITH a AS ({ATTRIBUTED.format(where=IN_RANGE)})
SELECT (purchased_at AT TIME ZONE %(tz)s)::date, credited_to_id, rule, COUNT(*), SUM(amount_cents)
FROM a GROUP BY 1, 2, 3
"""  # noqa: S608

ATTRIBUTION_PAGE = (
    ATTRIBUTED.format(where=IN_RANGE)
    + " ORDER BY p.purchased_at DESC, p.id DESC LIMIT %(limit)s OFFSET %(offset)s"
)

ATTRIBUTION_ONE = ATTRIBUTED.format(where="AND p.id = %(purchase)s")


@dataclass(frozen=True)
class AttributedPurchase:
    purchase_id: int
    kind: str
    amount_cents: int
    purchased_at: datetime
    fan_id: int
    message_id: int | None
    credited_to_id: int | None
    rule: str
    rule_user_id: int | None  # whom the rule alone would credit

    @property
    def rule_label(self) -> str:
        return AttributionRule(self.rule).label


def _attributed(row: tuple[Any, ...]) -> AttributedPurchase:
    return AttributedPurchase(*row)


def attribution_totals(
    *, account_id: int, start: datetime, end: datetime, window: timedelta
) -> list[tuple[int | None, str, int, int]]:
    """(credited user or None, rule, purchases, cents) over the purchases in [start, end)."""
    params = {"account": account_id, "start": start, "end": end, "window": window}
    return [
        (user, rule, int(n), int(cents))
        for user, rule, n, cents in _rows(ATTRIBUTION_TOTALS, params)
    ]


def attribution_by_day(
    *, account_id: int, tz: str, start: datetime, end: datetime, window: timedelta
) -> list[tuple[date, int | None, str, int, int]]:
    """(local day, credited user or None, rule, purchases, cents) for purchases in [start, end)."""
    params = {"account": account_id, "tz": tz, "start": start, "end": end, "window": window}
    return [
        (day, user, rule, int(n), int(cents))
        for day, user, rule, n, cents in _rows(ATTRIBUTION_BY_DAY, params)
    ]


def attribution_page(
    *, account_id: int, start: datetime, end: datetime, window: timedelta, limit: int, offset: int
) -> list[AttributedPurchase]:
    params = {
        "account": account_id,
        "start": start,
        "end": end,
        "window": window,
        "limit": limit,
        "offset": offset,
    }
    return [_attributed(row) for row in _rows(ATTRIBUTION_PAGE, params)]


def attribution_one(
    *, account_id: int, purchase_id: int, window: timedelta
) -> AttributedPurchase | None:
    params = {"account": account_id, "purchase": purchase_id, "window": window}
    rows = _rows(ATTRIBUTION_ONE, params)
    return _attributed(rows[0]) if rows else None


# --- Campaigns ---------------------------------------------------------------------------------

# Per campaign created in the range: its recipients (control group apart), the revenue of the
# purchases that point at its messages, and what each group's fans bought in the window after
# it (the uplift: the campaign's fans against the control group, who got nothing).
CAMPAIGNS = """
WITH c AS (
    SELECT id, name, created_at FROM {campaign}
    WHERE account_id = %(account)s AND created_at >= %(start)s AND created_at < %(end)s
), rev AS (
    SELECT m.campaign_id, SUM(p.amount_cents) AS cents, COUNT(*) AS n
    FROM {message} m JOIN {purchase} p ON p.message_id = m.id
    WHERE m.campaign_id IN (SELECT id FROM c) AND m.account_id = %(account)s
    GROUP BY 1
), groups AS (
    SELECT r.campaign_id, r.is_control, COUNT(DISTINCT r.fan_id) AS fans,
           COALESCE(SUM(p.amount_cents), 0) AS cents
    FROM {recipient} r JOIN c ON c.id = r.campaign_id
    LEFT JOIN {purchase} p ON p.fan_id = r.fan_id AND p.account_id = %(account)s
         AND p.purchased_at >= c.created_at AND p.purchased_at < c.created_at + %(window)s
    GROUP BY 1, 2
)
SELECT c.id, c.name, COALESCE(rev.cents, 0), COALESCE(rev.n, 0),
       COALESCE(t.fans, 0), COALESCE(t.cents, 0), COALESCE(k.fans, 0), COALESCE(k.cents, 0)
FROM c
LEFT JOIN rev ON rev.campaign_id = c.id
LEFT JOIN groups t ON t.campaign_id = c.id AND NOT t.is_control
LEFT JOIN groups k ON k.campaign_id = c.id AND k.is_control
ORDER BY c.created_at DESC, c.id DESC
"""


def campaign_totals(
    *,
    account_id: int,
    start: datetime,
    end: datetime,
    window: timedelta,
    campaign_table: str,
    recipient_table: str,
) -> list[tuple[int, str, int, int, int, int, int, int]]:
    """(campaign id, name, revenue cents, purchases, recipients, their window cents, control
    fans, control window cents) per campaign created in [start, end)."""
    sql = CAMPAIGNS.format(
        campaign=campaign_table, recipient=recipient_table, message=MESSAGE, purchase=PURCHASE
    )
    params = {"account": account_id, "start": start, "end": end, "window": window}
    return [
        (int(cid), str(name), *(int(v) for v in rest))  # type: ignore[misc]
        for cid, name, *rest in _rows(sql, params)
    ]
