"""Through the real send pipeline and the sandbox platform: an internal note never reaches the
gateway, and a member's message is screened by the gateway when its account asks."""

from __future__ import annotations

import pytest
from django.urls import reverse

from crm import notes
from crm.models import Membership, Message
from onlyfans.services import message_enqueue
from tests.factories import ConversationFactory, CreatorAccountFactory, FanFactory, UserFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def fast_account(**kwargs):
    return CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0, **kwargs)


def test_a_note_never_reaches_the_gateway(
    client, send_queue, sandbox, django_capture_on_commit_callbacks
):
    account = fast_account()
    chatter = UserFactory()
    Membership.objects.create(user=chatter, account=account)
    conversation = ConversationFactory(fan=FanFactory(account=account))
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[account.pk, conversation.pk])
    # given: a note from the composer's toggle, one by /note, one by the service, and a message
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url, {"text": "secret one", "note": "on"}, headers=HX).status_code == 200
        assert client.post(url, {"text": "/note secret two"}, headers=HX).status_code == 200
        notes.note_create(actor=chatter, conversation=conversation, text="secret three")
        assert client.post(url, {"text": "hello fan"}, headers=HX).status_code == 200
    message = Message.objects.get()
    # when the pipeline has sent everything it holds
    send_queue.drain(
        until=lambda: Message.objects.filter(pk=message.pk, status=Message.Status.SENT).exists()
    )
    send_queue.drain(timeout=1.0)
    # then the platform got the message, and nothing else (the sandbox logs every send)
    stored = sandbox.messages(account=account.platform_account_id)
    assert [(m["idempotency_key"], m["text_length"]) for m in stored] == [
        (str(message.idempotency_key), len("hello fan"))
    ]
    assert sandbox.stats()["sends_stored"] == 1
    assert conversation.notes.count() == 3


def test_members_messages_are_screened_when_the_account_asks(
    send_queue, sandbox, django_capture_on_commit_callbacks
):
    sandbox.configure(banned_words=["forbiddenword"])
    screened = fast_account(gateway_banned_words="strict_ban")
    unscreened = fast_account()
    user = UserFactory()
    with django_capture_on_commit_callbacks(execute=True):
        refused = message_enqueue(
            fan=FanFactory(account=screened), text="a forbiddenword here", sent_by_id=user.pk
        )
        passed = message_enqueue(
            fan=FanFactory(account=unscreened), text="a forbiddenword here", sent_by_id=user.pk
        )
    send_queue.drain(
        until=lambda: (
            Message.objects.filter(pk__in=[refused.pk, passed.pk])
            .exclude(status__in=Message.PENDING_STATUSES)
            .count()
            == 2
        )
    )
    refused.refresh_from_db()
    passed.refresh_from_db()
    assert refused.status == Message.Status.FAILED
    assert "banned" in refused.last_error
    assert passed.status == Message.Status.SENT
    assert sandbox.messages(account=screened.platform_account_id) == []
