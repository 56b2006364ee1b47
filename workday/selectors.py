"""Workday reads, always scoped to what the acting user may see.

Review and overview cover the accounts where the user is an owner or a manager; "my reviews"
covers the user's own messages on accounts they still belong to; payroll is one account
(owners and managers) or every account the user owns.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from analytics.periods import Period
from analytics.selectors import tip_window
from crm.errors import ApplicationError, NotFoundError
from crm.models import CreatorAccount, Membership
from crm.selectors import User, managed_memberships, manager_membership_get
from crm.zones import zone_named
from workday import queries
from workday.models import MessageReview, PayRule, ReviewSettings

FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
CURSOR_MAX_LENGTH = 40
MY_REVIEWS_PAGE_SIZE = 50
# The overview's counts stop here: a tile shows "999+" (``OverviewTile.shown``).
OVERVIEW_COUNT_CAP = 1000


def _managing_or_403(memberships: list[Membership], action: str) -> None:
    if not memberships:
        raise ApplicationError(
            f"Only owners and managers can {action}.", code="permission_denied", status_code=403
        )


# --- Cursors -----------------------------------------------------------------------------------


def cursor_encode(moment: datetime, pk: int) -> str:
    return f"{int(moment.timestamp() * 1_000_000)}.{pk}"


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    """``<epoch microseconds>.<id>``; ApplicationError ``invalid_cursor`` when malformed."""
    try:
        if len(cursor) > CURSOR_MAX_LENGTH:
            raise ValueError(cursor)
        micros_text, pk_text = cursor.split(".", 1)
        pk = int(pk_text)
        moment = datetime.fromtimestamp(int(micros_text) / 1_000_000, tz=UTC)
        if not 0 <= pk < 2**63:
            raise ValueError(cursor)
    except (ValueError, OverflowError, OSError) as exc:
        raise ApplicationError(
            "The page cursor is not valid.", code="invalid_cursor", fields={"cursor": ["Invalid."]}
        ) from exc
    return moment, pk


# --- The review feed ---------------------------------------------------------------------------


FLAGS = {
    "repeated": "Same text to many fans",
    "low_price": "PPV below the minimum",
    "long_wait": "Long wait before the reply",
}


@dataclass(frozen=True)
class ReviewFilters:
    account_id: int | None = None
    chatter_id: int | None = None
    price: str = ""  # "", "paid" or "free"
    first_day: date | None = None
    last_day: date | None = None
    flag: str = ""  # a key of FLAGS, or "unreviewed"


@dataclass(frozen=True)
class ReviewItem:
    row: queries.FeedRow
    flags: list[str]

    @property
    def fan_name(self) -> str:
        return self.row.fan_display_name or self.row.fan_username


@dataclass(frozen=True)
class ReviewPage:
    items: list[ReviewItem]
    next_cursor: str | None
    memberships: list[Membership]


def _flags(row: queries.FeedRow) -> list[str]:
    flags = []
    if (row.repeated_fans or 0) > settings.COMPOSER_REPEATED_TEXT_MAX_FANS:
        flags.append("repeated")
    if 0 < row.price_cents < row.min_price_cents:
        flags.append("low_price")
    if row.reply_seconds is not None and row.reply_seconds > row.long_wait_seconds:
        flags.append("long_wait")
    return flags


def _local_bounds(account: CreatorAccount, first: date | None, last: date | None) -> tuple:
    zone = zone_named(account.time_zone)
    low = datetime.combine(first, time.min, tzinfo=zone) if first else FAR_PAST
    high = datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone) if last else FAR_FUTURE
    return low, high


def review_feed_page(
    *, user: User, filters: ReviewFilters, cursor: str = "", limit: int | None = None
) -> ReviewPage:
    """One page of the outgoing messages of the accounts the user manages, newest first
    (keyset on creation time and id). ApplicationError 403 for someone who manages none;
    NotFoundError for an ``account_id`` they do not manage."""
    limit = limit or settings.WORKDAY_REVIEW_PAGE_SIZE
    memberships = managed_memberships(user=user)
    _managing_or_403(memberships, "review messages")
    chosen = memberships
    if filters.account_id is not None:
        chosen = [m for m in memberships if m.account_id == filters.account_id]
        if not chosen:
            raise NotFoundError("Creator account not found.", code="account_not_found")
    keys: list[str] = []
    params: dict[str, object] = {"repeated_max": settings.COMPOSER_REPEATED_TEXT_MAX_FANS}
    if filters.chatter_id is not None:
        keys.append("chatter")
        params["chatter"] = filters.chatter_id
    if filters.price in ("paid", "free"):
        keys.append(filters.price)
    if filters.flag in (*FLAGS, "unreviewed"):
        keys.append(filters.flag)
    bounds = [_local_bounds(m.account, filters.first_day, filters.last_day) for m in chosen]
    rows = queries.review_feed(
        accounts=[m.account_id for m in chosen],
        lows=[low for low, _ in bounds],
        highs=[high for _, high in bounds],
        filters=keys,
        params=params,
        cursor=cursor_decode(cursor) if cursor else (FAR_FUTURE, 0),
        limit=limit + 1,
        window=timedelta(minutes=settings.COMPOSER_REPEATED_TEXT_WINDOW_MINUTES),
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = cursor_encode(rows[-1].created_at, rows[-1].message_id)
    return ReviewPage(
        items=[ReviewItem(row, _flags(row)) for row in rows],
        next_cursor=next_cursor,
        memberships=memberships,
    )


def reviewers_chatters(*, memberships: list[Membership]) -> list[tuple[int, str]]:
    """(user id, username) of every member of the given accounts, for the chatter filter."""
    return list(
        get_user_model()
        .objects.filter(memberships__account_id__in=[m.account_id for m in memberships])
        .distinct()
        .order_by("username")
        .values_list("pk", "username")
    )


@dataclass(frozen=True)
class MyReviewsPage:
    reviews: list[MessageReview]
    next_cursor: str | None


def my_reviews_page(
    *, user: User, cursor: str = "", limit: int = MY_REVIEWS_PAGE_SIZE
) -> MyReviewsPage:
    """Marks on the user's own messages, on accounts they are still a member of, newest
    first (keyset on ``message_review_chatter``)."""
    if not user.is_authenticated:
        return MyReviewsPage([], None)
    reviews = (
        MessageReview.objects.filter(
            chatter_id=cast(int, user.pk), account__memberships__user_id=cast(int, user.pk)
        )
        .select_related("message", "account", "reviewed_by", "message__conversation__fan")
        .order_by("-reviewed_at", "-id")
    )
    if cursor:
        moment, pk = cursor_decode(cursor)
        reviews = reviews.filter(reviewed_at__lte=moment).exclude(reviewed_at=moment, id__gte=pk)
    rows = list(reviews[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = cursor_encode(rows[-1].reviewed_at, rows[-1].pk)
    return MyReviewsPage(rows, next_cursor)


def review_unseen_count(*, user: User) -> int:
    if not user.is_authenticated:
        return 0
    return MessageReview.objects.filter(chatter_id=cast(int, user.pk), seen_at__isnull=True).count()


def review_settings_get(*, account_id: int) -> ReviewSettings:
    """The account's review thresholds (defaults when never saved; not written)."""
    found = ReviewSettings.objects.filter(account_id=account_id).first()
    return found or ReviewSettings(account_id=account_id)


# --- Shifts and pay ----------------------------------------------------------------------------


@dataclass
class ShiftFigures:
    """One work session's figures inside the period, or (``session_id`` None) the member's
    work outside any session: messages sent and sales credited while clocked out."""

    session_id: int | None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str = ""
    worked_seconds: float = 0.0
    messages: int = 0
    ppv_sent: int = 0
    ppv_unlocked: int = 0
    replies: int = 0
    fans_answered: int = 0
    median_response_seconds: float | None = None
    credited_purchases: int = 0
    credited_cents: int = 0

    @property
    def worked_hours(self) -> float:
        return self.worked_seconds / 3600


@dataclass
class MemberPay:
    account_id: int
    account_name: str
    user_id: int
    username: str
    role: str
    hourly_rate_cents: int = 0
    commission_percent: Decimal = Decimal(0)
    totals: ShiftFigures = field(default_factory=lambda: ShiftFigures(None))
    shifts: list[ShiftFigures] = field(default_factory=list)

    @property
    def hourly_rate(self) -> Decimal:
        return (Decimal(self.hourly_rate_cents) / 100).quantize(Decimal("0.01"))

    @property
    def hourly_pay_cents(self) -> int:
        cents = Decimal(self.hourly_rate_cents) * Decimal(self.totals.worked_seconds) / 3600
        return int(cents.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    @property
    def commission_cents(self) -> int:
        cents = Decimal(self.totals.credited_cents) * self.commission_percent / 100
        return int(cents.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    @property
    def pay_cents(self) -> int:
        return self.hourly_pay_cents + self.commission_cents


@dataclass(frozen=True)
class Payroll:
    period_first_day: date
    period_last_day: date
    members: list[MemberPay]


class _AccountPayroll:
    """One account's payroll as the rows of the shared statements come in."""

    def __init__(
        self,
        account: CreatorAccount,
        people: dict[int, tuple[str, str]],
        rules: dict[int, PayRule],
    ) -> None:
        self.account = account
        self.people = people
        self.rules = rules
        self.members: dict[int, MemberPay] = {}
        self.shifts: dict[int, dict[int | None, ShiftFigures]] = defaultdict(dict)
        self.former: set[int] = set()
        for user_id, (_, role) in people.items():
            if role == Membership.Role.CHATTER or user_id in rules:
                self.member(user_id)

    def member(self, user_id: int) -> MemberPay:
        if user_id not in self.members:
            name, role = self.people.get(user_id, (f"user {user_id}", "former member"))
            if user_id not in self.people:
                self.former.add(user_id)
            rule = self.rules.get(user_id)
            self.members[user_id] = MemberPay(
                account_id=self.account.pk,
                account_name=self.account.display_name,
                user_id=user_id,
                username=name,
                role=role,
                hourly_rate_cents=rule.hourly_rate_cents if rule else 0,
                commission_percent=rule.commission_percent if rule else Decimal(0),
            )
        return self.members[user_id]

    def shift(self, user_id: int, session_id: int | None) -> ShiftFigures:
        self.member(user_id)
        by_session = self.shifts[user_id]
        if session_id not in by_session:
            by_session[session_id] = ShiftFigures(session_id)
        return by_session[session_id]

    def finished(self, names: dict[int, str]) -> list[MemberPay]:
        for user_id in self.former:
            self.members[user_id].username = names.get(user_id, self.members[user_id].username)
        for user_id, pay in self.members.items():
            rows = sorted(
                self.shifts.get(user_id, {}).values(),
                key=lambda r: (r.started_at is None, r.started_at or FAR_FUTURE),
            )
            pay.shifts = rows
            totals = pay.totals
            totals.worked_seconds = sum(r.worked_seconds for r in rows)
            totals.messages = sum(r.messages for r in rows)
            totals.ppv_sent = sum(r.ppv_sent for r in rows)
            totals.ppv_unlocked = sum(r.ppv_unlocked for r in rows)
            totals.credited_purchases = sum(r.credited_purchases for r in rows)
            totals.credited_cents = sum(r.credited_cents for r in rows)
        return sorted(
            self.members.values(),
            key=lambda m: (-m.pay_cents, -m.totals.credited_cents, m.username),
        )


def _payroll(accounts: list[CreatorAccount], first_day: date, last_day: date) -> list[MemberPay]:
    """The payroll of ``accounts``, each over the period in its own time zone, account after
    account: a fixed number of statements (memberships, pay rules, sessions, messages,
    replies, credited sales, former members' names), whatever the number of accounts."""
    if not accounts:
        return []
    periods = []
    for account in accounts:
        period = Period(first_day=first_day, last_day=last_day, zone_name=account.time_zone)
        periods.append(queries.AccountPeriod(account.pk, period.start, period.end))
    ids = [account.pk for account in accounts]
    people: dict[int, dict[int, tuple[str, str]]] = defaultdict(dict)
    for m in Membership.objects.filter(account_id__in=ids).select_related("user"):
        people[m.account_id][m.user_id] = (m.user.get_username(), m.role)
    rules: dict[int, dict[int, PayRule]] = defaultdict(dict)
    for rule in PayRule.objects.filter(account_id__in=ids):
        rules[rule.account_id][rule.user_id] = rule
    books = {a.pk: _AccountPayroll(a, people[a.pk], rules[a.pk]) for a in accounts}

    for s in queries.sessions(periods=periods, now=timezone.now()):
        row = books[s.account_id].shift(s.user_id, s.session_id)
        row.started_at, row.ended_at, row.end_reason = s.started_at, s.ended_at, s.end_reason
        row.worked_seconds = s.worked_seconds
    for sent in queries.sent_totals(periods=periods):
        row = books[sent.account_id].shift(sent.user_id, sent.session_id)
        row.messages += sent.sent
        row.ppv_sent += sent.ppv_sent
        row.ppv_unlocked += sent.ppv_unlocked
    lookback = timedelta(days=settings.ANALYTICS_RESPONSE_LOOKBACK_DAYS)
    for reply in queries.reply_totals(periods=periods, lookback=lookback):
        book = books[reply.account_id]
        if reply.member_total:
            target = book.member(reply.user_id).totals
        else:
            target = book.shift(reply.user_id, reply.session_id)
        target.replies = reply.replies
        target.fans_answered = reply.fans
        target.median_response_seconds = reply.median_seconds
    for credit in queries.credit_totals(periods=periods, window=tip_window()):
        row = books[credit.account_id].shift(credit.user_id, credit.session_id)
        if row.started_at is None and credit.session_id is not None:  # a session before the range
            row.started_at, row.ended_at = credit.session_started_at, credit.session_ended_at
        row.credited_purchases += credit.purchases
        row.credited_cents += credit.cents
    former = set().union(*(book.former for book in books.values()))
    names: dict[int, str] = {}
    if former:
        names = dict(get_user_model().objects.filter(pk__in=former).values_list("pk", "username"))
    members: list[MemberPay] = []
    for account in accounts:
        members += books[account.pk].finished(names)
    return members


def payroll_for_account(*, user: User, account_id: int, first_day: date, last_day: date) -> Payroll:
    """Per member of the account (and former members with work in the period): worked
    hours, messages, fans answered, median response, PPV sent and unlocked, credited revenue
    and pay, with each work session's share. Owners and managers only."""
    membership = manager_membership_get(user=user, account_id=account_id, action="see payroll")
    return Payroll(first_day, last_day, _payroll([membership.account], first_day, last_day))


def payroll_for_owner(*, user: User, first_day: date, last_day: date) -> Payroll:
    """The same for every account the user owns, one after the other (the same statements
    as for one account); ApplicationError 403 for someone who owns none."""
    owned = [m for m in managed_memberships(user=user) if m.role == Membership.Role.OWNER]
    if not owned:
        raise ApplicationError(
            "Only owners see every account's payroll.", code="permission_denied", status_code=403
        )
    return Payroll(first_day, last_day, _payroll([m.account for m in owned], first_day, last_day))


def member_shifts(*, payroll: Payroll, user_id: int, account_id: int) -> MemberPay:
    for member in payroll.members:
        if member.user_id == user_id and member.account_id == account_id:
            return member
    raise NotFoundError("Member not found.", code="member_not_found")


# --- The agency overview -----------------------------------------------------------------------


@dataclass(frozen=True)
class OverviewTile:
    account: CreatorAccount
    role: str
    figures: queries.OverviewFigures

    @property
    def oldest_wait_seconds(self) -> float | None:
        since = self.figures.oldest_waiting_since
        return (timezone.now() - since).total_seconds() if since else None

    @staticmethod
    def shown(count: int) -> str:
        """A count as a tile shows it: "999+" at the cap."""
        return f"{OVERVIEW_COUNT_CAP - 1}+" if count >= OVERVIEW_COUNT_CAP else str(count)

    @property
    def counts(self) -> dict[str, str]:
        f = self.figures
        return {
            "waiting": self.shown(f.waiting),
            "overdue": self.shown(f.overdue),
            "unread": self.shown(f.unread),
            "queued": self.shown(f.queued),
        }

    @property
    def session_expired(self) -> bool:
        return not self.account.is_connected


def overview_tiles(*, user: User) -> list[OverviewTile]:
    """Every account the user owns or manages, with its live figures: two statements
    whatever the number of accounts. ApplicationError 403 for someone who manages none."""
    memberships = managed_memberships(user=user)
    _managing_or_403(memberships, "see the agency overview")
    now = timezone.now()
    todays, weeks = [], []
    for m in memberships:
        zone = zone_named(m.account.time_zone)
        today = now.astimezone(zone).date()
        todays.append(datetime.combine(today, time.min, tzinfo=zone))
        weeks.append(datetime.combine(today - timedelta(days=6), time.min, tzinfo=zone))
    figures = queries.overview(
        accounts=[m.account_id for m in memberships],
        todays=todays,
        weeks=weeks,
        now=now,
        cap=OVERVIEW_COUNT_CAP,
    )
    return [OverviewTile(m.account, m.role, figures[m.account_id]) for m in memberships]
