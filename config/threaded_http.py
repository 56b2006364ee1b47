"""Django's HTTP requests under ASGI, each served whole on one thread of a pool.

Django's own ASGI handler runs a sync project hop by hop: every sync middleware's
``process_request``/``process_view``/``process_response`` and the view are separate
``sync_to_async`` calls, each a hand-off from the event loop to a thread made for the request
and back (about 16 per request with this project's middleware). Each hand-off waits for a
thread to be woken and to take the GIL; on two busy cores that wait was most of a send's time
(``bench/pipeline_bench.py --only outside --probe``: 0.9 s of a 1.3 s send in the hops, 0.3 s
in the view; figures in bench/README.md). Here a request is read and answered on the event
loop as Django does it, and everything between (``request_started``, the middleware chain in
its sync mode, the view, ``response.close``) runs in one call on a pool thread, as under a
threaded WSGI server. The middleware, views and responses are Django's and the project's,
unchanged; websockets stay on the event loop (``config/asgi.py``).
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix


class ThreadedASGIHandler(ASGIHandler):
    """An ASGI app for Django's HTTP requests: the sync middleware chain and the view on a
    thread pool of ``WEB_HTTP_THREADS`` threads per process."""

    def __init__(self, *, threads: int | None = None) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.executor = ThreadPoolExecutor(
            max_workers=threads or settings.WEB_HTTP_THREADS, thread_name_prefix="http"
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django serves only HTTP here, not {scope['type']}.")
        await self.handle(scope, receive, send)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        try:
            response = await loop.run_in_executor(
                self.executor, context.run, self._respond, scope, body_file
            )
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client went away while it was answered
            finally:
                if response.streaming:
                    # Closed after its content was sent, as Django's handler does.
                    await loop.run_in_executor(self.executor, context.run, response.close)
        finally:
            body_file.close()

    def _respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """On a pool thread: what ``ASGIHandler.handle`` does between reading the request and
        sending the answer, in the sync mode of the handler."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            assert error_response is not None  # create_request gives one or the other
            error_response.close()
            return error_response
        response = self.get_response(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # ASGI servers chunk it themselves
        if not response.streaming:
            # Its content is rendered: close it here (``request_finished``, which hands the
            # thread's database connection back to the pool) rather than in one more hop.
            response.close()
        return response
