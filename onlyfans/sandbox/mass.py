"""The sandbox's mass messaging: ``POST/GET /api/{account}/mass-messaging``, ``GET …/{id}``
and ``DELETE …/{id}`` (unsend, within ``mass_unsend_seconds`` of the send).

A mass message makes one copy per fan in the fans' chats (so chat reads show it), and reports
``total``/``pending``/``isDone`` as the platform does: copies are delivered at
``mass_delivery_per_second`` after the call, and ``pending`` counts down from ``total``.
Paid copies are unlocked by a share of the fans (``mass_unlock_share``), each posting a signed
``messages.ppv.unlocked`` webhook to ``webhook_url``. No idempotency key exists for this
endpoint (as on the real gateway); ``mass_timeout_next`` makes the next calls create the
message and then never answer, ``mass_fail_next`` answers 500 without creating it, and
``banned_words`` with ``blockBannedWords`` answers 422 listing the words found.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from onlyfans.sandbox.state import Reply, SandboxState, banned_words_error, send_body_error


@dataclass
class MassMessage:
    id: int
    account_id: str
    text: str
    price: float
    media: list[Any]
    user_ids: list[str]
    created: float
    message_ids: dict[str, int] = field(default_factory=dict)  # the copy's id per fan
    canceled: bool = False
    unsend_seconds: int = 3600  # the window from ``created`` (the config's, at the send)

    def total(self) -> int:
        return len(self.user_ids)

    def pending(self, now: float, rate: float) -> int:
        if rate <= 0:
            return 0
        delivered = int((now - self.created) * rate)
        return max(0, self.total() - delivered)

    def unsend_left(self, now: float) -> int:
        return 0 if self.canceled else max(0, int(self.created + self.unsend_seconds - now))

    def as_json(self, now: float, rate: float) -> dict[str, Any]:
        pending = 0 if self.canceled else self.pending(now, rate)
        unsend = self.unsend_left(now)
        return {
            "id": self.id,
            "date": datetime.fromtimestamp(self.created, tz=UTC).isoformat(timespec="seconds"),
            "total": self.total(),
            "pending": pending,
            "isDone": pending == 0 and not self.canceled,
            "isCanceled": self.canceled,
            "isReady": True,
            "hasError": False,
            "canUnsend": unsend > 0,
            "unsendSeconds": unsend,
        }


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": message, "message": message, "code": code, **extra})


class MassMessaging:
    """Mass messages of every account, beside the sandbox's state (its own lock)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._messages: dict[int, MassMessage] = {}
        self._stats: object = None

    def _reset_if_needed(self) -> None:
        # The sandbox's reset starts new stats; mass messages are forgotten with them.
        if self.state.stats is not self._stats:
            self._messages.clear()
            self._stats = self.state.stats

    def send(self, account_id: str, body: bytes) -> Reply:
        cfg = self.state.config
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _error(400, "invalid_body", "The request body must be JSON.")
        error = send_body_error(data)
        if error is not None:
            return error
        user_ids = [str(u) for u in data.get("userIds") or []]
        if not user_ids and not data.get("userLists"):
            return _error(422, "validation_error", "userIds or userLists is required.")
        banned = banned_words_error(data, cfg.banned_words)
        if banned is not None:
            return banned
        with self._lock:
            self._reset_if_needed()
            if cfg.mass_fail_next > 0:
                cfg.mass_fail_next -= 1
                self.state.count("mass_failures_injected")
                return _error(500, "internal_error", "Sandbox injected failure.")
            now = time.time()
            message = MassMessage(
                id=self.state.next_id(),
                account_id=account_id,
                text=data["text"],
                price=data.get("price") or 0,
                media=list(data.get("mediaFiles") or []),
                user_ids=user_ids,
                created=now,
                unsend_seconds=cfg.mass_unsend_seconds,
            )
            self._messages[message.id] = message
            hang = cfg.mass_timeout_next > 0
            if hang:
                cfg.mass_timeout_next -= 1
            reply_body = message.as_json(now, cfg.mass_delivery_per_second)
        for user_id in user_ids:
            copy_id = self.state.next_id()
            message.message_ids[user_id] = copy_id
            self._copy_record(message, user_id, copy_id)
        self.state.count("mass_sent")
        if message.price and cfg.mass_unlock_share > 0 and cfg.webhook_url:
            threading.Thread(target=self._unlocks, args=(message,), daemon=True).start()
        if hang:
            self.state.count("mass_timeouts_injected")
            return Reply(0, None, hang_seconds=cfg.timeout_sleep_ms / 1000.0)
        return Reply(200, {"data": reply_body, "_meta": {"_credits": {"used": 1}}})

    def _copy_record(self, message: MassMessage, user_id: str, copy_id: int) -> None:
        fan = {"id": int(user_id) if user_id.isdigit() else user_id}
        copy = {
            "id": copy_id,
            "text": message.text,
            "price": message.price,
            "isFree": not message.price,
            "media": [{"id": m} for m in message.media],
            "fromUser": {"id": 0, "_view": "s"},
            "isMassMessage": True,
            "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self.state.mass_copy_record(message.account_id, fan, copy)

    def _unlocks(self, message: MassMessage) -> None:
        cfg = self.state.config
        rng = random.Random(message.id)
        url, secret = cfg.webhook_url, cfg.webhook_secret
        if not url:
            return
        from onlyfans.sandbox.webhooks import WebhookPoster

        poster = WebhookPoster()
        try:
            for user_id in message.user_ids:
                if rng.random() >= cfg.mass_unlock_share:
                    continue
                event = {
                    "event": "messages.ppv.unlocked",
                    "account_id": message.account_id,
                    "payload": {
                        "id": message.message_ids.get(user_id),
                        "messageId": message.message_ids.get(user_id),
                        "price": message.price,
                        "user": {"id": int(user_id) if user_id.isdigit() else user_id},
                        "createdAt": datetime.now(UTC).isoformat(timespec="seconds"),
                    },
                }
                try:
                    poster.post(url, secret, event, key=f"evt_{uuid.uuid4().hex}")
                except Exception:  # noqa: S112 (a fan that could not be heard: best effort)
                    continue
        finally:
            poster.close()

    def list_json(self, account_id: str) -> Reply:
        now, rate = time.time(), self.state.config.mass_delivery_per_second
        with self._lock:
            self._reset_if_needed()
            rows = [
                m.as_json(now, rate)
                for m in sorted(self._messages.values(), key=lambda m: -m.id)
                if m.account_id == account_id and now - m.created < 7 * 24 * 3600
            ]
        return Reply(200, {"data": rows, "_meta": {"_credits": {"used": 1}}})

    def retrieve_json(self, account_id: str, mass_id: int) -> Reply:
        now, rate = time.time(), self.state.config.mass_delivery_per_second
        with self._lock:
            self._reset_if_needed()
            message = self._messages.get(mass_id)
            if message is None or message.account_id != account_id:
                return _error(404, "not_found", "Mass message not found.")
            return Reply(200, {"data": message.as_json(now, rate)})

    def unsend(self, account_id: str, mass_id: int) -> Reply:
        """``DELETE …/mass-messaging/{id}``: unsend within the window (every fan's copy leaves
        their chat); after it, or a second time, a 422 ``unsend_not_allowed``."""
        now, rate = time.time(), self.state.config.mass_delivery_per_second
        with self._lock:
            self._reset_if_needed()
            message = self._messages.get(mass_id)
            if message is None or message.account_id != account_id:
                return _error(404, "not_found", "Mass message not found.")
            if message.unsend_left(now) <= 0:
                return _error(
                    422,
                    "unsend_not_allowed",
                    "This mass message can no longer be unsent.",
                    isCanceled=message.canceled,
                )
            message.canceled = True
            queue = message.as_json(now, rate)
        self.state.mass_copies_remove(account_id, message.message_ids)
        self.state.count("mass_unsent")
        return Reply(200, {"data": {"success": True, "queue": queue}})

    def control_json(self, account_id: str | None) -> list[dict[str, Any]]:
        """For tests: every mass message with its fans (``GET /_sandbox/mass``)."""
        now, rate = time.time(), self.state.config.mass_delivery_per_second
        with self._lock:
            self._reset_if_needed()
            return [
                {**m.as_json(now, rate), "account": m.account_id, "user_ids": list(m.user_ids)}
                for m in sorted(self._messages.values(), key=lambda m: m.id)
                if account_id is None or m.account_id == account_id
            ]
