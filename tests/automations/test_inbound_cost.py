"""What automations add to every fan's message (cancel-on-reply): nothing on an account without
automations, one statement on one with them (``automations.receivers``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from automations import receivers
from automations.models import AutomationRun
from crm.models import Message
from onlyfans.inbound import message_receive
from tests.factories import AutomationRunFactory, FanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cached(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.AUTOMATION_ACCOUNT_CACHE_SECONDS = 60  # as deployed
    monkeypatch.setattr(receivers, "_has_automations", {})


def receive(account: Any, fan: Any, message_id: str) -> Message:
    return message_receive(
        account=account,
        platform_fan={"id": fan.platform_fan_id},
        platform_message_id=message_id,
        text="hi",
        price_cents=0,
        created_at=timezone.now(),
        event_key=f"k-{message_id}",
    )


def cancel_queries(captured: list[dict[str, Any]]) -> list[str]:
    return [q["sql"] for q in captured if "automation" in q["sql"]]


def test_no_query_on_an_account_without_automations(cached, studio, django_assert_num_queries):
    fan = FanFactory(account=studio.account, platform_fan_id="c1")
    receive(studio.account, fan, "m1")  # the fan's conversation exists; the look is cached

    with django_assert_num_queries(10) as counted:
        receive(studio.account, fan, "m2")

    assert cancel_queries(counted.captured_queries) == []


def test_one_statement_cancels_on_an_account_with_automations(
    cached, studio, make_automation, django_assert_num_queries
):
    automation = make_automation(delay_seconds=600)
    nudge = make_automation(trigger="no_reply", trigger_value=30, name="Nudge")
    fan = FanFactory(account=studio.account, platform_fan_id="c2")
    receive(studio.account, fan, "m1")
    now = timezone.now()
    welcome = AutomationRunFactory(
        automation=automation,
        account=studio.account,
        fan=fan,
        event_key="subscribed:x",
        triggered_at=now,
        due_at=now + timedelta(minutes=10),
    )
    waiting = AutomationRunFactory(
        automation=nudge,
        account=studio.account,
        fan=fan,
        event_key="waiting:x",
        triggered_at=now,
        due_at=now + timedelta(minutes=10),
    )

    with django_assert_num_queries(11) as counted:
        receive(studio.account, fan, "m2")

    assert len(cancel_queries(counted.captured_queries)) == 1
    welcome.refresh_from_db()
    waiting.refresh_from_db()
    assert (welcome.state, welcome.reason) == ("cancelled", AutomationRun.Reason.FAN_REPLIED)
    assert waiting.state == "scheduled"  # a no-reply nudge is about the fan's wait
