"""Auto-assignment and first-reply targets in a real browser: a clocked-in chatter gets a new
conversation live when a fan writes (webhook), answers it, and its time-left badge goes."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Conversation, ConversationAssignment, CreatorAccount, Fan
from tests.e2e.conftest import SHOTS, open_inbox
from tests.e2e.test_inbox import WORKER_BOOT_TIMEOUT_MS, composer_send, sign
from tests.factories import (
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    MessageFactory,
    WorkSessionFactory,
)

pytestmark = pytest.mark.django_db(transaction=True)


def fan_writes_now(base_url: str, account: CreatorAccount, fan_id: int, text: str) -> None:
    """The platform posts a new fan's message, written now, signed as the platform signs."""
    body = json.dumps(
        {
            "event": "messages.received",
            "account_id": account.platform_account_id,
            "payload": {
                "id": int(hashlib.sha256(text.encode()).hexdigest()[:8], 16),
                "text": text,
                "fromUser": {"id": fan_id, "name": "Newcomer Fan", "username": "newcomer"},
                "price": 0,
                "isFree": True,
                "isTip": False,
                "media": [],
                "createdAt": timezone.now().isoformat(),
            },
        }
    ).encode()
    reply = httpx.post(
        f"{base_url}/api/onlyfans/webhooks",
        content=body,
        headers={
            "Content-Type": "application/json",
            "Signature": sign(body),
            "X-OFAPI-Idempotency-Key": f"evt_assign_{fan_id}",
        },
    )
    assert reply.status_code == 200, reply.text


def test_a_clocked_in_chatter_is_assigned_live_and_answers_within_target(
    login, live_server_url, sandbox, send_worker
):
    # given: auto-assignment on, a chatter clocked in (and one clocked out), an older
    # conversation in the list, the chatter's inbox open
    assert send_worker.poll() is None, "the send worker is not running"
    account = CreatorAccountFactory(
        auto_assign=True, send_rate_per_minute=1000, send_min_interval_ms=0
    )
    chatter = MembershipFactory(account=account, role="chatter", user__username="onshift").user
    MembershipFactory(account=account, role="chatter", user__username="offshift")
    WorkSessionFactory(account=account, user=chatter)
    old = ConversationFactory(
        fan=FanFactory(account=account, display_name="Old Friend"),
        last_message_at=timezone.now() - timedelta(hours=2),
        last_message_preview="earlier",
        last_message_direction="out",
    )
    MessageFactory(conversation=old, text="earlier")
    page = login(chatter)
    open_inbox(page, f"/accounts/{account.pk}/inbox/")

    # when: a new fan writes
    fan_writes_now(live_server_url, account, 777001, "hi, anyone there?")

    # then: the new conversation lands on top of the list, assigned to the chatter, with its
    # time left against the 5-minute target
    fan = Fan.objects.get(account=account, platform_fan_id="777001")
    conversation = Conversation.objects.get(fan=fan)
    row = page.locator(f"#conversation-{conversation.pk}")
    expect(page.locator("#conversation-list > li:first-child")).to_have_id(
        f"conversation-{conversation.pk}"
    )
    expect(row.locator(".assignee")).to_contain_text("onshift")
    badge = row.locator(".reply-due")
    expect(badge).to_have_text(re.compile(r"^[45]m( \d+s)? left$"))
    expect(badge).not_to_have_class(re.compile(r"\boverdue\b"))
    entry = ConversationAssignment.objects.get(conversation=conversation)
    assert (entry.to_user_id, entry.reason) == (chatter.pk, "auto_unassigned")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "assignment-live.png"))

    # when: the chatter opens it and answers
    row.locator(".conv-link").click()
    expect(page.locator("#thread-pane")).to_have_attribute(
        "data-conversation-id", str(conversation.pk)
    )
    composer_send(page, "Here for you!")

    # then: nobody waits any more, the badge is gone, and the reply went out within target
    expect(row.locator(".reply-due")).to_have_count(0, timeout=WORKER_BOOT_TIMEOUT_MS)
    expect(row.locator(".waiting")).to_have_count(0)
    conversation.refresh_from_db()
    assert conversation.waiting_since is None
    assert conversation.assigned_to_id == chatter.pk
