"""Live events to every browser watching a creator account (Channels groups over Redis).

An event costs nothing past one Redis check when no socket listens to the account
(``crm.presence``); otherwise its inbox HTML is rendered once, only when an inbox socket
listens, and the same group message reaches every socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections

from crm import presence

log = structlog.get_logger(__name__)

_loop_lock = threading.Lock()
_loop: tuple[int, asyncio.AbstractEventLoop, asyncio.Lock] | None = None


def account_group_name(account_id: int) -> str:
    return f"account.{account_id}"


def user_group_name(user_id: int) -> str:
    """Every live socket of one user, whatever the account: told when the user may have lost
    access (``user_access_check_broadcast``)."""
    return f"user.{user_id}"


def session_ref(session_key: str) -> str:
    """What names a login session on the channel layer: a digest, never the key itself."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:32]


def _event_loop() -> tuple[asyncio.AbstractEventLoop, asyncio.Lock]:
    """One event loop per process, in a daemon thread, for the channel layer's Redis pool.

    ``async_to_sync`` would start a thread and a loop for every event, which costs more than
    the send it reports (measured: about 4 ms of CPU each in a worker).
    """
    global _loop
    with _loop_lock:
        if _loop is None or _loop[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="channel-layer-loop", daemon=True
            ).start()
            # Group sends leave in the order they were asked for: each is several awaits on
            # Redis, and two sends of one message (queued, then sent) must not swap.
            _loop = (os.getpid(), loop, asyncio.Lock())
        return _loop[1], _loop[2]


async def _group_send_in_order(
    lock: asyncio.Lock, layer: Any, group: str, message: dict[str, Any]
) -> None:
    async with lock:
        await layer.group_send(group, message)


def _log_failure(future: Future[Any], account_id: int, event: str) -> None:
    if future.exception() is not None:
        log.warning(
            "broadcast.failed",
            account_id=account_id,
            event_name=event,
            error=type(future.exception()).__name__,
        )


_render_lock = threading.Lock()
_render_pool: tuple[int, ThreadPoolExecutor] | None = None


def _renderer() -> ThreadPoolExecutor:
    """One thread per process renders the inbox's live HTML, off the caller's request or send
    (a new message costs a query and a template render; the sender should not wait for it)."""
    global _render_pool
    with _render_lock:
        if _render_pool is None or _render_pool[0] != os.getpid():
            _render_pool = (
                os.getpid(),
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="live-render"),
            )
        return _render_pool[1]


def _event_html(account_id: int, event: str, payload: dict[str, Any]) -> str | None:
    from crm.live import event_html

    try:
        return event_html(account_id=account_id, event=event, payload=payload)
    except Exception as exc:
        # The JSON event still goes out; open pages catch up when they reconnect or reload.
        log.warning(
            "broadcast.render_failed",
            account_id=account_id,
            event_name=event,
            error=type(exc).__name__,
        )
        return None


def _render_and_send(
    account_id: int,
    event: str,
    payload: dict[str, Any],
    listeners: presence.Listeners,
    *,
    wait: bool = False,
) -> None:
    html = _event_html(account_id, event, payload) if listeners.inbox else None
    _group_send(account_id=account_id, event=event, payload=payload, html=html, wait=wait)


def _render_and_send_in_thread(
    account_id: int, event: str, payload: dict[str, Any], listeners: presence.Listeners
) -> None:
    close_old_connections()
    _render_and_send(account_id, event, payload, listeners)


def account_event_broadcast(
    *, account_id: int, event: str, payload: dict[str, Any], wait: bool = False
) -> None:
    """Send ``event`` to the account's group. Call it from ``transaction.on_commit``.

    A broadcast is a courtesy to live pages, never a source of truth: it is handed to the
    process's render thread without waiting (unless ``wait``), and when Redis is away the
    event is dropped and logged; pages catch up on their next load. Nothing is rendered or
    sent while no socket listens to the account (``crm.presence``). The group message carries
    the JSON payload and, for the events the inbox shows, its rendered HTML (``crm.live``).
    """
    if get_channel_layer() is None:
        return
    # Asked here, in the caller's thread (one Redis round trip): while nobody listens, which
    # is most of the time for most accounts, the event costs no hand-over to the render thread.
    listeners = presence.account_listeners(account_id=account_id)
    if not listeners.any:
        return
    if wait or getattr(settings, "LIVE_RENDER_INLINE", False):
        _render_and_send(account_id, event, payload, listeners, wait=wait)
    else:
        _renderer().submit(_render_and_send_in_thread, account_id, event, payload, listeners)


def _group_send(
    *,
    account_id: int,
    event: str,
    payload: dict[str, Any],
    html: str | None,
    wait: bool = False,
) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "account.event", "event": event, "payload": payload, "html": html}
    loop, lock = _event_loop()
    future = asyncio.run_coroutine_threadsafe(
        _group_send_in_order(lock, layer, account_group_name(account_id), message), loop
    )
    future.add_done_callback(lambda f: _log_failure(f, account_id, event))
    if wait:
        try:
            future.result(timeout=5)
        except Exception:
            log.warning("broadcast.failed", account_id=account_id, event_name=event)


def user_access_check_broadcast(*, user_id: int, session_key: str | None = None) -> None:
    """Tell the user's open sockets to check their access again now (a membership removed,
    the user deactivated); with ``session_key``, that login session has ended, so its sockets
    close without asking the database. Call it from ``transaction.on_commit``.

    The message carries no authority: a socket closes only on what it reads itself (or on its
    own session's end). Dropped when Redis is away; the consumers' periodic re-check is the
    backstop (``crm.consumers.ACCESS_RECHECK_SECONDS``).
    """
    layer = get_channel_layer()
    if layer is None:
        return
    message: dict[str, Any] = {"type": "access.check"}
    if session_key:
        message["session"] = session_ref(session_key)
    loop, lock = _event_loop()
    future = asyncio.run_coroutine_threadsafe(
        _group_send_in_order(lock, layer, user_group_name(user_id), message), loop
    )
    future.add_done_callback(lambda f: _log_access_check_failure(f, user_id))


def _log_access_check_failure(future: Future[Any], user_id: int) -> None:
    if future.exception() is not None:
        log.warning("access_check.failed", user_id=user_id, error=type(future.exception()).__name__)
