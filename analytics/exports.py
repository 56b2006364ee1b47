"""The page's tables as CSV rows (the view writes them through ``crm.csv_safe``, which
neutralises cells a spreadsheet would run as formulas; numbers we computed stay numbers)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from analytics.reports import Report


def _head(report: Report) -> list[list[Any]]:
    return [
        ["account", report.account.display_name],
        ["range", f"{report.period.first_day} to {report.period.last_day}"],
        ["previous period", f"{report.previous.first_day} to {report.previous.last_day}"],
        ["time zone", report.period.zone_name],
        ["computed at", report.computed_at.isoformat()],
        [],
    ]


def kpi_rows(report: Report) -> Iterator[list[Any]]:
    yield from _head(report)
    yield ["kpi", "label", "unit", "value", "previous", "change"]

    def number(value: float | None) -> float | int | str:
        if value is None:
            return ""
        return round(value, 4) if isinstance(value, float) else value

    for kpi in report.kpis:
        yield [kpi.key, kpi.label, kpi.unit, number(kpi.value), number(kpi.previous),
               number(kpi.change)]  # fmt: skip


def chatter_rows(report: Report) -> Iterator[list[Any]]:
    yield from _head(report)
    yield [
        "chatter", "role", "messages_sent", "conversations_answered",
        "median_response_seconds", "ppv_sent", "ppv_unlocked", "revenue_cents",
        "purchases_credited", "answered_within_target_pct",
    ]  # fmt: skip
    for c in report.chatters:
        median = round(c.response_median_seconds, 1) if c.response_median_seconds else ""
        share = c.within_target_share
        within = round(share * 100, 1) if share is not None else ""
        yield [
            c.name, c.role, c.messages_sent, c.replies, median, c.ppv_sent, c.ppv_unlocked,
            c.revenue_cents, c.purchases, within,
        ]  # fmt: skip
    unattributed = report.attribution.unattributed
    yield ["(unattributed)", "", "", "", "", "", "", unattributed[1], unattributed[0], ""]


def top_fan_rows(report: Report) -> Iterator[list[Any]]:
    yield from _head(report)
    yield ["rank", "username", "display_name", "lifetime_spend_cents", "subscription_state"]
    for rank, fan in enumerate(report.top_fans, start=1):
        yield [rank, fan.username, fan.display_name, fan.lifetime_spend_cents,
               fan.subscription_state]  # fmt: skip


TABLES: dict[str, Callable[[Report], Iterator[list[Any]]]] = {
    "kpis": kpi_rows,
    "chatters": chatter_rows,
    "top-fans": top_fan_rows,
}
