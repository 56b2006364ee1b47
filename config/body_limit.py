"""A cap on request bodies, in front of Django (ASGI).

Django's ASGI handler reads a whole body into a temporary file before any view or middleware
runs, so nothing in Django can refuse a large one before it is on disk. This wrapper refuses
with 413 a request whose ``Content-Length`` is over the limit without reading it, and one that
streams more than the limit (chunked, no ``Content-Length``) as soon as it passes it: the app
is then told the client went away (it answers nothing) and the 413 is ours.

The limit is ``REQUEST_MAX_BODY_BYTES`` (1 MB), or for the CSV upload routes
(``REQUEST_UPLOAD_PATHS``) ``IMPORT_MAX_UPLOAD_BYTES`` plus ``REQUEST_UPLOAD_OVERHEAD_BYTES``
for the multipart envelope, so the import's own "file too large" answer still comes first for
a file just over its limit. Under ``/api/`` the answer is JSON ``{code: "request_too_large",
detail, limit_bytes}``, elsewhere a short text page.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from django.conf import settings

log = structlog.get_logger(__name__)

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def body_limit_for(path: str) -> int:
    """The largest body (bytes) a request to ``path`` may carry."""
    for pattern in settings.REQUEST_UPLOAD_PATHS:
        if re.fullmatch(pattern, path):
            return int(settings.IMPORT_MAX_UPLOAD_BYTES) + int(
                settings.REQUEST_UPLOAD_OVERHEAD_BYTES
            )
    return int(settings.REQUEST_MAX_BODY_BYTES)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or []:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    detail = f"The request body is larger than {limit} bytes."
    if scope["path"].startswith("/api/"):
        body = json.dumps(
            {"code": "request_too_large", "detail": detail, "limit_bytes": limit}
        ).encode()
        content_type = b"application/json"
    else:
        body = (detail + "\n").encode()
        content_type = b"text/plain; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is not read: the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimitApp:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(scope["path"])
        length = _content_length(scope)
        if length is not None and length > limit:
            log.warning("request.too_large", path=scope["path"], length=length, limit=limit)
            await _too_large(scope, send, limit)
            return

        received = 0
        refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    log.warning("request.too_large", path=scope["path"], limit=limit)
                    await _too_large(scope, send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # once we answered 413, the app has nothing more to say
                await send(message)

        await self.app(scope, limited_receive, guarded_send)


def with_body_limit(app: App) -> App:
    return BodyLimitApp(app)
