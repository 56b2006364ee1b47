"""Chart geometry for server-rendered SVG (templates/analytics/_column_chart.html).

Python works out where each bar goes; the template only draws. Bars are stretched to the
page's width (``preserveAspectRatio="none"``), so axis labels are HTML placed by percentage,
which keeps them readable on a phone; each column's ``<title>`` shows its values on hover.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from analytics.reports import Series

WIDTH = 600.0
HEIGHT = 180.0
GAP = 0.2  # share of a column left empty between bars


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 x 10^k at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def money_short(cents: float) -> str:
    dollars = cents / 100
    if dollars >= 1_000_000:
        return f"${dollars / 1_000_000:.1f}M".replace(".0M", "M")
    if dollars >= 1_000:
        return f"${dollars / 1_000:.1f}k".replace(".0k", "k")
    return f"${dollars:,.0f}"


def count_short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M".replace(".0M", "M")
    if value >= 1_000:
        return f"{value / 1_000:.1f}k".replace(".0k", "k")
    return f"{value:,.0f}"


def _fmt(unit: str, value: float) -> str:
    return money_short(value) if unit == "cents" else count_short(value)


def bucket_label(start: date, interval: str, *, long: bool = False) -> str:
    if interval == "month":
        return start.strftime("%B %Y" if long else "%b %Y")
    if interval == "week":
        end = start + timedelta(days=6)
        return f"week of {start:%-d %b}" if not long else f"{start:%-d %b} to {end:%-d %b %Y}"
    return start.strftime("%a %-d %b %Y" if long else "%-d %b")


@dataclass(frozen=True)
class Segment:
    key: str
    y: float
    height: float
    value: int


@dataclass(frozen=True)
class Column:
    x: float
    width: float
    segments: list[Segment]
    title: str


@dataclass(frozen=True)
class Label:
    percent: float
    text: str
    y: float = 0.0  # for y-axis ticks: the grid line's height in the SVG


@dataclass(frozen=True)
class ColumnChart:
    """Stacked columns (``stacked`` keys, bottom first) and an optional line (``line_key``)."""

    name: str
    columns: list[Column]
    ticks: list[Label]  # y axis, percent from the bottom
    x_labels: list[Label]  # percent from the left
    line_points: str
    legend: list[tuple[str, str]]  # (css key, label)
    label: str = ""  # for screen readers
    width: float = WIDTH
    height: float = HEIGHT

    @property
    def empty(self) -> bool:
        return not any(s.value for c in self.columns for s in c.segments)

    def html(self) -> SafeString:
        """The figure's markup, built here rather than in a template loop: a 90-day chart is
        hundreds of elements, and this is the page's hottest rendering path."""
        w, h = f"{self.width:.0f}", f"{self.height:.0f}"
        parts = [f'<figure class="chart chart-{escape(self.name)}">']
        if self.empty:
            parts.append('<p class="chart-empty muted">Nothing in this range.</p>')
        parts.append('<div class="chart-plot"><div class="chart-ticks" aria-hidden="true">')
        parts += [
            format_html('<span style="bottom: {}%">{}</span>', f"{t.percent:.2f}", t.text)
            for t in self.ticks
        ]
        parts.append(
            f'</div><svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" role="img" '
            f'aria-label="{escape(self.label)}">'
        )
        parts += [
            f'<line class="grid" x1="0" x2="{w}" y1="{t.y:.2f}" y2="{t.y:.2f}" '
            'vector-effect="non-scaling-stroke"></line>'
            for t in self.ticks
        ]
        for column in self.columns:
            x, cw = f"{column.x:.2f}", f"{column.width:.2f}"
            parts.append(
                f'<g class="col"><title>{escape(column.title)}</title>'
                f'<rect class="hit" x="{x}" y="0" width="{cw}" height="{h}"></rect>'
            )
            parts += [
                f'<rect class="seg seg-{seg.key}" x="{x}" y="{seg.y:.2f}" width="{cw}" '
                f'height="{seg.height:.2f}"></rect>'
                for seg in column.segments
                if seg.value
            ]
            parts.append("</g>")
        if self.line_points:
            parts.append(
                f'<polyline class="line" points="{self.line_points}" '
                'vector-effect="non-scaling-stroke"></polyline>'
            )
        parts.append('</svg></div><div class="chart-x" aria-hidden="true">')
        parts += [
            format_html('<span style="left: {}%">{}</span>', f"{x.percent:.2f}", x.text)
            for x in self.x_labels
        ]
        parts.append('</div><figcaption class="legend">')
        parts += [format_html('<span class="key key-{}">{}</span>', k, t) for k, t in self.legend]
        parts.append(
            '</figcaption><details class="chart-table small"><summary>Values</summary><ul>'
        )
        parts += [f"<li>{escape(c.title)}</li>" for c in self.columns]
        parts.append("</ul></details></figure>")
        return mark_safe("".join(parts))  # noqa: S308 - every dynamic value is escaped above


def column_chart(
    series: Series,
    *,
    interval: str,
    stacked: tuple[str, ...],
    labels: dict[str, str],
    line_key: str = "",
    label: str = "",
) -> ColumnChart:
    points = series.points
    count = max(len(points), 1)
    slot = WIDTH / count
    tallest = max(
        [sum(p.values.get(k, 0) for k in stacked) for p in points]
        + [p.values.get(line_key, 0) for p in points if line_key]
        + [0]
    )
    top = nice_ceiling(tallest)
    scale = HEIGHT / top
    columns = []
    line = []
    for i, point in enumerate(points):
        x = i * slot
        y = HEIGHT
        segments = []
        for key in stacked:
            value = point.values.get(key, 0)
            height = value * scale
            y -= height
            segments.append(Segment(key=key, y=round(y, 2), height=round(height, 2), value=value))
        parts = ", ".join(
            f"{labels[k]} {_fmt(series.unit, point.values.get(k, 0))}"
            for k in (*stacked, *([line_key] if line_key else []))
        )
        total = sum(point.values.get(k, 0) for k in stacked)
        head = bucket_label(point.start, interval, long=True)
        title = f"{head}: {_fmt(series.unit, total)}" if len(stacked) > 1 else head
        columns.append(
            Column(
                x=round(x + slot * GAP / 2, 2),
                width=round(slot * (1 - GAP), 2),
                segments=segments,
                title=f"{title} ({parts})" if len(stacked) > 1 or line_key else f"{title}: {parts}",
            )
        )
        if line_key:
            ly = HEIGHT - point.values.get(line_key, 0) * scale
            line.append(f"{round(x + slot / 2, 2)},{round(ly, 2)}")
    ticks = [
        Label(percent=p * 100, text=_fmt(series.unit, top * p), y=round(HEIGHT * (1 - p), 2))
        for p in (0.5, 1.0)
    ]
    # A handful of x labels: first, last and evenly between, never crowded on a phone.
    wanted = min(len(points), 6)
    step = max(1, math.ceil(len(points) / wanted)) if wanted else 1
    x_labels = [
        Label(percent=(i + 0.5) * 100 / count, text=bucket_label(points[i].start, interval))
        for i in range(0, len(points), step)
    ]
    legend = [(k, labels[k]) for k in stacked] + (
        [(line_key, labels[line_key])] if line_key else []
    )
    return ColumnChart(
        name=series.metric,
        columns=columns,
        ticks=ticks,
        x_labels=x_labels,
        line_points=" ".join(line) if len(line) > 1 else "",
        legend=legend,
        label=label,
    )


@dataclass(frozen=True)
class HBar:
    label: str
    value: int
    percent: float
    url: str = ""
    note: str = ""


def hbars(items: list[tuple[str, int, str, str]]) -> list[HBar]:
    """Horizontal bars (label, value, link, note), widths relative to the largest value."""
    top = max((v for _, v, _, _ in items), default=0) or 1
    return [
        HBar(label=label, value=value, percent=round(value * 100 / top, 2), url=url, note=note)
        for label, value, url, note in items
    ]
