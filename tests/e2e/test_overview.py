"""The agency overview in a real browser: a waiting fan and a clocked-in chatter shown, the
30-second refresh bringing in what changed, a tile's link into the filtered inbox."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Conversation, WorkSession
from tests.e2e.conftest import SHOTS
from tests.factories import FanFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _clock_in(account, user):
    now = timezone.now()
    WorkSession.objects.create(account=account, user=user, started_at=now, last_activity_at=now)


def test_the_overview_shows_a_waiting_fan_and_who_is_clocked_in(login, inbox_data, member):
    # given: an account whose fan has waited 12 minutes, a chatter clocked in, a manager
    data = inbox_data(2)
    account = data.account
    waiting = data.conversations[1]
    Conversation.objects.filter(pk=waiting.pk).update(
        waiting_since=timezone.now() - timedelta(minutes=12), unread_count=1
    )
    chatter, manager = member(account), member(account, role="manager")
    _clock_in(account, chatter)
    page = login(manager)
    page.clock.install()

    # when: the manager opens the overview from the top bar
    page.goto("/")
    page.get_by_role("link", name="Overview").click()
    tile = page.locator(f"#tile-{account.pk}")

    # then: the waiting fan, overdue against the 5-minute target, and the chatter are shown
    expect(tile.locator('[data-figure="waiting"]')).to_have_text("1")
    expect(tile.locator('[data-figure="overdue"]')).to_have_text("1")
    expect(tile).to_contain_text("oldest 12 min")
    expect(tile.locator('[data-figure="clocked-in"]')).to_contain_text(chatter.get_username())
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(SHOTS / "overview-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # when: another fan starts waiting and a second chatter clocks in, and 30 s pass
    Conversation.objects.create(
        account=account, fan=FanFactory(account=account), waiting_since=timezone.now()
    )
    second = member(account)
    _clock_in(account, second)
    page.clock.fast_forward("00:31")

    # then: the tiles refresh by themselves
    expect(tile.locator('[data-figure="waiting"]')).to_have_text("2")
    expect(tile.locator('[data-figure="clocked-in"]')).to_contain_text(second.get_username())

    # when: the waiting figure is clicked, the inbox opens on the waiting view with the fan
    tile.locator('[data-figure="waiting"]').click()
    expect(page).to_have_url(f"{data.path()}?sort=waiting")
    expect(page.locator(f"#conversation-{waiting.pk}")).to_be_visible()
