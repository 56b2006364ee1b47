"""Automations in a real browser: an owner sets up a welcome, sees the message previewed for a
real fan as they type and who it would have reached, turns it on; the list shows it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from automations.models import Automation
from tests.e2e.conftest import SHOTS
from tests.factories import CreatorAccountFactory, FanFactory, VaultItemFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_owner_creates_a_welcome_with_the_preview_and_turns_it_on(login, member):
    # given: an owner, a fan seen just now, and three who subscribed this week
    account = CreatorAccountFactory()
    owner = member(account, "owner")
    now = timezone.now()
    FanFactory(account=account, username="lily", display_name="Lily", last_seen_at=now)
    newcomers = [
        FanFactory(
            account=account,
            username=f"new{i}",
            display_name="",
            subscription_state="active",
            subscribed_at=now - timedelta(days=i + 1),
            last_seen_at=now - timedelta(days=3),
        )
        for i in range(3)
    ]
    page = login(owner)

    # when: the owner opens Automations from the top bar and starts a new one
    page.goto("/")
    page.get_by_role("link", name="Automations").click()
    expect(page.locator("h1")).to_contain_text("Automations")
    page.locator("#new-automation").click()
    page.fill("input[name=name]", "Welcome")
    page.select_option("select[name=trigger]", "subscribed")

    # then: the preview renders the text for the most recently seen fan, as it is typed
    preview = page.locator("#preview-text")
    text = page.locator("#automation-text")
    text.fill("Hi {name|babe}, so glad you're here")
    expect(preview).to_have_text("Hi Lily, so glad you're here")
    text.fill("Hi {name|babe}, welcome in")
    expect(preview).to_have_text("Hi Lily, welcome in")
    # a fan without a display name gets the fallback
    page.select_option("#preview-fan", value=str(newcomers[0].pk))
    expect(preview).to_have_text("Hi babe, welcome in")
    # editing the text afterwards keeps the chosen fan
    text.fill("Hi {name|babe}, welcome in!")
    expect(preview).to_have_text("Hi babe, welcome in!")
    text.fill("Hi {name|babe}, welcome in")
    expect(preview).to_have_text("Hi babe, welcome in")
    # and the dry run says who the last 7 days would have reached
    expect(page.locator("#reach-count")).to_contain_text("3 fans would have been reached")
    page.fill("input[name=delay_minutes]", "3")
    expect(page.locator("#reach-sample")).to_contain_text("@new2")
    page.check("#automation-enabled")
    page.screenshot(path=str(SHOTS / "automation-editor.png"), full_page=True)
    page.locator("#save-automation").click()

    # then: the list shows it, on, with its figures
    expect(page.locator("h1")).to_contain_text("Automations")
    automation = Automation.objects.get(account=account, name="Welcome")
    assert automation.enabled
    assert automation.text == "Hi {name|babe}, welcome in"
    assert automation.delay_seconds == 180
    card = page.locator(f"#automation-{automation.pk}")
    expect(card).to_contain_text("Welcome")
    expect(page.locator(f"#automation-state-{automation.pk}")).to_have_text("On")
    expect(card.locator(".fig-triggered")).to_have_text("0")
    page.screenshot(path=str(SHOTS / "automation-list.png"), full_page=True)

    # when: turned off from the list
    card.get_by_role("button", name="Turn off").click()
    expect(page.locator(f"#automation-state-{automation.pk}")).to_have_text("Off")
    automation.refresh_from_db()
    assert not automation.enabled


def test_owner_picks_the_welcomes_media_from_the_vault_with_the_keyboard(login, member):
    # given: an owner and a vault of two items
    account = CreatorAccountFactory()
    owner = member(account, "owner")
    older = VaultItemFactory(account=account)
    newer = VaultItemFactory(account=account, media_type="video")
    page = login(owner)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"/accounts/{account.pk}/automations/new/")
    page.fill("input[name=name]", "PPV welcome")

    # when: a price without media is refused in the page, before anything is posted
    page.fill("input[name=price]", "15")
    page.locator("#save-automation").click()
    expect(page.locator("[data-media-error]")).to_contain_text("needs media")

    # when: both items are picked with the keyboard (newest first)
    page.locator("#add-media").click()
    dialog = page.locator("#media-picker-account")
    expect(dialog).to_have_attribute("open", "")
    grid = dialog.get_by_role("listbox", name="Vault items")
    expect(grid.get_by_role("option")).to_have_count(2)
    dialog.locator(f"#picker-item-{newer.pk}").focus()
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowRight")
    expect(dialog.locator(f"#picker-item-{older.pk}")).to_be_focused()
    page.keyboard.press(" ")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page.locator("#automation-form .media-chip")).to_have_count(2)
    # the page's refusal went with the reason for it
    expect(page.locator("[data-media-error]")).to_be_hidden()
    page.screenshot(path=str(SHOTS / "automation-media.png"), full_page=True)
    page.locator("#save-automation").click()

    # then: saved with the vault items, in the order picked, at the price
    expect(page.locator("h1")).to_contain_text("Automations")
    automation = Automation.objects.get(account=account, name="PPV welcome")
    assert (automation.vault_item_ids, automation.price_cents) == ([newer.pk, older.pk], 1500)
    assert not errors, errors


def test_the_servers_refusal_of_a_pick_goes_when_the_picks_change(login, member):
    # given: an owner picks an item that leaves the vault before they save
    from crm.models import VaultItem

    account = CreatorAccountFactory()
    owner = member(account, "owner")
    kept = VaultItemFactory(account=account)
    leaving = VaultItemFactory(account=account, media_type="video")
    page = login(owner)
    page.goto(f"/accounts/{account.pk}/automations/new/")
    page.fill("input[name=name]", "Welcome")
    page.fill("textarea[name=text]", "Hi")
    page.locator("#add-media").click()
    dialog = page.locator("#media-picker-account")
    dialog.locator(f"#picker-item-{leaving.pk}").click()
    dialog.locator(f"#picker-item-{kept.pk}").click()
    page.keyboard.press("Escape")
    expect(page.locator("#automation-form .media-chip")).to_have_count(2)
    VaultItem.objects.filter(pk=leaving.pk).delete()

    # when: saved, the page says which pick is refused
    page.locator("#save-automation").click()
    refusal = page.locator("[data-media-server-error]")
    expect(refusal).to_be_visible()

    # when: the page, back with the item it still has, is changed: that item taken out
    chips = page.locator("#automation-form .media-chip")
    expect(chips).to_have_count(1)
    chips.first.locator("[data-media-chip-remove]").click()

    # then: the refusal is gone; the next Save checks the picks again
    expect(refusal).to_be_hidden()
    assert not Automation.objects.filter(account=account).exists()
