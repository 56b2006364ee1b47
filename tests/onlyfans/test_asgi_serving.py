"""How the ASGI app serves: HTTP requests whole on a thread pool, static files outside Django."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from rest_framework.authtoken.models import Token

from crm.models import Message
from onlyfans import api
from tests.factories import FanFactory, MembershipFactory


def _post(app, path: str, body: bytes, headers: list[tuple[bytes, bytes]]):
    async def run():
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": b"",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000),
        }
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": body})
        start = await communicator.receive_output(10)
        content = b""
        while True:
            chunk = await communicator.receive_output(10)
            content += chunk.get("body", b"")
            if not chunk.get("more_body"):
                return start, content

    return async_to_sync(run)()


@pytest.mark.django_db(transaction=True)
def test_send_is_served_whole_on_the_http_thread_pool(sqs_queues, monkeypatch):
    from config.threaded_http import ThreadedASGIHandler

    membership = MembershipFactory()
    fan = FanFactory(account=membership.account)
    token = Token.objects.create(user=membership.user)
    threads: list[str] = []
    post = api.MessageSendApi.post

    def recording_post(self, request):
        threads.append(threading.current_thread().name)
        return post(self, request)

    monkeypatch.setattr(api.MessageSendApi, "post", recording_post)
    app = ThreadedASGIHandler(threads=2)
    start, content = _post(
        app,
        "/api/onlyfans/messages/send",
        json.dumps({"fan_id": fan.pk, "text": "hi"}).encode(),
        [(b"authorization", f"Bearer {token.key}".encode())],
    )
    assert start["status"] == 202, content
    headers = dict(start["headers"])
    # The middleware chain ran (its sync mode), around the view.
    assert headers[b"X-Frame-Options"] == b"DENY"
    assert headers[b"X-Content-Type-Options"] == b"nosniff"
    assert len(threads) == 1 and threads[0].startswith("http")
    message = Message.objects.get(pk=json.loads(content)["message_id"])
    assert message.status == Message.Status.QUEUED
    assert message.dispatched_at is not None  # dispatched after commit, as before


@pytest.mark.django_db(transaction=True)
def test_the_pool_thread_gives_its_database_connection_back(sqs_queues):
    from django.db import connection

    from config.threaded_http import ThreadedASGIHandler

    app = ThreadedASGIHandler(threads=1)
    start, _ = _post(app, "/api/onlyfans/messages/send", b"{}", [])
    assert start["status"] == 401  # no token
    # request_finished ran on the pool thread: its connection is closed (back to the pool).
    assert app.executor.submit(lambda: connection.connection).result() is None


def _get(app, path: str) -> tuple[int, bytes]:
    async def run():
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": [],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("t", 80),
        }
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(5)
        body = b""
        while True:
            chunk = await communicator.receive_output(5)
            body += chunk.get("body", b"")
            if not chunk.get("more_body"):
                return start["status"], body

    return async_to_sync(run)()


def test_static_files_are_served_before_django(tmp_path, settings):
    from config.static_asgi import StaticFilesApp

    (tmp_path / "app.css").write_text("body{}")
    settings.STATIC_ROOT = tmp_path

    async def django_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})

    app = StaticFilesApp(django_app)
    assert _get(app, "/static/app.css") == (200, b"body{}")
    assert _get(app, "/static/missing.css")[0] == 404
    assert _get(app, "/api/x") == (299, b"django")


def _static_scope(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"",
        "headers": headers or [],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("t", 80),
    }


def test_a_keep_alive_request_started_inside_the_last_send_is_served(tmp_path, settings):
    # given: two static files, and a server that starts the connection's next request from
    # inside the last send of the answer before it, as uvicorn does for a request that came
    # in while that answer was still going out (a browser's next file on the same connection)
    from config.static_asgi import StaticFilesApp

    (tmp_path / "a.js").write_text("var a;")
    (tmp_path / "b.js").write_text("var b;")
    settings.STATIC_ROOT = tmp_path
    app = StaticFilesApp(None)

    async def run() -> list[tuple[int, bytes]]:
        answers: list[tuple[int, bytes]] = []
        pending: list[asyncio.Task] = []

        def serve(path: str, then: str | None) -> None:
            status, body = 0, b""

            async def receive() -> dict:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict) -> None:
                nonlocal status, body
                if message["type"] == "http.response.start":
                    status = message["status"]
                    return
                body += message.get("body", b"")
                if not message.get("more_body"):
                    answers.append((status, body))
                    if then is not None:
                        serve(then, None)

            async def request() -> None:
                if then is None:
                    await asyncio.sleep(0.2)  # the answer before is done with by then
                await app(_static_scope(path), receive, send)

            pending.append(asyncio.get_running_loop().create_task(request()))

        serve("/static/a.js", "/static/b.js")
        while pending:
            await pending.pop(0)
        return answers

    # when: the first file is answered and the second asked on the same connection (the loop
    # run as uvicorn runs it: not under an async_to_sync whose thread could stand in)
    answers = asyncio.run(run())

    # then: both are served
    assert answers == [(200, b"var a;"), (200, b"var b;")]


def test_static_files_keep_whitenoise_answers(tmp_path, settings):
    # given: a file with a compressed variant
    from config.static_asgi import StaticFilesApp

    css = b"body{margin:0}" * 100
    (tmp_path / "app.css").write_bytes(css)
    (tmp_path / "app.css.gz").write_bytes(gzip.compress(css))
    settings.STATIC_ROOT = tmp_path
    app = StaticFilesApp(None)

    async def get(headers: list[tuple[bytes, bytes]]) -> tuple[int, dict[bytes, bytes], bytes]:
        messages: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b""}

        async def send(message: dict) -> None:
            messages.append(message)

        await app(_static_scope("/static/app.css", headers), receive, send)
        body = b"".join(m.get("body", b"") for m in messages[1:])
        return messages[0]["status"], dict(messages[0]["headers"]), body

    # when/then: gzip is sent to who accepts it, and an unchanged ETag gets a 304
    status, headers, body = async_to_sync(get)([(b"accept-encoding", b"gzip, br")])
    assert (status, headers[b"content-encoding"], gzip.decompress(body)) == (200, b"gzip", css)
    status, headers, body = async_to_sync(get)([(b"if-none-match", headers[b"etag"])])
    assert (status, body) == (304, b"")
