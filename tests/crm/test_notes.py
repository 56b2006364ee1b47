"""Internal notes: services, API (codes, scoping), the inbox page, mentions and live notes."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.routing import websocket_urlpatterns
from crm import notes
from crm.errors import ApplicationError
from crm.models import Conversation, ConversationNote, Message, NoteMention
from crm.selectors import conversation_messages
from tests.factories import (
    ConversationFactory,
    FanFactory,
    MembershipFactory,
    MessageFactory,
    UserFactory,
)

HX = {"HX-Request": "true"}


def _bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


def waiting_conversation(account) -> Conversation:
    conversation = ConversationFactory(fan=FanFactory(account=account))
    message = MessageFactory(conversation=conversation, text="are you there?")
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=message.created_at,
        last_message_direction="in",
        last_message_preview="are you there?",
        waiting_since=message.created_at,
        unread_count=1,
    )
    conversation.refresh_from_db()
    return conversation


# --- Parsing --------------------------------------------------------------------------------


def test_note_command_and_mentions_are_parsed_without_surprises():
    assert notes.note_command_strip("/note call her tomorrow") == "call her tomorrow"
    assert notes.note_command_strip("  /NOTE\nline") == "line"
    assert notes.note_command_strip("/notes are great") is None
    assert notes.note_command_strip("hello /note") is None
    assert notes.mention_usernames("@ana and @bob.k, ask @ana. mail x@y.test") == ["ana", "bob.k"]
    # Pathological input stays linear (one class, one quantifier).
    assert notes.mention_usernames("@" * 5000 + "a") == []


# --- Services -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_note_is_not_a_reply_and_mentions_only_members(
    account, chatter, django_capture_on_commit_callbacks
):
    conversation = waiting_conversation(account)
    before = Conversation.objects.get(pk=conversation.pk)
    colleague = MembershipFactory(account=account, user=UserFactory(username="ana")).user
    UserFactory(username="outsider")  # a user, but not of this account
    # when
    with django_capture_on_commit_callbacks() as callbacks:
        note = notes.note_create(
            actor=chatter,
            conversation=conversation,
            text=f"  @ana @outsider @{chatter.username} she asked for a discount  ",
        )
    # then
    assert note.text.startswith("@ana")
    assert not Message.objects.filter(conversation=conversation, direction="out").exists()
    after = Conversation.objects.get(pk=conversation.pk)
    for field in ("last_message_at", "last_message_preview", "waiting_since", "unread_count"):
        assert getattr(after, field) == getattr(before, field), field
    mentions = list(NoteMention.objects.filter(note=note))
    assert [m.user_id for m in mentions] == [colleague.pk]  # not the outsider, not the author
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_note_text_is_required_and_capped(account, chatter):
    conversation = ConversationFactory(fan=FanFactory(account=account))
    with pytest.raises(ApplicationError) as empty:
        notes.note_create(actor=chatter, conversation=conversation, text="   ")
    assert empty.value.code == "invalid_note"
    with pytest.raises(ApplicationError) as long:
        notes.note_create(actor=chatter, conversation=conversation, text="x" * 2001)
    assert long.value.code == "note_too_long"
    assert not ConversationNote.objects.exists()


@pytest.mark.django_db
def test_notes_sit_between_the_messages_at_their_time(account, chatter):
    conversation = ConversationFactory(fan=FanFactory(account=account))
    first = MessageFactory(conversation=conversation)
    note = notes.note_create(actor=chatter, conversation=conversation, text="between")
    second = MessageFactory(conversation=conversation)
    page = conversation_messages(conversation=conversation)
    items = notes.thread_items(conversation=conversation, page=page)
    assert [item.pk for item in items] == [first.pk, note.pk, second.pk]
    assert getattr(items[1], "is_note", False)


# --- API ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_notes_api_creates_lists_and_scopes(account, chatter, django_assert_num_queries):
    conversation = ConversationFactory(fan=FanFactory(account=account))
    api = _bearer(chatter)
    url = f"/api/crm/conversations/{conversation.pk}/notes"
    # create
    created = api.post(url, {"text": "VIP, be nice"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["author"]["username"] == chatter.username
    assert api.post(url, {"text": ""}, format="json").json()["code"] == "validation_error"
    assert api.post(url, {"text": "   "}, format="json").json()["code"] == "invalid_note"
    too_long = api.post(url, {"text": "x" * 2500}, format="json")
    assert (too_long.status_code, too_long.json()["code"]) == (400, "note_too_long")
    assert api.post(url, {"text": "x" * 5000}, format="json").status_code == 400
    for i in range(5):
        api.post(url, {"text": f"note {i}"}, format="json")
    # list: a fixed number of queries, however many notes and authors
    api.get(url)
    with django_assert_num_queries(3):  # token, the scoped conversation, notes with authors
        listed = api.get(url, {"limit": 3})
    body = listed.json()
    assert [n["text"] for n in body["results"]] == ["note 2", "note 3", "note 4"]
    older = api.get(url, {"before": body["next_cursor"]}).json()
    assert [n["text"] for n in older["results"]] == ["VIP, be nice", "note 0", "note 1"]
    assert older["next_cursor"] is None
    # another account's member sees nothing, and cannot write
    stranger = _bearer(MembershipFactory().user)
    assert stranger.get(url).status_code == 404
    refused = stranger.post(url, {"text": "hi"}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (404, "conversation_not_found")
    assert ConversationNote.objects.count() == 6


@pytest.mark.django_db
def test_mentions_filter_and_clearing(client, account, chatter):
    colleague = MembershipFactory(account=account, user=UserFactory(username="bea")).user
    mentioned = waiting_conversation(account)
    other = waiting_conversation(account)
    notes.note_create(actor=chatter, conversation=mentioned, text="@bea can you take this?")
    api = _bearer(colleague)
    listed = api.get("/api/crm/conversations/", {"account": account.pk, "mentions": "true"})
    assert [c["id"] for c in listed.json()["results"]] == [mentioned.pk]
    # the mentioned member's inbox shows the filter's count; opening the thread clears it
    client.force_login(colleague)
    page = client.get(reverse("inbox", args=[account.pk])).content.decode()
    assert 'id="mentions-open" title="Conversations where a note names you">1<' in page
    filtered = client.get(reverse("inbox", args=[account.pk]), {"mentions": "on"}).content.decode()
    assert f'id="conversation-{mentioned.pk}"' in filtered
    assert f'id="conversation-{other.pk}"' not in filtered
    client.get(reverse("inbox_thread", args=[account.pk, mentioned.pk]))
    assert not NoteMention.objects.filter(cleared_at__isnull=True).exists()
    # explicitly, through the API
    notes.note_create(actor=chatter, conversation=other, text="@bea again")
    assert api.post(f"/api/crm/conversations/{other.pk}/mentions/clear").json() == {"cleared": 1}
    assert (
        api.get("/api/crm/conversations/", {"account": account.pk, "mentions": "true"}).json()[
            "results"
        ]
        == []
    )


# --- The inbox page -------------------------------------------------------------------------


@pytest.mark.django_db
def test_composer_toggle_and_slash_note_write_notes_not_messages(client, account, chatter):
    conversation = waiting_conversation(account)
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[account.pk, conversation.pk])
    toggled = client.post(url, {"text": "check the tip first", "note": "on"}, headers=HX)
    command = client.post(url, {"text": "/note she is <b>VIP</b>"}, headers=HX)
    assert toggled.status_code == command.status_code == 200
    assert list(ConversationNote.objects.values_list("text", flat=True)) == [
        "check the tip first",
        "she is <b>VIP</b>",
    ]
    assert not Message.objects.filter(direction="out").exists()
    html = command.content.decode()
    note = ConversationNote.objects.latest("id")
    assert f'id="note-{note.pk}"' in html
    assert f"Internal note · {chatter.username}" in html
    assert "she is &lt;b&gt;VIP&lt;/b&gt;" in html
    assert 'name="note" id="composer-note" value="on" checked' in html  # the toggle stays on
    assert Conversation.objects.get(pk=conversation.pk).waiting_since is not None
    # the thread shows the notes between the messages
    thread = client.get(reverse("inbox_thread", args=[account.pk, conversation.pk])).content
    assert thread.decode().count('class="note"') == 2


# --- Live -------------------------------------------------------------------------------------

application = URLRouter(websocket_urlpatterns)


@pytest.mark.django_db(transaction=True)
def test_a_note_reaches_every_member_watching_and_nobody_else(redis_client):
    membership = MembershipFactory()
    account = membership.account
    colleague = MembershipFactory(account=account).user
    stranger = MembershipFactory().user  # of another account
    conversation = ConversationFactory(fan=FanFactory(account=account))

    def socket(user, account_id):
        communicator = WebsocketCommunicator(application, f"/ws/accounts/{account_id}/inbox/")
        communicator.scope["user"] = user
        return communicator

    async def scenario() -> tuple[str, bool, bool]:
        watcher = socket(colleague, account.pk)
        outsider = socket(stranger, account.pk)
        assert (await watcher.connect())[0]
        connected, _ = await outsider.connect()
        note = await sync_to_async(notes.note_create)(
            actor=membership.user, conversation=conversation, text="heads up"
        )
        frame = await watcher.receive_from(timeout=15)
        await watcher.disconnect()
        frame = frame.replace(f'id="note-{note.pk}"', 'id="note-<id>"')
        return frame, connected, await outsider.receive_nothing()

    frame, outsider_connected, outsider_got_nothing = async_to_sync(scenario)()
    assert not outsider_connected and outsider_got_nothing
    assert f'hx-swap-oob="beforeend:#thread-messages-{conversation.pk}, #live-sink"' in frame
    assert 'id="note-<id>"' in frame
    assert f"Internal note · {membership.user.username}" in frame
    assert "heads up" in frame
