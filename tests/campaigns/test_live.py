"""Campaign messages on open inbox pages: the inbox's own live events for a fan-out batch,
and none at all while nobody watches the account."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from campaigns import fanout, live, services
from crm import presence
from crm.broadcasts import account_group_name
from crm.models import Conversation, Message
from tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def spy(monkeypatch):
    calls: list[dict] = []
    real = live.account_event_broadcast

    def record(**kwargs):
        calls.append(kwargs)
        real(**kwargs)

    monkeypatch.setattr(live, "account_event_broadcast", record)
    return calls


@pytest.fixture
def watcher(shop, redis_client):
    """A browser's channel in the account's group, as an open inbox page has."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    group = account_group_name(shop.account.pk)
    async_to_sync(layer.group_add)(group, channel)
    # what the inbox socket's consumer claims while it is open
    presence.account_watch(account_id=shop.account.pk, kind=presence.INBOX, connection=channel)
    yield type("Watcher", (), {"layer": layer, "channel": channel})
    presence.account_unwatch(account_id=shop.account.pk, kind=presence.INBOX, connection=channel)
    async_to_sync(layer.group_discard)(group, channel)


@pytest.fixture(autouse=True)
def no_dispatch(monkeypatch):
    """The batch's send tasks are not the subject here (no broker in these tests)."""
    import onlyfans.dispatch_coalescer

    monkeypatch.setattr(onlyfans.dispatch_coalescer, "dispatch_on_commit", lambda **kw: None)


def fan_out(campaign, django_capture_on_commit_callbacks, batch_size=100):
    with django_capture_on_commit_callbacks(execute=True):
        return fanout.campaign_fan_out_batch(campaign_id=campaign.pk, batch_size=batch_size)


def test_nobody_watching_means_no_event_and_no_render(
    shop, make_fan, make_campaign, spy, redis_client, django_capture_on_commit_callbacks
):
    for _ in range(5):
        make_fan()
    campaign = services.campaign_launch(actor=shop.owner, campaign=make_campaign())
    assert not live.account_watched(account_id=shop.account.pk)
    assert fan_out(campaign, django_capture_on_commit_callbacks).queued == 5
    assert spy == []


def test_a_watched_account_gets_the_inbox_events_of_the_batch(
    shop, make_fan, make_campaign, spy, watcher, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(live, "LIVE_EVENTS_PER_BATCH", 3)
    fans = [make_fan(display_name=f"Fan {i}") for i in range(5)]
    waiting = ConversationFactory(account=shop.account, fan=fans[0], waiting_since=timezone.now())
    campaign = services.campaign_launch(
        actor=shop.owner, campaign=make_campaign(text="Hi {name}, new set")
    )
    assert live.account_watched(account_id=shop.account.pk)
    assert fan_out(campaign, django_capture_on_commit_callbacks).queued == 5
    # then: the inbox's own "new message" events, at most the cap, the waiting fan's first
    assert [c["event"] for c in spy] == ["message.status"] * 3
    assert all(c["payload"]["new"] and c["payload"]["status"] == "queued" for c in spy)
    first = Message.objects.get(pk=spy[0]["payload"]["message_id"])
    assert first.conversation_id == waiting.pk
    # and the open page receives the bubble, rendered as the inbox renders it
    ours = [c["payload"]["message_id"] for c in spy]

    async def collect() -> list[dict]:
        # (one event loop for every receive: the layer buffers per loop)
        found: list[dict] = []
        for _ in range(50):  # other events of the account come between
            frame = await asyncio.wait_for(watcher.layer.receive(watcher.channel), timeout=10)
            if frame["event"] == "message.status" and frame["payload"]["message_id"] in ours:
                found.append(frame)
            if len(found) == len(ours):
                break
        return found

    frames = async_to_sync(collect)()
    # in the order they were sent (crm.broadcasts keeps the group sends in order)
    assert [f["payload"]["message_id"] for f in frames] == ours
    frame = frames[0]
    assert f'id="message-{first.pk}"' in frame["html"] and "Hi Fan 0, new set" in frame["html"]
    assert Conversation.objects.filter(account=shop.account).count() == 5
