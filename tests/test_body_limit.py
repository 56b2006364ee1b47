"""Request bodies over the limit are refused (413) before Django reads them (config/body_limit)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.test import override_settings

from config.body_limit import BodyLimitApp, body_limit_for

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 1000


def _scope(path: str, *, length: int | None, method: str = "POST") -> dict[str, Any]:
    headers = [(b"content-type", b"application/json"), (b"host", b"testserver")]
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 5000),
    }


class Endless:
    """A client streaming ``chunk``-byte pieces for ever (chunked, no Content-Length)."""

    def __init__(self, chunk: int, total: int | None = None) -> None:
        self.chunk, self.total, self.sent = chunk, total, 0

    async def __call__(self) -> dict[str, Any]:
        if self.total is not None and self.sent >= self.total:
            await asyncio.sleep(3600)  # then the client waits for the answer
        self.sent += self.chunk
        more = self.total is None or self.sent < self.total
        return {"type": "http.request", "body": b" " * self.chunk, "more_body": more}


def _run(app: Any, scope: dict[str, Any], receive: Any) -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=10)

    asyncio.run(main())
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, body


@override_settings(REQUEST_MAX_BODY_BYTES=LIMIT)
def test_a_declared_length_over_the_limit_is_refused_without_reading_the_body():
    reads = []

    async def receive() -> dict[str, Any]:
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 10, "more_body": True}

    status, headers, body = _run(
        BodyLimitApp(ASGIHandler()), _scope("/api/crm/accounts/", length=LIMIT + 1), receive
    )

    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {
        "code": "request_too_large",
        "detail": f"The request body is larger than {LIMIT} bytes.",
        "limit_bytes": LIMIT,
    }
    assert reads == []


@override_settings(REQUEST_MAX_BODY_BYTES=LIMIT)
def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit():
    client = Endless(chunk=300)

    status, headers, body = _run(
        BodyLimitApp(ASGIHandler()), _scope("/login/", length=None), client
    )

    assert status == 413
    assert headers["content-type"].startswith("text/plain")
    assert b"larger than 1000 bytes" in body
    assert client.sent == 1200  # four pieces read, not one more


@override_settings(REQUEST_MAX_BODY_BYTES=LIMIT)
def test_a_chunked_body_that_lied_about_its_length_is_refused_too():
    client = Endless(chunk=400)

    status, _, _ = _run(
        BodyLimitApp(ASGIHandler()), _scope("/api/crm/accounts/", length=10), client
    )

    assert status == 413


@override_settings(REQUEST_MAX_BODY_BYTES=LIMIT)
def test_a_body_within_the_limit_reaches_django():
    client = Endless(chunk=500, total=1000)

    status, _, body = _run(
        BodyLimitApp(ASGIHandler()), _scope("/api/crm/accounts/", length=1000), client
    )

    assert status == 401  # Django answered: no credentials
    assert json.loads(body)["code"] == "not_authenticated"


@override_settings(REQUEST_MAX_BODY_BYTES=LIMIT, IMPORT_MAX_UPLOAD_BYTES=5000)
def test_the_upload_routes_take_the_import_limit():
    overhead = 64 * 1024
    assert body_limit_for("/api/onlyfans/import/csv") == 5000 + overhead
    assert body_limit_for("/accounts/12/fans/import/") == 5000 + overhead
    assert body_limit_for("/accounts/12/fans/import/3/map/") == LIMIT
    assert body_limit_for("/api/onlyfans/webhooks") == LIMIT


@pytest.mark.filterwarnings("ignore:No directory at")  # no collectstatic under the tests
def test_the_served_asgi_app_has_the_limit_in_front():
    from config.asgi import application

    assert isinstance(application.application_mapping["http"], BodyLimitApp)
