"""The sandbox platform's memory: accounts, chats, stored sends, idempotency keys and limits.

Everything sits behind one lock; each operation holds it for microseconds, so hundreds of
concurrent keep-alive clients do not queue on it. No Django here: the sandbox runs standalone.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

TEXT_MAX_LENGTH = 5000
PRICE_MIN = 3
PRICE_MAX = 200
IDEMPOTENCY_KEY_MAX_LENGTH = 255
CREDITS_START = 1_000_000


@dataclass
class SandboxConfig:
    """Knobs a test or benchmark may turn at run time (``POST /_sandbox/config``)."""

    api_key: str | None = "sandbox-key"  # None accepts any bearer token
    rate_limit_per_minute: int = 10  # per account, sliding 60 s window; 0 turns it off
    min_interval_ms: int = 3000  # per account, between two admitted sends; 0 turns it off
    latency_ms: float = 0.0
    fail_rate: float = 0.0  # share of sends answered 500 (not stored)
    timeout_rate: float = 0.0  # share of sends that never get an answer
    timeout_mode: str = "random"  # "after_send" (sent, answer lost), "before_send" or "random"
    timeout_sleep_ms: int = 30_000  # how long a "timed out" request hangs before the drop
    fail_next: int = 0  # the next N sends answer 500
    fail_status: int = 500  # status of injected failures (500, 502, 503, 408...)
    retry_after_http_date: bool = False  # 429s say Retry-After as an HTTP date, not seconds
    idempotency_ttl_seconds: int = 24 * 3600
    disconnected_accounts: list[str] = field(default_factory=list)  # 401, must reconnect
    removed_accounts: list[str] = field(default_factory=list)  # 404 account_not_found
    accounts: list[str] = field(default_factory=list)  # listed before first use
    webhook_url: str | None = None  # where the fans' messages are posted
    webhook_secret: str = "sandbox-webhook-secret"
    fans_per_minute: float = 0.0  # background fan messages; 0 keeps the fans quiet
    fans_per_account: int = 25
    # Reads (fans, chats, messages): the gateway's own per-minute limit, apart from sends.
    read_rate_limit_per_minute: int = 1000  # per account, sliding 60 s window; 0 turns it off
    read_fail_next: int = 0  # the next N reads answer ``fail_status``
    # Mass messaging (onlyfans/sandbox/mass.py).
    mass_delivery_per_second: float = 100_000.0  # copies made per second after the call
    mass_unlock_share: float = 0.0  # share of fans who unlock a paid mass message (webhooks)
    mass_timeout_next: int = 0  # the next N calls create the message, then never answer
    mass_fail_next: int = 0  # the next N calls answer 500 and create nothing
    banned_words: list[str] = field(default_factory=list)  # refused with blockBannedWords
    mass_unsend_seconds: int = 3600  # how long after sending a mass message can be unsent
    # The vault (onlyfans/sandbox/vault.py).
    vault_items_per_account: int = 36  # generated on an account's first vault read
    file_url_ttl_seconds: int = 300  # how long a signed file URL works; then 403

    def update(self, changes: dict[str, Any]) -> list[str]:
        """Apply known keys; return the unknown ones so the caller can complain."""
        known = {f.name: f for f in fields(self)}
        unknown = [key for key in changes if key not in known]
        for key, value in changes.items():
            if key not in known:
                continue
            current = getattr(self, key)
            if isinstance(current, list):
                value = list(value or [])
            elif isinstance(current, bool) or current is None or value is None:
                pass
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            setattr(self, key, value)
        return unknown


@dataclass
class Account:
    id: str
    onlyfans_id: int
    username: str
    display_name: str

    def as_json(self, *, authenticated: bool) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "is_authenticated": authenticated,
            "authentication_progress": "authenticated" if authenticated else "session_expired",
            "onlyfans_id": self.onlyfans_id,
            "onlyfans_username": self.username,
            "onlyfans_user_data": {
                "id": self.onlyfans_id,
                "name": self.display_name,
                "username": self.username,
                "isPerformer": True,
            },
        }


@dataclass
class Reply:
    """What the HTTP layer writes back."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    # Set when the answer must be withheld: sleep this long, then drop the connection.
    hang_seconds: float | None = None
    delay_seconds: float = 0.0


@dataclass
class _IdempotencyEntry:
    fingerprint: str
    created: float
    done: bool = False
    status: int = 0
    body: Any = None


def _now_iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": message, "message": message, "code": code, **extra})


def _stable_int(text: str, *, base: int) -> int:
    return base + zlib.crc32(text.encode()) % 900_000_000


def idempotency_key_valid(key: str) -> bool:
    return 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH and all(" " <= ch <= "~" for ch in key)


def banned_words_error(body: Any, banned_words: list[str]) -> Reply | None:
    """The gateway's screening (``blockBannedWords`` on either send endpoint): a 422 listing
    the banned words the text holds, or None."""
    if not isinstance(body, dict) or not body.get("blockBannedWords") or not banned_words:
        return None
    text = str(body.get("text") or "").lower()
    found = [w for w in banned_words if w.lower() in text]
    if not found:
        return None
    return _error(
        422, "banned_words", f"The text contains banned words: {', '.join(found)}.", words=found
    )


def send_body_error(body: Any) -> Reply | None:
    """The contract's validation of a send body, or None when it is acceptable."""
    if not isinstance(body, dict):
        return _error(400, "invalid_body", "The request body must be a JSON object.")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return _error(422, "validation_error", "The text field is required.", field="text")
    if len(text) > TEXT_MAX_LENGTH:
        return _error(
            422,
            "validation_error",
            f"The text may not be greater than {TEXT_MAX_LENGTH} characters.",
            field="text",
        )
    media = body.get("mediaFiles", [])
    previews = body.get("previews", [])
    if not isinstance(media, list) or not all(isinstance(m, str | int) for m in media):
        return _error(
            422, "validation_error", "mediaFiles must be a list of ids.", field="mediaFiles"
        )
    if not isinstance(previews, list):
        return _error(422, "validation_error", "previews must be a list.", field="previews")
    price = body.get("price", 0)
    if isinstance(price, bool) or not isinstance(price, int | float):
        return _error(422, "validation_error", "The price must be a number.", field="price")
    if price != 0 and not PRICE_MIN <= price <= PRICE_MAX:
        return _error(
            422,
            "validation_error",
            f"The price must be 0 or between {PRICE_MIN} and {PRICE_MAX}.",
            field="price",
        )
    if price != 0 and not media:
        return _error(
            422, "validation_error", "A paid message needs at least one media file.", field="price"
        )
    if any(p not in media for p in previews):
        return _error(
            422, "validation_error", "previews must be a subset of mediaFiles.", field="previews"
        )
    return None


class SandboxState:
    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self._initial = copy.deepcopy(self.config)
        self._lock = threading.Lock()
        self._rng = random.Random()
        self.reset()

    # --- control -----------------------------------------------------------------------
    def reset(self, config: dict[str, Any] | None = None) -> list[str]:
        """Forget everything, go back to the start-up config, then apply ``config``."""
        with self._lock:
            self.config = copy.deepcopy(self._initial)
            unknown = self.config.update(config or {})
            self._accounts: dict[str, Account] = {}
            self._idempotency: dict[tuple[str, str], _IdempotencyEntry] = {}
            self._windows: dict[str, deque[float]] = {}
            self._last_send: dict[str, float] = {}
            self._sends: list[dict[str, Any]] = []
            # (account, chat_id) -> messages oldest first, both directions
            self._chats: dict[tuple[str, str], list[dict[str, Any]]] = {}
            # (account, fan id) -> the fan as ``fans/all`` lists it; insertion order is the
            # order fans joined (the list answers newest first).
            self._fans: dict[tuple[str, str], dict[str, Any]] = {}
            self._read_windows: dict[str, deque[float]] = {}
            self._unread: Counter[tuple[str, str]] = Counter()
            # Ids keep growing across restarts (time-based start), as the platform's do: a CRM
            # that keeps its database must never see an id it already stored.
            self._ids = itertools.count(4_000_000_000 + time.time_ns() // 1000)
            self._credits = CREDITS_START
            self.stats: Counter[str] = Counter()
            for account_id in self.config.accounts:
                self._account(account_id)
            return unknown

    def configure(self, changes: dict[str, Any]) -> list[str]:
        with self._lock:
            unknown = self.config.update(changes)
            for account_id in self.config.accounts:
                self._account(account_id)
            return unknown

    def config_json(self) -> dict[str, Any]:
        with self._lock:
            data = asdict(self.config)
        data.pop("api_key", None)
        data.pop("webhook_secret", None)
        return data

    def stats_json(self) -> dict[str, Any]:
        with self._lock:
            by_status = {k[7:]: v for k, v in self.stats.items() if k.startswith("status:")}
            return {
                "requests": sum(by_status.values()),
                "by_status": by_status,
                "sends_stored": len(self._sends),
                "replays": self.stats["replays"],
                "rate_limited": self.stats["rate_limited"],
                "conflicts": self.stats["conflicts"],
                "mismatches": self.stats["mismatches"],
                "failures_injected": self.stats["failures_injected"],
                "timeouts_injected": self.stats["timeouts_injected"],
                "webhooks_posted": self.stats["webhooks_posted"],
                "credits_balance": self._credits,
            }

    def count(self, name: str) -> None:
        with self._lock:
            self.stats[name] += 1

    def sends(self, account: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._sends if account is None or s["account"] == account]

    # --- accounts ----------------------------------------------------------------------
    def _account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            suffix = account_id.removeprefix("acct_")[:24] or "creator"
            account = Account(
                id=account_id,
                onlyfans_id=_stable_int(account_id, base=100_000_000),
                username=f"creator_{suffix}",
                display_name=f"Creator {suffix}",
            )
            self._accounts[account_id] = account
        return account

    def accounts_json(self) -> list[dict[str, Any]]:
        with self._lock:
            disconnected = set(self.config.disconnected_accounts)
            removed = set(self.config.removed_accounts)
            return [
                a.as_json(authenticated=a.id not in disconnected)
                for a in self._accounts.values()
                if a.id not in removed
            ]

    def account_error(self, account_id: str) -> Reply | None:
        """401/404 for accounts that cannot act; otherwise registers the account on first use."""
        with self._lock:
            if account_id in self.config.removed_accounts:
                return _error(404, "account_not_found", f"Account {account_id} not found.")
            if account_id in self.config.disconnected_accounts:
                return _error(
                    401,
                    "account_not_authenticated",
                    "Account is not authenticated (disconnected). Please reconnect it.",
                    request_outcome="not_sent",
                )
            self._account(account_id)
            return None

    # --- sending -----------------------------------------------------------------------
    def _meta(self, account_id: str, *, now: float, credits_used: int) -> dict[str, Any]:
        limit = self.config.rate_limit_per_minute
        window = self._windows.get(account_id)
        used = 0
        if window:
            while window and window[0] <= now - 60.0:
                window.popleft()
            used = len(window)
        return {
            "_credits": {"used": credits_used, "balance": self._credits, "note": "sandbox"},
            "_rate_limits": {
                "limit_minute": limit or None,
                "remaining_minute": max(limit - used, 0) if limit else None,
            },
        }

    def _rate_limit_wait(self, account_id: str, now: float) -> float:
        """Seconds until this account may send again (0: it may send now)."""
        wait = 0.0
        interval = self.config.min_interval_ms / 1000.0
        last = self._last_send.get(account_id)
        if interval > 0 and last is not None and now - last < interval:
            wait = interval - (now - last)
        limit = self.config.rate_limit_per_minute
        if limit > 0:
            window = self._windows.setdefault(account_id, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                wait = max(wait, window[0] + 60.0 - now)
        return wait

    def send_begin(
        self, account_id: str, chat_id: str, raw_body: bytes, key: str | None
    ) -> tuple[Reply | None, dict[str, Any] | None]:
        """First half of a send, under the lock: replay, validate, limit, admit.

        Returns (reply, None) when the answer is already known, or (None, ticket) when the
        send was admitted; the caller sleeps the injected latency outside the lock and then
        calls ``send_finish(ticket)``.
        """
        try:
            body = json.loads(raw_body or b"null")
        except ValueError:
            body = None
            parse_error: Reply | None = _error(400, "invalid_json", "The body is not valid JSON.")
        else:
            parse_error = None
        fingerprint = ""
        if key is not None:
            canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
            fingerprint = hashlib.sha256(f"{chat_id}\n{canonical}".encode()).hexdigest()
        with self._lock:
            now = time.time()
            cfg = self.config
            entry = None
            if key is not None:
                entry = self._idempotency.get((account_id, key))
                if entry is not None and now - entry.created > cfg.idempotency_ttl_seconds:
                    entry = None
                if entry is not None:
                    if entry.fingerprint != fingerprint:
                        self.stats["mismatches"] += 1
                        return _error(
                            422,
                            "IDEMPOTENCY_KEY_MISMATCH",
                            "This Idempotency-Key was already used with another chat or body.",
                        ), None
                    if not entry.done:
                        self.stats["conflicts"] += 1
                        return _error(
                            409,
                            "IDEMPOTENCY_CONFLICT",
                            "A request with this Idempotency-Key is still running.",
                        ), None
                    self.stats["replays"] += 1
                    replayed = entry.body
                    if isinstance(replayed, dict) and "_meta" in replayed:
                        replayed = {
                            **replayed,
                            "_meta": self._meta(account_id, now=now, credits_used=0),
                        }
                    return Reply(entry.status, replayed, {"Idempotent-Replayed": "true"}), None

            error = (
                parse_error or send_body_error(body) or banned_words_error(body, cfg.banned_words)
            )
            if error is not None:
                if key is not None:  # 4xx answers are stored and replayed like any other
                    self._idempotency[(account_id, key)] = _IdempotencyEntry(
                        fingerprint, now, True, error.status, error.body
                    )
                return error, None

            if cfg.fail_next > 0 or (cfg.fail_rate > 0 and self._rng.random() < cfg.fail_rate):
                cfg.fail_next = max(cfg.fail_next - 1, 0)
                self.stats["failures_injected"] += 1
                return _error(
                    cfg.fail_status,
                    "internal_error",
                    "Sandbox injected failure.",
                    request_outcome="unknown",
                ), None

            timeout = cfg.timeout_rate > 0 and self._rng.random() < cfg.timeout_rate
            if timeout:
                self.stats["timeouts_injected"] += 1
                mode = cfg.timeout_mode
                if mode == "random":
                    mode = self._rng.choice(("after_send", "before_send"))
                if mode == "before_send":
                    return Reply(0, None, hang_seconds=cfg.timeout_sleep_ms / 1000.0), None

            wait = self._rate_limit_wait(account_id, now)
            if wait > 0:
                self.stats["rate_limited"] += 1
                retry_after = max(int(wait + 0.999), 1)
                reply = _error(
                    429,
                    "rate_limited",
                    "Too many messages for this account; slow down.",
                    request_outcome="not_sent",
                )
                reply.headers["Retry-After"] = (
                    formatdate(now + retry_after, usegmt=True)
                    if cfg.retry_after_http_date
                    else str(retry_after)
                )
                reply.body["_meta"] = self._meta(account_id, now=now, credits_used=0)
                return reply, None

            # Admitted: this is the moment the platform "sees" the message.
            if cfg.rate_limit_per_minute > 0:
                self._windows.setdefault(account_id, deque()).append(now)
            self._last_send[account_id] = now
            if key is not None:
                self._idempotency[(account_id, key)] = _IdempotencyEntry(fingerprint, now)
            account = self._account(account_id)
            price = body.get("price", 0) or 0
            message_id = next(self._ids)
            self._credits -= 1
            data = {
                "id": message_id,
                "text": body["text"],
                "price": price,
                "isFree": price == 0,
                "lockedText": bool(body.get("lockedText", False)),
                "mediaCount": len(body.get("mediaFiles", [])),
                "media": [{"id": m} for m in body.get("mediaFiles", [])],
                "previews": list(body.get("previews", [])),
                "fromUser": {"id": account.onlyfans_id, "_view": "s"},
                "isOpened": False,
                "isNew": False,
                "createdAt": _now_iso(now),
                "changedAt": _now_iso(now),
                "cancelSeconds": 0,
            }
            self._sends.append(
                {
                    "account": account_id,
                    "chat_id": chat_id,
                    "idempotency_key": key,
                    "text_length": len(body["text"]),
                    "price": price,
                    "media_count": len(body.get("mediaFiles", [])),
                    # What a test asserts about media: the ids as they arrived.
                    "media_files": list(body.get("mediaFiles", [])),
                    "previews": list(body.get("previews", [])),
                    "arrived_at": now,
                    "platform_message_id": str(message_id),
                }
            )
            self._chats.setdefault((account_id, chat_id), []).append(
                {**data, "media": list(data["media"])}
            )
            self._unread.pop((account_id, chat_id), None)
            reply = Reply(
                200, {"data": data, "_meta": self._meta(account_id, now=now, credits_used=1)}
            )
            if cfg.latency_ms > 0:
                reply.delay_seconds = cfg.latency_ms / 1000.0
            if timeout:
                reply.hang_seconds = cfg.timeout_sleep_ms / 1000.0
        return None, {"account": account_id, "key": key, "reply": reply}

    def send_finish(self, ticket: dict[str, Any]) -> Reply:
        reply: Reply = ticket["reply"]
        key = ticket["key"]
        if key is not None:
            with self._lock:
                entry = self._idempotency.get((ticket["account"], key))
                if entry is not None:
                    entry.done, entry.status, entry.body = True, reply.status, reply.body
        return reply

    def send_abandon(self, ticket: dict[str, Any]) -> None:
        """Forget an in-flight key whose answer never got stored (a 5xx after admission)."""
        if ticket["key"] is not None:
            with self._lock:
                self._idempotency.pop((ticket["account"], ticket["key"]), None)

    # --- reading -----------------------------------------------------------------------
    def fan_message_record(
        self, account_id: str, fan: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        """Keep a fan's incoming message so chat reads see what webhooks announced."""
        chat_id = str(fan["id"])
        with self._lock:
            self._account(account_id)
            self._fan_upsert(account_id, fan, now=time.time())
            self._chats.setdefault((account_id, chat_id), []).append(dict(payload))
            self._unread[(account_id, chat_id)] += 1

    def next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def mass_copy_record(
        self, account_id: str, fan: dict[str, Any], payload: dict[str, Any]
    ) -> None:
        """Keep a fan's copy of a mass message in their chat (onlyfans/sandbox/mass.py)."""
        with self._lock:
            self._account(account_id)
            self._chats.setdefault((account_id, str(fan["id"])), []).append(dict(payload))

    def mass_copies_remove(self, account_id: str, copy_ids: dict[str, int]) -> int:
        """Take an unsent mass message's copies out of the fans' chats; how many went."""
        removed = 0
        with self._lock:
            for user_id, copy_id in copy_ids.items():
                chat = self._chats.get((account_id, user_id))
                if not chat:
                    continue
                kept = [m for m in chat if m.get("id") != copy_id]
                removed += len(chat) - len(kept)
                self._chats[(account_id, user_id)] = kept
        return removed

    def _fan_json(self, account_id: str, chat_id: str) -> dict[str, Any]:
        fan = self._fans.get((account_id, chat_id))
        if fan is None:
            fan = {"id": int(chat_id) if chat_id.isdigit() else chat_id}
            fan["username"] = f"u{chat_id}"
            fan["name"] = f"Fan {chat_id}"
        # A chat's fan is the short user object: no subscription data.
        return {
            "id": fan["id"],
            "name": fan.get("name", ""),
            "username": fan.get("username", ""),
            "displayName": fan.get("name", ""),
        }

    def chats_json(self, account_id: str, *, limit: int, offset: int) -> dict[str, Any]:
        with self._lock:
            rows = [
                (messages[-1].get("createdAt", ""), chat_id, messages)
                for (acct, chat_id), messages in self._chats.items()
                if acct == account_id and messages
            ]
            rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
            page = rows[offset : offset + limit]
            data = [
                {
                    "fan": self._fan_json(account_id, chat_id),
                    "lastMessage": dict(messages[-1]),
                    "unreadMessagesCount": self._unread.get((account_id, chat_id), 0),
                    "countPinnedMessages": 0,
                }
                for _, chat_id, messages in page
            ]
            has_more = offset + limit < len(rows)
            meta = self._read_meta(account_id, now=time.time())
        next_page = None
        if has_more:
            next_page = f"/api/{account_id}/chats?limit={limit}&offset={offset + limit}"
        return {"data": data, "_pagination": {"next_page": next_page}, "_meta": meta}

    def messages_json(
        self, account_id: str, chat_id: str, *, limit: int, before_id: int | None
    ) -> dict[str, Any]:
        with self._lock:
            messages = list(reversed(self._chats.get((account_id, chat_id), [])))
            if before_id is not None:
                messages = [m for m in messages if int(m.get("id", 0)) < before_id]
            page = [dict(m) for m in messages[:limit]]
            has_more = len(messages) > limit
            meta = self._read_meta(account_id, now=time.time())
        next_page = None
        if has_more and page:
            next_page = (
                f"/api/{account_id}/chats/{chat_id}/messages?limit={limit}&order=desc"
                f"&first_id={page[-1]['id']}"
            )
        return {"data": page, "_pagination": {"next_page": next_page}, "_meta": meta}

    def chat_messages(self, account_id: str, chat_id: str) -> list[dict[str, Any]]:
        """A copy of the chat's messages, oldest first (the vault's chat media reads them)."""
        with self._lock:
            return copy.deepcopy(self._chats.get((account_id, chat_id), []))

    def chat_message_add(
        self, account_id: str, chat_id: str, message: dict[str, Any], *, from_fan: bool
    ) -> dict[str, Any]:
        """Put a message into a chat's history in time order, from the fan or the creator."""
        with self._lock:
            creator = self._account(account_id)
            fan = self._fan_upsert(
                account_id, {"id": int(chat_id) if chat_id.isdigit() else chat_id}, now=time.time()
            )
            sender = (
                {"id": fan["id"], "name": fan["name"], "username": fan["username"]}
                if from_fan
                else {"id": creator.onlyfans_id, "_view": "s"}
            )
            stored = {**message, "fromUser": sender}
            chat = self._chats.setdefault((account_id, chat_id), [])
            chat.append(stored)
            chat.sort(key=lambda m: (m.get("createdAt", ""), int(m.get("id", 0))))
            return copy.deepcopy(stored)

    def read_meta(self, account_id: str) -> dict[str, Any]:
        with self._lock:
            return self._read_meta(account_id, now=time.time())

    # --- reads: their limit, and the fans list -------------------------------------------
    def _read_meta(self, account_id: str, *, now: float) -> dict[str, Any]:
        limit = self.config.read_rate_limit_per_minute
        window = self._read_windows.get(account_id) or deque()
        while window and window[0] <= now - 60.0:
            window.popleft()
        return {
            "_credits": {"used": 1, "balance": self._credits, "note": "sandbox"},
            "_rate_limits": {
                "limit_minute": limit or None,
                "remaining_minute": max(limit - len(window), 0) if limit else None,
            },
        }

    def read_admit(self, account_id: str) -> Reply | None:
        """Count one read against the account's read limit: None when admitted, else the
        429 (with ``Retry-After``) or the injected failure to answer instead."""
        with self._lock:
            now = time.time()
            cfg = self.config
            if cfg.read_fail_next > 0:
                cfg.read_fail_next -= 1
                self.stats["failures_injected"] += 1
                return _error(cfg.fail_status, "internal_error", "Sandbox injected failure.")
            limit = cfg.read_rate_limit_per_minute
            if limit <= 0:
                return None
            window = self._read_windows.setdefault(account_id, deque())
            while window and window[0] <= now - 60.0:
                window.popleft()
            if len(window) >= limit:
                self.stats["rate_limited"] += 1
                retry_after = max(int(window[0] + 60.0 - now + 0.999), 1)
                reply = _error(429, "rate_limited", "Too many requests; slow down.")
                reply.headers["Retry-After"] = (
                    formatdate(now + retry_after, usegmt=True)
                    if cfg.retry_after_http_date
                    else str(retry_after)
                )
                reply.body["_meta"] = self._read_meta(account_id, now=now)
                return reply
            window.append(now)
            self._credits -= 1
            return None

    def _fan_upsert(self, account_id: str, fan: dict[str, Any], *, now: float) -> dict[str, Any]:
        """Create or change a fan (under the lock). New fans subscribe now and spent nothing."""
        key = (account_id, str(fan["id"]))
        record = self._fans.get(key)
        if record is None:
            record = {
                "id": fan["id"],
                "username": f"u{fan['id']}",
                "name": f"Fan {fan['id']}",
                "subscribedOn": True,
                "subscribedOnExpiredNow": False,
                "subscribedOnData": {
                    "subscribeAt": _now_iso(now),
                    "expiredAt": _now_iso(now + 30 * 86400),
                    "totalSumm": 0,
                    "status": None,
                },
            }
            self._fans[key] = record
        for name, value in fan.items():
            if name == "subscribedOnData" and isinstance(value, dict):
                record["subscribedOnData"] = {**record["subscribedOnData"], **value}
            elif name != "id":
                record[name] = value
        return record

    def fans_seed(self, spec: dict[str, Any]) -> dict[str, Any]:
        """``POST /_sandbox/fans/seed``: add or change an account's fans and their chats.

        spec keys: ``account_id`` (required); ``fans`` (fan objects in the list's own shape,
        merged into existing ones by ``id``); ``count`` generated fans numbered from ``start``
        (default 1: ids ``base + n``, usernames ``u<id>``, every third expired, spend
        ``n`` dollars); ``messages_per_fan`` (history for each seeded fan: alternately from
        the fan and from the creator, a minute apart, ending ``minutes_ago`` before now).
        """
        account_id = str(spec["account_id"])
        fans: list[dict[str, Any]] = [dict(f) for f in spec.get("fans") or []]
        count, start = int(spec.get("count", 0)), int(spec.get("start", 1))
        base = 600_000_000 + (zlib.crc32(account_id.encode()) % 1_000_000) * 1000
        with self._lock:
            now = time.time()
            for n in range(start, start + count):
                expired = n % 3 == 0
                fans.append(
                    {
                        "id": base + n,
                        "username": f"u{base + n}",
                        "name": f"Fan {n}",
                        "subscribedOn": not expired,
                        "subscribedOnExpiredNow": expired,
                        "subscribedOnData": {
                            "subscribeAt": _now_iso(now - 90 * 86400 + n),
                            "expiredAt": _now_iso(now + (-5 if expired else 25) * 86400),
                            "totalSumm": n,
                        },
                    }
                )
            self._account(account_id)
            records = [self._fan_upsert(account_id, fan, now=now) for fan in fans]
            per_fan = int(spec.get("messages_per_fan", 0))
            ended = now - float(spec.get("minutes_ago", 5)) * 60
            creator = self._account(account_id)
            for record in records:
                chat = self._chats.setdefault((account_id, str(record["id"])), [])
                for i in range(per_fan):
                    from_fan = i % 2 == 0
                    sender = (
                        {"id": record["id"], "name": record["name"], "username": record["username"]}
                        if from_fan
                        else {"id": creator.onlyfans_id, "_view": "s"}
                    )
                    chat.append(
                        {
                            "id": next(self._ids),
                            "text": f"{'fan' if from_fan else 'creator'} line {i + 1}",
                            "fromUser": sender,
                            "price": 0,
                            "isFree": True,
                            "isTip": False,
                            "media": [],
                            "createdAt": _now_iso(ended - (per_fan - 1 - i) * 60),
                        }
                    )
                if per_fan:
                    chat.sort(key=lambda m: (m.get("createdAt", ""), int(m.get("id", 0))))
            return {"fans": [copy.deepcopy(r) for r in records]}

    def fans_json(
        self, account_id: str, *, limit: int, offset: int, kind: str = "all"
    ) -> dict[str, Any]:
        """``GET /api/{account}/fans/{all|active|expired}``: newest fans first, wrapped as
        ``{"list", "hasMore"}``."""
        with self._lock:
            rows = [
                r
                for (acct, _), r in self._fans.items()
                if acct == account_id
                and (kind == "all" or (kind == "expired") == bool(r.get("subscribedOnExpiredNow")))
            ]
            rows.reverse()
            page = [copy.deepcopy(r) for r in rows[offset : offset + limit]]
            has_more = offset + limit < len(rows)
            meta = self._read_meta(account_id, now=time.time())
        next_page = None
        if has_more:
            next_page = f"/api/{account_id}/fans/{kind}?limit={limit}&offset={offset + limit}"
        return {
            "data": {"list": page, "hasMore": has_more},
            "_pagination": {"next_page": next_page},
            "_meta": meta,
        }
