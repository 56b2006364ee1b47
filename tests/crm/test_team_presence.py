"""Presence over the inbox socket: joining a thread, typing (throttled on the server), a
silent drop expiring without any disconnect, leaving on disconnect, and a member of another
account never seeing any of it."""

from __future__ import annotations

import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from config.routing import websocket_urlpatterns
from crm import team_presence
from tests.factories import ConversationFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

application = URLRouter(websocket_urlpatterns)


def inbox_socket(user, account_id: int) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, f"/ws/accounts/{account_id}/inbox/")
    communicator.scope["user"] = user
    return communicator


async def open_socket(user, account_id: int) -> WebsocketCommunicator:
    communicator = inbox_socket(user, account_id)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def strip_until(communicator: WebsocketCommunicator, conversation_id: int, wanted) -> str:
    """The first presence strip of the thread for which ``wanted(html)`` holds."""
    seen = []
    for _ in range(10):
        html = await communicator.receive_from(timeout=3)
        seen.append(html)
        if f'id="presence-{conversation_id}"' in html and wanted(html):
            return html
    raise AssertionError(f"no matching strip in {seen}")


def viewer(user) -> str:
    return f'data-presence-user="{user.pk}"'


@pytest.fixture
def team(redis_client):
    first = MembershipFactory(role="chatter", user=UserFactory(username="alice"))
    second = MembershipFactory(
        account=first.account, role="chatter", user=UserFactory(username="bob_smith")
    )
    conversation = ConversationFactory(fan__account=first.account)
    return first.user, second.user, conversation


def test_join_shows_each_member_to_the_other_and_leaving_removes_them(team):
    alice, bob, conversation = team
    account_id = conversation.account_id

    async def scenario():
        a = await open_socket(alice, account_id)
        await a.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        await strip_until(a, conversation.pk, lambda h: viewer(alice) in h)

        b = await open_socket(bob, account_id)
        await b.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        on_b = await strip_until(b, conversation.pk, lambda h: viewer(alice) in h)
        on_a = await strip_until(a, conversation.pk, lambda h: viewer(bob) in h)

        await b.disconnect()
        after_leave = await strip_until(a, conversation.pk, lambda h: viewer(bob) not in h)
        await a.disconnect()
        return on_a, on_b, after_leave

    on_a, on_b, after_leave = async_to_sync(scenario)()
    assert ">BS</span>" in on_a  # bob_smith's initials
    assert viewer(bob) in on_b
    assert viewer(alice) in after_leave
    presence = team_presence.thread_presence(
        account_id=conversation.account_id, conversation_id=conversation.pk
    )
    assert presence.viewers == ()  # both sockets closed: nobody left in Redis


def test_typing_reaches_the_others_at_most_once_every_two_seconds(team):
    alice, bob, conversation = team
    account_id = conversation.account_id

    async def scenario():
        a = await open_socket(alice, account_id)
        b = await open_socket(bob, account_id)
        for socket in (a, b):
            await socket.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        await strip_until(a, conversation.pk, lambda h: viewer(bob) in h)
        while not await a.receive_nothing(timeout=0.3):
            await a.receive_from()

        await b.send_json_to({"presence": "typing", "conversation_id": conversation.pk})
        typing = await strip_until(a, conversation.pk, lambda h: "is typing" in h)
        # a client that ignores the throttle: the server drops the next notices
        for _ in range(5):
            await b.send_json_to({"presence": "typing", "conversation_id": conversation.pk})
        quiet = await a.receive_nothing(timeout=0.5)
        # he pauses: his page says so, and the line goes
        await b.send_json_to({"presence": "typing_stop", "conversation_id": conversation.pk})
        stopped = await strip_until(a, conversation.pk, lambda h: "is typing" not in h)
        await a.disconnect()
        await b.disconnect()
        return typing, quiet, stopped

    typing, quiet, stopped = async_to_sync(scenario)()
    assert "bob_smith is typing…" in typing
    assert quiet
    assert viewer(bob) in stopped


def test_a_typists_renewals_are_not_broadcast_and_a_silent_typist_expires(team):
    _, bob, conversation = team
    member = team_presence.member_for_user(bob)
    now = time.time()

    first = team_presence.typing_notice(conversation_id=conversation.pk, member=member, now=now)
    throttled = team_presence.typing_notice(conversation_id=conversation.pk, member=member)
    # two seconds on (the throttle's key expires): a counted notice, but only a renewal
    team_presence.redis_client().delete(team_presence._throttle_key(conversation.pk, bob.pk))
    renewal = team_presence.typing_notice(conversation_id=conversation.pk, member=member, now=now)
    later = team_presence.thread_presence(
        account_id=conversation.account_id,
        conversation_id=conversation.pk,
        now=now + team_presence.TYPING_SHOWN_SECONDS + 1,
    )

    assert (first, throttled, renewal) == (True, False, False)
    assert later.typing == ()


def test_typing_in_a_thread_the_socket_has_not_open_is_ignored(team):
    alice, bob, conversation = team

    async def scenario():
        a = await open_socket(alice, conversation.account_id)
        b = await open_socket(bob, conversation.account_id)
        await b.send_json_to({"presence": "typing", "conversation_id": conversation.pk})
        quiet = await a.receive_nothing(timeout=0.5)
        await a.disconnect()
        await b.disconnect()
        return quiet

    assert async_to_sync(scenario)()


def test_a_silent_drop_expires_without_a_disconnect(team):
    alice, bob, conversation = team
    account_id = conversation.account_id

    async def scenario():
        a = await open_socket(alice, account_id)
        b = await open_socket(bob, account_id)
        for socket in (a, b):
            await socket.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        await strip_until(a, conversation.pk, lambda h: viewer(bob) in h)

        # bob's laptop sleeps: his socket stays open but sends nothing; his last heartbeat
        # is now older than the expiry (scores are expiry times: move his into the past)
        await sync_to_async(team_presence.view_heartbeat)(
            account_id=account_id,
            conversation_id=conversation.pk,
            member=team_presence.member_for_user(bob),
            now=time.time() - team_presence.VIEW_TTL_SECONDS - 1,
        )
        # alice's next heartbeat (every 10 s) sweeps the account and tells everyone
        await a.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        dropped = await strip_until(a, conversation.pk, lambda h: viewer(bob) not in h)
        await a.disconnect()
        await b.disconnect()
        return dropped

    dropped = async_to_sync(scenario)()
    assert viewer(alice) in dropped
    assert team_presence.VIEW_TTL_SECONDS + team_presence.HEARTBEAT_SECONDS <= 30


def test_a_member_of_another_account_sees_nothing_and_cannot_join(team, other_account):
    alice, _, conversation = team
    outsider = MembershipFactory(account=other_account, role="owner").user

    async def scenario():
        spy = await open_socket(outsider, other_account.pk)
        a = await open_socket(alice, conversation.account_id)
        await a.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        await strip_until(a, conversation.pk, lambda h: viewer(alice) in h)
        await a.send_json_to({"presence": "typing", "conversation_id": conversation.pk})
        await strip_until(a, conversation.pk, lambda h: "is typing" in h)  # her own echo
        spy_heard_nothing = await spy.receive_nothing(timeout=0.5)
        # the outsider names a thread of an account they are not in: refused quietly
        await spy.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        await spy.send_json_to({"presence": "typing", "conversation_id": conversation.pk})
        alice_heard_nothing = await a.receive_nothing(timeout=0.5)
        await spy.disconnect()
        await a.disconnect()
        return spy_heard_nothing, alice_heard_nothing

    spy_heard_nothing, alice_heard_nothing = async_to_sync(scenario)()
    assert spy_heard_nothing
    assert alice_heard_nothing
    presence = team_presence.thread_presence(
        account_id=conversation.account_id, conversation_id=conversation.pk
    )
    assert outsider.pk not in {m.user_id for m in presence.viewers}


def test_garbage_and_oversized_frames_are_dropped_and_the_socket_lives(team):
    alice, _, conversation = team

    async def scenario():
        a = await open_socket(alice, conversation.account_id)
        await a.send_to(text_data="not json")
        await a.send_to(text_data='{"presence": "heartbeat", "pad": "' + "x" * 5000 + '"}')
        await a.send_json_to({"presence": "heartbeat", "conversation_id": "12abc"})
        await a.send_json_to({"presence": "heartbeat", "conversation_id": conversation.pk})
        html = await strip_until(a, conversation.pk, lambda h: viewer(alice) in h)
        await a.disconnect()
        return html

    assert viewer(alice) in async_to_sync(scenario)()


def test_a_claim_is_held_for_claim_minutes_and_ends_when_its_holder_leaves(team, settings):
    alice, bob, conversation = team
    settings.CLAIM_MINUTES = 3
    alice_m = team_presence.member_for_user(alice)
    bob_m = team_presence.member_for_user(bob)

    claim = team_presence.claim_take(conversation_id=conversation.pk, member=alice_m)
    with pytest.raises(team_presence.ApplicationError) as refused:
        team_presence.claim_take(conversation_id=conversation.pk, member=bob_m)

    assert 170 < claim.until - time.time() <= 180
    assert refused.value.code == "thread_claimed"
    assert refused.value.status_code == 409
    assert team_presence.claim_by_other(conversation_id=conversation.pk, user_id=alice.pk) is None
    assert team_presence.claim_by_other(conversation_id=conversation.pk, user_id=bob.pk) == (
        team_presence.Claim(member=alice_m, until=pytest.approx(claim.until, abs=2))
    )
    assert not team_presence.claim_release(conversation_id=conversation.pk, member=bob_m)
    team_presence.view_heartbeat(
        account_id=conversation.account_id, conversation_id=conversation.pk, member=alice_m
    )
    team_presence.view_leave(
        account_id=conversation.account_id, conversation_id=conversation.pk, member=alice_m
    )
    assert team_presence.claim_by_other(conversation_id=conversation.pk, user_id=bob.pk) is None


def test_the_list_marks_rows_someone_has_open_or_took_and_live_rows_keep_it(team, client):
    from crm.live import conversation_changed_html

    alice, bob, conversation = team
    conversation.last_message_at = conversation.created_at
    conversation.save(update_fields=["last_message_at"])
    team_presence.view_heartbeat(
        account_id=conversation.account_id,
        conversation_id=conversation.pk,
        member=team_presence.member_for_user(bob),
    )
    team_presence.claim_take(
        conversation_id=conversation.pk, member=team_presence.member_for_user(bob)
    )
    client.force_login(alice)

    page = client.get(f"/accounts/{conversation.account_id}/inbox/").content.decode()
    live_row = conversation_changed_html(conversation_id=conversation.pk) or ""
    changed = team_presence.presence_changed_html(
        account_id=conversation.account_id, conversation_id=conversation.pk
    )

    for html in (page, live_row):
        marker = html[html.index(f'id="presence-row-{conversation.pk}"') :]
        assert f'data-presence-user="{bob.pk}" title="bob_smith has this open">BS<' in marker
        assert "bob_smith is on it" in marker
    assert f'hx-swap-oob="outerHTML:#presence-row-{conversation.pk}, #live-sink"' in changed
    assert f'hx-swap-oob="outerHTML:#presence-{conversation.pk}, #live-sink"' in changed
    # inside a row the marker is never an out-of-band swap of its own
    assert f'hx-swap-oob="outerHTML:#presence-row-{conversation.pk}' not in live_row
