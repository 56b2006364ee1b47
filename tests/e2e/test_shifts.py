"""Shifts in a real browser: a manager builds a week of shifts (weekly and overnight one-off,
with the editor's errors), switches shift-only access on, and a chatter who is off the clock
sees the off-shift page, clocks in from it and gets into the inbox, with the top bar's clock
counting."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from crm.models import Shift, ShiftTemplate, WorkSession
from crm.shift_schedule import Week
from tests.e2e.conftest import SHOTS
from tests.factories import CreatorAccountFactory

pytestmark = pytest.mark.django_db(transaction=True)

BERLIN = ZoneInfo("Europe/Berlin")


def test_a_manager_builds_a_week_and_a_chatter_clocks_in(login, member):
    account = CreatorAccountFactory(time_zone="Europe/Berlin")
    manager = member(account, role="manager")
    chatter = member(account)
    colleague = member(account)
    now = timezone.now().astimezone(BERLIN)
    week = Week.containing(now, BERLIN)
    page = login(manager)
    page.goto(f"/accounts/{account.pk}/shifts/?week={week}")
    expect(page.locator("#week-label")).to_be_visible()

    def add(member_user, day, start, end, *, weekly=False, saved=True):
        with page.expect_response(lambda r: "/shifts/new/" in r.url):
            page.click("#add-shift")
        editor = page.locator("#shift-editor form")
        expect(editor).to_be_visible()
        editor.locator("select[name=membership]").select_option(
            label=f"{member_user.username} (chatter)"
        )
        editor.locator("input[name=day]").fill(day.isoformat())
        editor.locator("input[name=start]").fill(start)
        editor.locator("input[name=end]").fill(end)
        if weekly:
            editor.locator("input[name=weekly]").check()
        if saved:  # the editor sends the browser back to the week (HX-Redirect)
            with page.expect_navigation():
                editor.locator("button[type=submit]").click()
        else:
            with page.expect_response(lambda r: r.request.method == "POST"):
                editor.locator("button[type=submit]").click()

    # a weekly day shift for the colleague on Monday of this week
    add(colleague, week.monday, "09:00", "17:00", weekly=True)
    expect(
        page.locator(f"#member-{colleague_membership_id(colleague, account)} .shift-block.weekly")
    ).to_have_count(1)
    # the chatter's shift around now (this is what lets them in later), one-off
    start = now - timedelta(hours=1)
    add(chatter, start.date(), f"{start:%H:%M}", f"{start + timedelta(hours=4):%H:%M}")
    expect(page.locator(".flash")).to_contain_text("Shift added.")
    # an overlapping one for the same member: a clear error in the editor, nothing saved
    # (its day is its own start's: an hour after a late-evening start is the next day)
    inside = start + timedelta(hours=1)
    add(
        chatter,
        inside.date(),
        f"{inside:%H:%M}",
        f"{inside + timedelta(hours=1):%H:%M}",
        saved=False,
    )
    expect(page.locator("#shift-editor .error").first).to_contain_text("overlaps")
    assert Shift.objects.filter(membership__user=chatter).count() == 1
    assert ShiftTemplate.objects.filter(membership__user=colleague).count() == 1
    # coverage is shown; the hours view has the week's hours
    page.goto(f"/accounts/{account.pk}/shifts/?week={week}")
    expect(page.locator("#coverage-row")).to_be_visible()
    page.screenshot(path=str(SHOTS / "e2e-shifts-week.png"), full_page=True)
    page.goto(f"/accounts/{account.pk}/shifts/?week={week}&view=hours")
    expect(page.locator("#shift-hours tbody tr")).to_have_count(
        25 if week_has_autumn_change(week) else 24
    )
    # shift-only access on
    page.goto(f"/accounts/{account.pk}/shifts/?week={week}")
    page.check("input[name=shift_only_access]")
    page.click("#shift-settings button[type=submit]")
    expect(page.locator(".flash")).to_contain_text("Shift settings saved.")

    # the chatter, not clocked in: the inbox is the off-shift page, with a clock-in button
    phone = login(chatter, width=390, height=844)
    phone.goto(f"/accounts/{account.pk}/inbox/")
    expect(phone.locator("#off-shift")).to_contain_text("not clocked in")
    phone.screenshot(path=str(SHOTS / "e2e-shifts-off-shift-390.png"), full_page=True)
    with phone.expect_navigation():
        phone.click("#off-shift-clock-in")
    expect(phone.locator("#inbox")).to_be_visible()
    assert WorkSession.objects.get(user=chatter, ended_at__isnull=True)
    # the top bar's clock says so, and clocks out
    expect(phone.locator("#clock-worked")).to_contain_text("0:0")
    phone.click("#clock-out")
    expect(phone.locator("#clock-in")).to_be_visible()
    session = WorkSession.objects.get(user=chatter)
    assert session.end_reason == WorkSession.EndReason.MANUAL


def colleague_membership_id(user, account) -> int:
    return user.memberships.get(account=account).pk


def week_has_autumn_change(week: Week) -> bool:
    # the clocks go back: one local hour happens twice (an extra row)
    return week.ends_at - week.starts_at > timedelta(hours=168)
