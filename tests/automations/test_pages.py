"""Automation pages: the list with figures, the editor (validation, preview, dry run), on/off,
and the fan panel's pending automated messages with cancel."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import resolve, reverse
from django.utils import timezone

from automations.models import Automation, AutomationRun
from crm.models import Fan
from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db

State = AutomationRun.State


@pytest.fixture
def shop():
    account = CreatorAccountFactory(time_zone="Europe/Berlin")
    owner = MembershipFactory(account=account, role="owner").user
    manager = MembershipFactory(account=account, role="manager").user
    chatter = MembershipFactory(account=account, role="chatter").user
    return type(
        "Shop", (), {"account": account, "owner": owner, "manager": manager, "chatter": chatter}
    )


@pytest.fixture
def owner_client(client, shop):
    client.force_login(shop.owner)
    return client


def _form(**overrides):
    data = {
        "name": "Welcome",
        "trigger": "subscribed",
        "trigger_value": "",
        "text": "Hey {name|babe}, welcome!",
        "price": "",
        "media_ids": "",
        "delay_minutes": "2",
        "delay_spread_minutes": "3",
        "control_percent": "10",
        "block_banned_words": "",
        "exclude_waiting": "on",
        "enabled": "on",
    }
    data.update(overrides)
    return data


# --- who may ----------------------------------------------------------------------------------


def test_top_bar_links_automations_for_managers_only(client, shop):
    url = reverse("automation_list", args=[shop.account.pk])
    client.force_login(shop.manager)
    assert url in client.get(reverse("home")).content.decode()
    assert client.get(url).status_code == 200
    client.force_login(shop.chatter)
    assert url not in client.get(reverse("home")).content.decode()


def test_chatter_gets_a_clear_403_page(client, shop):
    client.force_login(shop.chatter)
    for url in (
        reverse("automation_list", args=[shop.account.pk]),
        reverse("automation_new", args=[shop.account.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 403
        body = response.content.decode()
        assert "Only owners and managers can manage automations." in body
        assert 'id="forbidden"' in body


def test_another_accounts_automation_is_404(client, shop):
    other = CreatorAccountFactory()
    theirs = AutomationFactory(account=other)
    client.force_login(shop.owner)
    assert client.get(reverse("automation_list", args=[other.pk])).status_code == 404
    # their automation under our account's URL, and under theirs
    assert (
        client.get(reverse("automation_edit", args=[shop.account.pk, theirs.pk])).status_code == 404
    )
    assert client.get(reverse("automation_edit", args=[other.pk, theirs.pk])).status_code == 404
    toggle = reverse("automation_toggle", args=[shop.account.pk, theirs.pk])
    assert client.post(toggle, {"on": "0"}).status_code == 404
    theirs.refresh_from_db()
    assert theirs.enabled


# --- the list ---------------------------------------------------------------------------------


def test_list_shows_state_and_figures_in_pinned_queries(
    owner_client, shop, django_assert_num_queries
):
    due = timezone.now() - timedelta(days=1)
    welcome = AutomationFactory(account=shop.account, name="Welcome", control_percent=20)
    AutomationFactory(account=shop.account, name="Win-back", enabled=False, enabled_at=None)
    AutomationFactory(account=shop.account, name="Nudge", trigger="expiring_soon", trigger_value=24)
    for _ in range(5):
        run = AutomationRunFactory(
            automation=welcome, state=State.SKIPPED, reason="frequency_cap", due_at=due
        )
        PurchaseFactory(fan=run.fan, amount_cents=1000, purchased_at=due + timedelta(hours=1))
    for _ in range(2):
        AutomationRunFactory(automation=welcome, state=State.HELD_CONTROL, due_at=due)
    AutomationRunFactory(automation=welcome, state=State.CANCELLED, reason="fan_replied")
    url = reverse("automation_list", args=[shop.account.pk])

    # session, user, the access check (the view's and the selector's), the top bar's two
    # membership reads, automations, run states, outcomes
    with django_assert_num_queries(9):
        response = owner_client.get(url)

    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("Nudge") < body.index("Welcome") < body.index("Win-back")
    assert f'id="automation-state-{welcome.pk}"' in body
    assert "Subscription ends within 24 hours" in body
    assert 'class="fig-triggered">8<' in body
    assert 'class="fig-control">2<' in body
    assert "Messaged recently (frequency cap)" in body
    assert "The fan wrote" in body
    # 5 treated fans paid $10 each: $50, $10.00 per triggered fan; the control 2 fans $0
    assert 'class="fig-revenue">$50<' in body
    assert "not enough data yet (n = 2)" in body


def test_list_query_count_does_not_grow_with_automations(
    owner_client, shop, django_assert_num_queries
):
    for i in range(12):
        automation = AutomationFactory(account=shop.account, name=f"A{i}", control_percent=10)
        AutomationRunFactory(automation=automation, state=State.HELD_CONTROL)
    with django_assert_num_queries(9):
        response = owner_client.get(reverse("automation_list", args=[shop.account.pk]))
    assert response.content.decode().count('class="card automation-card"') == 12


def test_turn_off_and_on(owner_client, shop):
    automation = AutomationFactory(account=shop.account)
    pending = AutomationRunFactory(automation=automation, state=State.SCHEDULED)
    url = reverse("automation_toggle", args=[shop.account.pk, automation.pk])

    response = owner_client.post(url, {"on": "0"})

    assert response.status_code == 302
    automation.refresh_from_db()
    pending.refresh_from_db()
    assert not automation.enabled
    assert (pending.state, pending.reason) == (State.CANCELLED, "disabled")
    owner_client.post(url, {"on": "1"})
    automation.refresh_from_db()
    assert automation.enabled


# --- the editor -------------------------------------------------------------------------------


def test_create_a_welcome(owner_client, shop):
    url = reverse("automation_new", args=[shop.account.pk])
    assert owner_client.get(url).status_code == 200

    response = owner_client.post(
        url,
        _form(
            spend_min="10",
            spend_max="500",
            include_tags="vip, new",
            quiet_hours_start="23:00",
            quiet_hours_end="08:00",
        ),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    automation = Automation.objects.get(account=shop.account)
    assert automation.enabled and automation.enabled_at is not None
    assert (automation.delay_seconds, automation.delay_spread_seconds) == (120, 180)
    assert automation.rules == {
        "include_tags": ["vip", "new"],
        "include_tags_mode": "any",
        "spend_min_cents": 1000,
        "spend_max_cents": 50000,
        "exclude_waiting": True,
    }
    assert automation.quiet_hours_start is not None
    assert automation.quiet_hours_start.strftime("%H:%M") == "23:00"
    assert automation.control_percent == 10


def test_edit_keeps_values_and_saves_changes(owner_client, shop):
    automation = AutomationFactory(
        account=shop.account, trigger="expiring_soon", trigger_value=48, delay_seconds=600
    )
    url = reverse("automation_edit", args=[shop.account.pk, automation.pk])
    body = owner_client.get(url).content.decode()
    assert 'value="48"' in body and 'value="10"' in body

    response = owner_client.post(
        url, _form(name="Nudge", trigger="expiring_soon", trigger_value="24", enabled="")
    )

    assert response.status_code == 302
    automation.refresh_from_db()
    assert (automation.name, automation.trigger_value, automation.enabled) == ("Nudge", 24, False)


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"name": "x" * 201}, "at most 200 characters"),
        ({"text": "x" * 5001}, "at most 5000 characters"),
        ({"text": "Hi {nmae}"}, "Unknown variable: {nmae}"),
        ({"delay_minutes": "20000"}, "less than or equal to 10080"),
        ({"delay_minutes": "-1"}, "greater than or equal to 0"),
        ({"control_percent": "51"}, "less than or equal to 50"),
        ({"price": "2", "media_ids": "m1"}, "between $3 and $200"),
        ({"price": "201", "media_ids": "m1"}, "less than or equal to 200"),
        ({"price": "10"}, "needs at least one media file"),
        ({"spend_min": "50", "spend_max": "10"}, "Must not be below the minimum"),
        ({"spend_min": "2000000"}, "less than or equal to 1000000"),
        ({"quiet_hours_start": "23:00"}, "Set both ends of the quiet hours"),
        ({"trigger": "expiring_soon", "trigger_value": ""}, "Between 1 and 8760 hours"),
        ({"trigger": "no_reply", "trigger_value": "999999"}, "less than or equal to"),
        ({"trigger": "nope"}, "Select a valid choice"),
    ],
)
def test_bad_input_is_a_clear_message_in_the_page(owner_client, shop, overrides, field_error):
    url = reverse("automation_new", args=[shop.account.pk])

    response = owner_client.post(url, _form(**overrides))

    assert response.status_code == 422
    body = response.content.decode()
    assert field_error in body.replace("&#x27;", "'").replace("&quot;", '"')
    assert 'id="form-errors"' in body
    assert not Automation.objects.exists()


def test_duplicate_name_is_refused_by_the_field(owner_client, shop):
    AutomationFactory(account=shop.account, name="Welcome")
    response = owner_client.post(reverse("automation_new", args=[shop.account.pk]), _form())
    assert response.status_code == 422
    assert "Already used." in response.content.decode()


def test_preview_renders_the_message_for_a_real_fan(owner_client, shop):
    named = FanFactory(account=shop.account, username="lily", display_name="Lily")
    nameless = FanFactory(account=shop.account, username="max77", display_name="")
    url = reverse("automation_preview", args=[shop.account.pk])

    for fan, expected in (
        (named, "Hey Lily, welcome @lily"),
        (nameless, "Hey babe, welcome @max77"),
    ):
        response = owner_client.post(
            url,
            {"text": "Hey {name|babe}, welcome @{username}", "preview_fan": str(fan.pk)},
            HTTP_HX_REQUEST="true",
        )
        body = response.content.decode()
        assert response.status_code == 200
        assert 'id="preview"' in body and "<html" not in body
        assert expected in body
        # the picker keeps offering every fan, not only the one picked
        assert f'value="{named.pk}"' in body and f'value="{nameless.pk}"' in body


def test_preview_never_shows_another_accounts_fan(owner_client, shop):
    mine = FanFactory(account=shop.account, display_name="Mine")
    theirs = FanFactory(account=CreatorAccountFactory(), display_name="Secret")
    response = owner_client.post(
        reverse("automation_preview", args=[shop.account.pk]),
        {"text": "Hi {name}", "preview_fan": str(theirs.pk)},
    )
    body = response.content.decode()
    assert "Secret" not in body
    assert "Hi Mine" in body
    assert mine.pk


def test_preview_flags_unknown_variables(owner_client, shop):
    FanFactory(account=shop.account)
    response = owner_client.post(
        reverse("automation_preview", args=[shop.account.pk]), {"text": "Hi {nmae}"}
    )
    assert "Unknown variable: {nmae}" in response.content.decode()


def test_dry_run_counts_who_it_would_have_reached_and_sends_nothing(owner_client, shop):
    now = timezone.now()
    recent = [
        FanFactory(
            account=shop.account,
            username=f"new{i}",
            subscription_state=Fan.SubscriptionState.ACTIVE,
            subscribed_at=now - timedelta(days=i + 1),
            lifetime_spend_cents=1000 * i,
        )
        for i in range(4)
    ]
    FanFactory(
        account=shop.account,
        username="old",
        subscription_state=Fan.SubscriptionState.ACTIVE,
        subscribed_at=now - timedelta(days=30),
    )
    url = reverse("automation_reach", args=[shop.account.pk])

    everyone = owner_client.post(url, _form(), HTTP_HX_REQUEST="true").content.decode()
    spenders = owner_client.post(url, _form(spend_min="15"), HTTP_HX_REQUEST="true")

    assert "<strong>4</strong> fans would have been reached" in everyone
    for fan in recent:
        assert f"@{fan.username}" in everyone
    assert "@old" not in everyone
    assert "<strong>2</strong> fans would have been reached" in spenders.content.decode()
    assert not AutomationRun.objects.exists()
    assert not Automation.objects.exists()


def test_dry_run_waits_for_a_scan_triggers_number(owner_client, shop):
    response = owner_client.post(
        reverse("automation_reach", args=[shop.account.pk]),
        _form(trigger="expiring_soon", trigger_value=""),
    )
    assert "Set the trigger (and its N)" in response.content.decode()


# --- the fan panel ----------------------------------------------------------------------------


def test_crm_pages_load_the_panel_by_its_url_path(client, shop):
    fan = FanFactory(account=shop.account)
    conversation = ConversationFactory(fan=fan)
    client.force_login(shop.chatter)
    path = f"/accounts/{shop.account.pk}/automations/fans/{fan.pk}/pending/"
    for page in (
        reverse("fan_detail", args=[shop.account.pk, fan.pk]),
        reverse("inbox_thread", args=[shop.account.pk, conversation.pk]),
    ):
        body = client.get(page).content.decode()
        assert f'hx-get="{path}"' in body, page
    assert resolve(path).url_name == "automation_fan_pending"


def test_fan_panel_lists_pending_runs_in_the_accounts_zone(client, shop):
    fan = FanFactory(account=shop.account)
    automation = AutomationFactory(account=shop.account, name="Welcome")
    due = timezone.now().replace(month=1, day=15, hour=12, minute=30, second=0, microsecond=0)
    due = due.replace(year=timezone.now().year + 1)
    pending = AutomationRunFactory(automation=automation, fan=fan, due_at=due)
    AutomationRunFactory(automation=automation, fan=fan, state=State.CANCELLED, reason="manual")
    client.force_login(shop.chatter)  # any member sees them

    response = client.get(reverse("automation_fan_pending", args=[shop.account.pk, fan.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('id="pending-run-') == 1
    assert f'id="pending-run-{pending.pk}"' in body
    assert "due Jan 15, 13:30" in body  # 12:30 UTC in Berlin (winter)
    assert "Europe/Berlin" in body


def test_fan_panel_of_another_account_is_404(client, shop):
    other_fan = FanFactory(account=CreatorAccountFactory())
    client.force_login(shop.owner)
    url = reverse("automation_fan_pending", args=[other_fan.account_id, other_fan.pk])
    assert client.get(url).status_code == 404
    url = reverse("automation_fan_pending", args=[shop.account.pk, other_fan.pk])
    assert client.get(url).status_code == 404


def test_cancel_from_the_fan_panel(client, shop):
    fan = FanFactory(account=shop.account)
    run = AutomationRunFactory(automation=AutomationFactory(account=shop.account), fan=fan)
    client.force_login(shop.chatter)
    url = reverse("automation_fan_run_cancel", args=[shop.account.pk, fan.pk, run.pk])

    response = client.post(url, HTTP_HX_REQUEST="true")

    assert response.status_code == 200
    assert "None pending." in response.content.decode()
    run.refresh_from_db()
    assert (run.state, run.reason, run.cancelled_by_id) == (
        State.CANCELLED,
        "manual",
        shop.chatter.pk,
    )
    # again: it is not pending any more, said in the panel
    again = client.post(url, HTTP_HX_REQUEST="true")
    assert again.status_code == 200
    assert "not pending" in again.content.decode()


def test_cancel_needs_csrf_and_post(shop):
    from django.test import Client

    fan = FanFactory(account=shop.account)
    run = AutomationRunFactory(automation=AutomationFactory(account=shop.account), fan=fan)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(shop.owner)
    url = reverse("automation_fan_run_cancel", args=[shop.account.pk, fan.pk, run.pk])
    assert strict.get(url).status_code == 405
    assert strict.post(url).status_code == 403
    run.refresh_from_db()
    assert run.state == State.SCHEDULED


def test_cancel_of_another_fans_run_is_404(client, shop):
    fan, other = FanFactory(account=shop.account), FanFactory(account=shop.account)
    run = AutomationRunFactory(automation=AutomationFactory(account=shop.account), fan=other)
    client.force_login(shop.owner)
    url = reverse("automation_fan_run_cancel", args=[shop.account.pk, fan.pk, run.pk])
    assert client.post(url).status_code == 404
    run.refresh_from_db()
    assert run.state == State.SCHEDULED
