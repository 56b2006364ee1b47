"""The inbox in a real browser: live updates between chatters, webhooks, failed sends and
retry through a real worker, the keyboard, and the phone layout."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from crm.models import Message
from tests.e2e.conftest import SHOTS, open_inbox

pytestmark = pytest.mark.django_db(transaction=True)

SEND_TIMEOUT_MS = 15_000
WORKER_BOOT_TIMEOUT_MS = 45_000


def composer_send(page: Page, text: str) -> None:
    page.locator("#composer-text").fill(text)
    page.locator("#composer-text").press("Enter")


def outgoing_bubble(page: Page, conversation_id: int, text: str) -> Any:
    return page.locator(f"#thread-messages-{conversation_id} article.bubble.out", has_text=text)


def bubble_id(page: Page, conversation_id: int, text: str) -> int:
    bubble = outgoing_bubble(page, conversation_id, text)
    expect(bubble).to_have_count(1)
    return int(str(bubble.get_attribute("id")).removeprefix("message-"))


def mark_no_reload(page: Page) -> None:
    page.evaluate("window.__e2eNoReload = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__e2eNoReload === true"), "the page was reloaded"


def test_two_chatters_see_a_sent_message_once_each(login, inbox_data, member):
    # given: two chatters of one account with the same thread open
    data = inbox_data(3)
    conversation = data.conversations[1]
    alice, bob = member(data.account), member(data.account)
    sender, watcher = login(alice), login(bob)
    for page in (sender, watcher):
        open_inbox(page, data.path(conversation), conversation_id=conversation.pk)
        mark_no_reload(page)

    # when: one of them types a message and presses Enter
    composer_send(sender, "See you tonight")

    # then: the bubble shows once on both pages, without a reload
    message_id = bubble_id(sender, conversation.pk, "See you tonight")
    for page in (sender, watcher):
        bubble = page.locator(f"#message-{message_id}")
        expect(bubble).to_have_count(1)
        expect(bubble).to_have_class(re.compile(r"\bbubble\b.*\bout\b"))
        expect(bubble).to_contain_text("See you tonight")
        expect(page.locator(f"#message-status-{message_id}")).to_have_class(
            re.compile(r"\bst-(queued|sending|sent)\b")
        )
        assert_not_reloaded(page)
    # The composer comes back empty with the POST's answer (the first send of a server process
    # also connects it to SQS, which takes a few seconds).
    expect(sender.locator("#composer-text")).to_have_value("", timeout=SEND_TIMEOUT_MS)
    message = Message.objects.get(pk=message_id)
    assert (message.conversation_id, message.sent_by_id) == (conversation.pk, alice.pk)
    # Both pages still show it once after the live events have all arrived.
    expect(watcher.locator(f"#conversation-{conversation.pk} .conv-preview")).to_contain_text(
        "See you tonight"
    )
    for page in (sender, watcher):
        expect(page.locator(f"#message-{message_id}")).to_have_count(1)

    SHOTS.mkdir(parents=True, exist_ok=True)
    sender.screenshot(path=str(SHOTS / "inbox-thread-1280.png"), full_page=True)
    watcher.set_viewport_size({"width": 390, "height": 844})
    expect(watcher.locator(".back-link")).to_be_visible()
    watcher.screenshot(path=str(SHOTS / "inbox-thread-390.png"), full_page=True)


def sign(body: bytes) -> str:
    return hmac.new(settings.ONLYFANS_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()


def webhook_message_received(base_url: str, fan: Any, text: str, *, key: str) -> None:
    """The platform posts a fan's message, signed, as tests/onlyfans/test_webhooks.py does."""
    body = json.dumps(
        {
            "event": "messages.received",
            "account_id": fan.account.platform_account_id,
            "payload": {
                "id": int(hashlib.sha256(key.encode()).hexdigest()[:8], 16),
                "text": text,
                "fromUser": {
                    "id": int(fan.platform_fan_id),
                    "name": fan.display_name,
                    "username": fan.username,
                },
                "price": 0,
                "isFree": True,
                "isTip": False,
                "media": [],
                "createdAt": "2030-01-01T12:00:00+00:00",
            },
        }
    ).encode()
    reply = httpx.post(
        f"{base_url}/api/onlyfans/webhooks",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Signature": sign(body),
            "X-OFAPI-Idempotency-Key": key,
        },
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "accepted", reply.text


def console_errors(page: Page) -> list[str]:
    """The page's console errors from now on (htmx reports a live swap without a target so)."""
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    return errors


def two_chatters_on(login: Any, member: Any, data: Any, open_index: int) -> list[Page]:
    pages = [login(member(data.account)), login(member(data.account))]
    conversation = data.conversations[open_index]
    for page in pages:
        open_inbox(page, data.path(conversation), conversation_id=conversation.pk)
        expect(page.locator("#conversation-list > li:first-child")).to_have_id(
            f"conversation-{data.conversations[0].pk}"
        )
        mark_no_reload(page)
    return pages


def test_inbound_webhook_lands_in_the_open_thread_and_moves_the_conversation_up(
    login, inbox_data, member, live_server_url
):
    # given: the oldest conversation open on two chatters' pages
    data = inbox_data(3)
    conversation, fan = data.conversations[-1], data.fans[-1]
    pages = two_chatters_on(login, member, data, open_index=-1)

    # when: the platform posts the fan's new message
    webhook_message_received(live_server_url, fan, "are you online?", key="evt_e2e_open")

    # then: both pages show it in the open thread, once, and the conversation on top
    message = Message.objects.get(conversation=conversation, text="are you online?")
    for page in pages:
        bubble = page.locator(f"#thread-messages-{conversation.pk} #message-{message.pk}")
        expect(bubble).to_have_count(1)
        expect(bubble).to_have_class(re.compile(r"\bbubble\b.*\bin\b"))
        expect(bubble).to_contain_text("are you online?")
        top = page.locator("#conversation-list > li:first-child")
        expect(top).to_have_id(f"conversation-{conversation.pk}")
        expect(top.locator(".conv-preview")).to_contain_text("are you online?")
        expect(page.locator(f"#conversation-{conversation.pk}")).to_have_count(1)
        expect(page.locator(f"#message-{message.pk}")).to_have_count(1)
        assert_not_reloaded(page)
    # The chatters watching the thread have read it (the page says so): no badge is left.
    for page in pages:
        expect(page.locator(f"#conversation-{conversation.pk} .unread-badge")).to_have_count(0)
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


def test_inbound_webhook_for_another_fan_moves_it_up_with_its_unread_badge(
    login, inbox_data, member, live_server_url
):
    # given: two chatters reading the newest conversation
    data = inbox_data(3)
    conversation, fan = data.conversations[-1], data.fans[-1]
    pages = two_chatters_on(login, member, data, open_index=0)
    errors = [console_errors(page) for page in pages]

    # when: a fan whose conversation is further down writes
    webhook_message_received(live_server_url, fan, "still there?", key="evt_e2e_other")

    # then: that conversation is on top of both lists, unread; the open thread is untouched
    message = Message.objects.get(conversation=conversation, text="still there?")
    for page in pages:
        top = page.locator("#conversation-list > li:first-child")
        expect(top).to_have_id(f"conversation-{conversation.pk}")
        expect(top.locator(".unread-badge")).to_have_text("1")
        expect(top.locator(".conv-preview")).to_contain_text("still there?")
        expect(page.locator(f"#conversation-{conversation.pk}")).to_have_count(1)
        expect(page.locator("#thread-pane")).to_have_attribute(
            "data-conversation-id", str(data.conversations[0].pk)
        )
        expect(page.locator(f"#message-{message.pk}")).to_have_count(0)
        assert_not_reloaded(page)
    conversation.refresh_from_db()
    assert conversation.unread_count == 1
    # The bubble for a thread these pages do not show found no target, quietly.
    assert not [e for page_errors in errors for e in page_errors if "oobErrorNoTarget" in e]


def test_failed_send_shows_its_error_and_retry_sends_it(
    login, inbox_data, member, sandbox, send_worker
):
    # given: the real worker (it gives up after one attempt) and a platform that refuses once
    assert send_worker.poll() is None, "the send worker is not running"
    sandbox.configure(fail_next=1)
    data = inbox_data(2)
    conversation = data.conversations[0]
    page = login(member(data.account))
    open_inbox(page, data.path(conversation), conversation_id=conversation.pk)

    # when: a message is sent and the platform answers 500
    composer_send(page, "this one fails first")
    message_id = bubble_id(page, conversation.pk, "this one fails first")
    status = page.locator(f"#message-status-{message_id}")

    # then: it shows as failed with the error and a Retry button (a long timeout only for a
    # worker still booting when this test runs first: a Celery worker takes 10-20 s to start)
    expect(status).to_have_class(re.compile(r"\bst-failed\b"), timeout=WORKER_BOOT_TIMEOUT_MS)
    expect(status.locator(".msg-error")).to_contain_text("HTTP 500")
    retry = status.locator("button.retry")
    expect(retry).to_be_visible()
    assert Message.objects.get(pk=message_id).status == Message.Status.FAILED

    # when: Retry is clicked, the platform accepts it
    retry.click()

    # then
    expect(status).to_have_class(re.compile(r"\bst-sent\b"), timeout=15_000)
    expect(status).to_contain_text("Sent")
    expect(status.locator("button.retry")).to_have_count(0)
    expect(page.locator(f"#message-{message_id}")).to_have_count(1)
    message = Message.objects.get(pk=message_id)
    assert message.status == Message.Status.SENT
    stored = sandbox.messages(account=data.account.platform_account_id)
    assert [s["idempotency_key"] for s in stored] == [str(message.idempotency_key)]


def expect_open(page: Page, data: Any, index: int) -> None:
    conversation = data.conversations[index]
    expect(page).to_have_url(
        re.compile(rf"/accounts/{data.account.pk}/inbox/{conversation.pk}/(\?.*)?$")
    )
    expect(page.locator("#thread-pane")).to_have_attribute(
        "data-conversation-id", str(conversation.pk)
    )
    expect(page.locator("#thread-pane .thread-head strong")).to_have_text(
        data.fans[index].display_name
    )
    expect(page.locator(f"#conversation-{conversation.pk}")).to_have_class(
        re.compile(r"\bis-open\b")
    )


def test_keyboard_moves_searches_and_sends(login, inbox_data, member):
    data = inbox_data(3)
    page = login(member(data.account))
    open_inbox(page, data.path())

    # j / ArrowDown open the next conversation, k / ArrowUp the previous
    page.keyboard.press("j")
    expect_open(page, data, 0)
    page.keyboard.press("j")
    expect_open(page, data, 1)
    page.keyboard.press("ArrowDown")
    expect_open(page, data, 2)
    page.keyboard.press("k")
    expect_open(page, data, 1)
    page.keyboard.press("ArrowUp")
    expect_open(page, data, 0)

    # / focuses the search box (and types no slash into it)
    page.keyboard.press("/")
    expect(page.locator("#inbox-search")).to_be_focused()
    expect(page.locator("#inbox-search")).to_have_value("")
    page.keyboard.press("Escape")
    expect(page.locator("#inbox-search")).not_to_be_focused()

    # in the composer, Shift+Enter is a new line and Enter sends
    composer = page.locator("#composer-text")
    composer.click()
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    expect(composer).to_have_value("first line\nsecond line")
    expect(outgoing_bubble(page, data.conversations[0].pk, "first line")).to_have_count(0)
    page.keyboard.press("Enter")
    bubble = outgoing_bubble(page, data.conversations[0].pk, "first line")
    expect(bubble).to_have_count(1)
    expect(bubble.locator(".bubble-text")).to_have_text("first linesecond line")  # textContent
    expect(bubble.locator(".bubble-text br")).to_have_count(1)
    assert Message.objects.get(conversation=data.conversations[0], direction="out").text == (
        "first line\nsecond line"
    )

    # Esc leaves the composer, and the list keys work again (once the POST's answer has
    # swapped in the new, empty composer: Esc on the old one is undone by that swap's focus)
    expect(page.locator("#composer-text")).to_have_value("")
    expect(page.locator("#composer-text")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#composer-text")).not_to_be_focused()
    page.keyboard.press("j")
    expect_open(page, data, 1)


def test_phone_width_shows_the_list_then_the_thread_with_a_back_link(login, inbox_data, member):
    data = inbox_data(2)
    conversation = data.conversations[1]
    page = login(member(data.account), width=390, height=844)
    open_inbox(page, data.path())

    # the list fills the screen; no thread yet
    expect(page.locator("#conversation-list")).to_be_visible()
    expect(page.locator(f"#conversation-{conversation.pk}")).to_be_in_viewport()
    expect(page.locator("#thread-pane")).to_be_hidden()

    # opening a conversation shows its thread in place of the list, with a back link
    page.locator(f"#conversation-{conversation.pk} a.conv-link").click()
    expect_open(page, data, 1)
    expect(page.locator("#thread-pane")).to_be_visible()
    expect(page.locator("#composer-text")).to_be_visible()
    expect(page.locator("#conversation-list")).to_be_hidden()
    back = page.locator("#thread-pane .back-link")
    expect(back).to_be_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "inbox-phone-thread.png"))

    # the back link returns to the list
    back.click()
    expect(page).to_have_url(re.compile(rf"/accounts/{data.account.pk}/inbox/$"))
    expect(page.locator("#conversation-list")).to_be_visible()
    expect(page.locator("#thread-pane")).to_be_hidden()


def test_a_refused_price_shows_the_composers_error_in_place(login, inbox_data, member):
    # given: an open thread
    data = inbox_data(1)
    conversation = data.conversations[0]
    page = login(member(data.account))
    open_inbox(page, data.path(conversation), conversation_id=conversation.pk)
    mark_no_reload(page)
    sends: list[str] = []
    messages_url = f"/inbox/{conversation.pk}/messages/"
    page.on(
        "request",
        lambda r: sends.append(r.url) if r.method == "POST" and messages_url in r.url else None,
    )

    # when: a $1 message is sent (the composer checks the price rules before it posts; the
    # server refuses the same with a 422: tests/crm/test_inbox_views.py)
    page.locator("#composer-text").fill("a cheap one")
    page.locator("#composer input[name=price]").fill("1")
    page.locator("#composer button[type=submit]").click()

    # then: the error shows in place, what was typed is kept, nothing was posted or queued
    error = page.locator("#composer p.error[data-media-error]")
    expect(error).to_contain_text("A price is between $3 and $200.")
    expect(page.locator("#composer-text")).to_have_value("a cheap one")
    expect(page.locator("#composer input[name=price]")).to_have_value("1")
    assert sends == []
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()
    assert_not_reloaded(page)
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()
