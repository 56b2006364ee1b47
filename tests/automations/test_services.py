"""The services pages and the API call: validation, who may, on and off, the dry run."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.selectors import automation_get, automation_reach, automations_for_account
from automations.services import (
    AutomationInput,
    automation_create,
    automation_disable,
    automation_enable,
    automation_update,
)
from crm.errors import ApplicationError, NotFoundError
from crm.models import Fan
from tests.automations.conftest import subscription_body, webhook_post
from tests.factories import FanFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def welcome(**fields) -> AutomationInput:
    return AutomationInput(
        **{"name": "Welcome", "trigger": "subscribed", "text": "Hi {name|babe}!", **fields}
    )


def test_an_owner_creates_an_automation_off_and_turns_it_on(studio):
    automation = automation_create(
        actor=studio.owner,
        account_id=studio.account.pk,
        data=welcome(
            delay_seconds=60,
            delay_spread_seconds=120,
            rules={"spend_max_cents": 5000, "exclude_waiting": True},
            quiet_hours_start=time(23, 0),
            quiet_hours_end=time(9, 0),
            control_percent=10,
        ),
    )
    assert (automation.enabled, automation.enabled_at) == (False, None)
    assert automation.rules == {"spend_max_cents": 5000, "exclude_waiting": True}
    automation = automation_enable(actor=studio.owner, automation=automation)
    assert automation.enabled and automation.enabled_at is not None
    assert list(automations_for_account(user=studio.owner, account_id=studio.account.pk)) == [
        automation
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": " "}, "name"),
        ({"trigger": "birthday"}, "trigger"),
        ({"trigger": "expiring_soon"}, "trigger_value"),
        ({"trigger": "subscribed", "trigger_value": 3}, "trigger_value"),
        ({"trigger": "expired_days_ago", "trigger_value": 400}, "trigger_value"),
        ({"text": ""}, "text"),
        ({"text": "Hi {nmae}"}, "text"),
        ({"price_cents": 250}, "price_cents"),
        ({"price_cents": 900}, "media_ids"),
        ({"delay_seconds": -1}, "delay_seconds"),
        ({"delay_spread_seconds": 8 * 24 * 3600}, "delay_spread_seconds"),
        ({"quiet_hours_start": time(22, 0)}, "quiet_hours_end"),
        ({"quiet_hours_start": time(8, 0), "quiet_hours_end": time(8, 0)}, "quiet_hours_end"),
        ({"control_percent": 51}, "control_percent"),
        ({"block_banned_words": "loud"}, "block_banned_words"),
        ({"rules": {"spend_min_cents": "lots"}}, "spend_min_cents"),
        ({"rules": {"nope": 1}}, "rules"),
        ({"rules": {"fan_ids": [1]}}, "fan_ids"),
    ],
)
def test_bad_input_is_refused_field_by_field(studio, fields, field):
    with pytest.raises(ApplicationError) as refused:
        automation_create(actor=studio.owner, account_id=studio.account.pk, data=welcome(**fields))
    assert refused.value.code == "invalid_automation"
    assert field in refused.value.fields
    assert not Automation.objects.exists()


def test_chatters_and_strangers_cannot_manage_automations(studio, other_account):
    with pytest.raises(ApplicationError) as refused:
        automation_create(actor=studio.chatter, account_id=studio.account.pk, data=welcome())
    assert (refused.value.code, refused.value.status_code) == ("permission_denied", 403)
    automation = automation_create(actor=studio.owner, account_id=studio.account.pk, data=welcome())
    stranger = MembershipFactory(account=other_account, role="owner").user
    with pytest.raises(NotFoundError):
        automation_get(user=stranger, automation_id=automation.pk)
    with pytest.raises(NotFoundError):
        automation_get(user=studio.chatter, automation_id=automation.pk)
    with pytest.raises(NotFoundError):
        automation_enable(actor=stranger, automation=automation)
    assert automation_get(user=studio.owner, automation_id=automation.pk) == automation


def test_names_are_unique_per_account_and_a_trigger_that_ran_is_fixed(studio):
    automation = automation_create(
        actor=studio.owner, account_id=studio.account.pk, data=welcome(), enabled=True
    )
    with pytest.raises(ApplicationError) as refused:
        automation_create(actor=studio.owner, account_id=studio.account.pk, data=welcome())
    assert refused.value.code == "duplicate_automation"
    # before it has run the trigger may change
    automation = automation_update(
        actor=studio.owner, automation=automation, data=welcome(trigger="renewed")
    )
    automation = automation_update(actor=studio.owner, automation=automation, data=welcome())
    webhook_post(subscription_body(studio.account, fan_id="5001"))
    assert AutomationRun.objects.count() == 1
    with pytest.raises(ApplicationError) as refused:
        automation_update(
            actor=studio.owner, automation=automation, data=welcome(trigger="renewed")
        )
    assert refused.value.code == "trigger_locked"
    # the text may: a pending run sends the new one
    automation_update(actor=studio.owner, automation=automation, data=welcome(text="Hey!"))


def test_turned_off_and_on_again_a_scan_starts_from_the_new_moment(studio):
    automation = automation_create(
        actor=studio.owner,
        account_id=studio.account.pk,
        data=welcome(trigger="no_reply", trigger_value=10),
        enabled=True,
    )
    first = automation.enabled_at
    automation = automation_disable(actor=studio.owner, automation=automation)
    assert not automation.enabled
    automation = automation_enable(actor=studio.owner, automation=automation)
    assert first is not None and automation.enabled_at is not None
    assert automation.enabled_at > first


def test_the_dry_run_shows_who_a_trigger_would_have_reached_and_writes_nothing(studio):
    from tests.factories import ConversationFactory

    now = timezone.now()
    for days in (1, 3, 9):
        FanFactory(
            account=studio.account,
            subscription_state=Fan.SubscriptionState.EXPIRED,
            subscription_expires_at=now - timedelta(days=days + 2),
        )
    rich = FanFactory(
        account=studio.account,
        lifetime_spend_cents=50_000,
        subscription_state=Fan.SubscriptionState.EXPIRED,
        subscription_expires_at=now - timedelta(days=4),
    )
    for hours in (5, 30):
        ConversationFactory(
            fan=FanFactory(account=studio.account), waiting_since=now - timedelta(hours=hours)
        )
    winback = automation_create(
        actor=studio.owner,
        account_id=studio.account.pk,
        data=welcome(name="Win-back", trigger="expired_days_ago", trigger_value=2),
    )
    reach = automation_reach(user=studio.owner, automation=winback, days=7, now=now)
    assert reach.fans == 3 and not reach.truncated
    assert rich.pk in {hit.fan_id for hit in reach.hits}
    picky = Automation(**{**_fields(winback), "rules": {"spend_min_cents": 10_000}})
    assert [
        h.fan_id for h in automation_reach(user=studio.owner, automation=picky, now=now).hits
    ] == [rich.pk]
    nudge = Automation(
        **{**_fields(winback), "trigger": "no_reply", "trigger_value": 60, "rules": {}}
    )
    assert automation_reach(user=studio.owner, automation=nudge, days=1, now=now).fans == 1
    assert not AutomationRun.objects.exists()
    with pytest.raises(ApplicationError):
        automation_reach(user=studio.chatter, automation=winback)


def _fields(automation: Automation) -> dict:
    return {
        f.attname: getattr(automation, f.attname)
        for f in Automation._meta.concrete_fields
        if f.attname != "id"
    }
