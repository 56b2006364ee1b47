"""Each segment rule and exclusion, the pre-flight's counts and the rules' validation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns.rules import segment_rules_parse, text_personalise, text_variables_check
from campaigns.selectors import campaign_preflight, fans_for_segment
from crm.errors import ApplicationError
from crm.models import Conversation, Message, Purchase
from tests.factories import ConversationFactory, MessageFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def audience(shop, media_ids=(), **rules) -> set[str]:
    fans = fans_for_segment(
        account_id=shop.account.pk, rules=segment_rules_parse(rules), media_ids=media_ids
    )
    return set(fans.values_list("username", flat=True))


def test_no_rules_is_every_linked_fan_of_the_account(shop, make_fan, other_fan):
    make_fan(username="a")
    make_fan(username="b")
    make_fan(username="unlinked", platform_fan_id=None)
    assert audience(shop) == {"a", "b"}


def test_include_tags_any_and_all(shop, make_fan):
    make_fan(username="both", tags=["vip", "whale"])
    make_fan(username="vip", tags=["vip"])
    make_fan(username="none", tags=[])
    assert audience(shop, include_tags=["vip", "whale"]) == {"both", "vip"}
    assert audience(shop, include_tags=["vip", "whale"], include_tags_mode="all") == {"both"}
    assert audience(shop, include_tags=["VIP "]) == {"both", "vip"}  # normalised


def test_exclude_tags(shop, make_fan):
    make_fan(username="vip", tags=["vip"])
    make_fan(username="dnd", tags=["vip", "do-not-message"])
    assert audience(shop, exclude_tags=["do-not-message"]) == {"vip"}


def test_spend_range_is_inclusive(shop, make_fan):
    make_fan(username="low", lifetime_spend_cents=999)
    make_fan(username="mid", lifetime_spend_cents=1000)
    make_fan(username="top", lifetime_spend_cents=5000)
    make_fan(username="over", lifetime_spend_cents=5001)
    assert audience(shop, spend_min_cents=1000, spend_max_cents=5000) == {"mid", "top"}
    assert audience(shop, spend_min_cents=5001) == {"over"}


def test_subscription_state(shop, make_fan):
    make_fan(username="act", subscription_state="active")
    make_fan(username="exp", subscription_state="expired")
    make_fan(username="nev", subscription_state="never")
    assert audience(shop, subscription_states=["active", "expired"]) == {"act", "exp"}


def test_last_seen_within_and_not_within(shop, make_fan):
    now = timezone.now()
    make_fan(username="today", last_seen_at=now - timedelta(hours=3))
    make_fan(username="lastweek", last_seen_at=now - timedelta(days=6))
    make_fan(username="old", last_seen_at=now - timedelta(days=40))
    make_fan(username="never", last_seen_at=None)
    assert audience(shop, last_seen_within_days=7) == {"today", "lastweek"}
    assert audience(shop, last_seen_not_within_days=30) == {"old", "never"}
    assert audience(shop, last_seen_within_days=7, last_seen_not_within_days=1) == {"lastweek"}


def test_exclude_messaged_in_the_last_hours(shop, make_fan):
    recent, old, inbound_only = (
        make_fan(username="recent"),
        make_fan(username="old"),
        make_fan(username="inbound"),
    )
    now = timezone.now()
    for fan, hours in ((recent, 2), (old, 30)):
        MessageFactory(
            conversation=ConversationFactory(fan=fan),
            direction="out",
            status="sent",
            sender_kind="user",
            queued_at=now - timedelta(hours=hours),
            sent_at=now - timedelta(hours=hours),
        )
    MessageFactory(conversation=ConversationFactory(fan=inbound_only))  # the fan wrote: not us
    assert audience(shop, exclude_messaged_within_hours=24) == {"old", "inbound"}


def test_exclude_waiting_for_a_reply(shop, make_fan):
    waiting, answered = make_fan(username="waiting"), make_fan(username="answered")
    ConversationFactory(fan=waiting, waiting_since=timezone.now() - timedelta(minutes=5))
    ConversationFactory(fan=answered, waiting_since=None)
    make_fan(username="noconv")
    assert audience(shop, exclude_waiting=True) == {"answered", "noconv"}


def test_exclude_fans_who_bought_this_media(shop, make_fan):
    bought, other_media, tipped = (
        make_fan(username="bought"),
        make_fan(username="other"),
        make_fan(username="tipped"),
    )
    for fan, media in ((bought, ["m1", "m2"]), (other_media, ["m9"])):
        message = MessageFactory(
            conversation=ConversationFactory(fan=fan),
            direction="out",
            status="sent",
            sender_kind="user",
            price_cents=500,
            media_ids=media,
            sent_at=timezone.now(),
        )
        PurchaseFactory(fan=fan, kind=Purchase.Kind.PPV, message=message)
    PurchaseFactory(fan=tipped, kind=Purchase.Kind.TIP)
    assert audience(shop, media_ids=["m2", "m3"], exclude_bought_media=True) == {
        "other",
        "tipped",
    }
    # without media on the campaign, the rule has nothing to compare
    assert audience(shop, exclude_bought_media=True) == {"bought", "other", "tipped"}


def test_explicit_fan_list(shop, make_fan, other_fan):
    a, b = make_fan(username="a"), make_fan(username="b")
    make_fan(username="c")
    unlinked = make_fan(username="u", platform_fan_id=None)
    assert audience(shop, fan_ids=[a.pk, b.pk, unlinked.pk, other_fan.pk]) == {"a", "b"}


def test_preflight_counts_each_step_and_the_unlinked(shop, make_fan):
    now = timezone.now()
    for i in range(5):
        make_fan(username=f"vip{i}", tags=["vip"])
    make_fan(username="dnd", tags=["vip", "dnd"])
    waiting = make_fan(username="waiting", tags=["vip"])
    ConversationFactory(fan=waiting, waiting_since=now)
    make_fan(username="unlinked", tags=["vip"], platform_fan_id=None)
    make_fan(username="notvip")
    rules = segment_rules_parse(
        {"include_tags": ["vip"], "exclude_tags": ["dnd"], "exclude_waiting": True}
    )
    preflight = campaign_preflight(account=shop.account, rules=rules, control_percent=20)
    assert preflight.matched == 8
    assert [(k, n) for k, _l, n in preflight.removed] == [
        ("excluded_tags", 1),
        ("waiting_for_reply", 1),
    ]
    assert preflight.unlinked == 1
    assert preflight.audience == 5
    assert preflight.control == 1
    assert preflight.recipients == 4
    assert len(preflight.sample) == 5
    assert preflight.estimates["individual"].calls == 4
    assert preflight.estimates["mass"].calls == 1


def test_preflight_estimate_counts_what_is_queued_ahead(shop, make_fan):
    shop.account.send_rate_per_minute = 10
    shop.account.send_min_interval_ms = 3000
    shop.account.save()
    fans = [make_fan() for _ in range(3)]
    conversation = ConversationFactory(fan=fans[0])
    for _ in range(20):
        MessageFactory(
            conversation=conversation, direction="out", status="queued", sender_kind="user"
        )
    preflight = campaign_preflight(account=shop.account, rules=segment_rules_parse({}))
    assert preflight.queued_ahead == 20
    # 23 sends at 10 a minute: a little over two minutes
    assert 120 < preflight.estimates["individual"].seconds < 150
    # ...which drains within the default two-hour window
    assert preflight.auto_mode == "individual"


def test_auto_picks_mass_when_the_audience_would_not_drain_in_the_window(shop, make_fan):
    shop.account.send_rate_per_minute = 1
    shop.account.save()
    for _ in range(5):
        make_fan()
    rules = segment_rules_parse({})
    assert campaign_preflight(account=shop.account, rules=rules).auto_mode == "individual"
    quick = campaign_preflight(account=shop.account, rules=rules, drain_window_minutes=2)
    assert quick.auto_mode == "mass"


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"include_tags_mode": "some"}, "include_tags_mode"),
        ({"spend_min_cents": -1}, "spend_min_cents"),
        ({"spend_min_cents": 500, "spend_max_cents": 100}, "spend_max_cents"),
        ({"subscription_states": ["gold"]}, "subscription_states"),
        ({"last_seen_within_days": 0}, "last_seen_within_days"),
        ({"exclude_waiting": "maybe"}, "exclude_waiting"),
        ({"fan_ids": ["x"]}, "fan_ids"),
        ({"colour": "red"}, "rules"),
        ({"spend_min_cents": 1.5}, "spend_min_cents"),
    ],
)
def test_invalid_rules_name_the_field(rules, field):
    with pytest.raises(ApplicationError) as caught:
        segment_rules_parse(rules)
    assert caught.value.code == "invalid_rules"
    assert field in caught.value.fields


def test_rules_round_trip_as_json():
    rules = segment_rules_parse({"include_tags": ["VIP", "vip"], "exclude_waiting": True})
    assert rules.as_json() == {
        "include_tags": ["vip"],
        "include_tags_mode": "any",
        "exclude_waiting": True,
    }
    assert segment_rules_parse(rules.as_json()) == rules


def test_personalisation_with_fallbacks():
    text = "Hey {name}, @{username}! {name|babe}"
    assert text_personalise(text, display_name="Ann", username="ann1") == "Hey Ann, @ann1! Ann"
    assert text_personalise(text, display_name=" ", username="ann1") == "Hey ann1, @ann1! babe"
    assert text_variables_check("Hi {nmae} {name}") == ["nmae"]


def test_preflight_on_many_fans_is_a_few_queries(shop, make_fan, django_assert_max_num_queries):
    for i in range(30):
        make_fan(tags=["vip"] if i % 2 else [])
    rules = segment_rules_parse(
        {"include_tags": ["vip"], "exclude_waiting": True, "exclude_messaged_within_hours": 24}
    )
    # the counts, the queued-ahead count, the sample; plus the limiter in Redis
    with django_assert_max_num_queries(3):
        preflight = campaign_preflight(account=shop.account, rules=rules)
    assert preflight.audience == 15
    assert Conversation.objects.count() == 0
    assert Message.objects.count() == 0
