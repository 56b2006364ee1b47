"""Browser tests: uvicorn on the pytest database, Debian's Chromium driven by Playwright.

The server is a subprocess (HTTP and the inbox websocket, as `make run` serves them), so the
tests use ``django_db(transaction=True)``: rows a test creates are committed and the server sees
them. Each test logs its users in through the login form in browser contexts of their own.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from crm.models import Conversation, CreatorAccount, Fan
from tests.factories import (
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    MessageFactory,
)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PASSWORD = "pw-for-tests-123"  # tests.factories.UserFactory's
SHOTS = ROOT / "var" / "shots"
# Playwright's auto-waiting assertions give up after this long (milliseconds). Passing ones
# return at once; the margin covers a live event that lands only after the socket reconnects.
EXPECT_TIMEOUT_MS = 10_000


@pytest.fixture(autouse=True, scope="session")
def _chromium_present() -> None:
    if not CHROMIUM.exists():
        pytest.skip(
            f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install -y chromium)"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database_url() -> str:
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _subprocess_env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DJANGO_ALLOW_ASYNC_UNSAFE": "",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "ONLYFANS_API_BASE_URL": settings.ONLYFANS_API_BASE_URL,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def static_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static files, collected (as symlinks) for the server: with DEBUG off it serves
    STATIC_ROOT only."""
    root = tmp_path_factory.mktemp("static")
    with override_settings(STATIC_ROOT=root):
        call_command("collectstatic", interactive=False, link=True, verbosity=0)
    return root


@pytest.fixture(scope="module")
def live_server_url(
    django_db_setup: None,
    send_worker: subprocess.Popen[bytes],
    static_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """uvicorn serving config.asgi on a free port, against the pytest database, with a send
    worker beside it. Its log goes to a file (a pipe nobody reads would block the server)."""
    port = _free_port()
    env = _subprocess_env(
        DJANGO_SETTINGS_MODULE="tests.e2e.server_settings", E2E_STATIC_ROOT=str(static_root)
    )
    log_path = tmp_path_factory.mktemp("uvicorn") / "uvicorn.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(ROOT / ".venv/bin/uvicorn"), "config.asgi:application", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "1", "--no-access-log"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a loaded CI machine boots Django slowly
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code in (200, 503):
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError(f"uvicorn did not start:\n{log_path.read_text()[-5000:]}")
        time.sleep(0.2)
    yield base
    _stop(proc)


@pytest.fixture(scope="module")
def send_worker(sqs_server: str, sandbox_server: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker on the send and default queues, as tests/onlyfans/test_workers.py
    starts them, giving up on a send after one failed attempt (``SEND_MAX_ATTEMPTS=1``) so a
    test can see a failure without waiting out the backoff. Started with the server and not
    waited for: it boots (slowly) while the first tests run."""
    from onlyfans.broker import worker_argv

    env = _subprocess_env(SEND_DISPATCH_COALESCE_MS="25", SEND_MAX_ATTEMPTS="1")
    proc = subprocess.Popen(
        worker_argv(hostname="e2e@%h", concurrency=2, loglevel="WARNING"),
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    yield proc
    _stop(proc)


# --- browser ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(_chromium_present: None) -> Iterator[Any]:
    """Chromium for one test module. Playwright's sync API keeps an asyncio loop running in
    this thread, which makes Django refuse ORM calls ("async context"); the tests' ORM calls
    are plain synchronous ones, so they are allowed while the browser lives, and only then
    (module scope: the tests collected after this module see Django's check again)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def login(browser: Any, live_server_url: str) -> Iterator[Callable[..., Any]]:
    """``login(user, width=1280, height=800)``: a page of a new browser context, logged in.

    A static file (a script, a style sheet) the server does not answer with 2xx/304 fails the
    test once it is done: a page that lost a script runs without it (the composer's checks in
    static/js/media_picker.js, say), and the test would only time out on what it stopped."""
    contexts: list[Any] = []
    lost: list[str] = []

    def watch_static(response: Any) -> None:
        if "/static/" in response.url and response.status >= 400:
            lost.append(f"{response.status} {response.request.method} {response.url}")

    def open_page(user: Any, *, width: int = 1280, height: int = 800) -> Any:
        context = browser.new_context(
            base_url=live_server_url, viewport={"width": width, "height": height}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        page.on("response", watch_static)
        page.goto("/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("form [type=submit]")
        assert "/login/" not in page.url, "login failed"
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert not lost, f"static files the pages did not get: {lost}"


def _is_catch_up(target: str) -> Callable[[Any], bool]:
    return lambda response: (
        response.request.method == "GET" and response.request.headers.get("hx-target") == target
    )


def open_inbox(page: Any, path: str, *, conversation_id: int | None = None) -> None:
    """Load an inbox URL and wait until its socket is open and the page's catch-up reloads
    (which follow every socket open) have landed, so no later live event can be undone."""
    from playwright.sync_api import expect

    with page.expect_response(_is_catch_up("conversation-list")):
        if conversation_id is None:
            page.goto(path)
        else:
            with page.expect_response(_is_catch_up(f"thread-messages-{conversation_id}")):
                page.goto(path)
    expect(page.locator("#inbox")).to_have_attribute("data-live", "connected")


# --- data ------------------------------------------------------------------------------------


@dataclass
class Inbox:
    account: CreatorAccount
    fans: list[Fan]
    conversations: list[Conversation]  # newest activity first, as the list shows them

    def path(self, conversation: Conversation | None = None) -> str:
        base = f"/accounts/{self.account.pk}/inbox/"
        return f"{base}{conversation.pk}/" if conversation is not None else base


@pytest.fixture
def inbox_data() -> Callable[..., Inbox]:
    """An account (fast send limits) with ``count`` fans, each with a conversation holding one
    inbound message; the first conversation has the newest activity."""

    def make(count: int = 3) -> Inbox:
        account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
        now = timezone.now()
        fans, conversations = [], []
        for i in range(count):
            fan = FanFactory(account=account, display_name=f"Fan Number{i}", username=f"fanno{i}")
            at = now - timedelta(minutes=10 * (i + 1))
            text = f"hello from fan {i}"
            conversation = ConversationFactory(
                fan=fan,
                last_message_at=at,
                last_message_preview=text,
                last_message_direction="in",
            )
            MessageFactory(conversation=conversation, text=text)
            fans.append(fan)
            conversations.append(conversation)
        return Inbox(account=account, fans=fans, conversations=conversations)

    return make


@pytest.fixture
def member() -> Callable[..., Any]:
    """``member(account, role="chatter")``: a new user with a membership of ``account``."""

    def make(account: CreatorAccount, role: str = "chatter") -> Any:
        return MembershipFactory(account=account, role=role).user

    return make
