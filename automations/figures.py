"""What each automation did and earned, counted from the rows every time (no roll-up):
``AutomationRun`` for triggered, sent, cancelled and held out; ``Message`` for the fans'
replies; ``Purchase`` for unlocks and revenue.

Two statements for any number of automations (the list shows them side by side):

- ``_STATES_SQL``: runs by state, reason and their message's status;
- ``_OUTCOMES_SQL``: per arm (treated, control), the runs that are due, the fans who wrote
  within ``ATTRIBUTION_HOURS`` of the automated message, its unlocks, and each run's revenue
  in the window (summed and summed squared, for the spread).

Uplift is an intention-to-treat comparison: every triggered fan the draw did not hold out is
"treated" (sent, or cancelled because they replied, or skipped by the cap: all of them),
against every fan held out. Both arms are measured the same way, from the run's due time
(when the message went or would have gone) for ``ATTRIBUTION_HOURS``: all their purchases
(tips, unlocks, subscriptions: a renewal is what an expiring-soon nudge is for). Since the
draw is random, the difference per fan is what the automation added. Its uncertainty is a
95 % interval by Welch's normal approximation: ``diff ± 1.96 · √(s₁²/n₁ + s₀²/n₀)``, with
the sample variances of the per-run revenue; below ``MIN_ARM_SIZE`` runs in either arm the
page says "not enough data yet" instead of a number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from automations.models import Automation, AutomationRun
from crm.models import Conversation, Message, Purchase

# Fewer runs than this in an arm and the interval would mostly be noise.
MIN_ARM_SIZE = 30
Z_95 = 1.959964


def attribution_window() -> timedelta:
    # The campaigns' window (72 h by default): the two pages' figures mean the same.
    return timedelta(hours=settings.CAMPAIGN_ATTRIBUTION_HOURS)


@dataclass(frozen=True)
class Arm:
    """One arm's runs that are due, and what their fans did after."""

    runs: int = 0
    revenue_cents: int = 0
    revenue_sq: float = 0.0  # sum of each run's revenue squared (cents²)

    @property
    def revenue_per_fan_cents(self) -> float | None:
        return self.revenue_cents / self.runs if self.runs else None

    @property
    def variance(self) -> float | None:
        """The per-run revenue's sample variance (cents²)."""
        if self.runs < 2:
            return None
        mean = self.revenue_cents / self.runs
        return max(0.0, (self.revenue_sq - self.runs * mean * mean) / (self.runs - 1))


@dataclass(frozen=True)
class Uplift:
    treated: Arm
    control: Arm
    has_control: bool  # the automation holds fans out (or did)

    @property
    def sample_size(self) -> int:
        """The smaller arm: the one that limits what can be said."""
        return min(self.treated.runs, self.control.runs)

    @property
    def enough_data(self) -> bool:
        return self.has_control and self.sample_size >= MIN_ARM_SIZE

    @property
    def per_fan_cents(self) -> float | None:
        """Treated minus control revenue per triggered fan (whatever the sample)."""
        treated = self.treated.revenue_per_fan_cents
        control = self.control.revenue_per_fan_cents
        if treated is None or control is None:
            return None
        return treated - control

    @property
    def standard_error_cents(self) -> float | None:
        v1, v0 = self.treated.variance, self.control.variance
        if v1 is None or v0 is None:
            return None
        return math.sqrt(v1 / self.treated.runs + v0 / self.control.runs)

    @property
    def interval_cents(self) -> tuple[float, float] | None:
        """The 95 % interval of the uplift (Welch, normal approximation); None when the arms
        are too small to say."""
        diff, se = self.per_fan_cents, self.standard_error_cents
        if not self.enough_data or diff is None or se is None:
            return None
        return (diff - Z_95 * se, diff + Z_95 * se)

    @property
    def verdict(self) -> str:
        """``no_control``, ``not_enough_data``, ``positive``, ``negative`` or ``unclear``
        (the interval spans zero)."""
        if not self.has_control:
            return "no_control"
        interval = self.interval_cents
        if interval is None:
            return "not_enough_data"
        if interval[0] > 0:
            return "positive"
        if interval[1] < 0:
            return "negative"
        return "unclear"

    def as_json(self) -> dict[str, Any]:
        interval = self.interval_cents
        diff = self.per_fan_cents
        treated = self.treated.revenue_per_fan_cents
        control = self.control.revenue_per_fan_cents
        return {
            "treated_runs": self.treated.runs,
            "control_runs": self.control.runs,
            "treated_revenue_per_fan_cents": None if treated is None else round(treated, 2),
            "control_revenue_per_fan_cents": None if control is None else round(control, 2),
            "uplift_per_fan_cents": None
            if diff is None or not self.has_control
            else round(diff, 2),
            "interval_95_cents": None if interval is None else [round(v, 2) for v in interval],
            "method": "welch_normal_95",
            "min_arm_size": MIN_ARM_SIZE,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class Figures:
    triggered: int = 0
    pending: int = 0  # scheduled, not due or not handed on yet
    queued: int = 0  # handed to the send pipeline, not sent yet
    sent: int = 0
    failed: int = 0
    held_control: int = 0
    cancelled: dict[str, int] = field(default_factory=dict)  # reason → runs
    skipped: dict[str, int] = field(default_factory=dict)  # reason → runs
    replied: int = 0  # sent messages whose fan wrote within the window
    unlocks: int = 0  # unlocks of the automated messages within the window
    unlock_revenue_cents: int = 0
    uplift: Uplift = field(default_factory=lambda: Uplift(Arm(), Arm(), has_control=False))

    @property
    def revenue_cents(self) -> int:
        """The treated fans' purchases within the window of their runs' due times."""
        return self.uplift.treated.revenue_cents

    @property
    def cancelled_total(self) -> int:
        return sum(self.cancelled.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())

    def reasons(self) -> list[tuple[str, str, int]]:
        """(state, reason label, runs) of every cancelled or skipped reason, biggest first."""
        labels = dict(AutomationRun.Reason.choices)
        rows = [("cancelled", labels.get(r, r), n) for r, n in self.cancelled.items()]
        rows += [("skipped", labels.get(r, r), n) for r, n in self.skipped.items()]
        return sorted(rows, key=lambda row: (-row[2], row[0], row[1]))

    def as_json(self) -> dict[str, Any]:
        return {
            "triggered": self.triggered,
            "pending": self.pending,
            "queued": self.queued,
            "sent": self.sent,
            "failed": self.failed,
            "held_control": self.held_control,
            "cancelled": dict(sorted(self.cancelled.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "replied": self.replied,
            "unlocks": self.unlocks,
            "unlock_revenue_cents": self.unlock_revenue_cents,
            "revenue_cents": self.revenue_cents,
            "attribution_hours": settings.CAMPAIGN_ATTRIBUTION_HOURS,
            "uplift": self.uplift.as_json(),
        }


_RUN = AutomationRun._meta.db_table
_M = Message._meta.db_table
_C = Conversation._meta.db_table
_P = Purchase._meta.db_table

# Served by automation_run_state (automation, state, ...).
_STATES_SQL = f"""
SELECT r.automation_id, r.state, r.reason, m.status, count(*)
FROM {_RUN} r LEFT JOIN {_M} m ON m.id = r.message_id
WHERE r.automation_id = ANY(%(ids)s)
GROUP BY 1, 2, 3, 4
"""  # noqa: S608 (table names only)

# Each due run (both arms), from its due time for the window. The reply and the unlocks are
# about the automated message itself (from when it was sent); revenue is every purchase of
# the fan in the window, the same for both arms (the intention-to-treat comparison).
_OUTCOMES_SQL = f"""
SELECT r.automation_id, r.is_control, count(*),
  count(*) FILTER (WHERE m.status = 'sent' AND EXISTS (
    SELECT 1 FROM {_C} c JOIN {_M} i ON i.conversation_id = c.id
    WHERE c.fan_id = r.fan_id AND i.direction = 'in'
      AND i.created_at >= m.sent_at AND i.created_at < m.sent_at + %(window)s)),
  coalesce(sum(u.n), 0), coalesce(sum(u.cents), 0),
  coalesce(sum(p.cents), 0), coalesce(sum(p.cents::float8 * p.cents::float8), 0)
FROM {_RUN} r
LEFT JOIN {_M} m ON m.id = r.message_id
LEFT JOIN LATERAL (
  SELECT coalesce(sum(p.amount_cents), 0) AS cents FROM {_P} p
  WHERE p.fan_id = r.fan_id AND p.purchased_at >= r.due_at
    AND p.purchased_at < r.due_at + %(window)s
) p ON true
LEFT JOIN LATERAL (
  SELECT count(*) AS n, sum(p.amount_cents) AS cents FROM {_P} p
  WHERE m.status = 'sent' AND p.message_id = m.id AND p.kind = 'ppv'
    AND p.purchased_at < m.sent_at + %(window)s
) u ON true
WHERE r.automation_id = ANY(%(ids)s) AND r.due_at <= %(now)s
GROUP BY 1, 2
"""  # noqa: S608 (table names only)


def automations_figures(
    *, automations: Sequence[Automation], now: datetime | None = None
) -> dict[int, Figures]:
    """Figures of each automation (by id), in two statements whatever their number."""
    ids = [a.pk for a in automations]
    if not ids:
        return {}
    now = now or timezone.now()
    counts: dict[int, dict[str, Any]] = {
        pk: {"cancelled": {}, "skipped": {}, "arms": {}} for pk in ids
    }
    State = AutomationRun.State
    with connection.cursor() as cursor:
        cursor.execute(_STATES_SQL, {"ids": ids})
        for automation_id, state, reason, status, n in cursor.fetchall():
            row = counts[automation_id]
            row["triggered"] = row.get("triggered", 0) + n
            if state == State.SCHEDULED:
                row["pending"] = row.get("pending", 0) + n
            elif state == State.HELD_CONTROL:
                row["held_control"] = row.get("held_control", 0) + n
            elif state in (State.CANCELLED, State.SKIPPED):
                by_reason = row[state]
                by_reason[reason] = by_reason.get(reason, 0) + n
            elif state == State.ENQUEUED:
                key = {"sent": "sent", "failed": "failed"}.get(status or "", "queued")
                row[key] = row.get(key, 0) + n
        params: dict[str, Any] = {"ids": ids, "now": now, "window": attribution_window()}
        cursor.execute(_OUTCOMES_SQL, params)
        for (
            automation_id,
            is_control,
            runs,
            replied,
            unlocks,
            unlock_cents,
            cents,
            sq,
        ) in cursor.fetchall():
            row = counts[automation_id]
            row["arms"][bool(is_control)] = Arm(
                runs=runs, revenue_cents=int(cents), revenue_sq=float(sq)
            )
            if not is_control:
                row["replied"] = replied
                row["unlocks"] = int(unlocks)
                row["unlock_revenue_cents"] = int(unlock_cents)
    out: dict[int, Figures] = {}
    for automation in automations:
        row = counts[automation.pk]
        arms = row.pop("arms")
        has_control = bool(automation.control_percent) or row.get("held_control", 0) > 0
        out[automation.pk] = Figures(
            **row,
            uplift=Uplift(
                treated=arms.get(False, Arm()),
                control=arms.get(True, Arm()),
                has_control=has_control,
            ),
        )
    return out


def automation_figures(*, automation: Automation, now: datetime | None = None) -> Figures:
    return automations_figures(automations=[automation], now=now)[automation.pk]
