"""The gateway facade against the sandbox platform over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import socket
import threading
import time
import uuid
from datetime import datetime

import pytest

from onlyfans import gateway
from onlyfans.contracts import (
    GatewayAccountUnavailable,
    GatewayConflict,
    GatewayRateLimited,
    GatewayRejected,
    GatewayTransientError,
    PlatformMessage,
    SendRequest,
    SendResult,
)

ACCOUNT = "acct_gateway_test"
CHAT = "424242"


def _request(**overrides) -> SendRequest:
    fields = {
        "account_platform_id": ACCOUNT,
        "chat_id": CHAT,
        "text": "hi, thanks for subscribing",
        "price_cents": 0,
        "media_ids": (),
        "idempotency_key": str(uuid.uuid4()),
    }
    return SendRequest(**{**fields, **overrides})


def test_send_returns_the_platform_message(sandbox):
    sandbox.configure(rate_limit_per_minute=50)
    # when
    result = gateway.message_send(_request())
    # then
    [stored] = sandbox.messages()
    assert isinstance(result, SendResult)
    assert result.platform_message_id == stored["platform_message_id"]
    assert isinstance(result.created_at, datetime) and result.created_at.tzinfo is not None
    assert result.replayed is False
    assert result.rate_limit_remaining == 49


def test_retry_with_the_same_key_is_a_replay(sandbox):
    request = _request()
    first = gateway.message_send(request)
    # when
    again = gateway.message_send(request)
    # then
    assert again.replayed is True
    assert again.platform_message_id == first.platform_message_id
    assert len(sandbox.messages()) == 1


def test_price_goes_as_dollars_and_vault_ids_as_numbers(sandbox):
    gateway.message_send(_request(price_cents=550, media_ids=("ofapi_media_9", "3866342509")))
    gateway.message_send(_request(price_cents=1000, media_ids=("ofapi_media_9",)))
    history = gateway.messages_list(account_platform_id=ACCOUNT, chat_id=CHAT, limit=10)
    assert [m.price_cents for m in history] == [1000, 550]
    assert history[1].media_ids == ("ofapi_media_9", "3866342509")
    assert [m["price"] for m in sandbox.messages()] == [5.5, 10]


def test_rate_limited_with_retry_after_seconds(sandbox):
    sandbox.configure(rate_limit_per_minute=1)
    gateway.message_send(_request())
    with pytest.raises(GatewayRateLimited) as error:
        gateway.message_send(_request())
    assert error.value.status == 429
    assert error.value.retry_after_seconds is not None
    assert 1 <= error.value.retry_after_seconds <= 60
    assert isinstance(error.value, GatewayTransientError)


def test_rate_limited_with_retry_after_as_http_date(sandbox):
    sandbox.configure(rate_limit_per_minute=1, retry_after_http_date=True)
    gateway.message_send(_request())
    with pytest.raises(GatewayRateLimited) as error:
        gateway.message_send(_request())
    assert error.value.retry_after_seconds is not None
    assert 0 <= error.value.retry_after_seconds <= 61


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_server_errors_are_transient_and_not_stored(sandbox, status):
    sandbox.configure(fail_next=1, fail_status=status)
    request = _request()
    with pytest.raises(GatewayTransientError) as error:
        gateway.message_send(request)
    assert type(error.value) is GatewayTransientError
    assert error.value.status == status
    # the retry with the same key really sends
    assert gateway.message_send(request).replayed is False
    assert len(sandbox.messages()) == 1


def test_key_still_in_flight_is_a_conflict(sandbox):
    sandbox.configure(latency_ms=400)
    request = _request()
    first = threading.Thread(target=gateway.message_send, args=(request,))
    first.start()
    time.sleep(0.1)
    with pytest.raises(GatewayConflict) as error:
        gateway.message_send(request)
    first.join()
    assert error.value.code == "IDEMPOTENCY_CONFLICT"
    assert error.value.status == 409


def test_key_reused_for_another_message_is_rejected(sandbox):
    request = _request()
    gateway.message_send(request)
    with pytest.raises(GatewayRejected) as error:
        gateway.message_send(_request(idempotency_key=request.idempotency_key, text="other"))
    assert error.value.code == "IDEMPOTENCY_KEY_MISMATCH"
    assert error.value.status == 422


def test_invalid_key_is_rejected(sandbox):
    with pytest.raises(GatewayRejected) as error:
        gateway.message_send(_request(idempotency_key="k" * 256))
    assert error.value.code == "IDEMPOTENCY_KEY_INVALID"
    assert error.value.status == 400


@pytest.mark.parametrize(
    "overrides",
    [{"price_cents": 250, "media_ids": ("m1",)}, {"price_cents": 500}, {"text": "x" * 5001}],
)
def test_invalid_message_is_rejected_with_the_gateway_message(sandbox, overrides):
    with pytest.raises(GatewayRejected) as error:
        gateway.message_send(_request(**overrides))
    assert error.value.code == "validation_error"
    assert error.value.status == 422
    assert error.value.message
    assert sandbox.messages() == []


def test_disconnected_account_is_unavailable(sandbox):
    sandbox.configure(disconnected_accounts=[ACCOUNT])
    with pytest.raises(GatewayAccountUnavailable) as error:
        gateway.message_send(_request())
    assert error.value.status == 401


def test_removed_account_is_unavailable(sandbox):
    sandbox.configure(removed_accounts=[ACCOUNT])
    with pytest.raises(GatewayAccountUnavailable) as error:
        gateway.message_send(_request())
    assert error.value.code == "account_not_found"
    assert error.value.status == 404


def test_wrong_api_key_is_unavailable(sandbox, settings):
    settings.ONLYFANS_API_KEY = "not-the-key"
    with pytest.raises(GatewayAccountUnavailable) as error:
        gateway.accounts_list()
    assert error.value.status == 401


def test_timeout_is_transient(sandbox, settings):
    settings.ONLYFANS_API_TIMEOUT_SECONDS = 0.3
    sandbox.configure(timeout_rate=1.0, timeout_mode="after_send", timeout_sleep_ms=1500)
    request = _request()
    started = time.monotonic()
    with pytest.raises(GatewayTransientError) as error:
        gateway.message_send(request)
    assert error.value.code == "timeout"
    assert time.monotonic() - started < 1.2  # no retries hidden in the SDK
    # the send did reach the platform: the retry with the same key is a replay, not a duplicate
    sandbox.configure(timeout_rate=0.0)
    assert gateway.message_send(request).replayed is True
    assert len(sandbox.messages()) == 1


def test_unreachable_gateway_is_transient(settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.ONLYFANS_API_BASE_URL = f"http://127.0.0.1:{port}"
    with pytest.raises(GatewayTransientError) as error:
        gateway.message_send(_request())
    assert error.value.code == "connection_error"


def test_base_url_may_end_in_api(sandbox, settings):
    settings.ONLYFANS_API_BASE_URL = sandbox.url + "/api/"
    assert gateway.message_send(_request()).platform_message_id


def test_accounts_list(sandbox):
    sandbox.configure(accounts=["acct_one", "acct_two"], disconnected_accounts=["acct_two"])
    accounts = {a.platform_account_id: a for a in gateway.accounts_list()}
    assert set(accounts) == {"acct_one", "acct_two"}
    assert accounts["acct_one"].is_authenticated is True
    assert accounts["acct_two"].is_authenticated is False
    assert accounts["acct_one"].display_name


def test_chats_list_pages(sandbox):
    for chat in ("1", "2", "3"):
        gateway.message_send(_request(chat_id=chat))
    first = gateway.chats_list(account_platform_id=ACCOUNT, limit=2, offset=0)
    rest = gateway.chats_list(account_platform_id=ACCOUNT, limit=2, offset=2)
    ids = [c.fan.platform_fan_id for c in first + rest]
    assert sorted(ids) == ["1", "2", "3"]
    assert all(c.last_message_at is not None for c in first)


def test_messages_list_follows_pages_and_tells_fan_messages_apart(sandbox):
    fan_id = 880001
    sandbox.emit_webhooks(
        url="http://127.0.0.1:9/unreachable", count=1, account_id=ACCOUNT, fan_id=fan_id
    )
    for i in range(120):
        gateway.message_send(_request(chat_id=str(fan_id), text=f"message {i}"))
    # when
    history = gateway.messages_list(account_platform_id=ACCOUNT, chat_id=str(fan_id), limit=500)
    # then
    assert len(history) == 121
    assert all(isinstance(m, PlatformMessage) for m in history)
    assert history[0].text == "message 119" and not history[0].from_fan
    assert history[-1].from_fan
    assert len({m.platform_message_id for m in history}) == 121
    limited = gateway.messages_list(account_platform_id=ACCOUNT, chat_id=str(fan_id), limit=5)
    assert len(limited) == 5


def test_webhook_signature_helpers(settings):
    body = b'{"event":"messages.received","account_id":"acct_1","payload":{}}'
    expected = hmac.new(settings.ONLYFANS_WEBHOOK_SECRET.encode(), body, hashlib.sha256)
    assert gateway.webhook_signature(body) == expected.hexdigest()
    assert gateway.webhook_signature(body, secret="s") == (
        hmac.new(b"s", body, hashlib.sha256).hexdigest()
    )
    assert gateway.webhook_signature_valid(body, expected.hexdigest())
    assert gateway.webhook_signature_valid(body, expected.hexdigest().upper())
    assert not gateway.webhook_signature_valid(body + b" ", expected.hexdigest())
    assert not gateway.webhook_signature_valid(body, None)
    assert not gateway.webhook_signature_valid(body, "")
    assert not gateway.webhook_signature_valid(body, "é" * 64)


def test_sandbox_webhooks_verify_with_the_gateway_helper(sandbox):
    received: list[tuple[bytes, str]] = []
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["Signature"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        posted = sandbox.emit_webhooks(
            url=f"http://127.0.0.1:{server.server_address[1]}/hook", count=2
        )
    finally:
        server.shutdown()
        server.server_close()
    assert [p["status"] for p in posted] == [204, 204]
    assert all(gateway.webhook_signature_valid(body, sig) for body, sig in received)


class _Recorder(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, str], bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        reply = b'{"data": {"id": 7}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


def test_send_goes_as_the_sdk_sends_it(settings):
    """The send call skips the SDK's request building: what reaches the gateway is the same
    path, body bytes and headers (but the SDK's per-call read-timeout and raw-response marks)."""
    import httpx
    import onlyfansapi

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.ONLYFANS_API_BASE_URL = f"http://127.0.0.1:{server.server_port}"
    request = _request(
        account_platform_id="acct é/1",
        text='héllo "there"',
        price_cents=550,
        media_ids=("ofapi_media_9", "3866342509"),
        preview_ids=("ofapi_media_9",),
        block_banned_words="strict_ban",
    )
    sdk_requests: list[httpx.Request] = []

    def record(sent: httpx.Request) -> httpx.Response:
        sdk_requests.append(sent)
        return httpx.Response(200, json={"data": {"id": 7}})

    sdk = onlyfansapi.OnlyFansAPI(
        api_key=settings.ONLYFANS_API_KEY,
        base_url=settings.ONLYFANS_API_BASE_URL,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(record)),
    )
    try:
        # when
        result = gateway.message_send(request)
        sdk.chats.messages.with_raw_response.send(
            request.chat_id,
            account=request.account_platform_id,
            text=request.text,
            price=5.5,
            media_files=["ofapi_media_9", 3866342509],
            previews=["ofapi_media_9"],
            idempotency_key=request.idempotency_key,
            block_banned_words="strict_ban",
        )
    finally:
        server.shutdown()
    # then
    assert result.platform_message_id == "7"
    [(path, headers, body)] = _Recorder.seen
    [expected] = sdk_requests
    assert path == expected.url.raw_path.decode()
    assert body == expected.content
    ignored = {
        "accept-encoding",
        "connection",
        "x-stainless-raw-response",
        "x-stainless-read-timeout",
    }
    assert {k: v for k, v in headers.items() if k not in ignored} == {
        k: v for k, v in expected.headers.items() if k not in ignored
    }
