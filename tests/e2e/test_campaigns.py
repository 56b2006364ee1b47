"""Campaigns in a real browser: build a segment, watch the pre-flight follow the rules, launch,
and watch the progress move live while a real worker fans out and sends; then the results."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from campaigns.models import Campaign
from crm.models import Message
from tests.e2e.conftest import SHOTS
from tests.factories import CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_BOOT_TIMEOUT_MS = 60_000


def test_build_preflight_launch_and_watch_progress(login, member, send_worker):
    # given: an owner, six VIP fans (one not linked to the platform) and three others
    account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
    owner = member(account, "owner")
    for i in range(6):
        FanFactory(
            account=account,
            username=f"vip{i}",
            display_name=f"Vip {i}",
            tags=["vip"],
            platform_fan_id=None if i == 5 else str(700_000 + i),
        )
    for i in range(3):
        FanFactory(account=account, username=f"casual{i}", tags=[])
    assert send_worker.poll() is None  # booting while the owner builds the campaign
    page = login(owner)

    # when: the owner opens Campaigns from the top bar and builds one
    page.goto("/")
    page.get_by_role("link", name="Campaigns").click()
    expect(page.locator("h1")).to_contain_text("Campaigns")
    page.locator("#new-campaign").click()
    page.fill("input[name=name]", "VIP weekend")
    page.fill("textarea[name=text]", "Hey {name|babe}, something new for you")
    page.select_option("select[name=mode]", "individual")
    # then: the pre-flight counts every fan first, then follows the tag rule live
    audience = page.locator("#preflight-audience")
    expect(audience).to_have_text("8")
    page.fill("input[name=include_tags]", "vip")
    expect(audience).to_have_text("5")
    expect(page.locator("#preflight-unlinked")).to_have_text("1")
    expect(page.locator("#preflight-sample")).to_contain_text("Vip 0")
    expect(page.locator("#preflight-mode")).to_have_text("one by one")
    page.screenshot(path=str(SHOTS / "campaign-builder.png"), full_page=True)

    # when: launched
    page.locator("#launch-button").click()
    # then: the campaign page shows it running, and the progress moves without a reload
    expect(page.locator("h1")).to_have_text("VIP weekend")
    campaign = Campaign.objects.get(name="VIP weekend")
    assert campaign.recipients_total == 5
    expect(page.locator("#progress-recipients")).to_contain_text("5")
    page.evaluate("window.__e2eNoReload = true")
    expect(page.locator("#progress-sent")).to_have_text("5", timeout=WORKER_BOOT_TIMEOUT_MS)
    expect(page.locator("#campaign-state")).to_have_text("Done", timeout=10_000)
    expect(page.locator("#progress-remaining")).to_have_text("0")
    assert page.evaluate("window.__e2eNoReload === true"), "the page was reloaded"
    page.screenshot(path=str(SHOTS / "campaign-progress.png"), full_page=True)
    sent = Message.objects.filter(campaign_id=campaign.pk, status="sent")
    assert sorted(sent.values_list("text", flat=True)) == sorted(
        f"Hey Vip {i}, something new for you" for i in range(5)
    )

    # and the list shows it with its figures
    page.goto(f"/accounts/{account.pk}/campaigns/")
    row = page.locator(f"#campaign-row-{campaign.pk}")
    expect(row).to_contain_text("VIP weekend")
    expect(row).to_contain_text(re.compile(r"Done"))


def test_campaign_message_appears_live_in_a_chatters_open_thread(login, member, send_worker):
    # given: a chatter with a waiting fan's thread open, and the owner with a campaign for
    # that fan and others
    from django.utils import timezone

    from campaigns import services
    from tests.factories import ConversationFactory

    account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
    owner, chatter = member(account, "owner"), member(account, "chatter")
    fans = [
        FanFactory(account=account, display_name=f"Fan {i}", platform_fan_id=str(710_000 + i))
        for i in range(4)
    ]
    conversation = ConversationFactory(
        account=account, fan=fans[0], waiting_since=timezone.now(), last_message_at=timezone.now()
    )
    page = login(chatter)
    page.goto(f"/accounts/{account.pk}/inbox/{conversation.pk}/")
    thread = page.locator(f"#thread-messages-{conversation.pk}")
    expect(thread).to_be_visible()
    page.evaluate("window.__e2eNoReload = true")
    page.wait_for_timeout(1_000)  # the inbox socket connects
    campaign = services.campaign_create(
        actor=owner,
        account_id=account.pk,
        data=services.CampaignInput(name="Live", text="Hey {name}, a new set is up"),
    )

    # when: it is launched (the worker fans out and sends)
    services.campaign_launch(actor=owner, campaign=campaign)

    # then: the bubble joins the open thread without a reload, and its status follows
    bubble = thread.locator("article.bubble.out", has_text="Hey Fan 0, a new set is up")
    expect(bubble).to_have_count(1, timeout=WORKER_BOOT_TIMEOUT_MS)
    expect(bubble.locator(".msg-status")).to_contain_text("Sent", timeout=15_000)
    assert page.evaluate("window.__e2eNoReload === true"), "the page was reloaded"
    assert Message.objects.filter(campaign_id=campaign.pk).count() == 4


def test_mass_message_unsent_from_its_page_while_the_window_lasts(
    login, member, send_worker, sandbox_server
):
    # given: a mass campaign the platform has delivered, its unsend window open
    from campaigns import services

    account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
    owner = member(account, "owner")
    for i in range(3):
        FanFactory(account=account, platform_fan_id=str(720_000 + i))
    campaign = services.campaign_create(
        actor=owner,
        account_id=account.pk,
        data=services.CampaignInput(name="Oops", text="Wrong price, sorry", mode="mass"),
    )
    services.campaign_launch(actor=owner, campaign=campaign)
    page = login(owner)
    page.goto(f"/accounts/{account.pk}/campaigns/{campaign.pk}/")
    expect(page.locator("#campaign-state")).to_have_text("Done", timeout=WORKER_BOOT_TIMEOUT_MS)
    page.reload()
    expect(page.locator("#progress-unsend-until")).to_contain_text("can be unsent until")

    # when: the owner unsends it (and confirms)
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#unsend-button").click()

    # then: the worker unsends it on the platform; the page says so and offers it no more
    expect(page.locator("#progress-unsent")).to_contain_text("3 unsent", timeout=20_000)
    expect(page.locator("#unsend-button")).to_have_count(0)
    import httpx

    mass = httpx.get(
        f"{sandbox_server}/_sandbox/mass", params={"account": str(account.platform_account_id)}
    ).json()["data"]
    assert [m["isCanceled"] for m in mass] == [True]
