"""The SQL behind workday's pages: the review feed, the record of shifts and pay, the agency
overview. Callers (``workday.selectors``) decide which accounts the acting user may see and
pass only those; every statement filters on them.

Reply times follow analytics' rule (``analytics.queries.REPLIES_CTE``): a fan's turn starts
with their first message after a member's reply, and the member's next message answers it;
campaign, automated and failed messages answer nothing. Credited sales are analytics' own
statement (``analytics.queries.ATTRIBUTED``), so a sale is credited here exactly as there.

Indexes: ``workday_message_out_recent`` / ``workday_message_out_sender`` (the feed, one walk
per account), ``message_thread`` (reply times), ``message_sender_fingerprint`` (repeated
text), ``workday_conversation_*`` and ``message_account_pending`` (the overview),
``work_session_account_start``, ``message_account_sent`` and ``purchase_account_time`` (pay).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection

from analytics.queries import ATTRIBUTED, IN_RANGE
from crm.models import Conversation, CreatorAccount, Fan, Message, Purchase, WorkSession
from workday.models import MessageReview, ReviewSettings

MESSAGE = Message._meta.db_table
CONVERSATION = Conversation._meta.db_table
FAN = Fan._meta.db_table
PURCHASE = Purchase._meta.db_table
ACCOUNT = CreatorAccount._meta.db_table
SESSION = WorkSession._meta.db_table
REVIEW = MessageReview._meta.db_table
SETTINGS = ReviewSettings._meta.db_table
USER = get_user_model()._meta.db_table


def _rows(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


# --- The review feed ---------------------------------------------------------------------------

# Reply time (``prev``: the member's last reply before this message; ``ask``: the fan's first
# message after it) and the repeated-text count, per message row ``m``.
ROW_LOOKUPS = f"""
LEFT JOIN LATERAL (
    SELECT o.created_at, o.id FROM {MESSAGE} o
    WHERE o.conversation_id = m.conversation_id AND o.direction = 'out'
      AND o.sender_kind = 'user' AND o.status <> 'failed'
      AND (o.created_at, o.id) < (m.created_at, m.id)
    ORDER BY o.created_at DESC, o.id DESC LIMIT 1
) prev ON m.sender_kind = 'user' AND m.status <> 'failed'
LEFT JOIN LATERAL (
    SELECT EXTRACT(EPOCH FROM m.created_at - min(i.created_at))::float8 AS seconds
    FROM {MESSAGE} i
    WHERE i.conversation_id = m.conversation_id AND i.direction = 'in'
      AND (i.created_at, i.id) < (m.created_at, m.id)
      AND (i.created_at, i.id) > (COALESCE(prev.created_at, '-infinity'), COALESCE(prev.id, 0))
) ask ON m.sender_kind = 'user' AND m.status <> 'failed'
LEFT JOIN LATERAL (
    SELECT COUNT(DISTINCT r.conversation_id) AS fans FROM {MESSAGE} r
    WHERE r.sent_by_id = m.sent_by_id AND r.text_fingerprint = m.text_fingerprint
      AND r.queued_at >= m.queued_at - %(window)s AND r.queued_at <= m.queued_at + %(window)s
) rep ON m.text_fingerprint IS NOT NULL AND m.sent_by_id IS NOT NULL
"""  # noqa: S608

# Per account, newest first from the cursor, at most ``limit`` rows each (one index walk per
# account, whatever the filters), then the newest ``limit`` of them all. The row lookups run
# inside each walk only when a flag filter needs them (``{{inner}}``); otherwise on the final
# page's rows alone (``{{outer}}``): 51 rows, not 51 per account.
REVIEW_FEED = f"""
WITH page AS (
    SELECT m.*
    FROM unnest(%(accounts)s::bigint[], %(lows)s::timestamptz[], %(highs)s::timestamptz[])
         AS acc(id, low, high)
    LEFT JOIN {SETTINGS} s ON s.account_id = acc.id
    JOIN {ACCOUNT} target ON target.id = acc.id
    CROSS JOIN LATERAL (
        SELECT m.*, {{inner_columns}}
               COALESCE(s.min_ppv_price_cents, 0) AS min_price,
               COALESCE(s.long_wait_seconds, target.reply_target_seconds) AS long_wait
        FROM {MESSAGE} m
        {{inner}}
        WHERE m.account_id = acc.id AND m.direction = 'out'
          AND m.created_at >= acc.low AND m.created_at < acc.high
          AND (m.created_at, m.id) < (%(cursor_at)s, %(cursor_id)s)
          {{filters}}
        ORDER BY m.created_at DESC, m.id DESC
        LIMIT %(limit)s
    ) m
    ORDER BY m.created_at DESC, m.id DESC
    LIMIT %(limit)s
)
SELECT m.id, m.account_id, a.display_name, m.conversation_id, m.sent_by_id, u.username,
       m.sender_kind, m.text, m.price_cents, m.status, m.created_at,
       f.id, f.display_name, f.username, f.lifetime_spend_cents,
       {{outer_columns}}, m.min_price, m.long_wait,
       r.verdict, r.comment, ru.username, r.reviewed_at
FROM page m
{{outer}}
JOIN {ACCOUNT} a ON a.id = m.account_id
JOIN {CONVERSATION} c ON c.id = m.conversation_id
JOIN {FAN} f ON f.id = c.fan_id
LEFT JOIN {USER} u ON u.id = m.sent_by_id
LEFT JOIN {REVIEW} r ON r.message_id = m.id
LEFT JOIN {USER} ru ON ru.id = r.reviewed_by_id
ORDER BY m.created_at DESC, m.id DESC
"""  # noqa: S608 (table names and fixed filter text only)

# Filters that read the row lookups (so the lookups run inside each account's walk).
LOOKUP_FILTERS = frozenset({"repeated", "long_wait"})

# The filters a feed may add inside each account's walk (fixed SQL, values as parameters).
FEED_FILTERS = {
    "chatter": "AND m.sent_by_id = %(chatter)s",
    "paid": "AND m.price_cents > 0",
    "free": "AND m.price_cents = 0",
    "repeated": "AND rep.fans > %(repeated_max)s",
    "low_price": "AND m.price_cents > 0 AND m.price_cents < COALESCE(s.min_ppv_price_cents, 0)",
    "long_wait": "AND ask.seconds > COALESCE(s.long_wait_seconds, target.reply_target_seconds)",
    "unreviewed": f"AND NOT EXISTS (SELECT 1 FROM {REVIEW} rv WHERE rv.message_id = m.id)",  # noqa: S608
}


@dataclass(frozen=True)
class FeedRow:
    message_id: int
    account_id: int
    account_name: str
    conversation_id: int
    sent_by_id: int | None
    sender_name: str | None
    sender_kind: str
    text: str
    price_cents: int
    status: str
    created_at: datetime
    fan_id: int
    fan_display_name: str
    fan_username: str
    fan_spend_cents: int
    reply_seconds: float | None
    repeated_fans: int | None
    min_price_cents: int
    long_wait_seconds: int
    verdict: str | None
    comment: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


def review_feed(
    *,
    accounts: list[int],
    lows: list[datetime],
    highs: list[datetime],
    filters: list[str],
    params: dict[str, Any],
    cursor: tuple[datetime, int],
    limit: int,
    window: timedelta,
) -> list[FeedRow]:
    """Up to ``limit`` outgoing messages of ``accounts`` (each within its own [low, high)),
    newest first, strictly before ``cursor``; ``filters`` are keys of FEED_FILTERS."""
    inside = bool(LOOKUP_FILTERS & set(filters))
    sql = REVIEW_FEED.format(
        filters=" ".join(FEED_FILTERS[key] for key in filters),
        inner=ROW_LOOKUPS if inside else "",
        inner_columns="ask.seconds AS reply_seconds, rep.fans AS repeated_fans," if inside else "",
        outer="" if inside else ROW_LOOKUPS,
        outer_columns="m.reply_seconds, m.repeated_fans" if inside else "ask.seconds, rep.fans",
    )
    values = {
        **params,
        "accounts": accounts,
        "lows": lows,
        "highs": highs,
        "cursor_at": cursor[0],
        "cursor_id": cursor[1],
        "limit": limit,
        "window": window,
    }
    return [FeedRow(*row) for row in _rows(sql, values)]


# --- Shifts and pay ----------------------------------------------------------------------------

SESSIONS = f"""
SELECT ws.id, ws.user_id, ws.started_at, ws.ended_at, ws.end_reason,
       GREATEST(EXTRACT(EPOCH FROM LEAST(COALESCE(ws.ended_at, %(now)s), %(end)s)
                                 - GREATEST(ws.started_at, %(start)s)), 0)::float8
FROM {SESSION} ws
WHERE ws.account_id = %(account)s AND ws.started_at < %(end)s
  AND (ws.ended_at IS NULL OR ws.ended_at > %(start)s)
ORDER BY ws.started_at, ws.id
"""  # noqa: S608

# Messages as analytics counts them (delivered, on the day they were sent; a PPV is
# unlocked when a ppv purchase points at it), per member and the session they were sent in.
SENT = f"""
SELECT m.sent_by_id, m.work_session_id, COUNT(*),
       COUNT(*) FILTER (WHERE m.price_cents > 0),
       COUNT(*) FILTER (WHERE m.price_cents > 0 AND EXISTS (
           SELECT 1 FROM {PURCHASE} p WHERE p.message_id = m.id AND p.kind = 'ppv'))
FROM {MESSAGE} m
WHERE m.account_id = %(account)s AND m.status = 'sent' AND m.sent_by_id IS NOT NULL
  AND m.sent_at >= %(start)s AND m.sent_at < %(end)s
GROUP BY 1, 2
"""  # noqa: S608

REPLIES = f"""
WITH m AS (
    SELECT conversation_id, id, created_at, direction, sent_by_id, work_session_id,
           lag(direction) OVER w AS prev_direction
    FROM {MESSAGE}
    WHERE account_id = %(account)s AND created_at >= %(start)s - %(lookback)s
      AND created_at < %(end)s
      AND (direction = 'in' OR (sender_kind = 'user' AND status <> 'failed'))
    WINDOW w AS (PARTITION BY conversation_id ORDER BY created_at, id)
), turns AS (
    SELECT conversation_id, created_at, direction, sent_by_id, work_session_id,
           lag(created_at) OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS asked_at
    FROM m
    WHERE (direction = 'in' AND prev_direction IS DISTINCT FROM 'in')
       OR (direction = 'out' AND prev_direction = 'in')
), replies AS (
    SELECT conversation_id, sent_by_id, work_session_id,
           EXTRACT(EPOCH FROM created_at - asked_at) AS seconds
    FROM turns
    WHERE direction = 'out' AND asked_at IS NOT NULL AND created_at >= %(start)s
      AND sent_by_id IS NOT NULL
)
SELECT sent_by_id, work_session_id, GROUPING(work_session_id) = 1 AS member_total,
       COUNT(*), COUNT(DISTINCT conversation_id),
       percentile_disc(0.5) WITHIN GROUP (ORDER BY seconds)
FROM replies
GROUP BY GROUPING SETS ((sent_by_id), (sent_by_id, work_session_id))
"""  # noqa: S608

# Each credited sale of the range goes to the credited member's session open at the purchase
# time on this account, else to the session of the PPV message it unlocked when that member
# sent it, else to no session ("outside shifts").
PLACED = f"""
WITH a AS ({ATTRIBUTED.format(where=IN_RANGE)}), placed AS (
    SELECT a.id, a.credited_to_id, a.amount_cents,
           COALESCE(open_then.id, pm.work_session_id) AS session_id
    FROM a
    LEFT JOIN LATERAL (
        SELECT ws.id FROM {SESSION} ws
        WHERE ws.account_id = %(account)s AND ws.user_id = a.credited_to_id
          AND ws.started_at <= a.purchased_at
          AND (ws.ended_at IS NULL OR ws.ended_at > a.purchased_at)
        ORDER BY ws.started_at DESC LIMIT 1
    ) open_then ON TRUE
    LEFT JOIN {MESSAGE} pm ON pm.id = a.message_id AND pm.sent_by_id = a.credited_to_id
    WHERE a.credited_to_id IS NOT NULL
)
"""  # noqa: S608

CREDITED = (
    PLACED
    + f"""
SELECT p.credited_to_id, s.id, s.started_at, s.ended_at, COUNT(*), SUM(p.amount_cents)
FROM placed p LEFT JOIN {SESSION} s ON s.id = p.session_id
GROUP BY 1, 2, 3, 4
"""  # noqa: S608
)


_PERIODS = (
    "unnest(%(accounts)s::bigint[], %(starts)s::timestamptz[], %(ends)s::timestamptz[])"
    " AS acc(id, start_at, end_at)"
)


def _for_accounts(sql: str) -> str:
    """One account's statement run for several at once, each over its own period: the
    statement becomes a LATERAL over the (account, start, end) triples, its rows led by the
    account id. One statement whatever the number of accounts (the all-accounts payroll)."""
    inner = (
        sql.replace("%(account)s", "acc.id")
        .replace("%(start)s", "acc.start_at")
        .replace("%(end)s", "acc.end_at")
    )
    # Fixed statements of this module only, never input.
    return f"SELECT acc.id, q.* FROM {_PERIODS} CROSS JOIN LATERAL ({inner}) q"  # noqa: S608


SESSIONS_MANY = _for_accounts(SESSIONS)
SENT_MANY = _for_accounts(SENT)
REPLIES_MANY = _for_accounts(REPLIES)
CREDITED_MANY = _for_accounts(CREDITED)


@dataclass(frozen=True)
class AccountPeriod:
    """An account and the [start, end) of a period in its own time zone."""

    account_id: int
    start: datetime
    end: datetime


@dataclass(frozen=True)
class SessionRow:
    account_id: int
    session_id: int
    user_id: int
    started_at: datetime
    ended_at: datetime | None
    end_reason: str
    worked_seconds: float  # inside the period


@dataclass(frozen=True)
class SentTotals:
    account_id: int
    user_id: int
    session_id: int | None
    sent: int
    ppv_sent: int
    ppv_unlocked: int


@dataclass(frozen=True)
class ReplyTotals:
    account_id: int
    user_id: int
    session_id: int | None
    member_total: bool  # the member's row over every session (and none)
    replies: int
    fans: int
    median_seconds: float | None


@dataclass(frozen=True)
class CreditTotals:
    account_id: int
    user_id: int
    session_id: int | None
    session_started_at: datetime | None
    session_ended_at: datetime | None
    purchases: int
    cents: int


def _periods(periods: list[AccountPeriod]) -> dict[str, Any]:
    return {
        "accounts": [p.account_id for p in periods],
        "starts": [p.start for p in periods],
        "ends": [p.end for p in periods],
    }


def sessions(*, periods: list[AccountPeriod], now: datetime) -> list[SessionRow]:
    """The accounts' work sessions that overlap their periods, with their worked time inside
    it (an open session counts up to ``now``)."""
    return [
        SessionRow(account, sid, user, started, ended, reason, float(seconds))
        for account, sid, user, started, ended, reason, seconds in _rows(
            SESSIONS_MANY, {**_periods(periods), "now": now}
        )
    ]


def sent_totals(*, periods: list[AccountPeriod]) -> list[SentTotals]:
    return [
        SentTotals(account, user, session, int(n), int(ppv), int(unlocked))
        for account, user, session, n, ppv, unlocked in _rows(SENT_MANY, _periods(periods))
    ]


def reply_totals(*, periods: list[AccountPeriod], lookback: timedelta) -> list[ReplyTotals]:
    params = {**_periods(periods), "lookback": lookback}
    return [
        ReplyTotals(account, user, session, bool(total), int(n), int(fans), float(median))
        for account, user, session, total, n, fans, median in _rows(REPLIES_MANY, params)
    ]


def credit_totals(*, periods: list[AccountPeriod], window: timedelta) -> list[CreditTotals]:
    params = {**_periods(periods), "window": window}
    return [
        CreditTotals(account, user, session, started, ended, int(n), int(cents))
        for account, user, session, started, ended, n, cents in _rows(CREDITED_MANY, params)
    ]


# --- The agency overview -----------------------------------------------------------------------

OVERVIEW = f"""
SELECT acc.id, w.waiting, o.oldest, od.overdue, un.unread, q.queued, rev.today, rev.week,
       ci.names
FROM unnest(%(accounts)s::bigint[], %(todays)s::timestamptz[], %(weeks)s::timestamptz[])
     AS acc(id, today, week)
JOIN {ACCOUNT} ca ON ca.id = acc.id
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS waiting FROM (
        SELECT 1 FROM {CONVERSATION} c
        WHERE c.account_id = acc.id AND c.waiting_since IS NOT NULL AND c.snoozed_at IS NULL
        LIMIT %(cap)s
    ) x
) w
LEFT JOIN LATERAL (
    SELECT c.waiting_since AS oldest FROM {CONVERSATION} c
    WHERE c.account_id = acc.id AND c.waiting_since IS NOT NULL AND c.snoozed_at IS NULL
    ORDER BY c.waiting_since LIMIT 1
) o ON TRUE
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS overdue FROM (
        -- Against the account's first-reply targets, the VIP one for big spenders, as the
        -- inbox's time-left badges count them (crm/response_targets.py).
        SELECT 1 FROM {CONVERSATION} c
        JOIN {FAN} f ON f.id = c.fan_id
        WHERE c.account_id = acc.id AND c.waiting_since IS NOT NULL AND c.snoozed_at IS NULL
          AND c.waiting_since < %(now)s - make_interval(secs => CASE
                WHEN ca.vip_reply_target_seconds < ca.reply_target_seconds
                     AND f.lifetime_spend_cents >= ca.vip_spend_threshold_cents
                THEN ca.vip_reply_target_seconds ELSE ca.reply_target_seconds END)
        LIMIT %(cap)s
    ) x
) od
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS unread FROM (
        SELECT 1 FROM {CONVERSATION} c
        WHERE c.account_id = acc.id AND c.unread_count > 0 AND c.snoozed_at IS NULL
        LIMIT %(cap)s
    ) x
) un
CROSS JOIN LATERAL (
    SELECT COUNT(*) AS queued FROM (
        SELECT 1 FROM {MESSAGE} m
        WHERE m.account_id = acc.id AND m.status IN ('queued', 'sending') AND m.status = 'queued'
        LIMIT %(cap)s
    ) x
) q
CROSS JOIN LATERAL (
    SELECT COALESCE(SUM(p.amount_cents) FILTER (WHERE p.purchased_at >= acc.today), 0) AS today,
           COALESCE(SUM(p.amount_cents), 0) AS week
    FROM {PURCHASE} p
    WHERE p.account_id = acc.id AND p.purchased_at >= acc.week AND p.purchased_at <= %(now)s
) rev
CROSS JOIN LATERAL (
    SELECT array_agg(u.username ORDER BY ws.started_at, ws.id) AS names
    FROM {SESSION} ws JOIN {USER} u ON u.id = ws.user_id
    WHERE ws.account_id = acc.id AND ws.ended_at IS NULL
) ci
"""  # noqa: S608


@dataclass(frozen=True)
class OverviewFigures:
    account_id: int
    waiting: int
    oldest_waiting_since: datetime | None
    overdue: int
    unread: int
    queued: int
    revenue_today_cents: int
    revenue_7d_cents: int
    clocked_in: list[str]


def overview(
    *,
    accounts: list[int],
    todays: list[datetime],
    weeks: list[datetime],
    now: datetime,
    cap: int,
) -> dict[int, OverviewFigures]:
    """Each account's live figures, in one statement whatever the number of accounts. The
    counts stop at ``cap`` (a tile says "999+"): an account with 50,000 waiting fans would
    otherwise cost a count of 50,000 index entries on every poll."""
    params = {
        "accounts": accounts,
        "todays": todays,
        "weeks": weeks,
        "now": now,
        "cap": cap,
    }
    found: dict[int, OverviewFigures] = {}
    for account, waiting, oldest, overdue, unread, queued, today, week, names in _rows(
        OVERVIEW, params
    ):
        found[int(account)] = OverviewFigures(
            account_id=int(account),
            waiting=int(waiting),
            oldest_waiting_since=oldest,
            overdue=int(overdue),
            unread=int(unread),
            queued=int(queued),
            revenue_today_cents=int(today),
            revenue_7d_cents=int(week),
            clocked_in=list(names or []),
        )
    return found
