"""A live event is rendered only while a socket listens to its account (crm.presence), once
per event whatever the number of sockets, and an account's claim runs out when its sockets
stop renewing it (a crashed process)."""

from __future__ import annotations

import asyncio
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.routing import websocket_urlpatterns
from crm import broadcasts, consumers, live, presence
from onlyfans.inbound import message_receive
from tests.factories import MembershipFactory, MessageFactory

application = URLRouter(websocket_urlpatterns)


@pytest.fixture
def renders(monkeypatch) -> list[str]:
    """Every inbox render of a live event, by event name."""
    calls: list[str] = []
    real = live.event_html

    def spy(**kwargs):
        calls.append(kwargs["event"])
        return real(**kwargs)

    monkeypatch.setattr(live, "event_html", spy)
    return calls


@pytest.fixture
def group_sends(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = broadcasts._group_send

    def spy(**kwargs):
        calls.append(kwargs["event"])
        return real(**kwargs)

    monkeypatch.setattr(broadcasts, "_group_send", spy)
    return calls


def socket(user, account_id: int, path: str = "inbox/") -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/accounts/{account_id}/{path}")
    communicator.scope["user"] = user
    return communicator


def new_message_event(message) -> dict:
    return {
        "account_id": message.account_id,
        "event": "message.received",
        "payload": {"message_id": message.pk, "conversation_id": message.conversation_id},
    }


@pytest.mark.django_db
def test_nobody_watching_means_no_query_no_render_no_send(renders, group_sends, redis_client):
    message = MessageFactory(text="hello")
    assert not presence.account_watched(account_id=message.account_id)
    # when
    with CaptureQueriesContext(connection) as queries:
        broadcasts.account_event_broadcast(**new_message_event(message), wait=True)
    # then
    assert len(queries.captured_queries) == 0
    assert renders == [] and group_sends == []


@pytest.mark.django_db
def test_a_webhooks_message_is_not_rendered_for_an_unwatched_account(renders, account):
    message_receive(
        account=account,
        platform_fan={"id": "77", "username": "quiet", "name": "Quiet"},
        platform_message_id="pm-quiet",
        text="anyone?",
        price_cents=0,
        created_at=timezone.now(),
        event_key="evt-quiet",
    )
    assert renders == []


@pytest.mark.django_db(transaction=True)
def test_two_inbox_sockets_get_one_render_and_both_the_html(renders, redis_client):
    membership = MembershipFactory()
    message = MessageFactory(conversation__fan__account=membership.account, text="two <pages>")

    async def scenario() -> list[str]:
        first = socket(membership.user, membership.account_id)
        second = socket(membership.user, membership.account_id)
        assert (await first.connect())[0] and (await second.connect())[0]
        assert await sync_to_async(presence.account_listeners)(account_id=message.account_id) == (
            presence.Listeners(inbox=True, events=False)
        )
        await sync_to_async(broadcasts.account_event_broadcast)(
            **new_message_event(message), wait=True
        )
        frames = [await first.receive_from(timeout=10), await second.receive_from(timeout=10)]
        await first.disconnect()
        await second.disconnect()
        return frames

    first, second = async_to_sync(scenario)()
    assert renders == ["message.received"]  # once, not once per socket
    assert first == second and f'id="message-{message.pk}"' in first
    assert "two &lt;pages&gt;" in first
    # and the sockets' claims went with them
    assert not presence.account_watched(account_id=message.account_id)


@pytest.mark.django_db(transaction=True)
def test_a_json_socket_alone_gets_the_payload_without_a_render(renders, redis_client):
    membership = MembershipFactory()
    message = MessageFactory(conversation__fan__account=membership.account)

    async def scenario() -> dict:
        events = socket(membership.user, membership.account_id, path="")
        assert (await events.connect())[0]
        await sync_to_async(broadcasts.account_event_broadcast)(
            **new_message_event(message), wait=True
        )
        frame = await events.receive_json_from(timeout=10)
        await events.disconnect()
        return frame

    frame = async_to_sync(scenario)()
    assert frame["payload"]["message_id"] == message.pk
    assert renders == []


def test_a_claim_not_renewed_runs_out(monkeypatch, redis_client):
    # given: a socket's claim from a process that then died (no disconnect, no renewal)
    monkeypatch.setattr(presence, "WATCH_TTL_SECONDS", 1)
    presence.account_watch(account_id=5, kind=presence.INBOX, connection="dead.channel")
    assert presence.account_watched(account_id=5)
    assert 0 < redis_client.ttl(presence._key(5, presence.INBOX)) <= 1
    # when
    time.sleep(1.1)
    # then: neither the member counts nor the key stays
    assert not presence.account_watched(account_id=5)
    assert not redis_client.exists(presence._key(5, presence.INBOX))


def test_the_default_claim_outlives_two_missed_renewals():
    assert presence.WATCH_TTL_SECONDS >= 3 * presence.WATCH_REFRESH_SECONDS


@pytest.mark.django_db(transaction=True)
def test_an_open_socket_renews_its_claim(monkeypatch, redis_client):
    # A claim of 3 s renewed every 0.2 s: margin for a loaded CI machine's event loop.
    monkeypatch.setattr(presence, "WATCH_TTL_SECONDS", 3)
    monkeypatch.setattr(presence, "WATCH_REFRESH_SECONDS", 0.2)
    membership = MembershipFactory()

    async def scenario() -> tuple[bool, bool]:
        page = socket(membership.user, membership.account_id)
        assert (await page.connect())[0]
        await asyncio.sleep(4)  # past the first claim's expiry
        watched = await sync_to_async(presence.account_watched)(account_id=membership.account_id)
        await page.disconnect()
        after = await sync_to_async(presence.account_watched)(account_id=membership.account_id)
        return watched, after

    assert async_to_sync(scenario)() == (True, False)


@pytest.mark.django_db(transaction=True)
def test_a_socket_that_loses_access_gives_up_its_claim(monkeypatch, redis_client):
    monkeypatch.setattr(presence, "WATCH_REFRESH_SECONDS", 0.2)
    monkeypatch.setattr(consumers, "ACCESS_RECHECK_SECONDS", 0.0)
    membership = MembershipFactory()

    async def scenario() -> tuple[dict, bool]:
        page = socket(membership.user, membership.account_id)
        assert (await page.connect())[0]
        await sync_to_async(membership.delete)()
        closed = await page.receive_output(timeout=5)  # on the renewal's access check
        watched = await sync_to_async(presence.account_watched)(account_id=membership.account_id)
        await page.disconnect()
        return closed, watched

    closed, watched = async_to_sync(scenario)()
    assert closed == {"type": "websocket.close", "code": consumers.CLOSE_ACCESS_DENIED}
    assert not watched
