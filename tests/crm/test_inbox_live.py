"""Live inbox: the events' rendered HTML reaches members' inbox sockets, and only theirs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from config.routing import websocket_urlpatterns
from crm import live, services
from crm.models import Conversation
from onlyfans.inbound import message_receive
from onlyfans.services import message_enqueue, message_mark_failed
from tests.factories import (
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
)

application = URLRouter(websocket_urlpatterns)


def inbox_socket(user, account_id: int) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/accounts/{account_id}/inbox/")
    communicator.scope["user"] = user
    return communicator


def receive(account, text: str = "are you there?"):
    return message_receive(
        account=account,
        platform_fan={"id": "501", "username": "live_fan", "name": "Live Fan"},
        platform_message_id=f"pm-{text}",
        text=text,
        price_cents=0,
        created_at=datetime(2026, 5, 1, tzinfo=UTC),
        event_key=f"evt-{text}",
    )


@pytest.mark.django_db(transaction=True)
def test_members_inbox_socket_gets_the_new_message_and_the_moved_row(redis_client):
    membership = MembershipFactory()
    account = membership.account

    async def scenario() -> list[str]:
        first = inbox_socket(membership.user, account.pk)
        second = inbox_socket(membership.user, account.pk)
        assert (await first.connect())[0] and (await second.connect())[0]
        message = await sync_to_async(receive)(account, "hello <b>you</b>")
        frames = [await first.receive_from(timeout=15), await second.receive_from(timeout=15)]
        await first.disconnect()
        await second.disconnect()
        return [*frames, str(message.pk), str(message.conversation_id)]

    first, second, _message_id, conversation_id = async_to_sync(scenario)()
    assert first == second  # rendered once, the same for every member
    # Every swap names #live-sink beside its target, so a page without that thread or row
    # drops it rather than htmx reporting a missing target (no delete-before-append either).
    assert f'hx-swap-oob="beforeend:#thread-messages-{conversation_id}, #live-sink"' in first
    assert f'id="conversation-{conversation_id}"' in first
    assert f'hx-swap-oob="outerHTML:#conversation-{conversation_id}, #live-sink"' in first
    assert 'hx-swap-oob="afterbegin:#conversation-list[data-live-top], #live-sink"' in first
    assert 'hx-swap-oob="delete' not in first
    assert "hello &lt;b&gt;you&lt;/b&gt;" in first  # escaped, never raw fan HTML
    assert "<b>you</b>" not in first


@pytest.mark.django_db(transaction=True)
def test_status_changes_and_reads_are_sent_as_in_place_swaps(redis_client):
    membership = MembershipFactory()
    account = membership.account
    fan = FanFactory(account=account)

    async def scenario() -> list[str]:
        socket = inbox_socket(membership.user, account.pk)
        assert (await socket.connect())[0]
        message = await sync_to_async(message_enqueue)(fan=fan, text="hi")
        created = await socket.receive_from(timeout=15)
        await sync_to_async(message_mark_failed)(message=message, error="refused: blocked")
        failed = await socket.receive_from(timeout=15)
        await sync_to_async(_make_unread_then_read)(membership.user, message.conversation_id)
        read = await socket.receive_from(timeout=15)
        await socket.disconnect()
        return [created, failed, read, str(message.pk)]

    created, failed, read, message_id = async_to_sync(scenario)()
    assert f'id="message-{message_id}"' in created and "st-queued" in created
    assert (
        f'id="message-status-{message_id}" class="msg-status st-failed" '
        f'hx-swap-oob="outerHTML:#message-status-{message_id}, #live-sink"'
    ) in failed
    assert "refused: blocked" in failed and 'class="retry"' in failed
    assert 'hx-swap-oob="outerHTML:#conversation-' in read and "unread-badge" not in read


@pytest.mark.django_db(transaction=True)
def test_a_fan_page_edit_reaches_the_open_inbox(redis_client):
    # The fan page and the inbox write fans through the same locked, broadcasting service.
    membership = MembershipFactory()
    account = membership.account
    fan = ConversationFactory(fan=FanFactory(account=account)).fan
    page = Client()
    page.force_login(membership.user)
    url = reverse("fan_detail", args=[account.pk, fan.pk])

    async def scenario() -> tuple[int, str]:
        socket = inbox_socket(membership.user, account.pk)
        assert (await socket.connect())[0]
        # when: another member saves the fan on the fan page
        response = await sync_to_async(page.post)(url, {"tags": "Whale, vip", "notes": "tips"})
        frame = await socket.receive_from(timeout=15)
        await socket.disconnect()
        return response.status_code, frame

    status, frame = async_to_sync(scenario)()
    # then: the open inbox swaps the fan's tags in place
    assert status == 302
    assert f'hx-swap-oob="outerHTML:#fan-tags-{fan.pk}, #live-sink"' in frame
    assert ">whale<" in frame and ">vip<" in frame


def _make_unread_then_read(user, conversation_id: int) -> None:
    Conversation.objects.filter(pk=conversation_id).update(unread_count=3)
    conversation = Conversation.objects.get(pk=conversation_id)
    services.conversation_mark_read(actor=user, conversation=conversation)


@pytest.mark.django_db(transaction=True)
def test_inbox_socket_refuses_non_members_and_anonymous(redis_client):
    account = CreatorAccountFactory()
    outsider = MembershipFactory().user

    async def attempt(user) -> tuple[bool, int | str | None]:
        socket = inbox_socket(user, account.pk)
        connected, code = await socket.connect()
        await socket.disconnect()
        return connected, code

    assert async_to_sync(attempt)(outsider) == (False, 4403)
    assert async_to_sync(attempt)(AnonymousUser()) == (False, 4403)


@pytest.mark.django_db(transaction=True)
def test_another_accounts_events_never_reach_a_member(redis_client):
    membership = MembershipFactory()
    other = CreatorAccountFactory()

    async def scenario() -> bool:
        socket = inbox_socket(membership.user, membership.account_id)
        assert (await socket.connect())[0]
        await sync_to_async(receive)(other, "secret")
        nothing = await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()
        return nothing

    assert async_to_sync(scenario)()


@pytest.mark.django_db
def test_events_the_inbox_does_not_show_render_nothing(account):
    assert live.event_html(account_id=account.pk, event="purchase.recorded", payload={}) is None
    missing = {"message_id": 10**9, "conversation_id": 1, "new": True}
    assert live.event_html(account_id=account.pk, event="message.status", payload=missing) is None


def test_an_accounts_events_reach_its_pages_in_the_order_they_were_sent(redis_client):
    # A message's "queued" then "sent" must never arrive swapped: each group send is several
    # awaits on Redis, and a process's broadcasts must not run side by side.
    from channels.layers import get_channel_layer

    from crm.broadcasts import _group_send, account_group_name

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(account_group_name(987), channel)
    # given: two more pages of the account, so each send has several channels to serve
    others = [async_to_sync(layer.new_channel)() for _ in range(2)]
    for other in others:
        async_to_sync(layer.group_add)(account_group_name(987), other)
    try:
        # when: 60 events are broadcast as fast as a busy worker would (under the layer's
        # capacity of 100 a channel)
        for number in range(60):
            _group_send(account_id=987, event="message.status", payload={"n": number}, html=None)
        _group_send(account_id=987, event="message.status", payload={"n": 60}, html=None, wait=True)

        async def collect() -> list[int]:
            import asyncio

            return [
                (await asyncio.wait_for(layer.receive(channel), timeout=10))["payload"]["n"]
                for _ in range(61)
            ]

        # then: the page receives them in that order
        assert async_to_sync(collect)() == list(range(61))
    finally:
        for name in (channel, *others):
            async_to_sync(layer.group_discard)(account_group_name(987), name)
