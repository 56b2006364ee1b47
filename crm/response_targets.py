"""First-reply targets: how long a fan may wait for an answer, and how long is left.

An account has one target (``reply_target_seconds``, default 5 minutes) and a shorter one for
fans whose lifetime spend is at least ``vip_spend_threshold_cents``. The fan's current spend
and the account's current targets decide which applies, everywhere: the list's time left, the
waiting view's order and analytics' "% answered within target" (``analytics.queries``).
See docs/shifts.md, "Assignment and response targets".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from django.db.models import Case, DateTimeField, ExpressionWrapper, F, Value, When
from django.db.models.expressions import Expression
from django.utils import timezone

REPLY_TARGET_MIN_SECONDS = 30
REPLY_TARGET_MAX_SECONDS = 86_400


class _Account(Protocol):
    reply_target_seconds: int
    vip_reply_target_seconds: int
    vip_spend_threshold_cents: int


@dataclass(frozen=True)
class ReplyTargets:
    """An account's two targets, as the list and its live rows need them."""

    seconds: int
    vip_seconds: int
    vip_spend_threshold_cents: int

    @classmethod
    def of(cls, account: _Account) -> ReplyTargets:
        return cls(
            seconds=account.reply_target_seconds,
            vip_seconds=account.vip_reply_target_seconds,
            vip_spend_threshold_cents=account.vip_spend_threshold_cents,
        )

    @property
    def has_vip(self) -> bool:
        return self.vip_seconds < self.seconds

    def is_vip(self, spend_cents: int) -> bool:
        return self.has_vip and spend_cents >= self.vip_spend_threshold_cents

    def for_spend(self, spend_cents: int) -> int:
        return self.vip_seconds if self.is_vip(spend_cents) else self.seconds


@dataclass(frozen=True)
class ReplyDue:
    """A waiting conversation against its target, at one moment."""

    due_at: datetime
    seconds_left: int  # negative once overdue
    target_seconds: int
    vip: bool

    @property
    def overdue(self) -> bool:
        return self.seconds_left < 0

    @property
    def text(self) -> str:
        """``4m 10s left`` or ``overdue 2m``; static/js/reply_due.js writes the same."""
        if self.overdue:
            return f"overdue {duration_short(-self.seconds_left)}"
        return f"{duration_short(self.seconds_left)} left"

    @property
    def title(self) -> str:
        kind = "VIP first-reply target" if self.vip else "First-reply target"
        return f"{kind}: {duration_short(self.target_seconds)}"


def duration_short(seconds: int) -> str:
    """``45s``, ``4m 10s``, ``2h 5m``, ``3d 4h``: two units at most."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


def reply_due(
    conversation: Any, targets: ReplyTargets | None, now: datetime | None = None
) -> ReplyDue | None:
    """The conversation's time left (None when nobody waits or no targets are known).
    ``conversation`` is a ``Conversation`` or a ``selectors.ConversationDisplay``: it needs
    ``waiting_since`` and ``fan.lifetime_spend_cents``."""
    waiting_since = conversation.waiting_since
    if waiting_since is None or targets is None:
        return None
    spend = int(conversation.fan.lifetime_spend_cents or 0)
    target = targets.for_spend(spend)
    due_at = waiting_since + timedelta(seconds=target)
    now = now or timezone.now()
    return ReplyDue(
        due_at=due_at,
        seconds_left=int((due_at - now).total_seconds() // 1),
        target_seconds=target,
        vip=targets.is_vip(spend),
    )


def reply_due_expression(targets: ReplyTargets, *, spend: str = "fan__lifetime_spend_cents") -> Any:
    """``waiting_since`` plus the target that applies, as SQL (the waiting view's order).
    Without a VIP target it is ``waiting_since`` itself, so the waiting index still serves."""
    if not targets.has_vip:
        return F("waiting_since")
    target: Expression = Case(
        When(
            **{f"{spend}__gte": targets.vip_spend_threshold_cents},
            then=Value(timedelta(seconds=targets.vip_seconds)),
        ),
        default=Value(timedelta(seconds=targets.seconds)),
    )
    return ExpressionWrapper(F("waiting_since") + target, output_field=DateTimeField())
