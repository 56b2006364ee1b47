"""Drafts and snooze in a real browser: a half-written message survives a reload (and shows
on another device), and a snoozed conversation leaves the list and comes back live when it
wakes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm import snooze
from crm.models import Conversation, Draft
from tests.e2e.conftest import SHOTS, open_inbox

pytestmark = pytest.mark.django_db(transaction=True)

LIVE_TIMEOUT_MS = 20_000


def test_a_draft_survives_a_reload_and_follows_the_member(login, inbox_data, member):
    # given: a chatter with a thread open
    data = inbox_data(2)
    conversation = data.conversations[1]
    chatter = member(data.account)
    page = login(chatter)
    open_inbox(page, data.path(conversation), conversation_id=conversation.pk)

    # when: they type, and the autosave has gone out, then reload
    draft_url = f"/accounts/{data.account.pk}/inbox/{conversation.pk}/draft/"
    with page.expect_response(lambda r: r.url.endswith(draft_url) and r.status == 204):
        page.locator("#composer-text").type("Half a thought about", delay=20)
    open_inbox(page, data.path(conversation), conversation_id=conversation.pk)

    # then: the text is back in the composer, and the row says "Draft" (for them only)
    expect(page.locator("#composer-text")).to_have_value("Half a thought about")
    expect(page.locator(f"#conversation-{conversation.pk} .draft-marker")).to_have_text("Draft")
    colleague = login(member(data.account))
    open_inbox(colleague, data.path(conversation), conversation_id=conversation.pk)
    expect(colleague.locator("#composer-text")).to_have_value("")
    expect(colleague.locator(".draft-marker")).to_have_count(0)
    # ...and on their other device
    other_device = login(chatter, width=390, height=844)
    open_inbox(other_device, data.path(conversation), conversation_id=conversation.pk)
    expect(other_device.locator("#composer-text")).to_have_value("Half a thought about")

    # when: they finish it and send: the draft is gone, here and after a reload
    page.locator("#composer-text").type(" tonight")
    page.locator("#composer-text").press("Enter")
    expect(page.locator("#composer-text")).to_have_value("", timeout=15_000)
    expect(page.locator(f"#conversation-{conversation.pk} .draft-marker")).to_have_count(0)
    open_inbox(page, data.path(conversation), conversation_id=conversation.pk)
    expect(page.locator("#composer-text")).to_have_value("")
    assert not Draft.objects.filter(conversation=conversation).exists()


def test_snooze_hides_a_conversation_until_it_wakes_live(login, inbox_data, member):
    # given: a chatter with the list and a thread open
    data = inbox_data(3)
    conversation = data.conversations[1]
    page = login(member(data.account))
    open_inbox(page, data.path(conversation), conversation_id=conversation.pk)
    row = page.locator(f"#conversation-{conversation.pk}")
    expect(row).to_be_visible()

    # when: they snooze it for an hour from the thread's menu, with the keyboard
    page.locator(".snooze-menu summary").focus()
    page.keyboard.press("Enter")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "inbox-snooze-menu-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.get_by_role("button", name="1 hour").focus()
    page.keyboard.press("Enter")

    # then: the thread says until when, and the row leaves the list (also after a reload)
    expect(page.locator(".snoozed-until")).to_contain_text("Snoozed until")
    expect(row).to_be_hidden()
    page.screenshot(path=str(SHOTS / "inbox-snoozed-1280.png"), full_page=True)
    open_inbox(page, data.path())
    expect(page.locator(f"#conversation-{conversation.pk}")).to_have_count(0)
    snoozed_view = page.locator("label.chip", has_text="Snoozed")
    with page.expect_response(lambda r: "snoozed=on" in r.url):
        snoozed_view.click()
    expect(page.locator(f"#conversation-{conversation.pk}")).to_be_visible()
    # htmx "settles" a swapped element: for defaultSettleDelay (20 ms) the new list keeps the
    # old one's class attribute. A loaded browser stretches that window; widen it so a live
    # event that lands inside it shows whether the list still takes it.
    page.evaluate("htmx.config.defaultSettleDelay = 3000")
    with page.expect_response(lambda r: "snoozed" not in r.url and "/inbox/" in r.url):
        snoozed_view.click()
    expect(page.locator(f"#conversation-{conversation.pk}")).to_have_count(0)

    # when: its time comes and the wake task runs
    assert snooze.snoozes_wake_due(now=timezone.now() + timedelta(hours=2)) == 1

    # then: it is back, live, at the top of the list, marked (the event leaves this test's
    # process for the server's socket: a loaded machine takes a while)
    first = page.locator("#conversation-list .conv-row").first
    expect(first).to_have_id(f"conversation-{conversation.pk}", timeout=LIVE_TIMEOUT_MS)
    expect(first.locator(".woke-marker")).to_have_text("woke from snooze")
    expect(first).to_be_visible()
    assert Conversation.objects.get(pk=conversation.pk).snoozed_at is None
