"""The collision guard: a send that names the newest message its author saw is not queued
when the fan or another member wrote since (409 ``thread_changed`` with what is new), nor
when another member took the thread (409 ``thread_claimed``), unless forced; through both send
APIs and the inbox page."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm import drafts, notes, team_presence
from crm.models import ConversationNote, Message
from tests.factories import ConversationFactory, MembershipFactory, MessageFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


@pytest.fixture
def thread(account):
    conversation = ConversationFactory(fan__account=account)
    first = MessageFactory(conversation=conversation, text="hey, are you there?")
    return conversation, first


@pytest.fixture
def colleague(account):
    return MembershipFactory(account=account, role="chatter", user=UserFactory(username="bob")).user


def crm_send(user, conversation, **body):
    return bearer(user).post(
        f"/api/crm/conversations/{conversation.pk}/messages/", {"text": "hi", **body}, format="json"
    )


def onlyfans_send(user, conversation, **body):
    return bearer(user).post(
        "/api/onlyfans/messages/send",
        {"fan_id": conversation.fan_id, "text": "hi", **body},
        format="json",
    )


def outgoing(conversation) -> int:
    return Message.objects.filter(conversation=conversation, direction="out").count()


@pytest.mark.parametrize("send", [crm_send, onlyfans_send])
def test_another_members_send_makes_a_stale_send_409_and_force_queues_it_once(
    send, thread, chatter, colleague, redis_client
):
    conversation, first = thread
    assert send(colleague, conversation, after_message_id=first.pk).status_code == 202
    answered = Message.objects.get(conversation=conversation, direction="out")

    stale = send(chatter, conversation, after_message_id=first.pk)

    assert stale.status_code == 409, stale.content
    body = stale.json()
    assert body["code"] == "thread_changed"
    assert [m["id"] for m in body["messages"]] == [answered.pk]
    assert body["messages"][0]["sent_by"]["username"] == "bob"
    assert outgoing(conversation) == 1  # nothing queued

    forced = send(chatter, conversation, after_message_id=first.pk, force=True)
    assert forced.status_code == 202, forced.content
    assert outgoing(conversation) == 2
    assert Message.objects.get(pk=forced.json()["message_id"]).sent_by_id == chatter.pk


@pytest.mark.parametrize("send", [crm_send, onlyfans_send])
def test_the_fan_writing_again_makes_a_send_stale(send, thread, chatter, redis_client):
    conversation, first = thread
    again = MessageFactory(conversation=conversation, text="hello??")

    stale = send(chatter, conversation, after_message_id=first.pk)

    assert stale.status_code == 409
    assert [(m["id"], m["direction"], m["text"]) for m in stale.json()["messages"]] == [
        (again.pk, "in", "hello??")
    ]
    assert outgoing(conversation) == 0
    assert send(chatter, conversation, after_message_id=again.pk).status_code == 202


@pytest.mark.parametrize("send", [crm_send, onlyfans_send])
def test_own_messages_and_no_after_message_id_do_not_stop_a_send(
    send, thread, chatter, colleague, redis_client
):
    conversation, first = thread
    assert send(chatter, conversation, after_message_id=first.pk).status_code == 202
    # the author's own message since is not news to them
    assert send(chatter, conversation, after_message_id=first.pk).status_code == 202
    assert send(colleague, conversation, after_message_id=first.pk).status_code == 409
    # without after_message_id the API behaves as before the guard
    assert send(colleague, conversation).status_code == 202
    assert outgoing(conversation) == 3


@pytest.mark.parametrize("send", [crm_send, onlyfans_send])
def test_a_claim_by_another_member_is_409_unless_forced_and_ends_when_its_holder_sends(
    send, thread, chatter, colleague, redis_client, django_capture_on_commit_callbacks
):
    conversation, first = thread
    holder = team_presence.member_for_user(colleague)
    team_presence.claim_take(conversation_id=conversation.pk, member=holder)

    claimed = send(chatter, conversation, after_message_id=first.pk)
    assert claimed.status_code == 409
    assert claimed.json()["code"] == "thread_claimed"
    assert claimed.json()["claimed_by"] == {"id": colleague.pk, "username": "bob"}
    assert outgoing(conversation) == 0

    with django_capture_on_commit_callbacks(execute=True):
        assert send(colleague, conversation, after_message_id=first.pk).status_code == 202
    assert team_presence.claim_by_other(conversation_id=conversation.pk, user_id=chatter.pk) is None


def test_after_message_id_is_validated(thread, chatter, redis_client):
    conversation, _ = thread
    bad = crm_send(chatter, conversation, after_message_id="latest")
    assert bad.status_code == 400
    assert bad.json()["code"] == "validation_error"
    assert "after_message_id" in bad.json()["errors"]


def test_the_guard_reads_one_indexed_query(thread, chatter, django_assert_num_queries):
    from crm.collision import messages_unseen

    conversation, first = thread
    MessageFactory(conversation=conversation)
    with django_assert_num_queries(2):  # the messages, then PPV unlocks of those shown
        unseen = messages_unseen(
            conversation_id=conversation.pk, author_id=chatter.pk, after_message_id=first.pk
        )
    assert len(unseen) == 1


# --- the page -------------------------------------------------------------------------------


def test_the_composer_carries_the_newest_message_on_screen(client, thread, chatter, redis_client):
    conversation, first = thread
    client.force_login(chatter)
    page = client.get(reverse("inbox_thread", args=[conversation.account_id, conversation.pk]))
    html = page.content.decode()
    assert f'name="after_message_id" value="{first.pk}"' in html
    assert f'id="presence-{conversation.pk}"' in html


def test_a_stale_page_send_is_stopped_with_what_is_new_and_send_anyway_queues_once(
    client, thread, chatter, colleague, redis_client
):
    conversation, first = thread
    answer = MessageFactory(
        conversation=conversation,
        direction="out",
        status="queued",
        sender_kind="user",
        sent_by=colleague,
        text="on my way",
    )
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[conversation.account_id, conversation.pk])

    stopped = client.post(url, {"text": "hi!", "after_message_id": first.pk}, headers=HX)

    assert stopped.status_code == 409
    html = stopped.content.decode()
    assert "bob answered 0 s ago:" in html or "bob answered 1 s ago:" in html
    assert "on my way" in html
    assert "Send anyway" in html and "Edit" in html
    assert ">hi!</textarea>" in html  # the text is kept
    assert f'name="after_message_id" value="{answer.pk}"' in html  # now seen
    assert outgoing(conversation) == 1

    forced = client.post(
        url, {"text": "hi!", "after_message_id": first.pk, "force": "on"}, headers=HX
    )
    assert forced.status_code == 200
    assert outgoing(conversation) == 2
    assert Message.objects.filter(conversation=conversation, text="hi!").count() == 1


def test_a_page_send_into_a_thread_claimed_by_another_asks_first(
    client, thread, chatter, colleague, redis_client
):
    conversation, first = thread
    team_presence.claim_take(
        conversation_id=conversation.pk, member=team_presence.member_for_user(colleague)
    )
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[conversation.account_id, conversation.pk])

    asked = client.post(url, {"text": "mine", "after_message_id": first.pk}, headers=HX)
    assert asked.status_code == 409
    assert "bob is on this thread" in asked.content.decode()
    assert outgoing(conversation) == 0

    # without JavaScript: the whole page, stopped the same way
    page = client.post(url, {"text": "mine", "after_message_id": first.pk})
    assert page.status_code == 409
    assert "Send anyway" in page.content.decode()
    assert outgoing(conversation) == 0


def test_claim_button_takes_and_releases_and_another_accounts_member_gets_404(
    client, thread, chatter, colleague, other_account, redis_client
):
    conversation, _ = thread
    url = reverse("inbox_claim", args=[conversation.account_id, conversation.pk])
    client.force_login(chatter)

    taken = client.post(url, {"action": "take"}, headers=HX)
    assert taken.status_code == 200
    assert f'data-presence-only="{chatter.pk}"' in taken.content.decode()

    client.force_login(colleague)
    refused = client.post(url, {"action": "take"}, headers=HX)
    assert f"{chatter.get_username()} is on it" in refused.content.decode()
    client.post(url, {"action": "release"}, headers=HX)  # not theirs: nothing changes
    assert team_presence.claim_by_other(conversation_id=conversation.pk, user_id=colleague.pk)

    outsider = MembershipFactory(account=other_account).user
    client.force_login(outsider)
    assert client.post(url, {"action": "take"}, headers=HX).status_code == 404

    client.force_login(chatter)
    client.post(url, {"action": "release"}, headers=HX)
    assert not team_presence.claim_by_other(conversation_id=conversation.pk, user_id=colleague.pk)


def test_without_redis_the_thread_and_a_guarded_send_still_work(
    client, thread, chatter, monkeypatch
):
    import redis

    # given: presence's Redis is away (the rate limiter's and the cache's are not)
    conversation, first = thread
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(team_presence, "redis_client", lambda: dead)
    client.force_login(chatter)

    page = client.get(reverse("inbox_thread", args=[conversation.account_id, conversation.pk]))
    url = reverse("inbox_messages", args=[conversation.account_id, conversation.pk])
    sent = client.post(url, {"text": "still here", "after_message_id": first.pk}, headers=HX)

    assert page.status_code == 200
    assert f'id="presence-{conversation.pk}"' in page.content.decode()
    assert sent.status_code == 200
    assert outgoing(conversation) == 1


# --- beside drafts (crm.drafts), notes (crm.notes) and the composer checks ------------------


def page_send(user, conversation, **body):
    client = Client()
    client.force_login(user)
    url = reverse("inbox_messages", args=[conversation.account_id, conversation.pk])
    return client.post(url, {"text": "hi", **body}, headers=HX)


@pytest.mark.parametrize("send", [crm_send, onlyfans_send, page_send])
def test_the_guard_answers_before_the_composer_checks_and_neither_queues(
    send, thread, chatter, colleague, redis_client
):
    conversation, first = thread
    MessageFactory(conversation=conversation, text="still there?")  # the fan wrote again

    stale = send(chatter, conversation, text="my paypal?", after_message_id=first.pk)
    assert stale.status_code == 409, stale.content  # thread_changed, not banned_words

    forced = send(chatter, conversation, text="my paypal?", after_message_id=first.pk, force=True)
    assert forced.status_code == 422, forced.content  # then the checks refuse it
    assert outgoing(conversation) == 0


@pytest.mark.parametrize("send", [crm_send, onlyfans_send, page_send])
def test_a_note_is_no_newer_message_for_the_guard(send, thread, chatter, colleague, redis_client):
    conversation, first = thread
    notes.note_create(actor=colleague, conversation=conversation, text="vip, be nice")

    sent = send(chatter, conversation, after_message_id=first.pk)

    assert sent.status_code in (200, 202), sent.content
    assert outgoing(conversation) == 1


def test_a_page_note_is_not_guarded_and_keeps_the_composer_guarding(
    client, thread, chatter, colleague, redis_client
):
    conversation, first = thread
    MessageFactory(conversation=conversation, text="newer")  # unseen by the note's author
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[conversation.account_id, conversation.pk])

    noted = client.post(
        url, {"text": "ask bob", "note": "on", "after_message_id": first.pk}, headers=HX
    )

    assert noted.status_code == 200, noted.content
    assert ConversationNote.objects.filter(conversation=conversation).count() == 1
    assert f'name="after_message_id" value="{first.pk}"' in noted.content.decode()


def test_a_stopped_page_send_keeps_the_draft_and_the_sent_one_removes_it(
    client, thread, chatter, colleague, redis_client, django_capture_on_commit_callbacks
):
    conversation, first = thread
    drafts.draft_save(actor=chatter, conversation=conversation, text="hi")
    MessageFactory(conversation=conversation, text="newer")
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[conversation.account_id, conversation.pk])

    with django_capture_on_commit_callbacks(execute=True):
        stopped = client.post(url, {"text": "hi", "after_message_id": first.pk}, headers=HX)
    assert stopped.status_code == 409
    assert drafts.draft_get(user=chatter, conversation=conversation) is not None

    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(
            url, {"text": "hi", "after_message_id": first.pk, "force": "on"}, headers=HX
        )
    assert sent.status_code == 200
    assert drafts.draft_get(user=chatter, conversation=conversation) is None


def test_the_thread_composer_has_the_guard_the_draft_and_the_note_toggle(
    client, thread, chatter, redis_client
):
    conversation, first = thread
    drafts.draft_save(actor=chatter, conversation=conversation, text="half written")
    client.force_login(chatter)

    html = client.get(
        reverse("inbox_thread", args=[conversation.account_id, conversation.pk])
    ).content.decode()

    assert f'name="after_message_id" value="{first.pk}"' in html
    assert ">half written</textarea>" in html
    assert "data-draft-url=" in html and 'id="composer-note"' in html
    assert f'id="composer-checks-{conversation.pk}"' in html
