"""Display helpers for the inbox: short relative times, money, initials, and the three partials
a page repeats most, a conversation row, a message bubble and its status.

The markup of those three is in ``templates/crm/inbox/_row.jinja``, ``_bubble.jinja`` and
``_status.jinja``, rendered by Jinja2 (``config/jinja2.py``): a thread page repeats them 150
times and Django's engine spent about 140 µs a row on them against Jinja2's 30 to 50 µs
(``bench/inbox_render_timing.py``). The partials ``conversation-row``, ``message`` and
``message-status`` of ``crm/inbox.html`` call these tags, so the page, its htmx fragments and the
live events (``crm.live``) still share one rendering. The filters here serve both engines.
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from typing import Any

from django import template
from django.template import engines
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone, translation
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe

from crm.models import Message

register = template.Library()

ROW_TEMPLATE = "crm/inbox/_row.jinja"
BUBBLE_TEMPLATE = "crm/inbox/_bubble.jinja"
STATUS_TEMPLATE = "crm/inbox/_status.jinja"


@cache
def _month_abbr(language: str | None, month: int) -> str:
    return str(MONTHS_3[month]).title()


def bubble_time(moment: datetime) -> str:
    """As ``|date:"M j, H:i"`` writes it (``Nov 3, 14:05``), in the current time zone."""
    local = timezone.localtime(moment)
    month = _month_abbr(translation.get_language(), local.month)
    return f"{month} {local.day}, {local.hour:02d}:{local.minute:02d}"


def linebreaksbr(text: str) -> SafeString:
    """As ``|linebreaksbr`` with autoescape: escaped, every newline a ``<br>``."""
    escaped = html.escape(text.replace("\r\n", "\n").replace("\r", "\n"))
    return mark_safe(escaped.replace("\n", "<br>"))  # noqa: S308 - escaped just above


def iso(moment: datetime | None) -> str:
    """As ``|date:'c'`` writes it: in the current time zone."""
    return timezone.localtime(moment).isoformat() if moment is not None else ""


_STATUS_LABELS = dict(Message.Status.choices)


def status_label(status: str) -> str:
    return str(_STATUS_LABELS.get(status, status))


_MARK = 987654321987654321


@cache
def _thread_url_pattern(script_prefix: str, urlconf: str | None) -> str:
    return reverse("inbox_thread", args=[_MARK, _MARK + 1], urlconf=urlconf)


def thread_url(account_id: int, conversation_id: int) -> str:
    """``{% url 'inbox_thread' account_id conversation_id %}``, reversed once per process (and
    script prefix): a list repeats it 50 times, and a reverse cost a quarter of a row."""
    pattern = _thread_url_pattern(get_script_prefix(), get_urlconf())
    return pattern.replace(str(_MARK + 1), str(conversation_id)).replace(
        str(_MARK), str(account_id)
    )


@register.filter
def short_since(moment: datetime | None) -> str:
    """``now``, ``5m``, ``3h``, ``2d``, ``6w``: how long ago, in the space a list row has."""
    if moment is None:
        return ""
    seconds = max(0, int((timezone.now() - moment).total_seconds()))
    if seconds < 60:
        return "now"
    for unit, size in (("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "now"


@register.filter
def dollars(cents: int | None) -> str:
    """``1234`` -> ``$12.34``; whole amounts without cents (``$12``)."""
    cents = int(cents or 0)
    whole, rest = divmod(cents, 100)
    return f"${whole:,}" if not rest else f"${whole:,}.{rest:02d}"


@register.filter
def initials(fan: object) -> str:
    name = (getattr(fan, "display_name", "") or getattr(fan, "username", "") or "?").strip()
    parts = [p for p in name.replace("_", " ").replace(".", " ").split() if p]
    letters = "".join(p[0] for p in parts[:2]) if parts else "?"
    return letters.upper()


def partial_render(name: str, context: dict[str, Any]) -> SafeString:
    """One of the inbox's Jinja2 partials, autoescaped, as markup a Django template keeps."""
    rendered = engines["jinja2"].get_template(name).render(context)
    return mark_safe(rendered)  # noqa: S308 - Jinja2 autoescaped every value


def _csrf_token(context: template.Context) -> str:
    """The page's CSRF token, as ``{% csrf_token %}`` reads it (none in a live event)."""
    token = context.get("csrf_token")
    return "" if not token or str(token) == "NOTPROVIDED" else str(token)


@register.simple_tag(takes_context=True)
def conversation_row(context: template.Context, conversation: Any) -> SafeString:
    return partial_render(
        ROW_TEMPLATE,
        {
            "conversation": conversation,
            "oob": context.get("oob"),
            "filter_query": context.get("filter_query"),
            # who has it open, who took it (crm.team_presence.account_rows)
            "presence_rows": context.get("presence_rows"),
            # The acting member's own draft (crm.drafts): never in a live event, which has no
            # user; static/js/drafts.js puts the marker back on rows those re-render.
            "has_draft": conversation.pk in (context.get("draft_ids") or ()),
            # The account's first-reply targets (crm.response_targets): the time left.
            "reply_targets": context.get("reply_targets"),
        },
    )


@register.simple_tag(takes_context=True)
def message_status(context: template.Context, message: Any) -> SafeString:
    return partial_render(
        STATUS_TEMPLATE,
        {"message": message, "oob": context.get("oob"), "csrf_token": _csrf_token(context)},
    )


@register.simple_tag(takes_context=True)
def message_bubble(context: template.Context, message: Any) -> SafeString:
    return partial_render(
        BUBBLE_TEMPLATE,
        {"message": message, "oob": context.get("oob"), "csrf_token": _csrf_token(context)},
    )
