"""The analytics report's shape: the plain dataclasses that ``analytics.selectors``
fills (``report_compute``, ``campaign_rows``) and the page, the CSV export, the charts and the
API read, so a number is the same wherever it appears. Derived figures (changes, ratios,
uplift) are properties here, computed one way for every reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from analytics import rollups
from analytics.periods import Period
from crm.models import CreatorAccount, Fan

# --- KPIs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kpi:
    key: str
    label: str
    unit: str  # count, cents, seconds, ratio
    value: float | int | None
    previous: float | int | None
    help: str = ""

    @property
    def change(self) -> float | None:
        """Relative change against the previous period (0.25 = +25 %); None when the previous
        value is zero or unknown (a change from nothing has no percentage)."""
        if self.value is None or not self.previous:
            return None
        return (self.value - self.previous) / self.previous

    @property
    def delta(self) -> float | int | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous


@dataclass(frozen=True)
class PeriodFigures:
    """One period's raw totals, from which the KPI cards are made."""

    fans_total: int
    fans_active: int
    fans_new: int
    revenue: dict[str, int]  # kind -> cents
    purchases: int
    messages_sent: int
    messages_received: int
    response_median_seconds: float | None
    replies: int
    ppv_sent: int
    ppv_unlocked: int

    @property
    def revenue_total(self) -> int:
        return sum(self.revenue.values())

    @property
    def revenue_per_active_fan(self) -> int:
        return round(self.revenue_total / self.fans_active) if self.fans_active else 0

    @property
    def ppv_conversion(self) -> float:
        return self.ppv_unlocked / self.ppv_sent if self.ppv_sent else 0.0


# --- Series --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    start: date
    values: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.values.values())


@dataclass(frozen=True)
class Series:
    metric: str
    unit: str
    keys: tuple[str, ...]  # the stacked parts, bottom first
    points: list[Point]

    @property
    def max_total(self) -> int:
        return max((p.total for p in self.points), default=0)


# --- Chatters and attribution --------------------------------------------------------------------


@dataclass
class ChatterRow:
    user_id: int
    name: str
    role: str
    messages_sent: int = 0
    replies: int = 0  # answers to a waiting fan ("conversations answered")
    response_median_seconds: float | None = None
    ppv_sent: int = 0
    ppv_unlocked: int = 0
    revenue_cents: int = 0  # credited by the attribution rules and reassignments
    purchases: int = 0
    # First replies measured against the fan's first-reply target, and those within it.
    target_replies: int = 0
    target_within: int = 0

    @property
    def ppv_conversion(self) -> float:
        return self.ppv_unlocked / self.ppv_sent if self.ppv_sent else 0.0

    @property
    def within_target_share(self) -> float | None:
        """The share of first replies within target (None: no first reply in the range)."""
        return self.target_within / self.target_replies if self.target_replies else None


@dataclass(frozen=True)
class AttributionSummary:
    by_rule: dict[str, tuple[int, int]]  # rule -> (purchases, cents)
    unattributed: tuple[int, int]
    total: tuple[int, int]


# --- Campaigns -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: int
    name: str
    recipients: int
    revenue_cents: int  # purchases of its messages
    purchases: int
    window_cents: int  # what its recipients bought in the window after it
    control_fans: int
    control_cents: int  # what the control group bought in the same window

    @property
    def revenue_per_recipient(self) -> int:
        return round(self.revenue_cents / self.recipients) if self.recipients else 0

    @property
    def uplift_cents(self) -> int | None:
        """Per fan, what recipients bought in the window minus what the control group did;
        None without a control group."""
        if not self.control_fans or not self.recipients:
            return None
        return round(self.window_cents / self.recipients - self.control_cents / self.control_fans)

    @property
    def uplift(self) -> float | None:
        """The same, relative to the control group (None when the control bought nothing)."""
        if not self.control_fans or not self.recipients or not self.control_cents:
            return None
        control = self.control_cents / self.control_fans
        return (self.window_cents / self.recipients - control) / control


# --- The report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    account: CreatorAccount
    period: Period
    previous: Period
    interval: str
    computed_at: datetime
    figures: PeriodFigures
    previous_figures: PeriodFigures
    kpis: list[Kpi]
    series: dict[str, Series]
    chatters: list[ChatterRow]
    attribution: AttributionSummary
    spend_bands: list[tuple[str, int]] = field(default_factory=list)
    top_fans: list[Fan] = field(default_factory=list)
    # rollups.ROLLUPS_*: current; missing (computed from the raw rows while the roll-ups are
    # built); stale (the roll-ups' figures as of ``computed_at``, their refresh behind)
    freshness: str = rollups.ROLLUPS_CURRENT

    @property
    def kpi_map(self) -> dict[str, Kpi]:
        return {k.key: k for k in self.kpis}
