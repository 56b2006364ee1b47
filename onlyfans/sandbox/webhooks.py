"""The sandbox "plays fans": signed ``messages.received`` webhooks posted to the CRM."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any

import httpx

from onlyfans.sandbox.state import SandboxState

FAN_LINES = (
    "hey, how are you?",
    "you look amazing today",
    "what are you up to tonight?",
    "do you have anything new for me?",
    "good morning!",
    "miss you",
    "can I get something special?",
    "just tipped you :)",
)
POST_TIMEOUT_SECONDS = 10.0  # the contract: any 2xx within 10 s is a success


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def fan_for(account_id: str, index: int) -> dict[str, Any]:
    """A stable fan per (account, index), so repeated messages land in the same chat."""
    base = 500_000_000 + (zlib.crc32(account_id.encode()) % 1_000_000) * 100
    fan_id = base + index
    return {"id": fan_id, "name": f"Fan {fan_id}", "username": f"u{fan_id}"}


def message_received_event(
    state: SandboxState,
    *,
    account_id: str,
    fan: dict[str, Any],
    text: str,
    payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the event and remember the message in the chat, as the platform would."""
    message = {
        "id": state.next_id(),
        "text": text,
        "fromUser": {"id": fan["id"], "name": fan["name"], "username": fan["username"]},
        "price": 0,
        "isFree": True,
        "isTip": False,
        "media": [],
        "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
        **(payload or {}),
    }
    state.fan_message_record(account_id, fan, message)
    return {"event": "messages.received", "account_id": account_id, "payload": message}


class WebhookPoster:
    """Posts events over one keep-alive connection pool."""

    def __init__(self) -> None:
        self._client = httpx.Client(timeout=POST_TIMEOUT_SECONDS)

    def post(
        self, url: str, secret: str, event: dict[str, Any], *, key: str | None = None
    ) -> dict[str, Any]:
        body = json.dumps(event, separators=(",", ":")).encode()
        key = key or f"evt_{uuid.uuid4().hex}"
        headers = {
            "Content-Type": "application/json",
            "Signature": signature(body, secret),
            "X-OFAPI-Idempotency-Key": key,
        }
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return {"idempotency_key": key, "event": event, "status": None, "error": str(exc)}
        return {"idempotency_key": key, "event": event, "status": response.status_code}

    def close(self) -> None:
        self._client.close()


def events_emit(
    state: SandboxState, poster: WebhookPoster, spec: dict[str, Any]
) -> list[dict[str, Any]]:
    """``POST /_sandbox/webhooks/emit``: post given or generated events once each.

    spec keys (all optional): ``url``, ``secret``, ``count`` (generated events), ``account_id``,
    ``fan_id``, ``text``, ``events`` (full event bodies to post as they are), ``duplicate``
    (post each event a second time with the same ``X-OFAPI-Idempotency-Key``).
    """
    cfg = state.config
    url = spec.get("url") or cfg.webhook_url
    if not url:
        raise ValueError("no webhook url: pass url or configure webhook_url")
    secret = spec.get("secret") or cfg.webhook_secret
    events: list[dict[str, Any]] = list(spec.get("events") or [])
    account_id = spec.get("account_id") or (cfg.accounts[0] if cfg.accounts else "acct_sandbox")
    for i in range(int(spec.get("count", 0 if events else 1))):
        if spec.get("fan_id") is not None:
            fan_id = int(spec["fan_id"])
            fan = {"id": fan_id, "name": f"Fan {fan_id}", "username": f"u{fan_id}"}
        else:
            fan = fan_for(account_id, random.randrange(max(cfg.fans_per_account, 1)))
        text = spec.get("text") or FAN_LINES[i % len(FAN_LINES)]
        events.append(message_received_event(state, account_id=account_id, fan=fan, text=text))
    results = []
    for event in events:
        result = poster.post(url, secret, event)
        state.count("webhooks_posted")
        results.append(result)
        if spec.get("duplicate"):
            again = poster.post(url, secret, event, key=result["idempotency_key"])
            state.count("webhooks_posted")
            results.append(again)
    return results


class FanPlayer(threading.Thread):
    """Background fans: ``fans_per_minute`` messages a minute spread over the accounts."""

    def __init__(self, state: SandboxState, stopping: threading.Event) -> None:
        super().__init__(name="sandbox-fans", daemon=True)
        self.state = state
        self.stopping = stopping
        self.poster = WebhookPoster()

    def run(self) -> None:
        rng = random.Random()
        try:
            while not self.stopping.is_set():
                cfg = self.state.config
                if not cfg.webhook_url or cfg.fans_per_minute <= 0:
                    self.stopping.wait(0.5)
                    continue
                # Exponential gaps: fans do not write on a metronome.
                self.stopping.wait(rng.expovariate(cfg.fans_per_minute / 60.0))
                if self.stopping.is_set():
                    break
                accounts = [a["id"] for a in self.state.accounts_json() if a["is_authenticated"]]
                account_id = rng.choice(accounts) if accounts else "acct_sandbox"
                fan = fan_for(account_id, rng.randrange(max(cfg.fans_per_account, 1)))
                event = message_received_event(
                    self.state, account_id=account_id, fan=fan, text=rng.choice(FAN_LINES)
                )
                self._deliver(cfg.webhook_url, cfg.webhook_secret, event)
        finally:
            self.poster.close()

    def _deliver(self, url: str, secret: str, event: dict[str, Any]) -> None:
        # Redeliveries keep the same key, as the real gateway's do.
        key = f"evt_{uuid.uuid4().hex}"
        for attempt in range(3):
            result = self.poster.post(url, secret, event, key=key)
            self.state.count("webhooks_posted")
            status = result["status"]
            if status is not None and 200 <= status < 300:
                return
            if self.stopping.wait(0.5 * 2**attempt):
                return
