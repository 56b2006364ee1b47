"""Display helpers for the inbox: short relative times, money, initials, and the two rows a
page repeats most, a conversation and a message bubble.

The list row and the bubble are rendered here in Python rather than as template markup: a
thread page repeats them 150 times, and the template engine spent about 0.2 ms a row on them
(variable lookups, filters, a URL reverse, date formats), most of a page's server time. The
partials ``conversation-row``, ``message`` and ``message-status`` in ``crm/inbox.html`` call
these tags, so the page, its htmx fragments and the live events still share one rendering.
Every value that is not markup of our own goes through ``escape``.
"""

from __future__ import annotations

import html
from datetime import datetime
from functools import cache
from typing import Any

from django import template
from django.template.defaulttags import CsrfTokenNode
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString, mark_safe

from crm.models import Message

register = template.Library()


def escape(value: object) -> str:
    """As the template engine's autoescape does for a plain value (``django.utils.html.escape``
    without its lazy-string wrapper, which cost more than the escaping here)."""
    return html.escape(str(value))


@cache
def _month_abbr(language: str | None, month: int) -> str:
    return str(MONTHS_3[month]).title()


def _bubble_time(moment: datetime) -> str:
    """As ``|date:"M j, H:i"`` writes it (``Nov 3, 14:05``), in the current time zone."""
    local = timezone.localtime(moment)
    month = _month_abbr(translation.get_language(), local.month)
    return f"{month} {local.day}, {local.hour:02d}:{local.minute:02d}"


def _linebreaksbr(text: str) -> str:
    """As ``|linebreaksbr`` with autoescape: escaped, every newline a ``<br>``."""
    return escape(text.replace("\r\n", "\n").replace("\r", "\n")).replace("\n", "<br>")


_STATUS_LABELS = dict(Message.Status.choices)


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


def _iso(moment: datetime | None) -> str:
    """As ``|date:'c'`` writes it: in the current time zone."""
    return timezone.localtime(moment).isoformat() if moment is not None else ""


_PK_MARK = 987654321987654321


def _thread_url(context: template.Context, account_id: int, conversation_id: int) -> str:
    """The thread's URL, reversed once per account and render (a list has 50 rows)."""
    key = f"inbox_thread_url:{account_id}"
    pattern = context.render_context.get(key)
    if pattern is None:
        pattern = context.render_context[key] = reverse("inbox_thread", args=[account_id, _PK_MARK])
    return pattern.replace(str(_PK_MARK), str(conversation_id))


def _oob(context: template.Context, element_id: str) -> str:
    """An out-of-band swap of the element, or of nothing on a page without it (#live-sink)."""
    return f' hx-swap-oob="outerHTML:#{element_id}, #live-sink"' if context.get("oob") else ""


@register.simple_tag(takes_context=True)
def conversation_row(context: template.Context, conversation: Any) -> SafeString:
    """The list's ``<li>`` for a conversation (its fan and assignee loaded with it); links keep
    the list's filters (``filter_query``); ``oob`` makes it an out-of-band swap."""
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
    snooze_class, snooze_meta = _row_snooze_and_draft(context, conversation)
    meta.extend(snooze_meta)
    you = '<span class="muted">You: </span>' if conversation.last_message_direction == "out" else ""
    oob = _oob(context, f"conversation-{conversation.pk}")
    return mark_safe(  # noqa: S308 - every value above is escaped or ours
        f'<li id="conversation-{conversation.pk}" class="conv-row{" unread" if unread else ""}'
        f'{snooze_class}" '
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


# --- Row markers of drafts and snooze (crm.drafts, crm.snooze) -------------------------------
# Kept apart from the row above until the row moves to a template; the "Draft" marker is the
# acting member's own (``draft_ids`` in the page's context): live events carry no user, so
# static/js/drafts.js puts it back on rows a live event re-renders.


def _row_snooze_and_draft(context: template.Context, conversation: Any) -> tuple[str, list[str]]:
    """The row's extra class and markers: snoozed (hidden outside the "Snoozed" view by the
    stylesheet), woke from snooze, and the member's own draft."""
    css = ""
    meta: list[str] = []
    if conversation.snoozed_at is not None:
        css = " is-snoozed"
        until = conversation.snoozed_until
        label = f"until {escape(_bubble_time(until))}" if until else "until the fan writes"
        meta.append(f'<span class="snoozed-marker" title="Snoozed">snoozed {label}</span>')
    elif conversation.woke_from_snooze_at is not None:
        css = " woke"
        meta.append('<span class="woke-marker" title="Back from snooze">woke from snooze</span>')
    if conversation.pk in (context.get("draft_ids") or ()):
        meta.append('<span class="draft-marker" title="You have an unsent draft">Draft</span>')
    return css, meta


@register.simple_tag(takes_context=True)
def message_status(context: template.Context, message: Any) -> SafeString:
    """An outgoing message's status; a failed one with its error and a Retry form."""
    failed = ""
    if message.status == "failed":
        error = (
            f'<span class="msg-error">{escape(message.last_error)}</span>\n'
            if message.last_error
            else ""
        )
        if message.campaign_id is not None:
            # A campaign's failed messages are resent from its page (the campaign may be
            # cancelled or finished, and a resend there keeps its figures right).
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
                f'{error}<form method="post" class="inline" action="{retry}" hx-post="{retry}" '
                f'data-retry hx-target="#message-{message.pk}" hx-swap="outerHTML">'
                f"{CsrfTokenNode().render(context)}"
                '<button type="submit" class="retry">Retry</button>'
                "</form>\n"
            )
    label = _STATUS_LABELS.get(message.status, message.status)
    title = ""
    if getattr(message, "campaign_paused", False):
        # Held: the campaign is paused, the message leaves when it resumes.
        label = "Queued · campaign paused"
        title = ' title="Sent when the campaign resumes"'
    return mark_safe(  # noqa: S308 - every value above is escaped or ours
        f'<span id="message-status-{message.pk}" class="msg-status st-{escape(message.status)}"'
        f"{title}{_oob(context, f'message-status-{message.pk}')}>\n{escape(label)}\n{failed}"
        "</span>"
    )


@register.simple_tag(takes_context=True)
def message_bubble(context: template.Context, message: Any) -> SafeString:
    """A message of a thread: its text, price (and "unlocked"), media, time, and for an
    outgoing one who sent it and its live status."""
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
        parts.append(f'<span class="muted" title="Media">{len(message.media_ids)} media</span>\n')
    parts.append(
        f'<time datetime="{_iso(message.created_at)}">{escape(_bubble_time(message.created_at))}'
        "</time>\n"
    )
    if message.direction == "out":
        if message.sent_by_id is not None and message.sent_by:
            parts.append(f'<span class="muted">{escape(message.sent_by.get_username())}</span>\n')
        parts.append(message_status(context, message))
        parts.append("\n")
    parts.append("</footer>\n</article>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or ours
