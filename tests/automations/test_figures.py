"""An automation's figures on fixed data, against a hand computation."""

from __future__ import annotations

import math
import statistics
from datetime import timedelta

import pytest
from django.utils import timezone

from automations import figures
from automations.figures import automation_figures, automations_figures
from automations.models import Automation, AutomationRun
from crm.models import Message, Purchase
from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ConversationFactory,
    FanFactory,
    MessageFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db

State = AutomationRun.State


@pytest.fixture
def fixed(account):
    """A welcome with a control group, due 5 days ago for seven fans:

    treated  a: sent, replied after 1 h, unlocked the message ($10) after 2 h
             b: sent, tipped $5 after 10 h, wrote again only after 100 h
             c: sent, tipped $3 after 80 h (outside the 72 h window), $2 before it was due
             d: cancelled (fan replied before it went), tipped $2 after 5 h
    control  e: tipped $4 after 2 h (and wrote: not a reply to anything)
             f: nothing
    pending  g: scheduled for tomorrow (not due: in no arm)
    """
    automation = AutomationFactory(account=account, control_percent=30, price_cents=1000)
    due = timezone.now() - timedelta(days=5)
    fans = {n: FanFactory(account=account, username=n) for n in "abcdefg"}
    conversations = {n: ConversationFactory(fan=fans[n]) for n in "abcdefg"}
    runs = {}
    messages = {}
    for n in "abc":
        messages[n] = MessageFactory(
            conversation=conversations[n],
            direction=Message.Direction.OUT,
            status=Message.Status.SENT,
            sender_kind=Message.SenderKind.AUTOMATION,
            price_cents=1000,
            media_ids=["m1"],
            sent_at=due + timedelta(minutes=1),
        )
        runs[n] = AutomationRunFactory(
            automation=automation,
            fan=fans[n],
            state=State.ENQUEUED,
            triggered_at=due - timedelta(minutes=2),
            due_at=due,
            message=messages[n],
        )
    runs["d"] = AutomationRunFactory(
        automation=automation,
        fan=fans["d"],
        state=State.CANCELLED,
        reason=AutomationRun.Reason.FAN_REPLIED,
        due_at=due,
        triggered_at=due - timedelta(minutes=2),
    )
    for n in "ef":
        runs[n] = AutomationRunFactory(
            automation=automation,
            fan=fans[n],
            state=State.HELD_CONTROL,
            due_at=due,
            triggered_at=due - timedelta(minutes=2),
        )
    runs["g"] = AutomationRunFactory(
        automation=automation,
        fan=fans["g"],
        state=State.SCHEDULED,
        triggered_at=timezone.now(),
        due_at=timezone.now() + timedelta(days=1),
    )
    sent = due + timedelta(minutes=1)

    def inbound(n: str, at):
        message = MessageFactory(conversation=conversations[n])
        Message.objects.filter(pk=message.pk).update(created_at=at)

    inbound("a", sent + timedelta(hours=1))
    inbound("b", sent + timedelta(hours=100))
    inbound("e", due + timedelta(hours=1))
    PurchaseFactory(
        fan=fans["a"],
        kind=Purchase.Kind.PPV,
        amount_cents=1000,
        message=messages["a"],
        purchased_at=sent + timedelta(hours=2),
    )
    PurchaseFactory(fan=fans["b"], amount_cents=500, purchased_at=due + timedelta(hours=10))
    PurchaseFactory(fan=fans["c"], amount_cents=300, purchased_at=due + timedelta(hours=80))
    PurchaseFactory(fan=fans["c"], amount_cents=200, purchased_at=due - timedelta(hours=1))
    PurchaseFactory(fan=fans["d"], amount_cents=200, purchased_at=due + timedelta(hours=5))
    PurchaseFactory(fan=fans["e"], amount_cents=400, purchased_at=due + timedelta(hours=2))
    return automation


def test_counts_by_state_and_reason(fixed):
    f = automation_figures(automation=fixed)

    assert f.triggered == 7
    assert (f.sent, f.queued, f.failed, f.pending) == (3, 0, 0, 1)
    assert f.held_control == 2
    assert f.cancelled == {"fan_replied": 1}
    assert f.skipped == {}
    assert f.reasons() == [("cancelled", "The fan wrote", 1)]


def test_replies_unlocks_and_revenue_within_72_hours(fixed):
    f = automation_figures(automation=fixed)

    assert f.replied == 1  # a within the hour; b only after 100 h; e was held out
    assert (f.unlocks, f.unlock_revenue_cents) == (1, 1000)
    # treated arm (a, b, c, d) from their due time for 72 h: 1000 + 500 + 0 + 200
    assert f.revenue_cents == 1700


def test_uplift_equals_the_hand_computation(fixed, monkeypatch):
    treated = [1000, 500, 0, 200]  # a, b, c, d
    control = [400, 0]  # e, f
    diff = statistics.mean(treated) - statistics.mean(control)
    se = math.sqrt(
        statistics.variance(treated) / len(treated) + statistics.variance(control) / len(control)
    )
    monkeypatch.setattr(figures, "MIN_ARM_SIZE", 2)

    u = automation_figures(automation=fixed).uplift

    assert (u.treated.runs, u.control.runs) == (4, 2)
    assert u.treated.revenue_per_fan_cents == 425
    assert u.control.revenue_per_fan_cents == 200
    assert u.per_fan_cents == pytest.approx(diff) == 225
    assert u.standard_error_cents == pytest.approx(se)
    low, high = u.interval_cents
    assert low == pytest.approx(diff - 1.959964 * se)
    assert high == pytest.approx(diff + 1.959964 * se)
    assert u.verdict == "unclear"  # the interval spans zero
    assert u.as_json()["interval_95_cents"] == [round(low, 2), round(high, 2)]


def test_small_sample_says_not_enough_data(fixed):
    u = automation_figures(automation=fixed).uplift

    assert u.sample_size == 2
    assert u.interval_cents is None
    assert u.verdict == "not_enough_data"
    assert u.as_json()["interval_95_cents"] is None


def test_enough_data_gives_a_positive_interval(account, monkeypatch):
    # given 40 treated fans who each bought $10 or $12 and 40 control fans who bought $0 or $2
    automation = AutomationFactory(account=account, control_percent=50)
    due = timezone.now() - timedelta(days=4)
    for i in range(80):
        control = i % 2 == 1
        run = AutomationRunFactory(
            automation=automation,
            state=State.HELD_CONTROL if control else State.SKIPPED,
            reason="" if control else AutomationRun.Reason.FREQUENCY_CAP,
            due_at=due,
        )
        cents = (0 if control else 1000) + (200 if i % 4 < 2 else 0)
        if cents:
            PurchaseFactory(fan=run.fan, amount_cents=cents, purchased_at=due + timedelta(hours=1))

    u = automation_figures(automation=automation).uplift

    assert (u.treated.runs, u.control.runs) == (40, 40)
    assert u.per_fan_cents == pytest.approx(1000)
    assert u.verdict == "positive"
    low, high = u.interval_cents
    assert low > 0 and high > low


def test_no_control_group(account):
    automation = AutomationFactory(account=account, control_percent=0)
    AutomationRunFactory(automation=automation, state=State.SKIPPED, reason="filtered")

    u = automation_figures(automation=automation).uplift

    assert u.verdict == "no_control"
    assert u.as_json()["uplift_per_fan_cents"] is None


def test_many_automations_in_two_statements(account, fixed, django_assert_num_queries):
    others: list[Automation] = [AutomationFactory(account=account) for _ in range(3)]
    for other in others:
        AutomationRunFactory(automation=other, state=State.SCHEDULED)

    with django_assert_num_queries(2):
        result = automations_figures(automations=[fixed, *others])

    assert result[fixed.pk].triggered == 7
    assert [result[o.pk].pending for o in others] == [1, 1, 1]
