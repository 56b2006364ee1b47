"""A measuring probe around the web server, for ``pipeline_bench.py --only outside --probe``.

Not part of the product: the bench starts uvicorn with ``bench.web_probe:application`` instead
of ``config.asgi:application`` when asked to split where a send's time goes. It records, per
HTTP request and on the system-wide monotonic clock (so the bench's client can line its own
times up with them):

- ``a`` the ASGI call (uvicorn parsed the request), ``vs``/``ve`` the DRF view's dispatch
  (authentication, throttles, the view) start and end, ``rs`` the response start, ``e`` the
  last body byte handed to uvicorn; ``th`` the view thread's own CPU (``time.thread_time``);
- inside the view, wall time of: ``auth``, ``throttle``, ``target`` (fan + account),
  ``checks`` (composer), ``enqueue`` (the transaction, commit and on-commit work), ``hooks``
  (on-commit work alone), ``estimate``; ``sql`` (every statement, with ``sql_n``), ``redis``
  (every command or pipeline, with ``redis_n``), ``connect`` (a new database connection);
- the process's background threads: each dispatch pass of the coalescer and each live-event
  render, with their wall and thread CPU (``bg`` records);
- every second, how late a 5 ms sleep wakes on the event loop (``lag``) and in a plain thread
  (``wake``): the time a ready coroutine or thread waits for the CPU and the GIL.

Lines go to ``$BENCH_PROBE_DIR/web-<pid>.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from config.asgi import application as _django_app

OUT = Path(os.environ.get("BENCH_PROBE_DIR", "var/bench/probe"))
_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "bench_probe_request", default=None
)
_lock = threading.Lock()
_file: tuple[int, Any] | None = None
_started: int | None = None


def _write(record: dict[str, Any]) -> None:
    global _file
    line = json.dumps(record, separators=(",", ":")) + "\n"
    with _lock:
        if _file is None or _file[0] != os.getpid():
            OUT.mkdir(parents=True, exist_ok=True)
            _file = (os.getpid(), open(OUT / f"web-{os.getpid()}.jsonl", "a", buffering=1))  # noqa: SIM115
        _file[1].write(line)


def _add(name: str, seconds: float, count: str | None = None) -> None:
    rec = _request.get()
    if rec is not None:
        rec[name] = rec.get(name, 0.0) + seconds * 1000
        if count:
            rec[count] = rec.get(count, 0) + 1


def _timed(name: str, count: str | None = None) -> Callable[[Callable[..., Any]], Any]:
    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.monotonic()
            try:
                return func(*args, **kwargs)
            finally:
                _add(name, time.monotonic() - t0, count)

        return timed

    return wrap


def _background(kind: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0, c0 = time.monotonic(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            t1 = time.monotonic()
            _write(
                {
                    "bg": kind,
                    "s": t0,
                    "ms": (t1 - t0) * 1000,
                    "cpu": (time.thread_time() - c0) * 1000,
                }
            )

    return timed


def _install() -> None:
    import redis.client
    from django.db import connection
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.postgresql.base import DatabaseWrapper

    import crm.broadcasts
    import onlyfans.api
    import onlyfans.dispatch_coalescer
    import onlyfans.selectors
    import onlyfans.services
    from crm.authentication import BearerTokenAuthentication

    def sql(execute: Any, sql: Any, params: Any, many: Any, context: Any) -> Any:
        t0 = time.monotonic()
        try:
            return execute(sql, params, many, context)
        finally:
            _add("sql", time.monotonic() - t0, "sql_n")

    view = onlyfans.api.MessageSendApi
    dispatch = view.dispatch

    def probed_dispatch(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        rec = _request.get()
        if rec is None:
            return dispatch(self, request, *args, **kwargs)
        rec["vs"] = time.monotonic()
        c0 = time.thread_time()
        try:
            with connection.execute_wrapper(sql):
                return dispatch(self, request, *args, **kwargs)
        finally:
            rec["th"] = (time.thread_time() - c0) * 1000
            rec["ve"] = time.monotonic()

    view.dispatch = probed_dispatch  # type: ignore[method-assign]
    BearerTokenAuthentication.authenticate = _timed("auth")(  # type: ignore[method-assign]
        BearerTokenAuthentication.authenticate
    )
    onlyfans.api.SendThrottle.allow_request = _timed("throttle")(  # type: ignore[method-assign]
        onlyfans.api.SendThrottle.allow_request
    )
    onlyfans.selectors.send_target_get = _timed("target")(onlyfans.selectors.send_target_get)
    onlyfans.api.check_before_queue = _timed("checks")(onlyfans.api.check_before_queue)
    onlyfans.services.message_enqueue = _timed("enqueue")(onlyfans.services.message_enqueue)
    onlyfans.selectors.message_estimated_send_at = _timed("estimate")(
        onlyfans.selectors.message_estimated_send_at
    )
    BaseDatabaseWrapper.run_and_clear_commit_hooks = _timed("hooks")(  # type: ignore[method-assign]
        BaseDatabaseWrapper.run_and_clear_commit_hooks
    )
    DatabaseWrapper.get_new_connection = _timed("connect")(  # type: ignore[method-assign]
        DatabaseWrapper.get_new_connection
    )
    command = redis.client.Redis.execute_command
    redis.client.Redis.execute_command = _timed("redis", "redis_n")(command)  # type: ignore[method-assign]
    redis.client.Pipeline.execute = _timed("redis", "redis_n")(redis.client.Pipeline.execute)  # type: ignore[method-assign]
    onlyfans.dispatch_coalescer.dispatch_pass = _background(
        "dispatch", onlyfans.dispatch_coalescer.dispatch_pass
    )
    crm.broadcasts._render_and_send_in_thread = _background(
        "render", crm.broadcasts._render_and_send_in_thread
    )


_install()


def _wake_thread() -> None:
    """How late a thread's 5 ms sleep returns, every second: max and mean (ms)."""
    while True:
        lags = []
        until = time.monotonic() + 1
        while time.monotonic() < until:
            t0 = time.monotonic()
            time.sleep(0.005)
            lags.append((time.monotonic() - t0 - 0.005) * 1000)
        _write({"wake": time.monotonic(), "max": max(lags), "mean": sum(lags) / len(lags)})


async def _loop_lag() -> None:
    while True:
        lags = []
        until = time.monotonic() + 1
        while time.monotonic() < until:
            t0 = time.monotonic()
            await asyncio.sleep(0.005)
            lags.append((time.monotonic() - t0 - 0.005) * 1000)
        _write({"lag": time.monotonic(), "max": max(lags), "mean": sum(lags) / len(lags)})


def _start_monitors() -> None:
    global _started
    if _started != os.getpid():
        _started = os.getpid()
        threading.Thread(target=_wake_thread, name="probe-wake", daemon=True).start()
        _monitors.add(asyncio.get_running_loop().create_task(_loop_lag()))


_monitors: set[asyncio.Task[None]] = set()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        await _django_app(scope, receive, send)
        return
    _start_monitors()
    rec: dict[str, Any] = {"a": time.monotonic()}
    for name, value in scope.get("headers", []):
        if name == b"x-bench-id":
            rec["id"] = value.decode()
    token = _request.set(rec)

    async def probed_send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            rec["rs"] = time.monotonic()
            rec["status"] = message["status"]
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            rec["e"] = time.monotonic()
            if "id" in rec:
                _write(rec)

    try:
        await _django_app(scope, receive, probed_send)
    finally:
        _request.reset(token)
