"""The web server as `make run` starts it (uvicorn, two processes): the API and websockets over
real sockets (static files: tests/onlyfans/test_asgi_serving.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

from crm.broadcasts import account_event_broadcast
from crm.models import Message
from tests.factories import FanFactory, MembershipFactory

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def web_server(sqs_queues) -> Iterator[str]:
    port = _free_port()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), "config.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", "--no-access-log"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "no server")
        time.sleep(0.2)
    yield base
    proc.terminate()
    proc.wait(timeout=15)


@pytest.mark.django_db(transaction=True)
def test_uvicorn_serves_the_api_static_files_and_live_events(web_server):
    membership = MembershipFactory()
    fan = FanFactory(account=membership.account)
    token = Token.objects.create(user=membership.user)

    # the send API, authenticated by bearer token
    reply = httpx.post(
        f"{web_server}/api/onlyfans/messages/send",
        json={"fan_id": fan.pk, "text": "hi"},
        headers={"Authorization": f"Bearer {token.key}"},
    )
    assert reply.status_code == 202, reply.text
    assert Message.objects.get(pk=reply.json()["message_id"]).status == Message.Status.QUEUED

    # a member's websocket receives the account's events
    browser = Client()
    browser.force_login(membership.user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
    ws_url = web_server.replace("http", "ws") + f"/ws/accounts/{membership.account_id}/"
    with connect(ws_url, additional_headers={"Cookie": cookie, "Origin": web_server}) as ws:
        time.sleep(0.3)  # the consumer joins the account's group after accepting
        account_event_broadcast(
            account_id=membership.account_id, event="test.ping", payload={"n": 1}, wait=True
        )
        assert json.loads(ws.recv(timeout=5)) == {"event": "test.ping", "payload": {"n": 1}}
