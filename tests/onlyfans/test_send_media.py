"""Media in sends (issue 18): vault items through the real pipeline to the sandbox, refusals
before anything is queued, and the resend guard through both APIs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rest_framework.test import APIClient

from crm.models import FanMediaEvent, Message, MessageMedia
from onlyfans import services
from onlyfans.inbound import purchase_record
from tests.factories import (
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    UserFactory,
    VaultItemFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def fast_fan():
    account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
    return FanFactory(account=account)


def _pid(item):
    return int(item.platform_media_id)


def refreshed(message: Message) -> Message:
    message.refresh_from_db()
    return message


def test_ppv_with_vault_media_and_a_preview_reaches_the_sandbox(
    fast_fan, send_queue, sandbox, django_capture_on_commit_callbacks
):
    # given: two items of the fan's account
    first = VaultItemFactory(account=fast_fan.account)
    second = VaultItemFactory(account=fast_fan.account, media_type="video")
    # when: a $15 PPV with both, the first a free preview, through the real pipeline
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_enqueue(
            fan=fast_fan,
            text="for you",
            price_cents=1500,
            vault_item_ids=[first.pk, second.pk],
            preview_item_ids=[first.pk],
        )
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)
    # then: the sandbox received the platform ids, as numbers, in mediaFiles and previews
    [stored] = sandbox.messages(account=fast_fan.account.platform_account_id)
    assert stored["media_files"] == [_pid(first), _pid(second)]
    assert stored["previews"] == [_pid(first)]
    assert stored["price"] == 15
    rows = list(MessageMedia.objects.filter(message=message).order_by("position"))
    assert [(r.vault_item_id, r.is_preview) for r in rows] == [(first.pk, True), (second.pk, False)]
    # and what the fan got: the preview sent free, the other offered at $15
    events = {
        e.vault_item_id: (e.kind, e.price_cents, e.message_id)
        for e in FanMediaEvent.objects.filter(fan=fast_fan)
    }
    assert events == {
        first.pk: ("sent_free", 0, message.pk),
        second.pk: ("offered", 1500, message.pk),
    }


def test_ppv_unlock_marks_the_locked_items_bought_once(
    fast_fan, send_queue, sandbox, django_capture_on_commit_callbacks
):
    # given: a sent PPV with two items, one a preview
    free, locked = VaultItemFactory.create_batch(2, account=fast_fan.account)
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_enqueue(
            fan=fast_fan,
            text="x",
            price_cents=2500,
            vault_item_ids=[free.pk, locked.pk],
            preview_item_ids=[free.pk],
        )
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)
    message = refreshed(message)
    when = datetime(2026, 11, 3, 12, tzinfo=UTC)
    # when: the unlock arrives twice (a replayed webhook)
    for _ in range(2):
        purchase_record(
            account=fast_fan.account,
            platform_fan_id=fast_fan.platform_fan_id,
            kind="ppv",
            amount_cents=None,
            purchased_at=when,
            platform_event_id="unlock-1",
            message_platform_id=message.platform_message_id,
        )
    # then: one bought event, for the locked item only, at the price paid
    bought = list(FanMediaEvent.objects.filter(fan=fast_fan, kind="bought"))
    assert [(e.vault_item_id, e.price_cents, e.at) for e in bought] == [(locked.pk, 2500, when)]


def test_raw_platform_ids_still_go_and_link_to_the_vault(
    fast_fan, send_queue, sandbox, django_capture_on_commit_callbacks
):
    item = VaultItemFactory(account=fast_fan.account)
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_enqueue(
            fan=fast_fan,
            text="x",
            price_cents=500,
            media_ids=[str(item.platform_media_id), "ofapi_9"],
        )
    send_queue.drain(until=lambda: refreshed(message).status == Message.Status.SENT)
    [stored] = sandbox.messages(account=fast_fan.account.platform_account_id)
    assert stored["media_files"] == [_pid(item), "ofapi_9"]
    assert list(
        MessageMedia.objects.filter(message=message)
        .order_by("position")
        .values_list("vault_item_id", "platform_media_id")
    ) == [(item.pk, item.platform_media_id), (None, "ofapi_9")]


# --- refusals before anything is queued --------------------------------------------------------
@pytest.fixture
def member_api(fast_fan):
    user = UserFactory()
    MembershipFactory(user=user, account=fast_fan.account, role="chatter")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _send(client, fan, **body):
    return client.post(
        "/api/onlyfans/messages/send", {"fan_id": fan.pk, "text": "hi", **body}, format="json"
    )


def _conversation_send(client, fan, **body):
    from crm.models import Conversation

    conversation, _ = Conversation.objects.get_or_create(account=fan.account, fan=fan)
    return client.post(
        f"/api/crm/conversations/{conversation.pk}/messages/", {"text": "hi", **body}, format="json"
    )


@pytest.mark.parametrize("send", [_send, _conversation_send])
def test_other_accounts_gone_and_unready_items_are_refused_by_name(
    send, member_api, fast_fan, sqs_queues
):
    other = VaultItemFactory()  # another account's
    gone = VaultItemFactory(account=fast_fan.account, gone_at=datetime(2026, 1, 2, tzinfo=UTC))
    processing = VaultItemFactory(account=fast_fan.account, is_ready=False)
    broken = VaultItemFactory(account=fast_fan.account, has_error=True)
    cases = [
        ([other.pk], "media_not_found", [other.pk]),
        ([gone.pk], "media_gone", [gone.pk]),
        ([processing.pk, broken.pk], "media_not_ready", [processing.pk, broken.pk]),
    ]
    for ids, code, named in cases:
        response = send(member_api, fast_fan, price_cents=1000, vault_item_ids=ids)
        assert response.status_code == 422, response.json()
        assert response.json()["code"] == code
        assert response.json()["vault_item_ids"] == named
    assert Message.objects.count() == 0


@pytest.mark.parametrize("send", [_send, _conversation_send])
def test_price_and_preview_rules(send, member_api, fast_fan, sqs_queues):
    a, b = VaultItemFactory.create_batch(2, account=fast_fan.account)
    no_media = send(member_api, fast_fan, price_cents=1500)
    outside = send(member_api, fast_fan, price_cents=250, vault_item_ids=[a.pk])
    stray = send(
        member_api, fast_fan, price_cents=1500, vault_item_ids=[a.pk], preview_item_ids=[b.pk]
    )
    all_free = send(
        member_api, fast_fan, price_cents=1500, vault_item_ids=[a.pk], preview_item_ids=[a.pk]
    )
    free_msg = send(member_api, fast_fan, vault_item_ids=[a.pk, b.pk], preview_item_ids=[a.pk])
    for response, field in [
        (no_media, "media_ids"),
        (outside, "price_cents"),
        (stray, "preview_item_ids"),
        (all_free, "preview_item_ids"),
        (free_msg, "preview_item_ids"),
    ]:
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "invalid_message"
        assert field in response.json()["errors"]
    assert Message.objects.count() == 0


@pytest.mark.parametrize("send", [_send, _conversation_send])
def test_resend_guard_names_items_and_how_unless_allowed(send, member_api, fast_fan, sqs_queues):
    # given: the fan bought one item and was sent another free (history from the platform)
    bought, sent, fresh = VaultItemFactory.create_batch(3, account=fast_fan.account)
    at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    for item, kind, price in [(bought, "bought", 2500), (sent, "sent_free", 0)]:
        FanMediaEvent.objects.create(
            account=fast_fan.account,
            fan=fast_fan,
            vault_item=item,
            platform_media_id=item.platform_media_id,
            kind=kind,
            price_cents=price,
            at=at,
            source="platform_history",
        )
    # when
    refused = send(
        member_api, fast_fan, price_cents=1500, vault_item_ids=[fresh.pk, bought.pk, sent.pk]
    )
    # then
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "media_already_sent"
    assert [(i["vault_item_id"], i["how"], i["price_cents"]) for i in body["items"]] == [
        (bought.pk, "bought", 2500),
        (sent.pk, "sent", 0),
    ]
    assert "bought" in body["detail"] and "3 Nov" in body["detail"]
    assert Message.objects.count() == 0
    # a fresh item alone goes; with allow_resend the others go too
    assert (
        send(member_api, fast_fan, price_cents=1500, vault_item_ids=[fresh.pk]).status_code == 202
    )
    allowed = send(
        member_api, fast_fan, price_cents=1500, vault_item_ids=[bought.pk], allow_resend=True
    )
    assert allowed.status_code == 202
    assert Message.objects.count() == 2


def test_send_with_media_adds_its_check_and_rows_in_one_transaction(
    member_api, fast_fan, sqs_queues, django_assert_num_queries, settings
):
    # The pinned send without media is tests/onlyfans/test_api_messages.py (5 queries with a
    # token; 4 with a session-less forced login, as here). Without media the message is one
    # statement in autocommit; with media it is a transaction (here a savepoint and its
    # release) around the media check, the message and its MessageMedia rows.
    settings.SEND_DISPATCH_COALESCE_MS = 25
    item = VaultItemFactory(account=fast_fan.account)
    _send(member_api, fast_fan)
    with django_assert_num_queries(4):
        assert _send(member_api, fast_fan).status_code == 202
    with django_assert_num_queries(8):
        assert (
            _send(member_api, fast_fan, price_cents=900, vault_item_ids=[item.pk]).status_code
            == 202
        )
