"""Analytics reads, always scoped to an account the acting user is a member of.

Each figure is computed from crm's rows by ``analytics.queries`` (one statement each) and put
together here into the report's dataclasses (``analytics.reports``); the page, the CSV export
and the API all read the same objects, so a number is the same wherever it appears.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from analytics import queries, rollups
from analytics.histogram import histogram_add, histogram_median
from analytics.models import PurchaseCreditChange, RollupState
from analytics.periods import Period, bucket_start, buckets
from analytics.reports import (
    AttributionSummary,
    CampaignRow,
    ChatterRow,
    Kpi,
    PeriodFigures,
    Point,
    Report,
    Series,
)
from crm.errors import NotFoundError
from crm.models import CreatorAccount, Fan, Membership, Purchase
from crm.selectors import User, membership_get

ACTIVE_WINDOW = timedelta(days=30)
TALK_TODAY_LIMIT = 10
TOP_FANS = 10
ATTRIBUTION_PAGE_SIZE = 25
KINDS: tuple[str, ...] = ("subscription", "tip", "ppv")  # Purchase.Kind values, stack order


def tip_window() -> timedelta:
    return timedelta(hours=settings.ANALYTICS_TIP_ATTRIBUTION_HOURS)


def account_for_analytics(*, user: User, account_id: int) -> Membership:
    """The user's membership of the account (with the account); NotFoundError otherwise."""
    return membership_get(user=user, account_id=account_id)


# --- KPIs ----------------------------------------------------------------------------------------


def _kpis(current: PeriodFigures, previous: PeriodFigures) -> list[Kpi]:
    def kpi(key: str, label: str, unit: str, attr: str, help: str = "") -> Kpi:
        return Kpi(key, label, unit, getattr(current, attr), getattr(previous, attr), help)

    cards = [
        kpi("fans_total", "Total fans", "count", "fans_total", "Fans at the end of the range."),
        kpi(
            "fans_active",
            "Active fans",
            "count",
            "fans_active",
            "Fans who wrote or bought in the 30 days up to the end of the range.",
        ),
        kpi("fans_new", "New fans", "count", "fans_new", "Fans added in the range."),
        kpi("revenue_total", "Revenue", "cents", "revenue_total", "All purchases in the range."),
    ]
    for kind in KINDS:
        cards.append(
            Kpi(
                f"revenue_{kind}",
                f"Revenue: {Purchase.Kind(kind).label.lower()}",
                "cents",
                current.revenue[kind],
                previous.revenue[kind],
            )
        )
    cards += [
        kpi(
            "revenue_per_active_fan",
            "Revenue per active fan",
            "cents",
            "revenue_per_active_fan",
            "Revenue ÷ active fans.",
        ),
        kpi("messages_sent", "Messages sent", "count", "messages_sent", "Delivered to fans."),
        kpi("messages_received", "Messages received", "count", "messages_received"),
        kpi(
            "response_median_seconds",
            "Median first response",
            "seconds",
            "response_median_seconds",
            "From a fan's first unanswered message to a chatter's reply.",
        ),
        kpi("ppv_sent", "PPV sent", "count", "ppv_sent"),
        kpi("ppv_unlocked", "PPV unlocked", "count", "ppv_unlocked", "Of the PPVs sent."),
        kpi(
            "ppv_conversion",
            "PPV conversion",
            "ratio",
            "ppv_conversion",
            "Unlocked ÷ sent, for PPVs sent in the range.",
        ),
    ]
    return cards


# --- Series ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyRows:
    """Per-day figures over the previous period and the range together (one query each)."""

    revenue: dict[date, dict[str, int]]
    purchases: dict[date, int]
    fans_before: int
    new_fans: dict[date, int]
    sent: list[queries.SentRow]
    received: dict[date, int]


def _daily_rows(account_id: int, tz: str, start: datetime, end: datetime) -> DailyRows:
    revenue: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    purchases: dict[date, int] = defaultdict(int)
    for day, kind, cents, count in queries.purchases_by_day(
        account_id=account_id, tz=tz, start=start, end=end
    ):
        revenue[day][kind] += cents
        purchases[day] += count
    fans_before, new_fans = queries.fans_by_day(account_id=account_id, tz=tz, start=start, end=end)
    return DailyRows(
        revenue=revenue,
        purchases=purchases,
        fans_before=fans_before,
        new_fans=new_fans,
        sent=queries.sent_by_day(account_id=account_id, tz=tz, start=start, end=end),
        received=queries.received_by_day(account_id=account_id, tz=tz, start=start, end=end),
    )


def _figures(
    rows: DailyRows,
    period: Period,
    *,
    fans_active: int,
    responses: queries.ResponseRow | None,
) -> PeriodFigures:
    first, last = period.first_day, period.last_day

    def inside(day: date) -> bool:
        return first <= day <= last

    revenue = dict.fromkeys(KINDS, 0)
    for day, by_kind in rows.revenue.items():
        if inside(day):
            for kind, cents in by_kind.items():
                revenue[kind] += cents
    joined_before = rows.fans_before + sum(n for d, n in rows.new_fans.items() if d < first)
    new = sum(n for d, n in rows.new_fans.items() if inside(d))
    sent = [r for r in rows.sent if inside(r.day)]
    return PeriodFigures(
        fans_total=joined_before + new,
        fans_active=fans_active,
        fans_new=new,
        revenue=revenue,
        purchases=sum(n for d, n in rows.purchases.items() if inside(d)),
        messages_sent=sum(r.sent for r in sent),
        messages_received=sum(n for d, n in rows.received.items() if inside(d)),
        response_median_seconds=responses.median_seconds if responses else None,
        replies=responses.replies if responses else 0,
        ppv_sent=sum(r.ppv_sent for r in sent),
        ppv_unlocked=sum(r.ppv_unlocked for r in sent),
    )


def _series(
    rows: DailyRows, period: Period, interval: str, active: dict[date, int]
) -> dict[str, Series]:
    starts = buckets(period, interval)
    revenue = {b: dict.fromkeys(KINDS, 0) for b in starts}
    new_fans = dict.fromkeys(starts, 0)
    sent = dict.fromkeys(starts, 0)
    received = dict.fromkeys(starts, 0)
    for day, by_kind in rows.revenue.items():
        if period.first_day <= day <= period.last_day:
            for kind, cents in by_kind.items():
                revenue[bucket_start(day, interval)][kind] += cents
    for day, n in rows.new_fans.items():
        if period.first_day <= day <= period.last_day:
            new_fans[bucket_start(day, interval)] += n
    for row in rows.sent:
        if period.first_day <= row.day <= period.last_day:
            sent[bucket_start(row.day, interval)] += row.sent
    for day, n in rows.received.items():
        if period.first_day <= day <= period.last_day:
            received[bucket_start(day, interval)] += n
    return {
        "revenue": Series("revenue", "cents", KINDS, [Point(b, revenue[b]) for b in starts]),
        "fans": Series(
            "fans",
            "count",
            ("new", "active"),
            [Point(b, {"new": new_fans[b], "active": active.get(b, 0)}) for b in starts],
        ),
        "messages": Series(
            "messages",
            "count",
            ("sent", "received"),
            [Point(b, {"sent": sent[b], "received": received[b]}) for b in starts],
        ),
    }


TIMESERIES_METRICS = {
    # metric -> (series, part or "" for the total)
    "revenue": ("revenue", ""),
    "revenue_subscription": ("revenue", "subscription"),
    "revenue_tip": ("revenue", "tip"),
    "revenue_ppv": ("revenue", "ppv"),
    "new_fans": ("fans", "new"),
    "active_fans": ("fans", "active"),
    "messages_sent": ("messages", "sent"),
    "messages_received": ("messages", "received"),
}


# --- Chatters and attribution ------------------------------------------------------------------


def _people(account_id: int, extra_ids: set[int]) -> dict[int, tuple[str, str]]:
    """user id -> (username, role in the account or "former member")."""
    members = {
        m.user_id: (m.user.get_username(), m.role)
        for m in Membership.objects.filter(account_id=account_id).select_related("user")
    }
    missing = extra_ids - set(members)
    if missing:
        for pk, username in (
            get_user_model().objects.filter(pk__in=missing).values_list("pk", "username")
        ):
            members[pk] = (username, "former member")
    return members


# --- Fans to talk to ---------------------------------------------------------------------------


def _with_conversation(fans: QuerySet[Fan]) -> QuerySet[Fan]:
    return fans.select_related("conversation")


def fans_expiring(*, account_id: int, now: datetime, limit: int = TALK_TODAY_LIMIT) -> list[Fan]:
    """Active subscribers whose subscription ends within 7 days, biggest spenders first."""
    return list(
        _with_conversation(
            Fan.objects.filter(
                account_id=account_id,
                subscription_state=Fan.SubscriptionState.ACTIVE,
                subscription_expires_at__gte=now,
                subscription_expires_at__lt=now + timedelta(days=7),
            )
        ).order_by("-lifetime_spend_cents", "id")[:limit]
    )


def fans_lapsed_spenders(
    *, account_id: int, now: datetime, limit: int = TALK_TODAY_LIMIT
) -> list[Fan]:
    """Fans who spent at least ANALYTICS_BIG_SPENDER_CENTS but bought nothing in 30 days."""
    recent = Purchase.objects.filter(fan_id=OuterRef("pk"), purchased_at__gte=now - ACTIVE_WINDOW)
    return list(
        _with_conversation(
            Fan.objects.filter(
                account_id=account_id,
                lifetime_spend_cents__gte=settings.ANALYTICS_BIG_SPENDER_CENTS,
            ).filter(~Exists(recent))
        ).order_by("-lifetime_spend_cents", "id")[:limit]
    )


def top_fans(*, account_id: int, limit: int = TOP_FANS) -> list[Fan]:
    return list(
        _with_conversation(Fan.objects.filter(account_id=account_id)).order_by(
            "-lifetime_spend_cents", "id"
        )[:limit]
    )


# --- Campaigns ---------------------------------------------------------------------------------


def campaign_rows(*, account_id: int, period: Period) -> list[CampaignRow]:
    """Campaigns created in the range, from the campaigns app's rows (read by table name:
    analytics does not import campaigns)."""
    rows = queries.campaign_totals(
        account_id=account_id,
        start=period.start,
        end=period.end,
        window=timedelta(days=settings.ANALYTICS_CAMPAIGN_WINDOW_DAYS),
        campaign_table=apps.get_model("campaigns", "Campaign")._meta.db_table,
        recipient_table=apps.get_model("campaigns", "CampaignRecipient")._meta.db_table,
    )
    return [
        CampaignRow(
            campaign_id=cid,
            name=name,
            revenue_cents=cents,
            purchases=n,
            recipients=fans,
            window_cents=window_cents,
            control_fans=control_fans,
            control_cents=control_cents,
        )
        for cid, name, cents, n, fans, window_cents, control_fans, control_cents in rows
    ]


# --- The report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """What the report is made of, from the roll-ups (the page) or the raw rows (the check)."""

    daily: DailyRows
    active_now: int
    active_before: int
    active_buckets: dict[date, int]
    responses: list[queries.ResponseRow]
    credited: dict[int, tuple[int, int]]  # chatter -> (purchases, cents) in the range
    by_rule: dict[str, tuple[int, int]]  # rule -> (purchases, cents) in the range
    as_of: datetime
    spend_bands: list[int] | None = None  # kept with the roll-ups' state


def _inputs_raw(account: CreatorAccount, period: Period, interval: str) -> Inputs:
    """Straight from crm's rows (no roll-ups): the baseline the roll-ups must equal."""
    as_of = timezone.now()
    previous = period.previous()
    tz = period.zone_name
    active_now, active_before = queries.active_fans_two_windows(
        account_id=account.pk,
        first=(period.end - ACTIVE_WINDOW, period.end),
        second=(previous.end - ACTIVE_WINDOW, previous.end),
    )
    credited: dict[int, tuple[int, int]] = {}
    by_rule: dict[str, tuple[int, int]] = {}
    for user, rule, n, cents in queries.attribution_totals(
        account_id=account.pk, start=period.start, end=period.end, window=tip_window()
    ):
        count, amount = by_rule.get(rule, (0, 0))
        by_rule[rule] = (count + n, amount + cents)
        if user is not None:
            count, amount = credited.get(user, (0, 0))
            credited[user] = (count + n, amount + cents)
    return Inputs(
        daily=_daily_rows(account.pk, tz, previous.start, period.end),
        active_now=active_now,
        active_before=active_before,
        active_buckets=queries.active_fans_by_bucket(
            account_id=account.pk, tz=tz, interval=interval, start=period.start, end=period.end
        ),
        responses=queries.responses(
            account_id=account.pk,
            start=previous.start,
            split=period.start,
            end=period.end,
            lookback=timedelta(days=settings.ANALYTICS_RESPONSE_LOOKBACK_DAYS),
        ),
        credited=credited,
        by_rule=by_rule,
        as_of=as_of,
    )


def _inputs_rollup(
    account: CreatorAccount, period: Period, interval: str, state: RollupState
) -> Inputs:
    """From the per-day roll-ups: about 1,000 small rows for 90 days, whatever the account's
    size. Medians come from the response-time buckets (within ±5 % of the exact one)."""
    previous = period.previous()
    revenue: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(KINDS, 0))
    purchases: dict[date, int] = defaultdict(int)
    new_fans: dict[date, int] = {}
    received: dict[date, int] = {}
    sent: list[queries.SentRow] = []
    histograms: dict[tuple[bool, int | None], list[int]] = defaultdict(list)
    replies: dict[tuple[bool, int | None], int] = defaultdict(int)
    credited: dict[int, tuple[int, int]] = {}
    by_rule: dict[str, tuple[int, int]] = {}
    fans_before = 0
    # The account's rows of both periods; chatters' rows of the range only (the previous
    # period's chatter figures are not shown, and its totals are on the account rows).
    rows = queries.rollup_rows(
        account_id=account.pk,
        low=previous.first_day,
        first=period.first_day,
        last=period.last_day,
    )
    account_sent: dict[date, tuple[int, int, int]] = {}
    chatter_sent: dict[date, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (
        day, user, r_sub, r_tip, r_ppv, n_purchases, n_new, n_sent, n_received, n_ppv,
        n_unlocked, n_replies, histogram, credited_cents, credited_n, rules,
    ) in rows:  # fmt: skip
        if day is None:  # the fans who joined before the previous period
            fans_before = n_new
            continue
        current = day >= period.first_day
        if user is None:
            revenue[day] = {"subscription": r_sub, "tip": r_tip, "ppv": r_ppv}
            purchases[day] = n_purchases
            if n_new:
                new_fans[day] = n_new
            if n_received:
                received[day] = n_received
            account_sent[day] = (n_sent, n_ppv, n_unlocked)
            if current and rules:
                for rule, (n, cents) in json.loads(rules).items():
                    count, amount = by_rule.get(rule, (0, 0))
                    by_rule[rule] = (count + n, amount + cents)
        else:
            sent.append(queries.SentRow(day, user, n_sent, n_ppv, n_unlocked))
            totals = chatter_sent[day]
            totals[0] += n_sent
            totals[1] += n_ppv
            totals[2] += n_unlocked
            if current:
                count, amount = credited.get(user, (0, 0))
                credited[user] = (count + credited_n, amount + credited_cents)
        if n_replies and (user is None or current):
            key = (current, user)
            histograms[key] = histogram_add(histograms[key], histogram)
            replies[key] += n_replies
    for day, (n_sent, n_ppv, n_unlocked) in account_sent.items():
        chatters = chatter_sent.get(day, [0, 0, 0])
        rest = (n_sent - chatters[0], n_ppv - chatters[1], n_unlocked - chatters[2])
        if any(rest):  # campaigns and people no longer known
            sent.append(queries.SentRow(day, None, *rest))
    responses = [
        queries.ResponseRow(
            current, user, user is None, replies[(current, user)], histogram_median(hist)
        )
        for (current, user), hist in histograms.items()
    ]
    active_now, active_before, active_buckets = _active_from_gaps(account.pk, period, interval)
    return Inputs(
        daily=DailyRows(
            revenue=revenue,
            purchases=purchases,
            fans_before=fans_before,
            new_fans=new_fans,
            sent=sent,
            received=received,
        ),
        active_now=active_now,
        active_before=active_before,
        active_buckets=active_buckets,
        responses=responses,
        credited=credited,
        by_rule=by_rule,
        as_of=state.refreshed_at,
        spend_bands=state.spend_bands,
    )


def _active_from_gaps(
    account_id: int, period: Period, interval: str
) -> tuple[int, int, dict[date, int]]:
    """Distinct active fans of the two 30-day windows and of each chart bucket: a fan counts
    in [a, b] once, on the row of their last active day in it (day <= b < next_day)."""
    previous = period.previous()
    days = ACTIVE_WINDOW.days - 1
    now_count, before_count, found = queries.active_from_gaps(
        account_id=account_id,
        windows=[
            (period.last_day - timedelta(days=days), period.last_day),
            (previous.last_day - timedelta(days=days), previous.last_day),
        ],
        interval=interval,
        first_day=period.first_day,
        last_day=period.last_day,
    )
    per_bucket = dict.fromkeys(buckets(period, interval), 0)
    per_bucket.update(found)
    return now_count, before_count, per_bucket


def _spend_bands(account_id: int, kept: list[int] | None) -> list[tuple[str, int]]:
    """Fans per lifetime-spend band: as of the roll-ups' refresh (kept with their state), or
    counted now (the raw report, or before the first refresh)."""
    if kept is None or len(kept) != len(queries.SPEND_BANDS):
        return queries.spend_distribution(account_id=account_id)
    return [(label, n) for (label, _, _), n in zip(queries.SPEND_BANDS, kept, strict=True)]


def report_compute(
    *,
    account: CreatorAccount,
    period: Period,
    interval: str,
    with_fans: bool = True,
    source: str = "rollup",
) -> Report:
    """Every figure of the page for the range and its previous period.

    The caller checked membership (``account_for_analytics``). ``source="rollup"`` (the page,
    the API and the export) reads the per-day roll-ups; ``"raw"`` computes the same figures
    from crm's rows, for the equality test and the benchmark's baseline. Roll-ups that do not
    fit the account yet (never built, another time zone) are not read: the report comes from
    the raw rows then (exact, slower), never from an empty table as zeros; ``freshness`` says
    which it was, and whether the roll-ups read are behind.
    """
    previous = period.previous()
    freshness = rollups.ROLLUPS_CURRENT
    if source == "raw":
        inputs = _inputs_raw(account, period, interval)
    else:
        state = rollups.rollup_state(account_id=account.pk)
        freshness = rollups.rollups_freshness(account=account, state=state)
        if state is None or freshness == rollups.ROLLUPS_MISSING:
            inputs = _inputs_raw(account, period, interval)
        else:
            inputs = _inputs_rollup(account, period, interval, state)
    everyone = {r.current: r for r in inputs.responses if r.everyone}
    figures = _figures(
        inputs.daily, period, fans_active=inputs.active_now, responses=everyone.get(True)
    )
    previous_figures = _figures(
        inputs.daily, previous, fans_active=inputs.active_before, responses=everyone.get(False)
    )
    total = (
        sum(n for n, _ in inputs.by_rule.values()),
        sum(c for _, c in inputs.by_rule.values()),
    )
    credited_total = (
        sum(n for n, _ in inputs.credited.values()),
        sum(c for _, c in inputs.credited.values()),
    )
    summary = AttributionSummary(
        by_rule=inputs.by_rule,
        unattributed=(total[0] - credited_total[0], total[1] - credited_total[1]),
        total=total,
    )
    return Report(
        account=account,
        period=period,
        previous=previous,
        interval=interval,
        computed_at=inputs.as_of,
        figures=figures,
        previous_figures=previous_figures,
        kpis=_kpis(figures, previous_figures),
        series=_series(inputs.daily, period, interval, inputs.active_buckets),
        chatters=_chatters(account, period, inputs),
        attribution=summary,
        spend_bands=_spend_bands(account.pk, inputs.spend_bands) if with_fans else [],
        top_fans=top_fans(account_id=account.pk) if with_fans else [],
        freshness=freshness,
    )


def _chatters(account: CreatorAccount, period: Period, inputs: Inputs) -> list[ChatterRow]:
    account_id = account.pk
    by_user: dict[int, ChatterRow] = {}
    # "% answered within target" is counted from the messages on every report (roll-ups or
    # not): it follows the account's current targets and fans' spend, which no day row holds.
    within = [
        w
        for w in queries.replies_within_target(
            account_id=account_id,
            start=period.start,
            end=period.end,
            lookback=timedelta(days=settings.ANALYTICS_RESPONSE_LOOKBACK_DAYS),
            seconds=account.reply_target_seconds,
            vip_seconds=account.vip_reply_target_seconds,
            vip_threshold_cents=account.vip_spend_threshold_cents,
        )
        if not w.everyone and w.sent_by_id is not None
    ]
    active_ids = {r.sent_by_id for r in inputs.daily.sent if r.sent_by_id is not None}
    active_ids |= {r.sent_by_id for r in inputs.responses if r.sent_by_id is not None}
    active_ids |= set(inputs.credited)
    active_ids |= {w.sent_by_id for w in within if w.sent_by_id is not None}
    people = _people(account_id, active_ids)

    def row(user_id: int) -> ChatterRow:
        if user_id not in by_user:
            name, role = people.get(user_id, (f"user {user_id}", "former member"))
            by_user[user_id] = ChatterRow(user_id=user_id, name=name, role=role)
        return by_user[user_id]

    for user_id, (_, role) in people.items():
        if role == Membership.Role.CHATTER:
            row(user_id)
    for sent in inputs.daily.sent:
        if sent.sent_by_id is not None and period.first_day <= sent.day <= period.last_day:
            r = row(sent.sent_by_id)
            r.messages_sent += sent.sent
            r.ppv_sent += sent.ppv_sent
            r.ppv_unlocked += sent.ppv_unlocked
    for resp in inputs.responses:
        if resp.current and not resp.everyone and resp.sent_by_id is not None:
            r = row(resp.sent_by_id)
            r.replies = resp.replies
            r.response_median_seconds = resp.median_seconds
    for user_id, (n, cents) in inputs.credited.items():
        r = row(user_id)
        r.revenue_cents += cents
        r.purchases += n
    for w in within:
        assert w.sent_by_id is not None
        r = row(w.sent_by_id)
        r.target_replies, r.target_within = w.replies, w.within
    return sorted(by_user.values(), key=lambda r: (-r.revenue_cents, -r.messages_sent, r.name))


def attributed_purchases(
    *, account: CreatorAccount, period: Period, page: int = 1
) -> tuple[list[queries.AttributedPurchase], bool]:
    """One page of the range's purchases, newest first, each with whom it is credited to and
    by which rule; and whether there is a next page."""
    page = max(page, 1)
    rows = queries.attribution_page(
        account_id=account.pk,
        start=period.start,
        end=period.end,
        window=tip_window(),
        limit=ATTRIBUTION_PAGE_SIZE + 1,
        offset=(page - 1) * ATTRIBUTION_PAGE_SIZE,
    )
    return rows[:ATTRIBUTION_PAGE_SIZE], len(rows) > ATTRIBUTION_PAGE_SIZE


def attributed_purchase_get(
    *, account: CreatorAccount, purchase_id: int
) -> queries.AttributedPurchase:
    found = queries.attribution_one(
        account_id=account.pk, purchase_id=purchase_id, window=tip_window()
    )
    if found is None:
        raise NotFoundError("Purchase not found.", code="purchase_not_found")
    return found


def credit_changes(*, account: CreatorAccount, limit: int = 20) -> list[PurchaseCreditChange]:
    """The latest reassignments of the account (the audit trail), newest first."""
    return list(
        PurchaseCreditChange.objects.filter(account_id=account.pk)
        .select_related("from_user", "to_user", "changed_by", "purchase")
        .order_by("-changed_at", "-id")[:limit]
    )


def fans_by_id(*, account: CreatorAccount, ids: set[int]) -> dict[int, Fan]:
    return {
        f.pk: f for f in _with_conversation(Fan.objects.filter(account_id=account.pk, pk__in=ids))
    }


def usernames(*, ids: set[int]) -> dict[int, str]:
    return dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
