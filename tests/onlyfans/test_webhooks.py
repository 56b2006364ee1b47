from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from crm.models import Conversation, CreatorAccount, Fan, Message, Purchase
from onlyfans.inbound import account_connection_set, message_receive
from onlyfans.metrics import WEBHOOKS_RECEIVED
from onlyfans.models import WebhookEvent
from tests.factories import ConversationFactory, FanFactory, MessageFactory

pytestmark = pytest.mark.django_db

URL = "/api/onlyfans/webhooks"


def sign(body: bytes, secret: str | None = None) -> str:
    key = (secret or settings.ONLYFANS_WEBHOOK_SECRET).encode()
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def post(
    body: dict[str, Any] | bytes,
    *,
    key: str | None = "evt_1",
    signature: str | None = None,
    client: Client | None = None,
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Signature": signature if signature is not None else sign(raw)}
    if key is not None:
        headers["X-OFAPI-Idempotency-Key"] = key
    return (client or Client()).post(URL, raw, content_type="application/json", headers=headers)


def received(account: CreatorAccount, **overrides: Any) -> dict[str, Any]:
    payload = {
        "id": 9001,
        "text": "hey there",
        "fromUser": {"id": 555, "name": "Some Fan", "username": "somefan"},
        "price": 0,
        "isFree": True,
        "isTip": False,
        "media": [],
        "createdAt": "2025-02-03T23:29:53+00:00",
    }
    payload.update(overrides)
    return {
        "event": "messages.received",
        "account_id": account.platform_account_id,
        "payload": payload,
    }


def counts() -> tuple[int, ...]:
    return (
        WebhookEvent.objects.count(),
        Fan.objects.count(),
        Conversation.objects.count(),
        Message.objects.count(),
        Purchase.objects.count(),
    )


# --- Verification and parsing -----------------------------------------------------------


def test_bad_signature_is_401_and_stores_nothing(account):
    body = json.dumps(received(account)).encode()

    response = post(body, signature=sign(body, secret="not-our-secret"))

    assert response.status_code == 401
    assert response.json() == {"code": "invalid_signature"}
    assert counts() == (0, 0, 0, 0, 0)


def test_missing_signature_is_401(account):
    body = json.dumps(received(account)).encode()

    response = Client().post(
        URL, body, content_type="application/json", headers={"X-OFAPI-Idempotency-Key": "evt_1"}
    )

    assert response.status_code == 401
    assert response.json() == {"code": "invalid_signature"}
    assert Message.objects.count() == 0


def test_signature_of_another_body_is_401(account):
    body = json.dumps(received(account)).encode()

    response = post(body, signature=sign(body + b" "))

    assert response.status_code == 401


def test_non_ascii_signature_is_401_not_500(account):
    body = json.dumps(received(account)).encode()

    response = post(body, signature="é" * 64)

    assert response.status_code == 401


def test_malformed_json_is_400():
    response = post(b'{"event": "messages.received",')

    assert response.status_code == 400
    assert response.json() == {"code": "malformed_json"}
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"{}", b'{"event": 5}', b'{"event": ""}'])
def test_json_without_an_event_is_400(body):
    response = post(body)

    assert response.status_code == 400
    assert response.json() == {"code": "invalid_event"}


def test_get_is_not_allowed():
    assert Client().get(URL).status_code == 405


@pytest.mark.parametrize(
    "overrides",
    [
        {"fromUser": "555"},
        {"fromUser": {"id": None}},
        {"fromUser": {"id": 555, "username": 7}},
        {"id": {"nested": True}},
        {"text": ["list"]},
        {"price": "a lot", "isFree": False},
        {"price": True, "isFree": False},
        {"createdAt": "yesterday"},
        {"media": "m1"},
    ],
)
def test_wrong_payload_types_are_400_invalid_payload(account, overrides):
    response = post(received(account, **overrides))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"
    # The delivery is not recorded, so a corrected redelivery under the same key is handled.
    assert counts() == (0, 0, 0, 0, 0)


def test_payload_that_is_not_an_object_is_400(account):
    body = {"event": "messages.received", "account_id": account.platform_account_id, "payload": []}

    response = post(body)

    assert response.status_code == 400
    assert response.json() == {"code": "invalid_payload"}


# --- messages.received -----------------------------------------------------------------------


def test_message_received_creates_fan_conversation_and_message(account):
    response = post(received(account))

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    fan = Fan.objects.get(account=account, platform_fan_id="555")
    assert fan.username == "somefan"
    assert fan.display_name == "Some Fan"
    assert fan.last_seen_at == datetime(2025, 2, 3, 23, 29, 53, tzinfo=UTC)
    conversation = Conversation.objects.get(fan=fan)
    assert conversation.account_id == account.pk
    assert conversation.unread_count == 1
    assert conversation.last_message_at == datetime(2025, 2, 3, 23, 29, 53, tzinfo=UTC)
    message = Message.objects.get(conversation=conversation)
    assert message.account_id == account.pk
    assert message.direction == Message.Direction.IN
    assert message.status == Message.Status.RECEIVED
    assert message.sender_kind == Message.SenderKind.FAN
    assert message.platform_message_id == "9001"
    assert message.text == "hey there"
    assert message.price_cents == 0
    event = WebhookEvent.objects.get()
    body = json.dumps(received(account)).encode()
    assert (event.event_key, event.event, event.account_id, event.handled) == (
        "sha256:" + hashlib.sha256(body).hexdigest(),
        "messages.received",
        account.pk,
        True,
    )


def test_message_received_into_existing_conversation_counts_unread(account):
    conversation = ConversationFactory.create(
        fan=FanFactory.create(account=account, platform_fan_id="555")
    )
    conversation.unread_count = 2
    conversation.last_message_at = datetime(2025, 1, 1, tzinfo=UTC)
    conversation.save()

    post(received(account), key="evt_a")
    post(received(account, id=9002, createdAt="2025-03-01T10:00:00Z"), key="evt_b")

    conversation.refresh_from_db()
    assert conversation.unread_count == 4
    assert conversation.last_message_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert conversation.messages.count() == 2
    assert Fan.objects.filter(account=account).count() == 1


def test_late_older_message_does_not_move_last_message_at_back(account):
    post(received(account, id=1, createdAt="2025-03-01T10:00:00+00:00"), key="evt_new")
    post(received(account, id=2, createdAt="2025-02-01T10:00:00+00:00"), key="evt_old")

    conversation = Conversation.objects.get()
    assert conversation.last_message_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert conversation.fan.last_seen_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert conversation.unread_count == 2


def test_replay_with_same_key_changes_nothing(account):
    first = post(received(account), key="evt_same")
    before = counts()
    unread = Conversation.objects.get().unread_count

    second = post(received(account), key="evt_same")

    assert first.json() == {"status": "accepted"}
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate"}
    assert counts() == before
    assert Conversation.objects.get().unread_count == unread == 1
    assert Message.objects.get().text == "hey there"


def test_replay_under_another_idempotency_key_is_a_duplicate(account):
    # The header is not signed: a captured delivery replayed with a new key is the same body.
    body = json.dumps(received(account)).encode()
    post(body, key="evt_original")
    before = counts()

    replay = post(body, key="evt_forged_by_the_replayer")

    assert replay.json() == {"status": "duplicate"}
    assert counts() == before


def test_same_platform_message_in_another_body_is_not_duplicated(account):
    post(received(account), key="evt_one")

    response = post(received(account, text="edited on redelivery"), key="evt_two")

    assert response.status_code == 200
    assert Message.objects.count() == 1
    assert Message.objects.get().text == "hey there"
    assert Conversation.objects.get().unread_count == 1
    assert WebhookEvent.objects.count() == 2


def test_missing_idempotency_key_dedupes_on_the_body(account):
    body = json.dumps(received(account)).encode()

    first = post(body, key=None)
    second = post(body, key=None)

    assert first.json() == {"status": "accepted"}
    assert second.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.get().event_key == "sha256:" + hashlib.sha256(body).hexdigest()


def test_username_held_by_another_fan_gets_a_suffixed_one(account):
    holder = FanFactory.create(account=account, platform_fan_id="1", username="somefan")

    response = post(received(account))

    assert response.status_code == 200
    new_fan = Fan.objects.get(account=account, platform_fan_id="555")
    assert new_fan.pk != holder.pk
    assert new_fan.username == "somefan-555"
    assert new_fan.conversation.messages.count() == 1


def test_same_fan_on_another_account_is_another_fan(account, other_account):
    post(received(account), key="evt_a")
    post(received(other_account), key="evt_b")

    assert Fan.objects.filter(platform_fan_id="555").count() == 2
    assert Message.objects.filter(platform_message_id="9001").count() == 2


def test_paid_message_and_media_are_stored(account):
    post(received(account, price=9.99, isFree=False, media=[{"id": 77}, "m_2"]))

    message = Message.objects.get()
    assert message.price_cents == 999
    assert message.media_ids == ["77", "m_2"]


def test_message_price_outside_the_platform_range_is_invalid(account):
    response = post(received(account, price=1, isFree=False))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"
    assert Message.objects.count() == 0


def test_message_received_broadcasts_ids_only(account, django_capture_on_commit_callbacks):
    with (
        mock.patch("onlyfans.inbound.account_event_broadcast") as broadcast,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = post(received(account))

    assert response.status_code == 200
    assert len(callbacks) == 1
    message = Message.objects.get()
    broadcast.assert_called_once_with(
        account_id=account.pk,
        event="message.received",
        payload={
            "message_id": message.pk,
            "conversation_id": message.conversation_id,
            "fan_id": message.conversation.fan_id,
        },
    )


def test_broadcast_through_the_real_channel_layer_does_not_break(
    account, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(received(account))

    assert response.status_code == 200
    assert len(callbacks) == 1
    assert Message.objects.count() == 1


def test_message_receive_service_is_idempotent(account):
    kwargs: dict[str, Any] = {
        "account": account,
        "platform_fan": {"id": "42", "username": "f42", "name": ""},
        "platform_message_id": "m-1",
        "text": "hi",
        "price_cents": 0,
        "created_at": datetime(2025, 1, 1, tzinfo=UTC),
        "event_key": "evt_x",
    }

    first = message_receive(**kwargs)
    second = message_receive(**kwargs)

    assert first.pk == second.pk
    assert Conversation.objects.get().unread_count == 1


# --- Purchases ---------------------------------------------------------------------------------


def ppv(account: CreatorAccount, **payload: Any) -> dict[str, Any]:
    return {
        "event": "messages.ppv.unlocked",
        "account_id": account.platform_account_id,
        "payload": payload,
    }


def test_ppv_unlocked_with_user_object(account):
    fan = FanFactory.create(account=account, platform_fan_id="555")
    message = MessageFactory.create(
        conversation=ConversationFactory.create(fan=fan),
        direction=Message.Direction.OUT,
        status=Message.Status.QUEUED,
        sender_kind=Message.SenderKind.USER,
        price_cents=1500,
        platform_message_id="777",
    )

    response = post(ppv(account, user={"id": 555}, messageId=777, price=15))
    replay = post(ppv(account, user={"id": 555}, messageId=777, price=15), key="evt_other")

    assert response.json() == {"status": "accepted"}
    assert replay.json() == {"status": "duplicate"}
    purchase = Purchase.objects.get()
    assert (purchase.kind, purchase.amount_cents, purchase.fan_id) == ("ppv", 1500, fan.pk)
    assert purchase.message_id == message.pk
    fan.refresh_from_db()
    assert fan.lifetime_spend_cents == 1500


def test_ppv_unlocked_with_user_id_creates_the_fan_and_adds_spend_once(account):
    body = ppv(account, user_id="888", id=4242, amount="12.50")

    post(body, key="evt_ppv")
    post(body, key="evt_ppv")

    fan = Fan.objects.get(account=account, platform_fan_id="888")
    assert fan.lifetime_spend_cents == 1250
    purchase = Purchase.objects.get()
    assert purchase.platform_event_id == "ppv:4242:888"
    assert purchase.message_id is None


def test_ppv_unlocked_without_amount_uses_the_message_price(account):
    fan = FanFactory.create(account=account, platform_fan_id="555")
    MessageFactory.create(
        conversation=ConversationFactory.create(fan=fan),
        direction=Message.Direction.OUT,
        status=Message.Status.QUEUED,
        sender_kind=Message.SenderKind.USER,
        price_cents=2000,
        platform_message_id="778",
    )

    response = post(ppv(account, user_id=555, messageId="778"))

    assert response.status_code == 200
    fan.refresh_from_db()
    assert fan.lifetime_spend_cents == 2000


def test_ppv_unlocked_without_fan_is_invalid(account):
    response = post(ppv(account, messageId=1, price=10))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"
    assert Purchase.objects.count() == 0


def tip(account: CreatorAccount, event: str = "transactions.new", **payload: Any) -> dict[str, Any]:
    return {
        "event": event,
        "account_id": account.platform_account_id,
        "payload": {
            "id": "txn_1",
            "type": "tip",
            "amountGross": 10,
            "amountNet": 8,
            "user": {"id": 555},
            "createdAt": "2025-02-04T12:00:00+00:00",
            **payload,
        },
    }


def test_tip_adds_a_purchase_and_spend(account):
    fan = FanFactory.create(account=account, platform_fan_id="555", lifetime_spend_cents=100)

    response = post(tip(account))
    post(tip(account), key="evt_redelivered")

    assert response.json() == {"status": "accepted"}
    purchase = Purchase.objects.get()
    assert purchase.kind == Purchase.Kind.TIP
    assert purchase.amount_cents == 1000
    assert purchase.platform_event_id == "txn:txn_1"
    assert purchase.purchased_at == datetime(2025, 2, 4, 12, 0, tzinfo=UTC)
    fan.refresh_from_db()
    assert fan.lifetime_spend_cents == 1100


def test_tip_under_any_event_name_is_recorded(account):
    response = post(tip(account, event="transactions.created", id="txn_2", amountGross="4.5"))

    assert response.json() == {"status": "accepted"}
    assert Fan.objects.get(platform_fan_id="555").lifetime_spend_cents == 450


def test_non_tip_transaction_is_ignored(account):
    response = post(tip(account, type="subscription"))

    assert response.json() == {"status": "accepted"}
    assert Purchase.objects.count() == 0
    assert WebhookEvent.objects.get().handled is False


def test_tip_with_a_string_amount_that_is_not_a_number_is_invalid(account):
    response = post(tip(account, amountGross="ten"))

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_payload"


# --- Subscriptions ---------------------------------------------------------------------------


def test_subscription_new_creates_an_active_fan(account):
    body = {
        "event": "subscriptions.new",
        "account_id": account.platform_account_id,
        "payload": {
            "user": {"id": 321, "username": "newsub", "name": "New Sub"},
            "subscribedAt": "2025-02-01T00:00:00+00:00",
            "expiresAt": "2025-03-01T00:00:00+00:00",
        },
    }

    response = post(body)

    assert response.json() == {"status": "accepted"}
    fan = Fan.objects.get(account=account, platform_fan_id="321")
    assert fan.username == "newsub"
    assert fan.subscription_state == Fan.SubscriptionState.ACTIVE
    assert fan.subscribed_at == datetime(2025, 2, 1, tzinfo=UTC)
    assert fan.subscription_expires_at == datetime(2025, 3, 1, tzinfo=UTC)


def test_subscription_renewed_extends_and_keeps_the_start(account):
    fan = FanFactory.create(
        account=account,
        platform_fan_id="321",
        subscription_state=Fan.SubscriptionState.ACTIVE,
        subscribed_at=datetime(2024, 1, 1, tzinfo=UTC),
        subscription_expires_at=datetime(2025, 3, 1, tzinfo=UTC),
    )
    body = {
        "event": "subscriptions.renewed",
        "account_id": account.platform_account_id,
        "payload": {"user_id": 321, "expiresAt": "2025-04-01T00:00:00+00:00"},
    }

    response = post(body)

    assert response.status_code == 200
    fan.refresh_from_db()
    assert fan.subscribed_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert fan.subscription_expires_at == datetime(2025, 4, 1, tzinfo=UTC)


def test_subscription_of_an_expired_fan_reactivates_it(account):
    fan = FanFactory.create(
        account=account,
        platform_fan_id="321",
        subscription_state=Fan.SubscriptionState.EXPIRED,
        subscribed_at=datetime(2024, 1, 1, tzinfo=UTC),
    )
    body = {
        "event": "subscriptions.new",
        "account_id": account.platform_account_id,
        "payload": {"user": {"id": "321"}, "subscribedAt": "2025-05-01T00:00:00Z"},
    }

    post(body)

    fan.refresh_from_db()
    assert fan.subscription_state == Fan.SubscriptionState.ACTIVE
    assert fan.subscribed_at == datetime(2025, 5, 1, tzinfo=UTC)


# --- Accounts, unknown events and unknown accounts ------------------------------------------


def account_event(account: CreatorAccount, event: str) -> dict[str, Any]:
    return {"event": event, "account_id": account.platform_account_id, "payload": {}}


def test_session_expired_then_reconnected(account, django_capture_on_commit_callbacks):
    expired = post(account_event(account, "accounts.session_expired"), key="evt_exp")
    account.refresh_from_db()
    assert expired.json() == {"status": "accepted"}
    assert account.connection_state == CreatorAccount.ConnectionState.EXPIRED

    with (
        mock.patch("onlyfans.dispatch_coalescer.account_dispatch") as dispatch,
        django_capture_on_commit_callbacks(execute=True),
    ):
        reconnected = post(account_event(account, "accounts.reconnected"), key="evt_rec")

    account.refresh_from_db()
    assert reconnected.json() == {"status": "accepted"}
    assert account.connection_state == CreatorAccount.ConnectionState.CONNECTED
    dispatch.assert_called_once_with(account_id=account.pk)


def test_unknown_event_is_accepted_and_recorded(account):
    body = {"event": "posts.liked", "account_id": account.platform_account_id, "payload": {}}

    response = post(body)

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    event = WebhookEvent.objects.get()
    assert (event.event, event.handled) == ("posts.liked", False)


def test_messages_sent_is_accepted_and_not_stored_as_a_message(account):
    body = received(account)
    body["event"] = "messages.sent"

    response = post(body)

    assert response.json() == {"status": "accepted"}
    assert Message.objects.count() == 0


def test_unknown_account_is_accepted_and_ignored():
    body = received(CreatorAccount(platform_account_id="acct_nobody"))

    response = post(body)

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    assert Message.objects.count() == 0
    assert Fan.objects.count() == 0
    assert WebhookEvent.objects.get().account_id is None


def test_webhooks_are_counted(account):
    counter = WEBHOOKS_RECEIVED.labels(event="messages.received", result="processed")
    before = counter._value.get()

    post(received(account))

    assert counter._value.get() == before + 1


def test_log_line_carries_no_message_text_or_names(account):
    with mock.patch("onlyfans.webhooks.log") as log:
        post(received(account))

    log.info.assert_called_once()
    args, kwargs = log.info.call_args
    assert args == ("webhook.received",)
    assert kwargs["event_name"] == "messages.received"
    assert kwargs["account_id"] == account.pk
    assert kwargs["result"] == "processed"
    logged = json.dumps(kwargs, default=str)
    assert "hey there" not in logged
    assert "somefan" not in logged
    assert "Some Fan" not in logged


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_body", [True, False], ids=["same-body", "other-bodies"])
def test_concurrent_deliveries_of_one_message_are_handled_once(account, same_body):
    barrier = threading.Barrier(4)

    def deliver(n: int) -> int:
        # Each under its own idempotency key: only the body (or the message id in it) counts.
        body = json.dumps(received(account) if same_body else received(account, text=f"v{n}"))
        barrier.wait()
        try:
            return post(body.encode(), key=f"evt_race_{n}").status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(deliver, range(4)))

    assert statuses == [200, 200, 200, 200]
    assert WebhookEvent.objects.count() == (1 if same_body else 4)
    assert Fan.objects.count() == 1
    assert Message.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1


# --- Replays: keyed by what the signature covers ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda a: tip(a, id=None), id="tip-without-transaction-id"),
        pytest.param(lambda a: ppv(a, user_id="555", price=12), id="unlock-without-message-id"),
    ],
)
def test_purchase_without_a_platform_id_replayed_under_new_keys_counts_once(account, body):
    fan = FanFactory.create(account=account, platform_fan_id="555")
    raw = json.dumps(body(account)).encode()

    answers = [post(raw, key=f"evt_{n}").json()["status"] for n in range(3)]
    # Even with its delivery record gone (pruned, or a table restored), the purchase's own key
    # is the signed body's hash, never the unsigned header.
    WebhookEvent.objects.all().delete()
    answers.append(post(raw, key="evt_after_prune").json()["status"])

    assert answers == ["accepted", "duplicate", "duplicate", "accepted"]
    assert Purchase.objects.count() == 1
    fan.refresh_from_db()
    assert fan.lifetime_spend_cents == Purchase.objects.get().amount_cents > 0


def test_replayed_session_expired_does_not_disconnect_a_reconnected_account(account):
    expired = json.dumps(account_event(account, "accounts.session_expired")).encode()
    post(expired, key="evt_exp")
    account_connection_set(account=account, connected=True)

    replay = post(expired, key="evt_exp_replayed")

    account.refresh_from_db()
    assert replay.json() == {"status": "duplicate"}
    assert account.connection_state == CreatorAccount.ConnectionState.CONNECTED


# --- An unknown account answers as a known one -------------------------------------------------


@pytest.mark.parametrize(
    "make_body",
    [
        pytest.param(lambda acct: received(acct), id="message"),
        pytest.param(lambda acct: tip(acct), id="tip"),
        pytest.param(lambda acct: account_event(acct, "accounts.session_expired"), id="expired"),
        pytest.param(lambda acct: account_event(acct, "posts.liked"), id="unhandled-event"),
        pytest.param(lambda acct: received(acct, createdAt="yesterday"), id="invalid-payload"),
        pytest.param(lambda acct: tip(acct, amountGross=None), id="tip-without-amount"),
    ],
)
def test_unknown_account_gets_the_answer_of_a_known_one(account, make_body):
    known = post(make_body(account), key="evt_known")
    unknown = post(make_body(CreatorAccount(platform_account_id="acct_nobody")), key="evt_x")

    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert Fan.objects.filter(account__isnull=True).count() == 0
    assert not WebhookEvent.objects.filter(account__isnull=True, handled=True).exists()


# --- The secret is required in production ------------------------------------------------------


def _settings_in_subprocess(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "ONLYFANS_WEBHOOK_SECRET"}
    clean.update(DJANGO_SETTINGS_MODULE="config.settings.base", DJANGO_SECRET_KEY="k", **env)
    code = "import django; django.setup(); from django.conf import settings; " + (
        "print(settings.ONLYFANS_WEBHOOK_SECRET)"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        env=clean,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_refuse_to_start_without_the_webhook_secret():
    # (cwd's .env, if a developer has one, must not supply it: read_env reads BASE_DIR/.env.)
    if (settings.BASE_DIR / ".env").exists() and "ONLYFANS_WEBHOOK_SECRET" in (
        settings.BASE_DIR / ".env"
    ).read_text():
        pytest.skip("a local .env sets ONLYFANS_WEBHOOK_SECRET")
    missing = _settings_in_subprocess(DJANGO_DEBUG="0")
    empty = _settings_in_subprocess(DJANGO_DEBUG="0", ONLYFANS_WEBHOOK_SECRET=" ")
    given = _settings_in_subprocess(DJANGO_DEBUG="0", ONLYFANS_WEBHOOK_SECRET="s3cret")
    developing = _settings_in_subprocess(DJANGO_DEBUG="1")

    assert missing.returncode != 0
    assert "ONLYFANS_WEBHOOK_SECRET" in missing.stderr
    assert empty.returncode != 0
    assert "ONLYFANS_WEBHOOK_SECRET" in empty.stderr
    assert (given.returncode, given.stdout.strip()) == (0, "s3cret")
    assert (developing.returncode, developing.stdout.strip()) == (0, "sandbox-webhook-secret")
