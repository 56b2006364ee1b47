"""The inbox's Jinja2 partials (row, bubble, status): the ids, htmx attributes and classes the
page and live events rely on, escaping of everything a fan or chatter wrote, and one rendering
shared by the page, its htmx fragments and the live events."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.template import Context
from django.urls import reverse
from django.utils import timezone

from crm import live, selectors
from crm.models import Message
from crm.templatetags.inbox import conversation_row, message_bubble, message_status
from tests.factories import ConversationFactory, FanFactory, MessageFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def hostile(account):
    """A conversation whose fan, preview and messages carry markup."""
    fan = FanFactory(account=account, display_name=f"Eve {SCRIPT}", username="eve_<b>")
    conversation = ConversationFactory(
        fan=fan,
        last_message_at=timezone.now() - timedelta(minutes=5),
        last_message_preview=f'hi {SCRIPT} & "you"',
        unread_count=2,
        waiting_since=timezone.now() - timedelta(minutes=5),
    )
    MessageFactory(conversation=conversation, text=f"line 1 {SCRIPT}\nline 2 & <i>more</i>")
    return conversation


def assert_escaped(html: str) -> None:
    assert "<script>" not in html
    assert "<b>" not in html and "<i>" not in html


def test_row_escapes_the_fan_and_keeps_its_ids_and_htmx_attributes(hostile):
    conversation = selectors.conversation_for_display(conversation_id=hostile.pk)
    # when
    html = conversation_row(Context({"filter_query": "q=a&unread=on"}), conversation)
    oob = conversation_row(Context({"oob": True}), conversation)
    # then
    assert_escaped(html)
    assert "Eve &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "@eve_&lt;b&gt;" in html
    assert "hi &lt;script&gt;" in html and "&amp; &#34;you&#34;" in html
    url = reverse("inbox_thread", args=[hostile.account_id, hostile.pk])
    assert html.startswith(
        f'<li id="conversation-{hostile.pk}" class="conv-row unread" '
        f'data-conversation-id="{hostile.pk}">'
    )
    assert (
        f'href="{url}?q=a&amp;unread=on" hx-get="{url}?q=a&amp;unread=on" '
        'hx-target="#thread-pane" hx-swap="outerHTML" hx-push-url="true"'
    ) in html
    assert '<span class="unread-badge" title="Unread messages">2</span>' in html
    assert '<time data-since datetime="' in html and ">5m</time>" in html
    assert f'hx-swap-oob="outerHTML:#conversation-{hostile.pk}, #live-sink"' in oob
    assert "hx-swap-oob" not in html


def test_bubble_escapes_the_text_and_keeps_line_breaks(hostile):
    message = hostile.messages.get()
    # when
    html = message_bubble(Context({}), message)
    # then
    assert_escaped(html)
    assert (
        '<div class="bubble-text">line 1 &lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;<br>'
        "line 2 &amp; &lt;i&gt;more&lt;/i&gt;</div>"
    ) in html
    assert html.startswith(
        f'<article id="message-{message.pk}" class="bubble in" data-message-id="{message.pk}">'
    )
    assert "msg-status" not in html  # an incoming message has no status


def test_failed_outgoing_bubble_has_its_error_and_a_retry_form_with_the_token(hostile, chatter):
    message = MessageFactory(
        conversation=hostile,
        direction=Message.Direction.OUT,
        status=Message.Status.FAILED,
        sender_kind=Message.SenderKind.USER,
        sent_by=chatter,
        last_error=f"rejected {SCRIPT}",
    )
    # when
    html = message_bubble(Context({"csrf_token": "tok<en>"}), message)
    # then
    assert_escaped(html)
    retry = reverse("inbox_message_retry", args=[message.account_id, hostile.pk, message.pk])
    assert f'<span id="message-status-{message.pk}" class="msg-status st-failed">' in html
    assert '<span class="msg-error">rejected &lt;script&gt;' in html
    assert (
        f'<form method="post" class="inline" action="{retry}" hx-post="{retry}" data-retry '
        f'hx-target="#message-{message.pk}" hx-swap="outerHTML">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="tok&lt;en&gt;">'
        '<button type="submit" class="retry">Retry</button></form>'
    ) in html
    assert f'<span class="muted">{chatter.get_username()}</span>' in html


def test_status_of_a_paused_campaign_message_and_as_an_oob_swap(account):
    message = Message(id=41, account_id=account.pk, conversation_id=9, status="queued")
    message.campaign_paused = True  # type: ignore[attr-defined]
    # when
    html = message_status(Context({"oob": True}), message)
    # then
    assert html == (
        '<span id="message-status-41" class="msg-status st-queued" '
        'title="Sent when the campaign resumes" '
        'hx-swap-oob="outerHTML:#message-status-41, #live-sink">\n'
        "Queued · campaign paused\n"
        "</span>"
    )


def test_page_fragment_and_live_event_share_one_bubble_and_row(client, chatter, hostile):
    # given
    client.force_login(chatter)
    message = hostile.messages.get()
    url = reverse("inbox_thread", args=[hostile.account_id, hostile.pk])
    # when
    page = client.get(url).content.decode()
    fragment = client.get(url, headers=HX).content.decode()
    event = live.event_html(
        account_id=hostile.account_id,
        event="message.received",
        payload={"message_id": message.pk, "conversation_id": hostile.pk},
    )
    # then
    assert event is not None
    bubble = re.search(rf'<article id="message-{message.pk}".*?</article>', event, re.S)
    assert bubble is not None
    assert bubble.group(0) in page and bubble.group(0) in fragment
    for html in (page, fragment, event):
        assert "<script>alert" not in html
    row = re.search(rf'<li id="conversation-{hostile.pk}".*?</li>', page, re.S)
    assert row is not None and "Eve &lt;script&gt;" in row.group(0)
    assert f'<li id="conversation-{hostile.pk}"' in event
