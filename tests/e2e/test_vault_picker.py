"""The composer's media picker in a real browser (issue 18): a chatter sees what the fan bought,
attaches two items at $15 with one free preview using the keyboard, sends; the bubble shows them;
a second attempt with the same item is stopped until confirmed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from crm.models import FanMediaEvent, Message, MessageMedia
from tests.e2e.conftest import SHOTS, open_inbox
from tests.factories import VaultItemFactory

pytestmark = pytest.mark.django_db(transaction=True)

SEND_TIMEOUT_MS = 15_000


def test_chatter_picks_media_sees_marks_sends_and_is_stopped_resending(login, inbox_data, member):
    # given: a vault of three items; the fan already bought the oldest one on 3 Nov
    data = inbox_data(1)
    conversation, fan = data.conversations[0], data.fans[0]
    bought = VaultItemFactory(account=data.account, media_type="video")
    first = VaultItemFactory(account=data.account)
    second = VaultItemFactory(account=data.account)
    FanMediaEvent.objects.create(
        account=data.account,
        fan=fan,
        vault_item=bought,
        platform_media_id=bought.platform_media_id,
        kind="bought",
        price_cents=2500,
        at=datetime(2026, 11, 3, 12, tzinfo=UTC),
        source="platform_history",
    )
    page = login(member(data.account))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_inbox(page, data.path(conversation), conversation_id=conversation.pk)

    # when: the chatter opens the picker
    page.get_by_role("button", name="Add media").click()
    dialog = page.locator(f"#media-picker-{conversation.pk}")
    expect(dialog).to_have_attribute("open", "")
    assert not errors, errors
    grid = dialog.get_by_role("listbox", name="Vault items")
    expect(grid.get_by_role("option")).to_have_count(3)
    # then: the item the fan bought says so; the others were never sent
    expect(dialog.locator(f"#picker-item-{bought.pk}")).to_contain_text("bought $25 · 3 Nov")
    expect(dialog.locator(f"#picker-item-{first.pk}")).to_contain_text("never sent")

    # when: two items are picked with the keyboard (newest first: second, first, bought)
    option = dialog.locator(f"#picker-item-{second.pk}")
    option.focus()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowRight")
    expect(dialog.locator(f"#picker-item-{first.pk}")).to_be_focused()
    page.keyboard.press(" ")
    expect(dialog.locator('[aria-selected="true"]')).to_have_count(2)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    chips = page.locator("#composer .media-chip")
    expect(chips).to_have_count(2)
    # $15 with the first picked item as a free preview
    page.locator(
        f'#composer .media-chip[data-item-id="{second.pk}"] input[name=preview_item_ids]'
    ).check()
    page.locator("#composer input[name=price]").fill("15")
    page.screenshot(path=str(SHOTS / "vault-picker-composer.png"))
    page.locator("#composer-text").fill("Something special")
    page.locator("#composer-text").press("Enter")

    # then: the bubble shows both media, the price and the preview
    bubble = page.locator(
        f"#thread-messages-{conversation.pk} article.bubble.out", has_text="Something special"
    )
    expect(bubble).to_have_count(1, timeout=SEND_TIMEOUT_MS)
    expect(bubble.locator("li.bubble-thumb")).to_have_count(2)
    expect(bubble.locator("li.bubble-thumb.is-preview")).to_have_count(1)
    expect(bubble).to_contain_text("$15")
    expect(page.locator("#composer .media-chip")).to_have_count(0)
    message = Message.objects.get(text="Something special")
    assert message.price_cents == 1500
    assert list(
        MessageMedia.objects.filter(message=message)
        .order_by("position")
        .values_list("vault_item_id", "is_preview")
    ) == [(second.pk, True), (first.pk, False)]

    # when: the chatter tries to send the bought item again
    page.get_by_role("button", name="Add media").click()
    expect(dialog.locator(f"#picker-item-{bought.pk}")).to_contain_text("bought $25")
    dialog.locator(f"#picker-item-{bought.pk}").click()
    dialog.get_by_role("button", name="Done").click()
    page.locator("#composer input[name=price]").fill("20")
    page.locator("#composer-text").fill("Again?")
    page.locator("#composer-text").press("Enter")

    # then: the composer asks first, and nothing is queued
    alert = page.locator("#composer .composer-resend")
    expect(alert).to_contain_text("This fan already bought video", timeout=SEND_TIMEOUT_MS)
    expect(alert).to_contain_text("on 3 Nov")
    page.screenshot(path=str(SHOTS / "vault-picker-resend.png"))
    assert not Message.objects.filter(text="Again?").exists()
    expect(page.locator("#composer .media-chip")).to_have_count(1)  # the choice is kept
