"""Live events: a member's websocket receives the account's events; others are refused."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser

from config.routing import websocket_urlpatterns
from crm.broadcasts import account_event_broadcast
from tests.factories import CreatorAccountFactory, MembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)


def connect(user, account_id: int) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/accounts/{account_id}/")
    communicator.scope["user"] = user
    return communicator


def test_member_receives_the_accounts_events(redis_client):
    membership = MembershipFactory()
    account_id = membership.account_id

    async def scenario():
        communicator = connect(membership.user, account_id)
        connected, _ = await communicator.connect()
        assert connected
        # the broadcast is handed to the process's own loop; wait for it here
        from asgiref.sync import sync_to_async

        await sync_to_async(account_event_broadcast)(
            account_id=account_id,
            event="message.status",
            payload={"message_id": 7, "status": "sent"},
            wait=True,
        )
        event = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return event

    event = async_to_sync(scenario)()
    assert event == {"event": "message.status", "payload": {"message_id": 7, "status": "sent"}}


def test_non_member_and_anonymous_are_refused(redis_client):
    other = CreatorAccountFactory()
    outsider = MembershipFactory().user

    async def attempt(user):
        communicator = connect(user, other.pk)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(attempt)(outsider) == (False, 4403)
    assert async_to_sync(attempt)(AnonymousUser()) == (False, 4403)


def test_channel_layer_reads_longer_than_its_blocking_read():
    """An idle consumer waits in BRPOP; a socket timeout at or under it kills the consumer."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    host = layer.hosts[0]
    assert host["socket_timeout"] > layer.brpop_timeout
