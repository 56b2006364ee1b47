"""Keeping the per-day roll-ups equal to the raw rows.

``rollup_recompute`` rebuilds an account's days from the raw queries (``analytics.queries``,
the same statements the raw report runs), so a roll-up can only ever hold what those queries
say. ``rollups_refresh`` (the Celery task, every minute) finds the days that changed since its
last run from the new rows of the messages, purchases and fans tables (by id) and from
messages whose status changed, and recomputes those days. The reassignment service
recomputes its purchase's day at once.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from analytics import queries
from analytics.histogram import BUCKETS
from analytics.models import (
    NO_NEXT_DAY,
    ActiveGap,
    DayRollup,
    FanActiveDay,
    RollupCursor,
    RollupState,
)
from analytics.periods import Period, local_today
from crm.models import CreatorAccount, Fan, Message, Purchase
from crm.zones import zone_named

ACCOUNT = CreatorAccount._meta.db_table
GAP = ActiveGap._meta.db_table
ACTIVE_DAY = FanActiveDay._meta.db_table
# Ids handed out but committed after a later id was read are caught by reading this far back.
CURSOR_OVERLAP = 2_000
REFRESH_BATCH = 100_000
# A message whose status changed this recently marks its day again (sends finish in seconds).
STATUS_SLACK = timedelta(minutes=5)
LOCK_KEY = 0x616E_6C79  # "anly": one refresh at a time


def _zone_name(account: CreatorAccount) -> str:
    return str(zone_named(account.time_zone))


# A rebuild groups a big account's whole history at once; with the default 4 MB PostgreSQL's
# hash aggregates spill to disk pass after pass (minutes instead of seconds on 1M messages).
RECOMPUTE_WORK_MEM = "64MB"


def _account_lock(account_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_KEY, account_id])
        cursor.execute("SELECT set_config('work_mem', %s, true)", [RECOMPUTE_WORK_MEM])


@transaction.atomic
def rollup_recompute(*, account: CreatorAccount, first_day: date, last_day: date) -> None:
    """Recompute the account's roll-ups for local days ``first_day``..``last_day`` from the raw
    rows. Takes the account's advisory lock, so the task and a reassignment never interleave.

    It never creates the account's state: only ``account_rollup_rebuild`` does, once every day
    is built, so a state means whole roll-ups (a reassignment before the first build used to
    create one over a single day, and the page then read that day as the account's history)."""
    _account_lock(account.pk)
    _days_recompute(account, first_day, last_day)
    RollupState.objects.filter(account_id=account.pk).update(
        spend_bands=[n for _, n in queries.spend_distribution(account_id=account.pk)]
    )


def _days_recompute(account: CreatorAccount, first_day: date, last_day: date) -> None:
    tz = _zone_name(account)
    period = Period(first_day=first_day, last_day=last_day, zone_name=tz)
    start, end = period.start, period.end
    rows: dict[tuple[date, int | None], DayRollup] = {}

    def row(day: date, user_id: int | None) -> DayRollup:
        key = (day, user_id)
        if key not in rows:
            rows[key] = DayRollup(
                account_id=account.pk, day=day, user_id=user_id, response_histogram=[], by_rule={}
            )
        return rows[key]

    for day, kind, cents, count in queries.purchases_by_day(
        account_id=account.pk, tz=tz, start=start, end=end
    ):
        r = row(day, None)
        setattr(r, f"revenue_{kind}", getattr(r, f"revenue_{kind}") + cents)
        r.purchases += count
    for day, count in queries.fans_by_day(account_id=account.pk, tz=tz, start=start, end=end)[
        1
    ].items():
        row(day, None).new_fans = count
    for sent in queries.sent_by_day(account_id=account.pk, tz=tz, start=start, end=end):
        targets = [row(sent.day, None)]
        if sent.sent_by_id is not None:
            targets.append(row(sent.day, sent.sent_by_id))
        for r in targets:
            r.messages_sent += sent.sent
            r.ppv_sent += sent.ppv_sent
            r.ppv_unlocked += sent.ppv_unlocked
    for day, count in queries.received_by_day(
        account_id=account.pk, tz=tz, start=start, end=end
    ).items():
        row(day, None).messages_received = count
    lookback = timedelta(days=settings.ANALYTICS_RESPONSE_LOOKBACK_DAYS)
    for day, user_id, bucket, count in queries.response_buckets(
        account_id=account.pk, tz=tz, start=start, end=end, lookback=lookback
    ):
        targets = [row(day, None)]
        if user_id is not None:
            targets.append(row(day, user_id))
        for r in targets:
            if not r.response_histogram:
                r.response_histogram = [0] * BUCKETS
            r.response_histogram[bucket] += count
            r.replies += count
    window = timedelta(hours=settings.ANALYTICS_TIP_ATTRIBUTION_HOURS)
    for day, user_id, rule, count, cents in queries.attribution_by_day(
        account_id=account.pk, tz=tz, start=start, end=end, window=window
    ):
        total = row(day, None)
        n, c = total.by_rule.get(rule, (0, 0))
        total.by_rule[rule] = [n + count, c + cents]
        if user_id is not None:
            total.credited_purchases += count
            total.credited_cents += cents
            mine = row(day, user_id)
            mine.credited_purchases += count
            mine.credited_cents += cents

    for r in rows.values():  # stored up to the last bucket used: less to read back
        while r.response_histogram and not r.response_histogram[-1]:
            r.response_histogram.pop()
    DayRollup.objects.filter(account_id=account.pk, day__gte=first_day, day__lte=last_day).delete()
    DayRollup.objects.bulk_create(rows.values(), batch_size=2_000)
    _active_days_replace(
        account_id=account.pk,
        first_day=first_day,
        last_day=last_day,
        found=queries.fan_active_days(account_id=account.pk, tz=tz, start=start, end=end),
    )


PAIRS = f"""
SELECT day, next_day, COUNT(*) FROM (
    SELECT day, COALESCE(lead(day) OVER (PARTITION BY fan_id ORDER BY day), %(none)s::date)
           AS next_day
    FROM {ACTIVE_DAY} WHERE fan_id = ANY(%(fans)s)
) pairs GROUP BY 1, 2
"""  # noqa: S608


def _pairs(fan_ids: list[int]) -> dict[tuple[date, date], int]:
    if not fan_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(PAIRS, {"fans": fan_ids, "none": NO_NEXT_DAY})
        return {(d, n): int(c) for d, n, c in cursor.fetchall()}


def _active_days_replace(
    *, account_id: int, first_day: date, last_day: date, found: list[tuple[int, date]]
) -> None:
    """Replace the fans' active days in the range, and move the gap counts of every fan whose
    days changed from their old pairs to their new ones."""
    existing = set(
        FanActiveDay.objects.filter(
            account_id=account_id, day__gte=first_day, day__lte=last_day
        ).values_list("fan_id", "day")
    )
    wanted = set(found)
    if existing == wanted:
        return
    fans = sorted({f for f, _ in existing ^ wanted})
    before = _pairs(fans)
    gone = existing - wanted
    if gone:
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {ACTIVE_DAY} WHERE (fan_id, day) IN "  # noqa: S608
                "(SELECT * FROM unnest(%s::bigint[], %s::date[]))",
                [[f for f, _ in gone], [d for _, d in gone]],
            )
    FanActiveDay.objects.bulk_create(
        [FanActiveDay(account_id=account_id, fan_id=f, day=d) for f, d in wanted - existing],
        batch_size=5_000,
    )
    after = _pairs(fans)
    delta: dict[tuple[date, date], int] = defaultdict(int)
    for key, n in before.items():
        delta[key] -= n
    for key, n in after.items():
        delta[key] += n
    changes = [(d, n, c) for (d, n), c in delta.items() if c]
    if not changes:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {GAP} (account_id, day, next_day, fans)
            SELECT %s, d, n, c FROM unnest(%s::date[], %s::date[], %s::int[]) AS t(d, n, c)
            ON CONFLICT (account_id, day, next_day) DO UPDATE SET fans = {GAP}.fans + EXCLUDED.fans
            """,  # noqa: S608
            [
                account_id,
                [d for d, _, _ in changes],
                [n for _, n, _ in changes],
                [c for _, _, c in changes],
            ],
        )
        cursor.execute(f"DELETE FROM {GAP} WHERE account_id = %s AND fans = 0", [account_id])  # noqa: S608


def _history_start(account: CreatorAccount) -> date:
    """The account's first local day with any row (today when it has none)."""
    zone = zone_named(account.time_zone)
    firsts = [
        Fan.objects.filter(account_id=account.pk)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first(),
        Message.objects.filter(account_id=account.pk)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first(),
        Purchase.objects.filter(account_id=account.pk)
        .order_by("purchased_at")
        .values_list("purchased_at", flat=True)
        .first(),
    ]
    moments = [m for m in firsts if m is not None]
    today = local_today(zone)
    return min([m.astimezone(zone).date() for m in moments] + [today])


def account_rollup_rebuild(*, account: CreatorAccount) -> None:
    """Every day of the account from its first row to today (new accounts, a time zone change,
    after a bulk load)."""
    with transaction.atomic():
        _account_lock(account.pk)
        DayRollup.objects.filter(account_id=account.pk).delete()
        FanActiveDay.objects.filter(account_id=account.pk).delete()
        ActiveGap.objects.filter(account_id=account.pk).delete()
        today = local_today(zone_named(account.time_zone))
        _days_recompute(account, _history_start(account), today)
        RollupState.objects.update_or_create(
            account_id=account.pk,
            defaults={
                "time_zone": account.time_zone,
                "refreshed_at": timezone.now(),
                "spend_bands": [n for _, n in queries.spend_distribution(account_id=account.pk)],
            },
        )


# --- The refresh task's work ---------------------------------------------------------------------


def _cursor(table: str) -> RollupCursor:
    """The table's cursor; a new one starts at the table's current end (accounts without a
    roll-up state yet are rebuilt whole by the same run, so nothing before it is missed)."""
    cursor = RollupCursor.objects.select_for_update().filter(table=table).first()
    if cursor is None:
        with connection.cursor() as db:
            db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
            (high,) = db.fetchone() or (0,)
        cursor = RollupCursor.objects.create(
            table=table,
            last_id=int(high),
            window_count=_count_between(table, max(int(high) - CURSOR_OVERLAP, 0), int(high)),
        )
    return cursor


def _count_between(table: str, low: int, high: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {table} WHERE id > %s AND id <= %s",  # noqa: S608
            [low, high],
        )
        (count,) = cursor.fetchone() or (0,)
    return int(count)


def _new_ids(table: str, after: int) -> int:
    """The highest id of the next batch after ``after`` (``after`` when there is none)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT MAX(id) FROM (SELECT id FROM {table} WHERE id > %s "  # noqa: S608
            "ORDER BY id LIMIT %s) batch",
            [after, REFRESH_BATCH],
        )
        (high,) = cursor.fetchone() or (None,)
    return int(high) if high is not None else after


DIRTY_MESSAGES = f"""
SELECT m.account_id, (m.created_at AT TIME ZONE a.time_zone)::date,
       (m.sent_at AT TIME ZONE a.time_zone)::date, m.direction,
       m.created_at < now() - interval '1 day'
FROM {queries.MESSAGE} m JOIN {ACCOUNT} a ON a.id = m.account_id
WHERE m.id > %s AND m.id <= %s
GROUP BY 1, 2, 3, 4, 5
"""  # noqa: S608

DIRTY_SENT = f"""
SELECT m.account_id, (m.sent_at AT TIME ZONE a.time_zone)::date,
       (m.created_at AT TIME ZONE a.time_zone)::date
FROM {queries.MESSAGE} m JOIN {ACCOUNT} a ON a.id = m.account_id
WHERE m.account_id = ANY(%s) AND m.status IN ('sent', 'failed') AND m.updated_at >= %s
GROUP BY 1, 2, 3
"""  # noqa: S608

DIRTY_PURCHASES = f"""
SELECT p.account_id, (p.purchased_at AT TIME ZONE a.time_zone)::date,
       (m.sent_at AT TIME ZONE a.time_zone)::date
FROM {queries.PURCHASE} p JOIN {ACCOUNT} a ON a.id = p.account_id
LEFT JOIN {queries.MESSAGE} m ON m.id = p.message_id
WHERE p.id > %s AND p.id <= %s
GROUP BY 1, 2, 3
"""  # noqa: S608

DIRTY_FANS = f"""
SELECT f.account_id, (f.created_at AT TIME ZONE a.time_zone)::date
FROM {queries.FAN} f JOIN {ACCOUNT} a ON a.id = f.account_id
WHERE f.id > %s AND f.id <= %s
GROUP BY 1, 2
"""  # noqa: S608


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _ranges(days: set[date]) -> list[tuple[date, date]]:
    """Consecutive runs of days, so each run is one recompute."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def rollups_refresh() -> dict[str, int]:
    """Bring every account's roll-ups up to date; returns what it did (for logs and tests).

    Runs under a global advisory lock (a second run waits); each account's days are recomputed
    in their own transaction. Accounts without a state yet, or whose time zone changed, are
    rebuilt whole. Called by ``analytics.tasks.rollups_refresh_task`` every minute.
    """
    started = timezone.now()
    lookback = settings.ANALYTICS_RESPONSE_LOOKBACK_DAYS
    dirty: dict[int, set[date]] = defaultdict(set)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, 0)", [LOCK_KEY])
        cursors = {name: _cursor(name) for name in (queries.MESSAGE, queries.PURCHASE, queries.FAN)}
        previous = {name: c.last_id for name, c in cursors.items()}
        highs = {name: _new_ids(name, c.last_id) for name, c in cursors.items()}
        lows = {}
        for name, c in cursors.items():
            # The stretch before the cursor is read again only when a row has appeared in it
            # since (a transaction that took its id earlier and committed after the last read).
            window = max(c.last_id - CURSOR_OVERLAP, 0)
            late = _count_between(name, window, c.last_id) != c.window_count
            lows[name] = window if late else c.last_id

        for account_id, created, sent, direction, late in _fetch(
            DIRTY_MESSAGES, [lows[queries.MESSAGE], highs[queries.MESSAGE]]
        ):
            dirty[account_id].add(created)
            if sent is not None:
                dirty[account_id].add(sent)
            if direction == Message.Direction.OUT:
                dirty[account_id].add(created + timedelta(days=1))  # tips it may now earn
            if late:  # an older message arrived: replies after it may answer it
                dirty[account_id].update(created + timedelta(days=i) for i in range(lookback + 1))
        for account_id, bought, ppv_sent_day in _fetch(
            DIRTY_PURCHASES, [lows[queries.PURCHASE], highs[queries.PURCHASE]]
        ):
            dirty[account_id].add(bought)
            if ppv_sent_day is not None:
                dirty[account_id].add(ppv_sent_day)
        for account_id, joined in _fetch(DIRTY_FANS, [lows[queries.FAN], highs[queries.FAN]]):
            dirty[account_id].add(joined)
        states = {s.account_id: s for s in RollupState.objects.all()}
        since = min((s.refreshed_at for s in states.values()), default=started) - STATUS_SLACK
        for account_id, sent, created in _fetch(DIRTY_SENT, [list(states), since]):
            dirty[account_id].add(created)
            if sent is not None:
                dirty[account_id].add(sent)
        for name, cursor_row in cursors.items():
            cursor_row.last_id = highs[name]
            cursor_row.window_count = _count_between(
                name, max(highs[name] - CURSOR_OVERLAP, 0), highs[name]
            )
            cursor_row.save(update_fields=["last_id", "window_count", "updated_at"])

        accounts = {a.pk: a for a in CreatorAccount.objects.all()}
        rebuilt = recomputed = 0
        for account_id, account in accounts.items():
            state = states.get(account_id)
            if state is None or state.time_zone != account.time_zone:
                account_rollup_rebuild(account=account)
                rebuilt += 1
                continue
            today = local_today(zone_named(account.time_zone))
            days = {d for d in dirty.get(account_id, set()) if d <= today}
            for first, last in _ranges(days):
                rollup_recompute(account=account, first_day=first, last_day=last)
                recomputed += (last - first).days + 1
        RollupState.objects.filter(account_id__in=[a for a in accounts if a in states]).update(
            refreshed_at=started
        )
    # A full batch was read somewhere: there may be more (the task runs again at once).
    more = any(highs[n] - previous[n] >= REFRESH_BATCH for n in highs)
    return {"rebuilt": rebuilt, "days": recomputed, "more": int(more)}


def rollup_state(*, account_id: int) -> RollupState | None:
    return RollupState.objects.filter(account_id=account_id).first()


# What a reader finds: roll-ups brought up to date lately; none that fit the account (never
# built, or cut in another time zone), so the figures must come from the raw rows; or roll-ups
# whose last refresh is older than a few missed runs (the worker or beat is down or behind).
ROLLUPS_CURRENT, ROLLUPS_MISSING, ROLLUPS_STALE = "current", "missing", "stale"
# The refresh runs every minute (analytics.tasks); five missed runs is not a slow one.
STALE_AFTER = timedelta(minutes=5)


def rollups_freshness(*, account: CreatorAccount, state: RollupState | None) -> str:
    if state is None or state.time_zone != account.time_zone:
        return ROLLUPS_MISSING
    if state.refreshed_at < timezone.now() - STALE_AFTER:
        return ROLLUPS_STALE
    return ROLLUPS_CURRENT


def as_of(*, account_id: int) -> datetime | None:
    state = rollup_state(account_id=account_id)
    return state.refreshed_at if state else None
