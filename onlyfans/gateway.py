"""The platform facade: the only module other apps call to reach the gateway.

Everything that crosses it is a frozen dataclass or a typed error from ``onlyfans.contracts``;
HTTP, the SDK and its exceptions stay inside. Nothing here retries: the send pipeline does,
with the same idempotency key. Logs carry events and ids, never message text or fan data.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpcore
import httpx
import onlyfansapi
import structlog
from django.conf import settings
from onlyfansapi._utils import path_template

from onlyfans.client import api_client, files_client, send_channel
from onlyfans.contracts import (
    GatewayAccountUnavailable,
    GatewayConflict,
    GatewayError,
    GatewayRateLimited,
    GatewayRejected,
    GatewayTransientError,
    MassMessageStatus,
    MassSendRequest,
    PlatformAccount,
    PlatformChat,
    PlatformFan,
    PlatformMediaMessage,
    PlatformMessage,
    PlatformMessageMedia,
    PlatformPage,
    PlatformVaultItem,
    PlatformVaultList,
    PlatformVaultListRef,
    SendRequest,
    SendResult,
)

log = structlog.get_logger(__name__)

IDEMPOTENCY_CONFLICT = "IDEMPOTENCY_CONFLICT"
ACCOUNT_NOT_FOUND = "account_not_found"
MESSAGES_PAGE_MAX = 100  # the gateway's largest page of chat messages
FANS_PAGE_MAX = 20  # the platform gives at most 20 fans a page
# Codes and phrases by which the gateway says the creator's session is gone.
_DISCONNECTED_CODES = frozenset(
    {"account_not_authenticated", "account_disconnected", "session_expired", "not_authenticated"}
)
_DISCONNECTED_PHRASES = ("not authenticated", "disconnected", "reconnect", "session expired")


# --- sending ------------------------------------------------------------------------------
def message_send(request: SendRequest) -> SendResult:
    """Send one message to a fan's chat, exactly once per ``request.idempotency_key``.

    Reuse the key on every retry of the same message: the gateway replays a stored answer
    (``SendResult.replayed``) instead of sending twice. Raises ``GatewayTransientError`` (retry
    later, same key; ``GatewayRateLimited`` and ``GatewayConflict`` are kinds of it),
    ``GatewayAccountUnavailable`` (the creator must reconnect) or ``GatewayRejected`` (never
    retry). A timeout is transient: it proves nothing about delivery, which is why the key exists.
    """
    started = time.perf_counter()
    if not request.account_platform_id or not request.chat_id:
        raise ValueError("A send needs an account and a chat id.")  # as the SDK refuses it
    # The SDK's request (``chats.messages.send``: the same path, headers and JSON body),
    # sent on the process's httpcore pool (``onlyfans.client.send_channel``). Screening for
    # banned words: the gateway answers 422 listing them (GatewayRejected).
    body: dict[str, Any] = {}
    if request.block_banned_words:
        body["blockBannedWords"] = request.block_banned_words
    body |= {
        "mediaFiles": [_media_id(m) for m in request.media_ids],
        "previews": [_media_id(m) for m in request.preview_ids],
        "price": _dollars(request.price_cents),
        "text": request.text,
    }
    status, headers, content = _send_call(
        path_template(
            "/api/{account}/chats/{chat_id}/messages",
            account=request.account_platform_id,
            chat_id=request.chat_id,
        ),
        body=body,
        idempotency_key=request.idempotency_key,
        account=request.account_platform_id,
    )
    payload = json.loads(content)
    replayed = headers.get("idempotent-replayed", "").lower() == "true"
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict) or data.get("id") is None:
        log.warning("gateway.send_invalid_reply", account=request.account_platform_id)
        raise GatewayError("The gateway's reply has no message id.", code="invalid_reply")
    result = SendResult(
        platform_message_id=str(data["id"]),
        created_at=_datetime(data.get("createdAt")),
        replayed=replayed,
        rate_limit_remaining=_rate_limit_remaining(payload),
    )
    log.info(
        "gateway.send",
        account=request.account_platform_id,
        status=status,
        replayed=replayed,
        platform_message_id=result.platform_message_id,
        rate_limit_remaining=result.rate_limit_remaining,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return result


def _send_call(
    path: str, *, body: dict[str, Any], idempotency_key: str, account: str
) -> tuple[int, dict[str, str], bytes]:
    """POST the send request; (status, headers lower-cased, body) of a 2xx/3xx answer. Errors
    as the SDK raises them, translated by ``_gateway_error``: a timeout, any other transport
    failure (a connection error), a 4xx/5xx with its body."""
    channel = send_channel()
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    data = content.encode()
    request_headers = [
        *channel.headers,
        (b"Idempotency-Key", idempotency_key.encode()),
        (b"Content-Length", str(len(data)).encode()),
    ]
    try:
        response = channel.pool.request(
            "POST",
            channel.origin + path,
            headers=request_headers,
            content=data,
            extensions={"timeout": channel.timeouts},
        )
    except Exception as exc:  # as the SDK: a timeout, or any other failure is a connection's
        error: GatewayError = (
            _timed_out() if isinstance(exc, httpcore.TimeoutException) else _unreachable()
        )
        _log_failure("send", account, error)
        raise error from exc
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
    if response.status < 400:
        return response.status, headers, response.content
    text = response.content.decode("utf-8", errors="replace").strip()
    parsed: object = text
    try:
        parsed = json.loads(text)
        message = f"Error code: {response.status} - {parsed}"
    except ValueError:
        message = text or f"Error code: {response.status}"
    error = _status_error(
        response.status, parsed, fallback=message, retry_after=headers.get("retry-after")
    )
    _log_failure("send", account, error)
    raise error


# --- reading (sync) ---------------------------------------------------------------------------
def accounts_list() -> list[PlatformAccount]:
    """Every creator account connected to the gateway, with whether its session still works."""
    with _gateway_errors("accounts_list"):
        payload = api_client().accounts.with_raw_response.list().json()
    # This endpoint answers a bare list (the SDK's type); accept a wrapped one too.
    return [
        PlatformAccount(
            platform_account_id=str(item["id"]),
            display_name=item.get("display_name") or item.get("onlyfans_username") or "",
            is_authenticated=bool(item.get("is_authenticated")),
        )
        for item in _data_list(payload)
        if item.get("id")
    ]


def fans_page(*, account_platform_id: str, offset: int, limit: int) -> PlatformPage[PlatformFan]:
    """One page of the account's fans (``GET /api/{account}/fans/all``), newest first, with
    their subscription state and dates and their lifetime spend when the gateway gives them.

    ``limit`` is capped at the gateway's maximum (``FANS_PAGE_MAX``). Raises the contract's
    errors: ``GatewayRateLimited`` (wait ``retry_after_seconds``), ``GatewayTransientError``,
    ``GatewayAccountUnavailable``.
    """
    with _gateway_errors("fans_page", account=account_platform_id):
        payload = (
            api_client()
            .fans.with_raw_response.list_all(
                account_platform_id, limit=min(max(limit, 1), FANS_PAGE_MAX), offset=offset
            )
            .json()
        )
    fans = tuple(fan for item in _data_list(payload) if (fan := _fan(item)) is not None)
    return PlatformPage(
        items=fans,
        has_more=_has_more(payload),
        rate_limit_remaining=_rate_limit_remaining(payload),
    )


def chats_page(*, account_platform_id: str, offset: int, limit: int) -> PlatformPage[PlatformChat]:
    """One page of an account's chats, most recent first (for sync; webhooks are the live feed)."""
    with _gateway_errors("chats_page", account=account_platform_id):
        payload = (
            api_client()
            .chats.with_raw_response.list(
                account_platform_id, limit=str(limit), offset=str(offset), order="recent"
            )
            .json()
        )
    chats = []
    for item in _data_list(payload):
        fan = item.get("fan") or {}
        if fan.get("id") is None:
            continue
        last = item.get("lastMessage") or {}
        chats.append(
            PlatformChat(
                fan=PlatformFan(
                    platform_fan_id=str(fan["id"]),
                    username=fan.get("username") or "",
                    display_name=fan.get("name") or fan.get("displayName") or "",
                ),
                unread_count=int(item.get("unreadMessagesCount") or 0),
                last_message_at=_datetime(last.get("createdAt")),
            )
        )
    return PlatformPage(
        items=tuple(chats),
        has_more=_has_more(payload),
        rate_limit_remaining=_rate_limit_remaining(payload),
    )


def chats_list(*, account_platform_id: str, limit: int, offset: int) -> list[PlatformChat]:
    """One page of an account's chats as a list (see ``chats_page``)."""
    return list(
        chats_page(account_platform_id=account_platform_id, offset=offset, limit=limit).items
    )


def chat_messages_page(
    *, account_platform_id: str, chat_id: str, limit: int
) -> PlatformPage[PlatformMessage]:
    """A chat's newest ``limit`` messages (at most ``MESSAGES_PAGE_MAX``), newest first, in one
    request: the recent history a sync imports. Outgoing ones have ``from_fan`` False.

    Reading history may mark the chat read on the platform: use it for backfill only.
    """
    with _gateway_errors("chat_messages_page", account=account_platform_id):
        payload: Any = (
            api_client()
            .chats.messages.with_raw_response.list(
                chat_id,
                account=account_platform_id,
                limit=str(min(max(limit, 1), MESSAGES_PAGE_MAX)),
                order="desc",
            )
            .json()
        )
    return PlatformPage(
        items=tuple(_message(item, chat_id=chat_id) for item in _data_list(payload)),
        has_more=_has_more(payload),
        rate_limit_remaining=_rate_limit_remaining(payload),
    )


def messages_list(*, account_platform_id: str, chat_id: str, limit: int) -> list[PlatformMessage]:
    """Up to ``limit`` messages of one chat, newest first, following ``_pagination.next_page``.

    Reading history may mark the chat read on the platform: use it for backfill only.
    """
    client = api_client()
    messages: list[PlatformMessage] = []
    with _gateway_errors("messages_list", account=account_platform_id):
        payload: Any = client.chats.messages.with_raw_response.list(
            chat_id,
            account=account_platform_id,
            limit=str(min(limit, MESSAGES_PAGE_MAX)),
            order="desc",
        ).json()
        while True:
            messages.extend(_message(item, chat_id=chat_id) for item in _data_list(payload))
            next_page = _next_page(payload)
            if len(messages) >= limit or not next_page:
                break
            payload = client.get(next_page, cast_to=object)
    return messages[:limit]


# --- mass messages ----------------------------------------------------------------------------
def mass_message_send(request: MassSendRequest) -> MassMessageStatus:
    """Send one message to many fans at once (``POST /api/{account}/mass-messaging``); the
    platform makes each fan's copy itself and counts them down in ``pending``.

    The gateway documents no idempotency key here: after a ``GatewayTransientError`` (timeout,
    5xx) the message may or may not exist, and only ``mass_messages_list`` can tell. A 422
    listing banned words (with ``block_banned_words``) is a ``GatewayRejected``.
    """
    started = time.perf_counter()
    options: dict[str, Any] = {}
    if request.media_ids:
        options["media_files"] = [_media_id(m) for m in request.media_ids]
    if request.price_cents:
        options["price"] = _dollars(request.price_cents)
    if request.block_banned_words:
        options["block_banned_words"] = request.block_banned_words
    with _gateway_errors("mass_send", account=request.account_platform_id):
        raw = api_client().mass_messaging.with_raw_response.send(
            request.account_platform_id,
            text=request.text,
            user_ids=list(request.user_ids),
            **options,
        )
        payload = raw.json()
    data = payload.get("data") if isinstance(payload, dict) else None
    status = _mass_status(data)
    if status is None:
        raise GatewayError("The gateway's reply has no mass message id.", code="invalid_reply")
    log.info(
        "gateway.mass_send",
        account=request.account_platform_id,
        status=raw.status_code,
        platform_mass_id=status.platform_mass_id,
        fans=len(request.user_ids),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return status


def mass_messages_list(*, account_platform_id: str) -> list[MassMessageStatus]:
    """The account's pending, scheduled and recently sent mass messages, newest first."""
    with _gateway_errors("mass_list", account=account_platform_id):
        payload = api_client().mass_messaging.with_raw_response.list(account_platform_id).json()
    return [s for s in (_mass_status(item) for item in _data_list(payload)) if s is not None]


def mass_message_retrieve(*, account_platform_id: str, platform_mass_id: str) -> MassMessageStatus:
    """One mass message's counters (``pending``, ``total``, ``isDone``, ``canUnsend``)."""
    with _gateway_errors("mass_retrieve", account=account_platform_id):
        payload = (
            api_client()
            .mass_messaging.with_raw_response.retrieve(
                platform_mass_id, account=account_platform_id
            )
            .json()
        )
    status = _mass_status(payload.get("data") if isinstance(payload, dict) else None)
    if status is None:
        raise GatewayError("The gateway's reply has no mass message.", code="invalid_reply")
    return status


def mass_message_unsend(*, account_platform_id: str, platform_mass_id: str) -> MassMessageStatus:
    """Unsend a mass message while the platform's window lasts (``DELETE
    /api/{account}/mass-messaging/{id}``, the SDK's ``mass_messaging.delete``): every fan's copy
    is withdrawn; copies already bought stay viewable for their buyers.

    Raises ``GatewayRejected`` when the window has passed (or it was unsent already: read it
    with ``mass_message_retrieve``, whose ``is_canceled`` says so), ``GatewayTransientError``
    when the outcome is unknown (a second call is harmless: the first one's success makes it
    a rejection). The reply's status is the message after the unsend; a gateway that answers
    only ``success`` gives a status with ``is_canceled`` set and nothing else known.
    """
    started = time.perf_counter()
    with _gateway_errors("mass_unsend", account=account_platform_id):
        raw = api_client().mass_messaging.with_raw_response.delete(
            platform_mass_id, account=account_platform_id
        )
        payload = raw.json()
    data = payload.get("data") if isinstance(payload, dict) else None
    queue = data.get("queue") if isinstance(data, dict) else None
    status = _mass_status(queue)
    if status is None:
        if not (isinstance(data, dict) and data.get("success")):
            raise GatewayError(
                "The gateway's reply does not confirm the unsend.", code="invalid_reply"
            )
        status = MassMessageStatus(
            platform_mass_id=platform_mass_id, total=0, pending=0, is_done=False, is_canceled=True
        )
    log.info(
        "gateway.mass_unsend",
        account=account_platform_id,
        status=raw.status_code,
        platform_mass_id=platform_mass_id,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return status


def _mass_status(data: object) -> MassMessageStatus | None:
    if not isinstance(data, dict) or data.get("id") is None:
        return None
    total = int(data.get("total") or 0)
    pending = int(data.get("pending") or 0)
    return MassMessageStatus(
        platform_mass_id=str(data["id"]),
        total=total,
        pending=pending,
        is_done=bool(data.get("isDone", pending == 0)),
        is_canceled=bool(data.get("isCanceled")),
        can_unsend=bool(data.get("canUnsend")),
        unsend_seconds=int(data.get("unsendSeconds") or 0),
        created_at=_datetime(data.get("date") or data.get("createdAt")),
    )


# --- the vault --------------------------------------------------------------------------------
VAULT_PAGE_MIN, VAULT_PAGE_MAX = 10, 100  # the gateway's bounds of ``limit``
VAULT_MEDIA_TYPES = frozenset({"photo", "gif", "video", "audio"})
# ``chats/{id}/media`` filters by plural names.
_CHAT_MEDIA_TYPES = {"photo": "photos", "video": "videos", "audio": "audios"}


def vault_items_page(
    *,
    account_platform_id: str,
    offset: int,
    limit: int,
    media_type: str | None = None,
    platform_list_id: str | None = None,
    order: str = "recent",
    descending: bool = True,
) -> PlatformPage[PlatformVaultItem]:
    """One page of the creator's vault (``GET /api/{account}/media/vault``), by ``order``
    (``recent``, ``most-liked`` or ``highest-tips``), optionally one type or one list.

    ``limit`` is held to the gateway's 10-100. Items' ``thumb_url`` are signed and expire
    within minutes: fetch them now (``media_file_fetch``), never keep them. Raises the
    contract's errors (``GatewayRateLimited`` with ``retry_after_seconds``, …).
    """
    options: dict[str, Any] = {}
    if media_type:
        options["type"] = media_type
    if platform_list_id:
        options["list"] = int(platform_list_id) if platform_list_id.isdigit() else platform_list_id
    with _gateway_errors("vault_items_page", account=account_platform_id):
        payload = (
            api_client()
            .media.vault.with_raw_response.list(
                account_platform_id,
                limit=min(max(limit, VAULT_PAGE_MIN), VAULT_PAGE_MAX),
                offset=max(offset, 0),
                field=order,  # type: ignore[arg-type]  # one of the SDK's literals, checked by it
                sort="desc" if descending else "asc",
                **options,
            )
            .json()
        )
    items = tuple(i for item in _data_list(payload) if (i := _vault_item(item)) is not None)
    return PlatformPage(
        items=items,
        has_more=_has_more(payload),
        rate_limit_remaining=_rate_limit_remaining(payload),
    )


def vault_item_get(
    *, account_platform_id: str, platform_media_id: str
) -> tuple[PlatformVaultItem | None, int | None]:
    """One vault item (``GET /api/{account}/media/vault/{id}``) and the quota left:
    ``(None, …)`` when the platform no longer has it (a 404 that is not the account's)."""
    if not platform_media_id.isdigit():
        return None, None
    try:
        with _gateway_errors("vault_item_get", account=account_platform_id):
            payload = (
                api_client()
                .media.vault.with_raw_response.retrieve(
                    int(platform_media_id), account=account_platform_id
                )
                .json()
            )
    except GatewayRejected as exc:
        if exc.status == 404:
            return None, None
        raise
    data = payload.get("data") if isinstance(payload, dict) else None
    item = _vault_item(data) if isinstance(data, dict) else None
    return item, _rate_limit_remaining(payload)


def vault_lists_page(
    *, account_platform_id: str, offset: int, limit: int
) -> PlatformPage[PlatformVaultList]:
    """One page of the creator's vault lists (``GET /api/{account}/media/vault/lists``) with
    their counts per media type."""
    with _gateway_errors("vault_lists_page", account=account_platform_id):
        payload = (
            api_client()
            .media.vault.lists.with_raw_response.list(
                account_platform_id, limit=min(max(limit, 1), 100), offset=max(offset, 0)
            )
            .json()
        )
    lists = []
    for item in _data_list(payload):
        if item.get("id") is None:
            continue
        lists.append(
            PlatformVaultList(
                platform_list_id=str(item["id"]),
                name=str(item.get("name") or "")[:200],
                list_type=str(item.get("type") or "")[:50],
                photo_count=_count(item.get("photosCount")),
                video_count=_count(item.get("videosCount")),
                gif_count=_count(item.get("gifsCount")),
                audio_count=_count(item.get("audiosCount")),
            )
        )
    return PlatformPage(
        items=tuple(lists),
        has_more=_has_more(payload),
        rate_limit_remaining=_rate_limit_remaining(payload),
    )


def chat_media_page(
    *,
    account_platform_id: str,
    chat_id: str,
    offset: int,
    limit: int,
    media_type: str | None = None,
) -> PlatformPage[PlatformMediaMessage]:
    """One page of the messages with media in one chat, both directions, newest first
    (``GET /api/{account}/chats/{chat_id}/media``): what a fan was sent before the product."""
    options: dict[str, Any] = {}
    if media_type in _CHAT_MEDIA_TYPES:
        options["type"] = _CHAT_MEDIA_TYPES[media_type]
    with _gateway_errors("chat_media_page", account=account_platform_id):
        payload = (
            api_client()
            .chats.with_raw_response.list_media(
                chat_id,
                account=account_platform_id,
                limit=str(min(max(limit, 1), 100)),
                offset=str(max(offset, 0)),
                **options,
            )
            .json()
        )
    messages = []
    for item in _data_list(payload):
        if item.get("id") is None:
            continue
        media = tuple(
            PlatformMessageMedia(
                platform_media_id=str(m.get("id") if isinstance(m, dict) else m),
                media_type=_media_type(m.get("type") if isinstance(m, dict) else None),
            )
            for m in item.get("media") or []
            if (m.get("id") if isinstance(m, dict) else m) is not None
        )
        previews = item.get("previews") or []
        sender = item.get("fromUser") or {}
        messages.append(
            PlatformMediaMessage(
                platform_message_id=str(item["id"]),
                from_fan=str(sender.get("id")) == str(chat_id),
                price_cents=_cents(item.get("price")) or 0,
                is_opened=bool(item.get("isOpened")),
                created_at=_datetime(item.get("createdAt")),
                media=media,
                preview_ids=tuple(str(p.get("id") if isinstance(p, dict) else p) for p in previews),
            )
        )
    return PlatformPage(
        items=tuple(messages),
        has_more=_has_more(payload),
        rate_limit_remaining=_rate_limit_remaining(payload),
    )


def media_file_fetch(*, url: str, max_bytes: int) -> bytes:
    """The bytes behind one of the platform's signed file URLs (its CDN), at most
    ``max_bytes``. The URL is neither logged nor kept. Raises ``GatewayRejected`` when the
    CDN refuses (an expired signature is a 403: list the item again for a fresh URL) or the
    file is too large, ``GatewayTransientError`` for timeouts and 5xx."""
    try:
        with files_client().stream("GET", url) as response:
            if response.status_code == 429 or response.status_code >= 500:
                raise GatewayTransientError(
                    "The file server is unavailable.",
                    code=f"file_http_{response.status_code}",
                    status=response.status_code,
                )
            if response.status_code != 200:
                raise GatewayRejected(
                    "The file server refused the file.",
                    code=f"file_http_{response.status_code}",
                    status=response.status_code,
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise GatewayRejected("The file is too large.", code="file_too_large")
                chunks.append(chunk)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise GatewayRejected("The file URL is not valid.", code="invalid_file_url") from exc
    except httpx.TimeoutException as exc:
        raise GatewayTransientError(
            "The file server did not answer in time.", code="timeout"
        ) from exc
    except httpx.HTTPError as exc:
        raise GatewayTransientError(
            "Could not reach the file server.", code="connection_error"
        ) from exc
    return b"".join(chunks)


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _media_type(value: object) -> str:
    kind = str(value or "").lower()
    return kind if kind in VAULT_MEDIA_TYPES else "photo"


def _file_url(files: object, *names: str) -> str | None:
    """The first of ``names`` in an item's ``files`` that has a URL (a string, or an object
    with ``url``, as the endpoints differ)."""
    if not isinstance(files, dict):
        return None
    for name in names:
        entry = files.get(name)
        url = entry.get("url") if isinstance(entry, dict) else entry
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            return url
    return None


def _vault_item(item: dict[str, Any]) -> PlatformVaultItem | None:
    if item.get("id") is None:
        return None
    raw_counters = item.get("counters")
    counters: dict[str, Any] = raw_counters if isinstance(raw_counters, dict) else {}
    duration = item.get("duration")
    lists = tuple(
        PlatformVaultListRef(
            platform_list_id=str(state["id"]),
            name=str(state.get("name") or "")[:200],
            list_type=str(state.get("type") or "")[:50],
        )
        for state in item.get("listStates") or []
        if isinstance(state, dict) and state.get("id") is not None and state.get("hasMedia", True)
    )
    return PlatformVaultItem(
        platform_media_id=str(item["id"]),
        media_type=_media_type(item.get("type")),
        created_at=_datetime(item.get("createdAt")),
        duration_seconds=duration if isinstance(duration, int) and duration > 0 else None,
        is_ready=bool(item.get("isReady", True)),
        has_error=bool(item.get("hasError", False)),
        has_custom_preview=bool(item.get("hasCustomPreview", False)),
        likes_count=_count(counters.get("likesCount")),
        tips_cents=_cents(counters.get("tipsSumm")) or 0,
        lists=lists,
        thumb_url=_file_url(item.get("files"), "thumb", "squarePreview"),
    )


# --- webhooks ---------------------------------------------------------------------------------
def webhook_signature(body: bytes, *, secret: str | None = None) -> str:
    """Hex HMAC-SHA256 of the raw body: the gateway's ``Signature`` header."""
    key = settings.ONLYFANS_WEBHOOK_SECRET if secret is None else secret
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def webhook_signature_valid(body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` signs ``body`` with our secret (constant-time comparison)."""
    if not signature:
        return False
    expected = webhook_signature(body).encode()
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8", "replace"))


# --- translation ------------------------------------------------------------------------------
@contextmanager
def _gateway_errors(operation: str, *, account: str | None = None) -> Iterator[None]:
    """Turn SDK and transport failures into the contract's errors, and log the event."""
    try:
        yield
    except onlyfansapi.APIError as exc:
        error = _gateway_error(exc)
        _log_failure(operation, account, error)
        raise error from exc


def _log_failure(operation: str, account: str | None, error: GatewayError) -> None:
    log.warning(
        f"gateway.{operation}_failed",
        account=account,
        status=error.status,
        code=error.code,
        error_type=type(error).__name__,
    )


def _gateway_error(exc: onlyfansapi.APIError) -> GatewayError:
    if isinstance(exc, onlyfansapi.APITimeoutError):
        return _timed_out()
    if isinstance(exc, onlyfansapi.APIConnectionError):
        return _unreachable()
    if not isinstance(exc, onlyfansapi.APIStatusError):
        return GatewayTransientError(exc.message, code="invalid_reply")
    return _status_error(
        exc.status_code,
        exc.body,
        fallback=exc.message,
        retry_after=exc.response.headers.get("Retry-After"),
    )


def _timed_out() -> GatewayTransientError:
    return GatewayTransientError("The gateway did not answer in time.", code="timeout")


def _unreachable() -> GatewayTransientError:
    return GatewayTransientError("Could not reach the gateway.", code="connection_error")


def _status_error(
    status: int, body: object, *, fallback: str, retry_after: str | None
) -> GatewayError:
    """A 4xx/5xx answer (``body``: its JSON, or its text) as the contract's error."""
    code, message = _error_fields(body, fallback=fallback)
    if status == 429:
        return GatewayRateLimited(message, retry_after_seconds=_retry_after_seconds(retry_after))
    if status == 408 or status >= 500:
        return GatewayTransientError(message, code=code or f"http_{status}", status=status)
    if status == 409 and code == IDEMPOTENCY_CONFLICT:
        return GatewayConflict(message, code=IDEMPOTENCY_CONFLICT, status=status)
    if (
        status == 401
        or (status == 404 and code == ACCOUNT_NOT_FOUND)
        or (code or "").lower() in _DISCONNECTED_CODES
        or any(phrase in message.lower() for phrase in _DISCONNECTED_PHRASES)
    ):
        return GatewayAccountUnavailable(message, code=code or "account_unavailable", status=status)
    return GatewayRejected(message, code=code or f"http_{status}", status=status)


def _error_fields(body: object, *, fallback: str) -> tuple[str | None, str]:
    """(code, message) from the error shapes gateways use: flat, or nested under ``error``."""
    if not isinstance(body, dict):
        return None, str(body) if isinstance(body, str) and body else fallback
    error = body.get("error")
    nested = error if isinstance(error, dict) else {}
    code = body.get("code") or nested.get("code") or body.get("error_code")
    message = (
        body.get("message")
        or nested.get("message")
        or (error if isinstance(error, str) else None)
        or fallback
    )
    return (str(code) if code else None), str(message)


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date turned into time from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _dollars(price_cents: int) -> float | int:
    # Whole dollars go as integers: "price": 5, not 5.0.
    return price_cents // 100 if price_cents % 100 == 0 else price_cents / 100


def _media_id(media_id: str) -> str | int:
    # Vault ids are numbers on the wire; OFAPI ids ("ofapi_media_…") stay strings.
    return int(media_id) if media_id.isdigit() else media_id


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _rate_limit_remaining(payload: object) -> int | None:
    if not isinstance(payload, dict):
        return None
    limits = (payload.get("_meta") or {}).get("_rate_limits") or {}
    remaining = limits.get("remaining_minute")
    return int(remaining) if isinstance(remaining, int | float) else None


def _data_list(payload: object) -> list[dict[str, Any]]:
    data = payload.get("data") if isinstance(payload, dict) else payload
    if isinstance(data, dict):  # some list endpoints nest the rows: {"data": {"list": [...]}}
        data = data.get("list")
    if not isinstance(data, list):
        return []
    return [item for item in data if isinstance(item, dict)]


def _next_page(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return None
    next_page = (payload.get("_pagination") or {}).get("next_page")
    return next_page if isinstance(next_page, str) and next_page else None


def _has_more(payload: object) -> bool:
    # ``data.hasMore`` is authoritative where the endpoint has it; else ``next_page``.
    if isinstance(payload, dict):
        data = payload.get("data")
        if isinstance(data, dict) and isinstance(data.get("hasMore"), bool):
            return bool(data["hasMore"])
    return _next_page(payload) is not None


def _cents(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        cents = round(float(value) * 100)
    except ValueError:
        return None
    return cents if cents >= 0 else None


def _fan(item: dict[str, Any]) -> PlatformFan | None:
    """A fan of ``fans/all``: ``subscribedOn`` says whether they subscribe to the creator now,
    ``subscribedOnData`` holds the dates and the money they spent (dollars)."""
    if item.get("id") is None:
        return None
    sub = item.get("subscribedOnData")
    sub = sub if isinstance(sub, dict) else {}
    subscribed = item.get("subscribedOn")
    expired_now = item.get("subscribedOnExpiredNow")
    state: str | None = None
    if subscribed is True and not expired_now:
        state = "active"
    elif subscribed is False or expired_now is True:
        state = "expired"  # listed among the creator's fans, so subscribed once
    return PlatformFan(
        platform_fan_id=str(item["id"]),
        username=str(item.get("username") or ""),
        display_name=str(item.get("name") or item.get("displayName") or ""),
        subscription_state=state,
        subscribed_at=_datetime(sub.get("subscribeAt")),
        subscription_expires_at=_datetime(sub.get("expiredAt")),
        spend_cents=_cents(sub.get("totalSumm")),
    )


def _message(item: dict[str, Any], *, chat_id: str) -> PlatformMessage:
    sender = item.get("fromUser") or {}
    media = item.get("media") or []
    return PlatformMessage(
        platform_message_id=str(item.get("id")),
        text=item.get("text") or "",
        from_fan=str(sender.get("id")) == str(chat_id),
        price_cents=round(float(item.get("price") or 0) * 100),
        created_at=_datetime(item.get("createdAt")),
        media_ids=tuple(str(m.get("id") if isinstance(m, dict) else m) for m in media),
    )
