# ruff: noqa: E501 - the Django partials below are markup, one line as in a template
"""Time of one inbox row, bubble and status: the old f-strings, Django templates, Jinja2.

Run with `.venv/bin/python bench/inbox_render_timing.py [-n 5000]` (any database: it renders
unsaved model instances, no query). Each renderer draws the same conversation rows and
message bubbles (incoming, outgoing, failed, priced, with hostile text) and must give the same
HTML as the others (quotes aside: Jinja2 writes ``&#34;`` where Django writes ``&quot;``); the
figure is the median over rounds of the mean time per row, in microseconds.

- ``f-string``: the template tags as they were before the markup moved into templates, kept
  here only as the baseline (``git show e5ac33f -- crm/templatetags/inbox.py``).
- ``django``: the same markup as Django template partials (what the inbox had before the
  f-strings, plus later changes), from a string.
- ``jinja2``: ``templates/crm/inbox/_row.jinja``, ``_bubble.jinja``, ``_status.jinja`` through
  Django's Jinja2 backend, as the inbox renders them now.
"""

from __future__ import annotations

import argparse
import html
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret")
    os.environ.setdefault("ONLYFANS_WEBHOOK_SECRET", "bench-webhook-secret")
    import django

    django.setup()


# --- The baseline: the f-string tags as they were (crm/templatetags/inbox.py at 0148585) ---


def fstring_renderers() -> tuple[Callable[..., str], Callable[..., str]]:
    from django.template.defaulttags import CsrfTokenNode
    from django.urls import reverse
    from django.utils import timezone, translation
    from django.utils.dates import MONTHS_3

    from crm.models import Message
    from crm.templatetags.inbox import dollars, initials, short_since

    def escape(value: object) -> str:
        return html.escape(str(value))

    @cache
    def _month_abbr(language: str | None, month: int) -> str:
        return str(MONTHS_3[month]).title()

    def _bubble_time(moment: Any) -> str:
        local = timezone.localtime(moment)
        month = _month_abbr(translation.get_language(), local.month)
        return f"{month} {local.day}, {local.hour:02d}:{local.minute:02d}"

    def _linebreaksbr(text: str) -> str:
        return escape(text.replace("\r\n", "\n").replace("\r", "\n")).replace("\n", "<br>")

    labels = dict(Message.Status.choices)

    def _iso(moment: Any) -> str:
        return timezone.localtime(moment).isoformat() if moment is not None else ""

    mark = 987654321987654321

    def _thread_url(context: Any, account_id: int, conversation_id: int) -> str:
        key = f"inbox_thread_url:{account_id}"
        pattern = context.render_context.get(key)
        if pattern is None:
            pattern = context.render_context[key] = reverse("inbox_thread", args=[account_id, mark])
        return pattern.replace(str(mark), str(conversation_id))

    def _oob(context: Any, element_id: str) -> str:
        return f' hx-swap-oob="outerHTML:#{element_id}, #live-sink"' if context.get("oob") else ""

    def conversation_row(context: Any, conversation: Any) -> str:
        fan = conversation.fan
        url = _thread_url(context, conversation.account_id, conversation.pk)
        filter_query = context.get("filter_query")
        if filter_query:
            url = f"{url}?{filter_query}"
        url = escape(url)
        unread = conversation.unread_count
        meta = [
            f'<span class="spend" title="Lifetime spend">{dollars(fan.lifetime_spend_cents)}</span>'
        ]
        if conversation.waiting_since:
            meta.append(
                '<span class="waiting" title="Waiting for a reply">waiting <time data-since '
                f'datetime="{_iso(conversation.waiting_since)}">'
                f"{short_since(conversation.waiting_since)}</time></span>"
            )
        if conversation.assigned_to:
            meta.append(
                '<span class="assignee" title="Assigned to">&rarr; '
                f"{escape(conversation.assigned_to.get_username())}</span>"
            )
        if unread:
            meta.append(f'<span class="unread-badge" title="Unread messages">{unread}</span>')
        you = (
            '<span class="muted">You: </span>'
            if conversation.last_message_direction == "out"
            else ""
        )
        oob = _oob(context, f"conversation-{conversation.pk}")
        return (
            f'<li id="conversation-{conversation.pk}" class="conv-row{" unread" if unread else ""}" '
            f'data-conversation-id="{conversation.pk}"{oob}>\n'
            f'<a class="conv-link" href="{url}" hx-get="{url}" hx-target="#thread-pane" '
            'hx-swap="outerHTML" hx-push-url="true">\n'
            f'<span class="avatar" aria-hidden="true">{escape(initials(fan))}</span>\n'
            '<span class="conv-main">\n'
            '<span class="conv-top">\n'
            f'<strong class="conv-name">{escape(fan.display_name or fan.username)}</strong>\n'
            f'<span class="conv-username">@{escape(fan.username)}</span>\n'
            f'<time class="conv-time" data-since datetime="{_iso(conversation.last_message_at)}">'
            f"{short_since(conversation.last_message_at)}</time>\n"
            "</span>\n"
            f'<span class="conv-preview">{you}{escape(conversation.last_message_preview)}</span>\n'
            f'<span class="conv-meta">\n{chr(10).join(meta)}\n</span>\n'
            "</span>\n"
            "</a>\n"
            "</li>"
        )

    def message_status(context: Any, message: Any) -> str:
        failed = ""
        if message.status == "failed":
            error = (
                f'<span class="msg-error">{escape(message.last_error)}</span>\n'
                if message.last_error
                else ""
            )
            if message.campaign_id is not None:
                campaign = escape(
                    reverse("campaign_detail", args=[message.account_id, message.campaign_id])
                )
                failed = f'{error}<a class="retry" href="{campaign}">Resend from the campaign</a>\n'
            else:
                retry = escape(
                    reverse(
                        "inbox_message_retry",
                        args=[message.account_id, message.conversation_id, message.pk],
                    )
                )
                failed = (
                    f'{error}<form method="post" class="inline" action="{retry}" '
                    f'hx-post="{retry}" data-retry hx-target="#message-{message.pk}" '
                    'hx-swap="outerHTML">'
                    f"{CsrfTokenNode().render(context)}"
                    '<button type="submit" class="retry">Retry</button>'
                    "</form>\n"
                )
        label = labels.get(message.status, message.status)
        title = ""
        if getattr(message, "campaign_paused", False):
            label = "Queued · campaign paused"
            title = ' title="Sent when the campaign resumes"'
        return (
            f'<span id="message-status-{message.pk}" class="msg-status st-{escape(message.status)}"'
            f"{title}{_oob(context, f'message-status-{message.pk}')}>\n{escape(label)}\n{failed}"
            "</span>"
        )

    def message_bubble(context: Any, message: Any) -> str:
        parts = [
            f'<article id="message-{message.pk}" class="bubble {escape(message.direction)}" '
            f'data-message-id="{message.pk}">\n'
        ]
        if message.text:
            parts.append(f'<div class="bubble-text">{_linebreaksbr(message.text)}</div>\n')
        parts.append('<footer class="bubble-meta">\n')
        if message.price_cents:
            unlocked = getattr(message, "unlocked", False)
            parts.append(
                f'<span class="ppv{" unlocked" if unlocked else ""}" title="Pay-per-view price">'
                f"{dollars(message.price_cents)}{' · unlocked' if unlocked else ''}</span>\n"
            )
        if message.media_ids:
            parts.append(
                f'<span class="muted" title="Media">{len(message.media_ids)} media</span>\n'
            )
        parts.append(
            f'<time datetime="{_iso(message.created_at)}">'
            f"{escape(_bubble_time(message.created_at))}</time>\n"
        )
        if message.direction == "out":
            if message.sent_by_id is not None and message.sent_by:
                parts.append(
                    f'<span class="muted">{escape(message.sent_by.get_username())}</span>\n'
                )
            parts.append(message_status(context, message))
            parts.append("\n")
        parts.append("</footer>\n</article>")
        return "".join(parts)

    def row(conversation: Any, **context: Any) -> str:
        return conversation_row(_Context(context), conversation)

    def bubble(message: Any, **context: Any) -> str:
        return message_bubble(_Context(context), message)

    return row, bubble


class _Context(dict[str, Any]):
    """What the tags read of a Django template context."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.render_context: dict[str, str] = {}


# --- The same markup as Django template partials -------------------------------------------

DJANGO_ROW = """{% load inbox %}{% url 'inbox_thread' conversation.account_id conversation.pk as url %}\
<li id="conversation-{{ conversation.pk }}" class="conv-row{% if conversation.unread_count %} unread{% endif %}" \
data-conversation-id="{{ conversation.pk }}"{% if oob %} hx-swap-oob="outerHTML:#conversation-{{ conversation.pk }}, #live-sink"{% endif %}>
<a class="conv-link" href="{{ url }}{% if filter_query %}?{{ filter_query }}{% endif %}" \
hx-get="{{ url }}{% if filter_query %}?{{ filter_query }}{% endif %}" hx-target="#thread-pane" hx-swap="outerHTML" hx-push-url="true">
<span class="avatar" aria-hidden="true">{{ conversation.fan|initials }}</span>
<span class="conv-main">
<span class="conv-top">
<strong class="conv-name">{{ conversation.fan.display_name|default:conversation.fan.username }}</strong>
<span class="conv-username">@{{ conversation.fan.username }}</span>
<time class="conv-time" data-since datetime="{{ conversation.last_message_at|date:'c' }}">{{ conversation.last_message_at|short_since }}</time>
</span>
<span class="conv-preview">{% if conversation.last_message_direction == "out" %}<span class="muted">You: </span>{% endif %}{{ conversation.last_message_preview }}</span>
<span class="conv-meta">
<span class="spend" title="Lifetime spend">{{ conversation.fan.lifetime_spend_cents|dollars }}</span>
{% if conversation.waiting_since %}<span class="waiting" title="Waiting for a reply">waiting <time data-since datetime="{{ conversation.waiting_since|date:'c' }}">{{ conversation.waiting_since|short_since }}</time></span>
{% endif %}{% if conversation.assigned_to %}<span class="assignee" title="Assigned to">&rarr; {{ conversation.assigned_to.get_username }}</span>
{% endif %}{% if conversation.unread_count %}<span class="unread-badge" title="Unread messages">{{ conversation.unread_count }}</span>
{% endif %}</span>
</span>
</a>
</li>"""

DJANGO_STATUS = """<span id="message-status-{{ message.pk }}" class="msg-status st-{{ message.status }}"\
{% if message.campaign_paused %} title="Sent when the campaign resumes"{% endif %}\
{% if oob %} hx-swap-oob="outerHTML:#message-status-{{ message.pk }}, #live-sink"{% endif %}>
{% if message.campaign_paused %}Queued · campaign paused{% else %}{{ message.get_status_display }}{% endif %}
{% if message.status == "failed" %}{% if message.last_error %}<span class="msg-error">{{ message.last_error }}</span>
{% endif %}{% if message.campaign_id is not None %}<a class="retry" href="{% url 'campaign_detail' message.account_id message.campaign_id %}">Resend from the campaign</a>
{% else %}{% url 'inbox_message_retry' message.account_id message.conversation_id message.pk as retry %}\
<form method="post" class="inline" action="{{ retry }}" hx-post="{{ retry }}" data-retry hx-target="#message-{{ message.pk }}" hx-swap="outerHTML">\
{% csrf_token %}<button type="submit" class="retry">Retry</button></form>
{% endif %}{% endif %}</span>"""

DJANGO_BUBBLE = """{% load inbox %}<article id="message-{{ message.pk }}" class="bubble {{ message.direction }}" data-message-id="{{ message.pk }}">
{% if message.text %}<div class="bubble-text">{{ message.text|linebreaksbr }}</div>
{% endif %}<footer class="bubble-meta">
{% if message.price_cents %}<span class="ppv{% if message.unlocked %} unlocked{% endif %}" title="Pay-per-view price">{{ message.price_cents|dollars }}{% if message.unlocked %} · unlocked{% endif %}</span>
{% endif %}{% if message.media_ids %}<span class="muted" title="Media">{{ message.media_ids|length }} media</span>
{% endif %}<time datetime="{{ message.created_at|date:'c' }}">{{ message.created_at|date:"M j, H:i" }}</time>
{% if message.direction == "out" %}{% if message.sent_by_id is not None and message.sent_by %}<span class="muted">{{ message.sent_by.get_username }}</span>
{% endif %}{% include status %}
{% endif %}</footer>
</article>"""


def django_renderers() -> tuple[Callable[..., str], Callable[..., str]]:
    from django.template import engines

    engine = engines["django"]
    row_template = engine.from_string(DJANGO_ROW)
    status_template = engine.from_string(DJANGO_STATUS)
    bubble_template = engine.from_string(DJANGO_BUBBLE)

    def row(conversation: Any, **context: Any) -> str:
        return row_template.render({"conversation": conversation, **context})

    def bubble(message: Any, **context: Any) -> str:
        return bubble_template.render(
            {"message": message, "status": status_template.template, **context}
        )

    return row, bubble


def jinja_renderers() -> tuple[Callable[..., str], Callable[..., str]]:
    from django.template import Context

    from crm.templatetags.inbox import conversation_row, message_bubble

    def row(conversation: Any, **context: Any) -> str:
        return conversation_row(Context(context), conversation)

    def bubble(message: Any, **context: Any) -> str:
        return message_bubble(Context(context), message)

    return row, bubble


def jinja_due_renderers() -> tuple[Callable[..., str], Callable[..., str]]:
    """Jinja2 with the account's first-reply targets in the context, as the inbox renders
    rows now: each waiting row adds its time left (``crm.response_targets``). Timed only: the
    baselines have no such badge."""
    from django.template import Context

    from crm.response_targets import ReplyTargets
    from crm.templatetags.inbox import conversation_row, message_bubble

    targets = ReplyTargets(seconds=300, vip_seconds=120, vip_spend_threshold_cents=10_000)

    def row(conversation: Any, **context: Any) -> str:
        return conversation_row(Context({**context, "reply_targets": targets}), conversation)

    def bubble(message: Any, **context: Any) -> str:
        return message_bubble(Context(context), message)

    return row, bubble


# --- Data and timing -----------------------------------------------------------------------


def samples() -> tuple[list[Any], list[Any]]:
    """Unsaved conversations and messages covering every branch of the markup."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from crm.models import Conversation, Fan, Message

    now = timezone.now()
    chatter = User(id=7, username="chatter<7>")
    conversations = []
    for i in range(50):
        fan = Fan(
            id=1000 + i,
            account_id=3,
            username=f"fan_{i}",
            display_name="" if i % 5 == 0 else f"Fan {i} <script>alert('x')</script>",
            lifetime_spend_cents=i * 1234,
        )
        conversation = Conversation(
            id=2000 + i,
            account_id=3,
            fan=fan,
            unread_count=i % 3,
            waiting_since=now - timedelta(minutes=i) if i % 2 else None,
            last_message_at=now - timedelta(minutes=i),
            last_message_preview=f'hello & <b>{i}</b> "quoted"',
            last_message_direction="out" if i % 4 == 0 else "in",
            assigned_to=chatter if i % 3 == 0 else None,
        )
        conversations.append(conversation)
    messages = []
    statuses = ["queued", "sending", "sent", "failed"]
    for i in range(50):
        out = i % 2 == 0
        message = Message(
            id=5000 + i,
            account_id=3,
            conversation_id=2000,
            direction="out" if out else "in",
            status=statuses[i % 4] if out else "received",
            text="" if i % 7 == 0 else f"line one <i>{i}</i>\nline & two\r\n'three'",
            price_cents=500 * (i % 3),
            media_ids=["m1", "m2"] if i % 5 == 0 else [],
            created_at=now - timedelta(hours=i),
            last_error="platform said <no>" if i % 8 == 6 else "",
            campaign_id=11 if i % 16 == 6 else None,
            sent_by=chatter if out and i % 3 else None,
        )
        message.unlocked = i % 6 == 0  # type: ignore[attr-defined]
        message.campaign_paused = i % 10 == 4  # type: ignore[attr-defined]
        messages.append(message)
    return conversations, messages


def same_html(a: str, b: str) -> bool:
    """Equal but for how a quote is escaped (``&#34;``/``&quot;``, ``&#39;``/``&#x27;``)."""

    def norm(s: str) -> str:
        return s.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")

    return norm(a) == norm(b)


CONTEXTS: list[dict[str, Any]] = [
    {"oob": False, "filter_query": "", "csrf_token": "tok"},
    {"oob": True, "filter_query": "sort=newest&unread=on", "csrf_token": "tok"},
]


def check(renderers: dict[str, tuple[Callable[..., str], Callable[..., str]]]) -> list[str]:
    """Where a renderer's HTML differs from the baseline's (empty: none)."""
    conversations, messages = samples()
    base_row, base_bubble = renderers["f-string"]
    problems = []
    for name, (row, bubble) in renderers.items():
        for context in CONTEXTS:
            for conversation in conversations:
                if not same_html(row(conversation, **context), base_row(conversation, **context)):
                    problems.append(f"{name}: row {conversation.pk} {context}")
            for message in messages:
                if not same_html(bubble(message, **context), base_bubble(message, **context)):
                    problems.append(f"{name}: bubble {message.pk} {context}")
    return problems


def timings(
    renderers: dict[str, tuple[Callable[..., str], Callable[..., str]]], n: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Median µs per row and per bubble of each renderer. Rounds interleave the renderers, so
    the other processes on a shared machine slow them all alike."""
    conversations, messages = samples()
    context = CONTEXTS[0]
    figures: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in renderers}
    for _ in range(rounds):
        for name, (row, bubble) in renderers.items():
            for kind, (render, items) in enumerate(((row, conversations), (bubble, messages))):
                started = time.perf_counter()
                for i in range(n):
                    render(items[i % len(items)], **context)
                figures[name][kind].append((time.perf_counter() - started) / n * 1e6)
    return {k: (statistics.median(r), statistics.median(b)) for k, (r, b) in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000, help="renders per round")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    setup_django()
    from django.utils import translation

    translation.activate("en-us")
    renderers = {
        "f-string": fstring_renderers(),
        "django": django_renderers(),
        "jinja2": jinja_renderers(),
    }
    problems = check(renderers)
    for problem in problems[:10]:
        print("DIFFERS", problem)
    print(f"{'renderer':<10} {'row µs':>8} {'bubble µs':>10}   (median of {args.rounds} rounds)")
    timed = {**renderers, "jinja2+due": jinja_due_renderers()}
    for name, (row_us, bubble_us) in timings(timed, args.n, args.rounds).items():
        print(f"{name:<10} {row_us:>8.1f} {bubble_us:>10.1f}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
