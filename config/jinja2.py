"""The Jinja2 environment of the inbox's hottest partials (``templates/crm/inbox/*.jinja``).

A thread page repeats its message bubble up to 150 times and a list its conversation row 50
times; Django's template engine took about 140 µs a row on them, Jinja2 a fraction of that
(``bench/inbox_render_timing.py``). Autoescape is on (Django's backend sets it); the filters
are the inbox's own template filters, so both engines format money and times alike.
"""

from __future__ import annotations

from typing import Any

from django.templatetags.static import static
from django.urls import reverse
from jinja2 import Environment

from crm.response_targets import reply_due
from crm.templatetags import inbox


def url(name: str, *args: Any) -> str:
    """As ``{% url name arg … %}``."""
    return reverse(name, args=args)


def environment(**options: Any) -> Environment:
    env = Environment(trim_blocks=True, lstrip_blocks=True, **options)  # noqa: S701 - autoescape comes in options
    env.globals.update(static=static, url=url, thread_url=inbox.thread_url, reply_due=reply_due)
    env.filters.update(
        dollars=inbox.dollars,
        short_since=inbox.short_since,
        initials=inbox.initials,
        iso=inbox.iso,
        bubble_time=inbox.bubble_time,
        linebreaksbr=inbox.linebreaksbr,
        status_label=inbox.status_label,
    )
    return env
