"""Two chatters on one thread in a real browser: each sees the other's avatar, one sees the
other typing, and a send written while a colleague answered is stopped with that answer."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from crm.models import Message
from tests.e2e.conftest import open_inbox

pytestmark = pytest.mark.django_db(transaction=True)

LIVE_MS = 5_000
SEND_TIMEOUT_MS = 15_000


def test_two_chatters_see_each_other_typing_and_a_stale_send_is_stopped(login, inbox_data, member):
    # given: two chatters of one account with the same thread open
    data = inbox_data(2)
    conversation = data.conversations[0]
    alice, bob = member(data.account), member(data.account)
    alice_page, bob_page = login(alice), login(bob)
    for page in (alice_page, bob_page):
        open_inbox(page, data.path(conversation), conversation_id=conversation.pk)
    strip = f"#presence-{conversation.pk}"

    # then: each sees the other's avatar (initials), and not their own
    for page, me, other in ((alice_page, alice, bob), (bob_page, bob, alice)):
        avatar = page.locator(f'{strip} [data-presence-user="{other.pk}"].avatar')
        expect(avatar).to_be_visible(timeout=LIVE_MS)
        expect(avatar).to_have_attribute("title", f"{other.get_username()} has this open")
        expect(page.locator(f'{strip} [data-presence-user="{me.pk}"].avatar')).to_be_hidden()

    # when: bob starts writing, alice sees him typing
    bob_page.locator("#composer-text").press_sequentially("I can help with th", delay=30)
    expect(alice_page.locator(f"{strip} .typing")).to_have_text(
        f"{bob.get_username()} is typing…", timeout=LIVE_MS
    )
    expect(bob_page.locator(f"{strip} .typing")).to_be_hidden()

    # when: alice answers while bob is still writing
    alice_page.locator("#composer-text").fill("Be right there")
    alice_page.locator("#composer-text").press("Enter")
    expect(alice_page.locator("#composer-text")).to_have_value("", timeout=SEND_TIMEOUT_MS)
    answer = bob_page.locator(
        f"#thread-messages-{conversation.pk} .bubble.out", has_text="Be right there"
    )
    expect(answer).to_have_count(1, timeout=LIVE_MS)

    # then: bob's send is stopped with alice's answer shown, and nothing of his is queued
    bob_page.locator("#composer-text").press_sequentially("is", delay=30)
    bob_page.locator("#composer-text").press("Enter")
    stopped = bob_page.locator("#composer .composer-stopped")
    expect(stopped).to_contain_text(f"{alice.get_username()} answered", timeout=SEND_TIMEOUT_MS)
    expect(stopped).to_contain_text("Be right there")
    expect(bob_page.locator("#composer-text")).to_have_value("I can help with this")
    assert not Message.objects.filter(conversation=conversation, sent_by=bob).exists()

    # when: he sends anyway, it is queued once
    stopped.get_by_role("button", name="Send anyway").click()
    expect(bob_page.locator("#composer-text")).to_have_value("", timeout=SEND_TIMEOUT_MS)
    mine = bob_page.locator(
        f"#thread-messages-{conversation.pk} .bubble.out", has_text="I can help with this"
    )
    expect(mine).to_have_count(1, timeout=LIVE_MS)
    assert Message.objects.filter(conversation=conversation, sent_by=bob).count() == 1
