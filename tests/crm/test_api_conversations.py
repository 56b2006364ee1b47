"""Inbox API: conversation list (filters, sorts, cursor pages), thread pages, send, read."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.models import Conversation, Message
from tests.factories import (
    ConversationFactory,
    FanFactory,
    MembershipFactory,
    MessageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


@pytest.fixture
def api(chatter) -> APIClient:
    return _bearer(chatter)


def conversation(account, *, minutes_ago: int = 0, **kwargs) -> Conversation:
    """A conversation with activity ``minutes_ago`` (the list hides ones without messages)."""
    fan = kwargs.pop("fan", None) or FanFactory(account=account)
    kwargs.setdefault("last_message_at", timezone.now() - timedelta(minutes=minutes_ago))
    kwargs.setdefault("last_message_preview", "hello")
    kwargs.setdefault("last_message_direction", "in")
    return ConversationFactory(fan=fan, **kwargs)


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


# --- list -------------------------------------------------------------------------------------


def test_list_newest_activity_first_with_fan_and_assignee(api, account, chatter):
    older = conversation(account, minutes_ago=10, unread_count=2, assigned_to=chatter)
    newer = conversation(account, minutes_ago=1)
    ConversationFactory(fan=FanFactory(account=account))  # no messages yet: not listed

    response = api.get("/api/crm/conversations/", {"account": account.pk})

    assert response.status_code == 200, response.content
    body = response.json()
    assert ids(response) == [newer.pk, older.pk]
    assert body["next_cursor"] is None
    assert body["next"] is None
    row = body["results"][1]
    assert row["account"] == account.pk
    assert row["unread_count"] == 2
    assert row["last_message_preview"] == "hello"
    assert row["fan"]["id"] == older.fan_id
    assert row["fan"]["username"] == older.fan.username
    assert row["assigned_to"] == {"id": chatter.pk, "username": chatter.username}
    assert body["results"][0]["assigned_to"] is None


def test_list_filters(api, account, chatter):
    now = timezone.now()
    unread = conversation(account, minutes_ago=1, unread_count=1)
    waiting = conversation(account, minutes_ago=2, waiting_since=now - timedelta(hours=1))
    mine = conversation(account, minutes_ago=3, assigned_to=chatter)
    tagged = conversation(
        account,
        minutes_ago=4,
        fan=FanFactory(account=account, username="bigwhale", tags=["vip"]),
    )
    active = conversation(
        account, minutes_ago=5, fan=FanFactory(account=account, subscription_state="active")
    )

    def listed(**params) -> list[int]:
        response = api.get("/api/crm/conversations/", {"account": account.pk, **params})
        assert response.status_code == 200, response.content
        return ids(response)

    assert listed() == [unread.pk, waiting.pk, mine.pk, tagged.pk, active.pk]
    assert listed(unread="true") == [unread.pk]
    assert listed(waiting="1") == [waiting.pk]
    assert listed(mine="true") == [mine.pk]
    assert listed(tag="VIP") == [tagged.pk]
    assert listed(q="WHALE") == [tagged.pk]
    assert listed(subscription_state="active") == [active.pk]
    assert listed(unread="false", mine="0") == listed()


def test_list_sort_waiting_is_longest_waiting_first(api, account):
    now = timezone.now()
    recent_wait = conversation(account, minutes_ago=1, waiting_since=now - timedelta(minutes=5))
    long_wait = conversation(account, minutes_ago=2, waiting_since=now - timedelta(hours=3))
    conversation(account, minutes_ago=0)  # answered: nobody waits

    response = api.get("/api/crm/conversations/", {"account": account.pk, "sort": "waiting"})

    assert ids(response) == [long_wait.pk, recent_wait.pk]


@pytest.mark.parametrize("sort", ["recent", "waiting"])
def test_list_cursor_pages_walk_every_row_once(api, account, sort):
    now = timezone.now()
    rows = [
        conversation(account, minutes_ago=i, waiting_since=now - timedelta(minutes=100 - i))
        for i in range(7)
    ]
    seen: list[int] = []
    params = {"account": account.pk, "sort": sort, "limit": 3}
    response = api.get("/api/crm/conversations/", params)
    while True:
        assert response.status_code == 200, response.content
        seen += ids(response)
        next_url = response.json()["next"]
        if next_url is None:
            assert response.json()["next_cursor"] is None
            break
        assert response.json()["next_cursor"] in next_url
        assert next_url.startswith("http://testserver/api/crm/conversations/?")
        response = api.get(next_url)
    # The first row is both the newest activity and the longest waiting.
    assert seen == [c.pk for c in rows]


def test_list_query_count_is_constant(account, chatter, django_assert_num_queries):
    api = _bearer(chatter)
    for i in range(3):
        conversation(account, minutes_ago=i, assigned_to=chatter)
    # token+user, membership check, page (with fan and assignee)
    with django_assert_num_queries(3):
        assert (
            len(api.get("/api/crm/conversations/", {"account": account.pk}).json()["results"]) == 3
        )
    for i in range(27):
        conversation(account, minutes_ago=10 + i, assigned_to=UserFactory())
    with django_assert_num_queries(3):
        assert (
            len(api.get("/api/crm/conversations/", {"account": account.pk}).json()["results"]) == 30
        )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "account"),
        ({"account": "x"}, "account"),
        ({"account": 0}, "account"),
        ({"sort": "oldest"}, "sort"),
        ({"unread": "maybe"}, "unread"),
        ({"mine": "sure"}, "mine"),
        ({"subscription_state": "gold"}, "subscription_state"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"q": "x" * 151}, "q"),
    ],
)
def test_list_bad_parameters_are_400(api, account, params, field):
    params = {"account": account.pk, **params} if "account" not in params and params else params
    response = api.get("/api/crm/conversations/", params)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]


@pytest.mark.parametrize("cursor", ["garbage", "1.x", "12", "-5.-1", "9" * 30 + ".1", "1.2.3"])
def test_list_bad_cursor_is_400_invalid_cursor(api, account, cursor):
    conversation(account)
    response = api.get("/api/crm/conversations/", {"account": account.pk, "cursor": cursor})
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_cursor"


def test_list_of_another_account_is_404(api, other_account):
    conversation(other_account)
    response = api.get("/api/crm/conversations/", {"account": other_account.pk})
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"


def test_list_needs_authentication(account):
    response = APIClient().get("/api/crm/conversations/", {"account": account.pk})
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- messages ---------------------------------------------------------------------------------


def test_messages_newest_page_oldest_first_then_older_pages(api, account, chatter):
    thread = conversation(account)
    sent = MessageFactory(
        conversation=thread,
        direction="out",
        status="sent",
        sender_kind="user",
        sent_by=chatter,
        sent_at=timezone.now(),
    )
    messages = [MessageFactory(conversation=thread) for _ in range(4)]

    first = api.get(f"/api/crm/conversations/{thread.pk}/messages/", {"limit": 3})

    assert first.status_code == 200, first.content
    assert ids(first) == [m.pk for m in messages[1:]]
    row = first.json()["results"][0]
    assert row["direction"] == "in"
    assert row["text"] == messages[1].text
    assert row["unlocked"] is False
    assert row["sent_by"] is None
    older = api.get(first.json()["next"])
    assert ids(older) == [sent.pk, messages[0].pk]
    assert older.json()["results"][0]["sent_by"] == {"id": chatter.pk, "username": chatter.username}
    assert older.json()["next_cursor"] is None


def test_messages_default_page_is_100(api, account):
    thread = conversation(account)
    Message.objects.bulk_create(
        [
            Message(
                account=account,
                conversation=thread,
                direction="in",
                status="received",
                sender_kind="fan",
                text=f"m{i}",
            )
            for i in range(101)
        ]
    )
    response = api.get(f"/api/crm/conversations/{thread.pk}/messages/")
    assert len(response.json()["results"]) == 100
    assert response.json()["next_cursor"] is not None
    older = api.get(
        f"/api/crm/conversations/{thread.pk}/messages/",
        {"cursor": response.json()["next_cursor"]},
    )
    assert len(older.json()["results"]) == 1
    assert older.json()["next"] is None


def test_messages_query_count_is_constant(account, chatter, django_assert_num_queries):
    api = _bearer(chatter)
    thread = conversation(account)
    url = f"/api/crm/conversations/{thread.pk}/messages/"
    MessageFactory.create_batch(3, conversation=thread)
    # token+user, conversation, page (with sender), which of the page's messages were unlocked
    with django_assert_num_queries(4):
        assert len(api.get(url).json()["results"]) == 3
    for _ in range(27):
        MessageFactory(
            conversation=thread,
            direction="out",
            status="queued",
            sender_kind="user",
            sent_by=MembershipFactory(account=account).user,
        )
    with django_assert_num_queries(4):
        assert len(api.get(url).json()["results"]) == 30


def test_messages_bad_cursor_and_limit_are_400(api, account):
    thread = conversation(account)
    url = f"/api/crm/conversations/{thread.pk}/messages/"
    bad_cursor = api.get(url, {"cursor": "nope"})
    assert bad_cursor.status_code == 400
    assert bad_cursor.json()["code"] == "invalid_cursor"
    bad_limit = api.get(url, {"limit": "lots"})
    assert bad_limit.status_code == 400
    assert bad_limit.json()["code"] == "validation_error"


# --- send -------------------------------------------------------------------------------------


def test_send_answers_202_like_the_send_api_and_queues_a_message(
    api, account, chatter, sqs_queues, django_capture_on_commit_callbacks
):
    thread = conversation(account, waiting_since=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            f"/api/crm/conversations/{thread.pk}/messages/", {"text": "hi there"}, format="json"
        )

    assert response.status_code == 202, response.content
    body = response.json()
    assert set(body) == {
        "message_id",
        "status",
        "queued_at",
        "estimated_send_at",
        "account_connected",
    }
    assert body["status"] == "queued"
    message = Message.objects.get(pk=body["message_id"])
    assert message.conversation_id == thread.pk
    assert message.direction == "out"
    assert message.status == "queued"
    assert message.text == "hi there"
    assert message.sent_by_id == chatter.pk
    assert message.dispatched_at is not None  # published on commit
    thread.refresh_from_db()
    assert thread.waiting_since is None

    same_shape = api.post(
        "/api/onlyfans/messages/send", {"fan_id": thread.fan_id, "text": "x"}, format="json"
    )
    assert set(same_shape.json()) == set(body)


def test_send_paid_message_with_media(api, account):
    thread = conversation(account)
    response = api.post(
        f"/api/crm/conversations/{thread.pk}/messages/",
        {"text": "unlock me", "price_cents": 500, "media_ids": ["m1", "m2"]},
        format="json",
    )
    assert response.status_code == 202, response.content
    message = Message.objects.get(pk=response.json()["message_id"])
    assert (message.price_cents, message.media_ids) == (500, ["m1", "m2"])


@pytest.mark.parametrize(
    ("payload", "code", "field"),
    [
        ({}, "validation_error", "text"),
        ({"text": 5, "price_cents": "free"}, "validation_error", "price_cents"),
        ({"text": "hi", "media_ids": "m1"}, "validation_error", "media_ids"),
        ({"text": "   "}, "invalid_message", "text"),
        ({"text": "x" * 5001}, "invalid_message", "text"),
        ({"text": "hi", "price_cents": 150, "media_ids": ["m1"]}, "invalid_message", "price_cents"),
        ({"text": "hi", "price_cents": -1}, "invalid_message", "price_cents"),
        ({"text": "hi", "price_cents": 500}, "invalid_message", "media_ids"),
        ({"text": "hi", "media_ids": ["m"] * 51}, "invalid_message", "media_ids"),
        ({"text": "hi", "media_ids": ["m" * 101]}, "invalid_message", "media_ids"),
    ],
)
def test_send_bad_input_is_400_and_queues_nothing(api, account, payload, code, field):
    thread = conversation(account)
    response = api.post(f"/api/crm/conversations/{thread.pk}/messages/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert field in response.json()["errors"]
    assert Message.objects.count() == 0


def test_send_malformed_json_is_400(api, account):
    thread = conversation(account)
    response = api.post(
        f"/api/crm/conversations/{thread.pk}/messages/",
        data="{nope",
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


# --- read -------------------------------------------------------------------------------------


def test_read_sets_unread_to_zero_and_returns_the_conversation(api, account):
    thread = conversation(account, unread_count=4)

    response = api.post(f"/api/crm/conversations/{thread.pk}/read")

    assert response.status_code == 200, response.content
    assert response.json()["id"] == thread.pk
    assert response.json()["unread_count"] == 0
    thread.refresh_from_db()
    assert thread.unread_count == 0
    again = api.post(f"/api/crm/conversations/{thread.pk}/read")
    assert again.status_code == 200
    assert again.json()["unread_count"] == 0


# --- scoping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", "messages/"), ("post", "messages/"), ("post", "read")],
)
def test_another_accounts_conversation_is_404_everywhere(api, other_account, method, suffix):
    theirs = conversation(other_account, unread_count=3)
    MessageFactory(conversation=theirs)

    response = getattr(api, method)(
        f"/api/crm/conversations/{theirs.pk}/{suffix}", {"text": "hi"}, format="json"
    )

    assert response.status_code == 404, response.content
    assert response.json()["code"] == "conversation_not_found"
    theirs.refresh_from_db()
    assert theirs.unread_count == 3
    assert Message.objects.filter(direction="out").count() == 0


@pytest.mark.parametrize("suffix", ["messages/", "read"])
def test_unknown_conversation_is_404(api, suffix):
    response = api.post(f"/api/crm/conversations/{2**63 + 5}/{suffix}", {"text": "hi"})
    assert response.status_code == 404
    assert response.json()["code"] == "conversation_not_found"


def test_send_shares_the_send_throttle_with_the_send_api(chatter, account, monkeypatch):
    from crm.throttling import UserRedisThrottle

    monkeypatch.setattr(
        UserRedisThrottle, "THROTTLE_RATES", {"user": "1000/min", "send": "2/min"}, raising=False
    )
    api = _bearer(chatter)
    thread = conversation(account)
    url = f"/api/crm/conversations/{thread.pk}/messages/"
    assert api.post(url, {"text": "1"}, format="json").status_code == 202
    assert (
        api.post(
            "/api/onlyfans/messages/send", {"fan_id": thread.fan_id, "text": "2"}, format="json"
        ).status_code
        == 202
    )
    throttled = api.post(url, {"text": "3"}, format="json")
    assert throttled.status_code == 429
    assert throttled.json()["code"] == "throttled"
    assert api.get(url).status_code == 200  # reading is not a send
