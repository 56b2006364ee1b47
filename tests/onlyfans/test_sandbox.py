"""The sandbox platform, driven by the official SDK so it cannot drift from the contract."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import onlyfansapi
import pytest
from django.conf import settings

ACCOUNT = "acct_sandbox_test"
CHAT = "777001"


@pytest.fixture
def sdk(sandbox) -> Iterator[onlyfansapi.OnlyFansAPI]:
    client = onlyfansapi.OnlyFansAPI(
        api_key=settings.ONLYFANS_API_KEY, base_url=sandbox.url, max_retries=0, timeout=5.0
    )
    yield client
    client.close()


def _send(sdk, *, key: str | None = None, chat: str = CHAT, account: str = ACCOUNT, **body):
    body.setdefault("text", "hello there")
    kwargs = {"idempotency_key": key} if key is not None else {}
    return sdk.chats.messages.with_raw_response.send(chat, account=account, **body, **kwargs)


def _code(error: onlyfansapi.APIStatusError) -> str:
    assert isinstance(error.body, dict)
    return error.body["code"]


def test_send_answers_a_wrapped_message(sdk, sandbox):
    # when
    raw = _send(sdk, key=str(uuid.uuid4()), price=0, media_files=[], previews=[])
    # then
    sent = raw.parse()
    assert raw.status_code == 200
    assert raw.headers.get("Idempotent-Replayed") is None
    assert sent.data.id and sent.data.is_free and sent.data.created_at
    assert sent.api_meta.api_credits.used == 1
    assert sent.api_meta.api_rate_limits.remaining_minute == 100_000 - 1
    [stored] = sandbox.messages(account=ACCOUNT)
    assert stored["platform_message_id"] == str(sent.data.id)
    assert stored["chat_id"] == CHAT
    assert stored["text_length"] == len("hello there")
    assert isinstance(stored["arrived_at"], float)


def test_same_key_replays_the_stored_answer(sdk, sandbox):
    key = str(uuid.uuid4())
    first = _send(sdk, key=key).parse()
    # when
    raw = _send(sdk, key=key)
    # then
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert raw.parse().data.id == first.data.id
    assert raw.parse().api_meta.api_credits.used == 0
    assert len(sandbox.messages()) == 1
    assert sandbox.stats()["replays"] == 1


def test_same_key_other_body_or_chat_is_a_mismatch(sdk, sandbox):
    key = str(uuid.uuid4())
    _send(sdk, key=key)
    with pytest.raises(onlyfansapi.UnprocessableEntityError) as other_body:
        _send(sdk, key=key, text="something else")
    with pytest.raises(onlyfansapi.UnprocessableEntityError) as other_chat:
        _send(sdk, key=key, chat="999")
    assert _code(other_body.value) == "IDEMPOTENCY_KEY_MISMATCH"
    assert _code(other_chat.value) == "IDEMPOTENCY_KEY_MISMATCH"
    assert len(sandbox.messages()) == 1


def test_same_key_on_another_account_is_another_message(sdk, sandbox):
    key = str(uuid.uuid4())
    _send(sdk, key=key)
    _send(sdk, key=key, account="acct_other")
    assert len(sandbox.messages()) == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_invalid_idempotency_key(sdk, sandbox, key):
    with pytest.raises(onlyfansapi.BadRequestError) as error:
        _send(sdk, key=key)
    assert _code(error.value) == "IDEMPOTENCY_KEY_INVALID"
    assert sandbox.messages() == []


def test_no_key_sends_every_time(sdk, sandbox):
    _send(sdk)
    _send(sdk)
    assert len(sandbox.messages()) == 2


@pytest.mark.parametrize(
    "body",
    [
        {"text": ""},
        {"text": "x" * 5001},
        {"price": 2, "media_files": ["ofapi_media_1"]},
        {"price": 201, "media_files": ["ofapi_media_1"]},
        {"price": 5},
        {"price": 5, "media_files": ["ofapi_media_1"], "previews": ["ofapi_media_2"]},
    ],
)
def test_invalid_sends_are_refused(sdk, sandbox, body):
    with pytest.raises(onlyfansapi.UnprocessableEntityError) as error:
        _send(sdk, key=str(uuid.uuid4()), **body)
    assert _code(error.value) == "validation_error"
    assert sandbox.messages() == []


def test_paid_message_with_media_is_sent(sdk, sandbox):
    raw = _send(
        sdk,
        key=str(uuid.uuid4()),
        text="x" * 5000,
        price=9.99,
        media_files=["ofapi_media_1", 3866342509],
        previews=[3866342509],
    )
    assert raw.parse().data.price == 9.99 or raw.json()["data"]["price"] == 9.99
    assert sandbox.messages()[0]["media_count"] == 2


def test_rejected_answers_are_stored_and_replayed(sdk, sandbox):
    key = str(uuid.uuid4())
    with pytest.raises(onlyfansapi.UnprocessableEntityError):
        _send(sdk, key=key, price=1)
    with pytest.raises(onlyfansapi.UnprocessableEntityError) as again:
        _send(sdk, key=key, price=1)
    assert again.value.response.headers["Idempotent-Replayed"] == "true"


def test_over_the_limit_answers_429_with_retry_after(sdk, sandbox):
    sandbox.configure(rate_limit_per_minute=2)
    _send(sdk, key=str(uuid.uuid4()))
    _send(sdk, key=str(uuid.uuid4()))
    # when
    with pytest.raises(onlyfansapi.RateLimitError) as error:
        _send(sdk, key=str(uuid.uuid4()))
    # then
    assert 1 <= int(error.value.response.headers["Retry-After"]) <= 60
    assert len(sandbox.messages()) == 2
    assert sandbox.stats()["rate_limited"] == 1


def test_min_interval_answers_429_then_admits(sdk, sandbox):
    sandbox.configure(min_interval_ms=300)
    key = str(uuid.uuid4())
    _send(sdk, key=str(uuid.uuid4()))
    with pytest.raises(onlyfansapi.RateLimitError) as error:
        _send(sdk, key=key)
    assert error.value.response.headers["Retry-After"] == "1"
    time.sleep(0.35)
    # 429 was not stored: the same key now really sends
    raw = _send(sdk, key=key)
    assert raw.headers.get("Idempotent-Replayed") is None
    arrivals = [m["arrived_at"] for m in sandbox.messages()]
    assert arrivals[1] - arrivals[0] >= 0.3


def test_injected_failure_is_not_stored_so_a_retry_really_sends(sdk, sandbox):
    sandbox.configure(fail_next=1)
    key = str(uuid.uuid4())
    with pytest.raises(onlyfansapi.InternalServerError):
        _send(sdk, key=key)
    assert sandbox.messages() == []
    # when
    raw = _send(sdk, key=key)
    # then
    assert raw.headers.get("Idempotent-Replayed") is None
    assert len(sandbox.messages()) == 1


def test_key_in_flight_is_a_conflict(sdk, sandbox):
    sandbox.configure(latency_ms=400)
    key = str(uuid.uuid4())
    first = threading.Thread(target=_send, args=(sdk,), kwargs={"key": key})
    first.start()
    time.sleep(0.1)
    with pytest.raises(onlyfansapi.ConflictError) as error:
        _send(sdk, key=key)
    first.join()
    assert _code(error.value) == "IDEMPOTENCY_CONFLICT"
    assert len(sandbox.messages()) == 1


def test_timeout_after_send_leaves_a_replayable_answer(sandbox):
    sandbox.configure(timeout_rate=1.0, timeout_mode="after_send", timeout_sleep_ms=1000)
    sdk = onlyfansapi.OnlyFansAPI(
        api_key=settings.ONLYFANS_API_KEY, base_url=sandbox.url, max_retries=0, timeout=0.3
    )
    key = str(uuid.uuid4())
    with pytest.raises(onlyfansapi.APITimeoutError):
        _send(sdk, key=key)
    sandbox.configure(timeout_rate=0.0)
    raw = _send(sdk, key=key)
    assert raw.headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.messages()) == 1
    sdk.close()


def test_timeout_before_send_stores_nothing(sandbox):
    sandbox.configure(timeout_rate=1.0, timeout_mode="before_send", timeout_sleep_ms=1000)
    sdk = onlyfansapi.OnlyFansAPI(
        api_key=settings.ONLYFANS_API_KEY, base_url=sandbox.url, max_retries=0, timeout=0.3
    )
    key = str(uuid.uuid4())
    with pytest.raises(onlyfansapi.APITimeoutError):
        _send(sdk, key=key)
    assert sandbox.messages() == []
    sandbox.configure(timeout_rate=0.0)
    assert _send(sdk, key=key).headers.get("Idempotent-Replayed") is None
    sdk.close()


def test_wrong_api_key_is_401(sandbox):
    sdk = onlyfansapi.OnlyFansAPI(api_key="wrong", base_url=sandbox.url, max_retries=0)
    with pytest.raises(onlyfansapi.AuthenticationError):
        sdk.accounts.list()
    sdk.close()


def test_accounts_and_their_state(sdk, sandbox):
    sandbox.configure(accounts=["acct_a", "acct_b"], disconnected_accounts=["acct_b"])
    _send(sdk, account="acct_c")
    # when
    accounts = {a.id: a for a in sdk.accounts.list()}
    # then
    assert set(accounts) == {"acct_a", "acct_b", "acct_c"}
    assert accounts["acct_a"].is_authenticated
    assert not accounts["acct_b"].is_authenticated
    assert accounts["acct_a"].display_name


def test_disconnected_and_removed_accounts_cannot_send(sdk, sandbox):
    sandbox.configure(disconnected_accounts=["acct_gone"], removed_accounts=["acct_removed"])
    with pytest.raises(onlyfansapi.AuthenticationError):
        _send(sdk, account="acct_gone", key=str(uuid.uuid4()))
    with pytest.raises(onlyfansapi.NotFoundError) as removed:
        _send(sdk, account="acct_removed", key=str(uuid.uuid4()))
    assert _code(removed.value) == "account_not_found"
    assert sandbox.messages() == []


def test_chats_and_messages_read_what_was_stored(sdk, sandbox):
    _send(sdk, chat="1001", text="first")
    _send(sdk, chat="1002", text="second")
    _send(sdk, chat="1002", text="third")
    # when
    chats = sdk.chats.list(ACCOUNT, limit="10", offset="0", order="recent")
    messages = sdk.chats.messages.list("1002", account=ACCOUNT, limit="1", order="desc")
    # then
    assert {str(c.fan.id) for c in chats.data} == {"1001", "1002"}
    assert [m.text for m in messages.data] == ["third"]
    assert messages.api_pagination.next_page


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list]]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/onlyfans", _Receiver.received
    server.shutdown()
    server.server_close()


def test_emitted_webhooks_are_signed_and_recorded(sdk, sandbox, webhook_receiver):
    url, received = webhook_receiver
    # when
    posted = sandbox.emit_webhooks(url=url, count=3, account_id=ACCOUNT, duplicate=True)
    # then
    assert [p["status"] for p in posted] == [200] * 6
    assert len(received) == 6
    headers, body = received[0]
    expected = hmac.new(settings.ONLYFANS_WEBHOOK_SECRET.encode(), body, hashlib.sha256)
    assert headers["Signature"] == expected.hexdigest()
    assert headers["X-OFAPI-Idempotency-Key"].startswith("evt_")
    assert received[1][0]["X-OFAPI-Idempotency-Key"] == headers["X-OFAPI-Idempotency-Key"]
    event = json.loads(body)
    assert event["event"] == "messages.received"
    assert event["account_id"] == ACCOUNT
    assert set(event["payload"]) >= {"id", "text", "fromUser", "price", "isFree", "isTip", "media"}
    assert set(event["payload"]["fromUser"]) == {"id", "name", "username"}
    # the fan's message is in the chat history too
    fan_id = str(event["payload"]["fromUser"]["id"])
    history = sdk.chats.messages.list(fan_id, account=ACCOUNT, limit="100").data
    assert event["payload"]["id"] in [m.id for m in history]


def test_emit_reports_the_crm_status(sandbox, webhook_receiver):
    url, _ = webhook_receiver
    _Receiver.status = 403
    try:
        posted = sandbox.emit_webhooks(url=url, count=1)
    finally:
        _Receiver.status = 200
    assert posted[0]["status"] == 403


def test_fans_play_in_the_background(sandbox, webhook_receiver):
    url, received = webhook_receiver
    sandbox.configure(webhook_url=url, fans_per_minute=1200, accounts=[ACCOUNT])
    deadline = time.monotonic() + 3
    while len(received) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    sandbox.configure(fans_per_minute=0)
    assert len(received) >= 3
    assert json.loads(received[0][1])["account_id"] == ACCOUNT


def test_many_keep_alive_clients_at_once(sdk, sandbox):
    # given 8 threads sharing one pooled client
    def worker(n: int) -> None:
        for i in range(25):
            _send(sdk, key=f"{n}-{i}", chat=str(n))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    # when
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # then
    stored = sandbox.messages()
    assert len(stored) == 200
    assert len({m["platform_message_id"] for m in stored}) == 200
