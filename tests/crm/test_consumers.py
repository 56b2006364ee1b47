"""Live events: a member's websocket receives the account's events; others are refused, and
a socket whose user loses access (membership removed, user deactivated, logged out) is closed
within seconds and hears nothing more of the account."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from config.routing import websocket_urlpatterns
from crm import consumers, services
from crm.broadcasts import account_event_broadcast
from crm.models import Membership
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


# --- access lost ------------------------------------------------------------------------------

session_application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))


def session_socket(client: Client, path: str) -> WebsocketCommunicator:
    """A socket as a browser opens it: the user comes from the session cookie."""
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return WebsocketCommunicator(session_application, path, headers=[(b"cookie", cookie.encode())])


async def broadcast(account_id: int, text: str = "secret fan text") -> None:
    await sync_to_async(account_event_broadcast)(
        account_id=account_id,
        event="message.status",
        payload={"message_id": 1, "conversation_id": 1, "status": "sent", "text": text},
        wait=True,
    )


@contextlib.asynccontextmanager
async def open_sockets(*sockets: WebsocketCommunicator) -> AsyncIterator[None]:
    """Connected for the block and disconnected after it, even when it fails (a consumer left
    running would hold the channel layer's receive lock on this test's event loop)."""
    try:
        for socket in sockets:
            assert (await socket.connect())[0]
        yield
    finally:
        for socket in sockets:
            await socket.disconnect()


async def assert_closed_for_lost_access(socket: WebsocketCommunicator) -> None:
    output = await socket.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": consumers.CLOSE_ACCESS_DENIED}


async def assert_hears(socket: WebsocketCommunicator, text: str) -> None:
    event = await socket.receive_json_from(timeout=5)
    assert event["payload"]["text"] == text


def test_removed_member_is_closed_at_once(redis_client):
    removed = MembershipFactory(role="chatter")
    account_id = removed.account_id
    owner = MembershipFactory(account=removed.account, role="owner").user
    colleague = MembershipFactory(account=removed.account).user
    still_theirs = MembershipFactory(user=removed.user).account_id

    async def scenario():
        gone = connect(removed.user, account_id)
        elsewhere = connect(removed.user, still_theirs)
        kept = connect(colleague, account_id)
        async with open_sockets(gone, elsewhere, kept):
            await sync_to_async(services.membership_delete)(actor=owner, membership=removed)
            await assert_closed_for_lost_access(gone)
            await broadcast(account_id, "after removal")
            await broadcast(still_theirs, "other account")
            assert await gone.receive_nothing(timeout=0.5)
            # the others' sockets, and the user's own on an account they still belong to, stay
            await assert_hears(kept, "after removal")
            await assert_hears(elsewhere, "other account")

    async_to_sync(scenario)()


def test_membership_deleted_outside_the_service_closes_too(redis_client):
    """Admin's delete, or the user's deletion cascading to their memberships."""
    membership = MembershipFactory()

    async def scenario():
        socket = connect(membership.user, membership.account_id)
        async with open_sockets(socket):
            await sync_to_async(membership.user.delete)()
            await assert_closed_for_lost_access(socket)
            await broadcast(membership.account_id)
            assert await socket.receive_nothing(timeout=0.5)

    async_to_sync(scenario)()


def test_role_change_keeps_the_socket(redis_client):
    membership = MembershipFactory(role="manager")
    owner = MembershipFactory(account=membership.account, role="owner").user

    async def scenario():
        socket = connect(membership.user, membership.account_id)
        async with open_sockets(socket):
            await sync_to_async(services.membership_update_role)(
                actor=owner, membership=membership, role="chatter"
            )
            await broadcast(membership.account_id, "still a member")
            await assert_hears(socket, "still a member")

    async_to_sync(scenario)()


def test_deactivated_user_is_closed(redis_client):
    membership = MembershipFactory()
    user = membership.user

    async def scenario():
        socket = connect(user, membership.account_id)
        inbox = WebsocketCommunicator(application, f"/ws/accounts/{membership.account_id}/inbox/")
        inbox.scope["user"] = user
        async with open_sockets(socket, inbox):
            user.is_active = False
            await sync_to_async(user.save)()  # as admin's change form saves it
            await assert_closed_for_lost_access(socket)
            await assert_closed_for_lost_access(inbox)
            await broadcast(membership.account_id)
            assert await socket.receive_nothing(timeout=0.5)
            assert await inbox.receive_nothing(timeout=0.1)

    async_to_sync(scenario)()


def test_logout_closes_that_sessions_sockets_only(redis_client):
    membership = MembershipFactory()
    account_id = membership.account_id
    leaving, staying = Client(), Client()
    leaving.force_login(membership.user)
    staying.force_login(membership.user)

    async def scenario():
        left = session_socket(leaving, f"/ws/accounts/{account_id}/")
        other_browser = session_socket(staying, f"/ws/accounts/{account_id}/")
        async with open_sockets(left, other_browser):
            response = await sync_to_async(leaving.post)("/logout/")
            assert response.status_code == 302
            await assert_closed_for_lost_access(left)
            await broadcast(account_id, "after logout")
            assert await left.receive_nothing(timeout=0.5)
            await assert_hears(other_browser, "after logout")

    async_to_sync(scenario)()


def test_lost_access_without_a_notice_is_caught_before_the_next_event(redis_client, monkeypatch):
    """The notice is a courtesy (Redis may drop it): an event due on a socket whose last check
    is stale checks again first, so a membership gone without a notice (here a raw SQL
    delete, which sends no signal) still stops the traffic."""
    monkeypatch.setattr(consumers, "ACCESS_RECHECK_SECONDS", 0.0)
    membership = MembershipFactory()

    async def scenario():
        socket = connect(membership.user, membership.account_id)
        async with open_sockets(socket):
            await sync_to_async(Membership.objects.filter(pk=membership.pk)._raw_delete)("default")
            await broadcast(membership.account_id)
            await assert_closed_for_lost_access(socket)
            assert await socket.receive_nothing(timeout=0.5)

    async_to_sync(scenario)()


def test_expired_session_is_caught_before_the_next_event(redis_client, monkeypatch):
    monkeypatch.setattr(consumers, "ACCESS_RECHECK_SECONDS", 0.0)
    membership = MembershipFactory()
    browser = Client()
    browser.force_login(membership.user)

    async def scenario():
        socket = session_socket(browser, f"/ws/accounts/{membership.account_id}/")
        async with open_sockets(socket):
            await broadcast(membership.account_id, "before expiry")
            await assert_hears(socket, "before expiry")
            await sync_to_async(Session.objects.update)(expire_date=timezone.now())
            await broadcast(membership.account_id)
            await assert_closed_for_lost_access(socket)
            assert await socket.receive_nothing(timeout=0.5)

    async_to_sync(scenario)()
