"""Benchmark of the inbox on a big account, beside a small one measured in the same run.

Run with `make bench ARGS=inbox` (or `.venv/bin/python bench/inbox_bench.py --help`). It uses
its own database (fancrm_bench_inbox), seeds two accounts with `manage.py bench_inbox_seed`
(100,000 fans / 1,000,000 messages and 100 fans / 1,000 messages; kept between runs unless
--reseed) and measures:

- server time of the inbox's pages and API, in this process through Django's test client
  (the whole middleware stack and template rendering, no network), with the number of SQL
  queries of each request: the big account must stay under 100 ms at p95 and issue exactly
  the queries the small one does;
- a live event's inbox HTML (``crm.live.event_html``) on the big account, in this process,
  with its queries: p95 under 20 ms;
- from outside, one API client's sends (``POST /api/onlyfans/messages/send``) with nobody
  watching the account (before the webhooks below);
- from outside, the time from posting a signed ``messages.received`` webhook to the web
  server (uvicorn, as `make run` starts it) until the rendered message reaches a browser's
  inbox socket, with one and with two sockets open: p95 under 200 ms.

Figures go to stdout and bench/results/inbox-latest.txt (and .json).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_bench import percentile, port_open, web_server_argv

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VAR = ROOT / "var" / "bench"
DATABASE = "fancrm_bench_inbox"  # not fancrm_bench: the pipeline bench empties that one
WEB_PORT = int(os.environ.get("INBOX_BENCH_PORT", "8797"))  # another bench may hold 8797
WEBHOOK_SECRET = "bench-webhook-secret"
SERVER_P95_MS = 100.0
LIVE_P95_MS = 200.0
ACCOUNTS = {
    "small": {"account_id": "acct_bench_small", "fans": 100, "messages": 1_000},
    "big": {"account_id": "acct_bench_big", "fans": 100_000, "messages": 1_000_000},
}

ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    # Production settings (templates and static files as deployed), minus HTTPS.
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-secret",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_HSTS_SECONDS": "0",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": "redis://127.0.0.1:6379/8",
    "CACHE_KEY_PREFIX": "fancrm-bench-inbox",
    "CHANNELS_PREFIX": "fancrm-bench-inbox:asgi",
    "SQS_QUEUE_PREFIX": "fancrm-bench-inbox-",
    "ONLYFANS_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    "API_THROTTLE_USER": "1000000/min",
    "API_THROTTLE_SEND": "1000000/min",
}


def setup_django(*, env: dict[str, str] | None = None, database: str | None = None) -> None:
    """Settings, database (created if missing), migrations and static files for a bench
    process; the other benches pass their own ``env`` and ``database``."""
    database = database or DATABASE
    os.environ.update(env or ENV)
    sys.path.insert(0, str(ROOT))
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if not c.execute("select 1 from pg_database where datname = %s", [database]).fetchone():
            c.execute(f"create database {database}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    # DEBUG is off: pages need the static files manifest, as in a deployment.
    call_command("collectstatic", interactive=False, verbosity=0)


def seed(*, reseed: bool) -> dict[str, int]:
    """The two accounts' ids, seeding each one that is missing or short of data."""
    from django.core.management import call_command

    from crm.models import CreatorAccount, Fan, Message

    ids = {}
    for name, spec in ACCOUNTS.items():
        account = CreatorAccount.objects.filter(platform_account_id=spec["account_id"]).first()
        ready = (
            account is not None
            and Fan.objects.filter(account=account).count() == spec["fans"]
            # The live part adds a few hundred messages per run.
            and Message.objects.filter(account=account).count() >= spec["messages"]
        )
        if reseed or not ready:
            print(f"seeding {name}: {spec['fans']:,} fans, {spec['messages']:,} messages")
            call_command(
                "bench_inbox_seed",
                fans=spec["fans"],
                messages=spec["messages"],
                account_id=spec["account_id"],
                stdout=sys.stdout,
            )
            account = CreatorAccount.objects.get(platform_account_id=spec["account_id"])
        assert account is not None
        ids[name] = account.pk
    return ids


# --- Server time ---------------------------------------------------------------------------


@dataclass
class Row:
    """One kind of request measured on one account."""

    times_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)  # this process's, not the database's
    queries: list[int] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    # Each query's times by its place in the request, and its slowest instance (ms, SQL): the
    # place with the worst p95 is the one whose plan the report shows when a row is slow.
    query_times: dict[int, list[float]] = field(default_factory=dict)
    query_slowest: dict[int, tuple[float, str]] = field(default_factory=dict)

    @property
    def slowest(self) -> tuple[float, float, str]:
        """(p95 ms, max ms, SQL) of the query with the worst p95."""
        if not self.query_times:
            return (0.0, 0.0, "")
        place = max(self.query_times, key=lambda k: percentile(self.query_times[k], 95))
        worst, sql = self.query_slowest[place]
        return (percentile(self.query_times[place], 95), worst, sql)

    @property
    def ok(self) -> bool:
        return self.statuses == {200}

    def summary(self) -> dict[str, Any]:
        if not self.ok:
            return {"missing": sorted(self.statuses)}
        return {
            "n": len(self.times_ms),
            "p50_ms": round(percentile(self.times_ms, 50), 1),
            "p95_ms": round(percentile(self.times_ms, 95), 1),
            "max_ms": round(max(self.times_ms), 1),
            "python_cpu_p50_ms": round(percentile(self.cpu_ms, 50), 1),
            "queries_min": min(self.queries),
            "queries_max": max(self.queries),
            "slowest_query_p95_ms": round(self.slowest[0], 1),
        }


Request = tuple[str, dict[str, str]]  # path with query, extra headers


def measure(client: Any, row: Row, request: Request, *, record: bool = True) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    path, headers = request
    connection.queries_log.clear()  # it keeps 9,000: past that, a capture comes back empty
    with CaptureQueriesContext(connection) as captured:
        started, cpu_started = time.perf_counter(), time.process_time()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu_started) * 1000
    if not record:
        return
    row.statuses.add(response.status_code)
    if response.status_code != 200:
        return
    row.times_ms.append(elapsed)
    row.cpu_ms.append(cpu)
    row.queries.append(len(captured.captured_queries))
    for place, query in enumerate(captured.captured_queries):
        ms = float(query["time"]) * 1000
        row.query_times.setdefault(place, []).append(ms)
        if ms >= row.query_slowest.get(place, (-1.0, ""))[0]:
            row.query_slowest[place] = (ms, query["sql"])


def request_sets(account_id: int, n: int, rng: random.Random) -> dict[str, list[Request]]:
    """The requests of each row, chosen from the account's real data."""
    from django.contrib.auth.models import User
    from django.db.models import Count

    from crm.models import Conversation, Fan
    from crm.selectors import InboxFilters, conversations_for_account

    owner = User.objects.get(username="bench_owner")
    base = f"/accounts/{account_id}/inbox/"
    conversation_ids = list(
        Conversation.objects.filter(account_id=account_id, last_message_at__isnull=False)
        .order_by("?")
        .values_list("pk", flat=True)[:n]
    )
    longest = (
        Conversation.objects.filter(account_id=account_id)
        .annotate(size=Count("messages"))
        .order_by("-size")
        .values_list("pk", flat=True)
        .first()
    )
    cursors: list[str] = []
    cursor = ""
    for _ in range(10):  # ten pages deep
        page = conversations_for_account(
            user=owner, account_id=account_id, filters=InboxFilters(), cursor=cursor
        )
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        cursors.append(cursor)
    assert cursors, "the account needs more than one page of conversations"
    usernames = list(
        Fan.objects.filter(account_id=account_id)
        .order_by("?")
        .values_list("username", flat=True)[:n]
    )
    terms = []
    for _ in range(n):
        name = rng.choice(usernames)
        size = rng.randint(3, 5)
        start = rng.randint(0, max(0, len(name) - size))
        terms.append(name[start : start + size])
    htmx = {"HX-Request": "true"}
    api = f"/api/crm/conversations/?account={account_id}"
    picks = [rng.choice(conversation_ids) for _ in range(n)]
    return {
        "inbox page": [(base, {})] * n,
        "thread (random conversation)": [(f"{base}{c}/", {}) for c in picks],
        # What a click in the list asks for: the thread pane and the fan panel, not the page.
        "thread (htmx, as a click opens it)": [
            (f"{base}{c}/", {**htmx, "HX-Target": "thread-pane"}) for c in picks
        ],
        "thread (longest conversation)": [(f"{base}{longest}/", {})] * n,
        "next page of the list (htmx)": [
            (f"{base}?cursor={cursors[i % len(cursors)]}", htmx) for i in range(n)
        ],
        "longest-waiting sort": [(f"{base}?sort=waiting", {})] * n,
        "search (3-5 letters of a username)": [(f"{base}?q={t}", {}) for t in terms],
        "API conversations": [(api, {})] * n,
        "API conversations, sort=waiting": [(f"{api}&sort=waiting", {})] * n,
    }


def server_times(ids: dict[str, int], n: int, warmup: int = 5) -> dict[str, dict[str, Row]]:
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username="bench_owner"))
    sets = {
        name: request_sets(account_id, n, random.Random(f"inbox-bench:{name}"))
        for name, account_id in ids.items()
    }
    results: dict[str, dict[str, Row]] = {}
    for label in sets["big"]:
        rows = results[label] = {name: Row() for name in ids}
        for i in range(-warmup, n):
            # Small and big take turns, so a burst of load on this shared machine (or a
            # checkpoint) falls on both alike.
            for name in ids:
                row = rows[name]
                if row.statuses - {200}:
                    continue  # not built yet: "missing", no need to ask n times
                measure(client, row, sets[name][label][max(i, 0)], record=i >= 0)
        for name, row in rows.items():
            print(f"  {name:5} {label}: {json.dumps(row.summary())}", flush=True)
    return results


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(line for (line,) in cursor.fetchall())


# --- Webhook to websocket, from outside ------------------------------------------------------


def webhook_body(platform_account_id: str, fan: tuple[str, str], text: str) -> bytes:
    event = {
        "event": "messages.received",
        "account_id": platform_account_id,
        "payload": {
            "id": f"bench_ws_{uuid.uuid4().hex}",
            "text": text,
            "fromUser": {"id": fan[0], "username": fan[1], "name": ""},
            "price": 0,
            "isFree": True,
            "media": [],
            "createdAt": datetime.now(UTC).isoformat(),
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


class Socket:
    """One browser's inbox socket; a thread notes when each token first arrives.

    When the server closes it, it is opened again before the next webhook, as the page's
    htmx ws extension would, and the drop is counted.
    """

    TOKEN = re.compile(r"bench-[0-9a-f]{16}")

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.url, self.headers = url, headers
        self.arrived: dict[str, float] = {}
        self.fragments: dict[str, str] = {}
        self.changed = threading.Condition()
        self.drops = 0
        self.close_reason = ""
        self._open()

    def _open(self) -> None:
        from websockets.sync.client import connect

        self.closed = False
        self.ws = connect(self.url, additional_headers=self.headers, open_timeout=30)
        threading.Thread(target=self._read, args=(self.ws,), daemon=True).start()

    def _read(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            for frame in ws:
                now = time.perf_counter()
                text = frame if isinstance(frame, str) else frame.decode()
                with self.changed:
                    for token in self.TOKEN.findall(text):
                        self.arrived.setdefault(token, now)
                        self.fragments.setdefault(token, text)
                    self.changed.notify_all()
        except ConnectionClosed as exc:
            self.close_reason = str(exc)
        with self.changed:
            self.closed = True
            self.changed.notify_all()

    def reopen_if_closed(self) -> bool:
        if not self.closed:
            return False
        self.drops += 1
        self._open()
        return True

    def wait(self, token: str, timeout: float) -> float | None:
        with self.changed:
            self.changed.wait_for(lambda: token in self.arrived or self.closed, timeout=timeout)
            return self.arrived.get(token)

    def close(self) -> None:
        self.ws.close()


def live_latency(
    *, base: str, cookie: str, account_id: int, platform_account_id: str, clients: int, n: int
) -> dict[str, Any]:
    import httpx

    from crm.models import Fan

    fans = list(
        Fan.objects.filter(account_id=account_id)
        .order_by("?")
        .values_list("platform_fan_id", "username")[:50]
    )
    ws_url = base.replace("http", "ws") + f"/ws/accounts/{account_id}/inbox/"
    headers = {"Cookie": cookie, "Origin": base}
    sockets = [Socket(ws_url, headers) for _ in range(clients)]
    time.sleep(0.5)  # the consumers join the account's group after accepting
    latencies: list[float] = []
    posts: list[float] = []
    missed = 0
    # Which socket missed which webhook (by number): a burst on one socket and a scatter over
    # both point to different causes.
    missed_at: dict[int, list[int]] = {}
    bad_fragments = 0
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            for i in range(n + 10):  # the first ten warm the server up and are not counted
                if any([sock.reopen_if_closed() for sock in sockets]):
                    time.sleep(0.5)
                token = f"bench-{uuid.uuid4().hex[:16]}"
                body = webhook_body(platform_account_id, random.choice(fans), f"{token} <ok> & hi")
                signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
                started = time.perf_counter()
                reply = http.post(
                    "/api/onlyfans/webhooks",
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "Signature": signature,
                        "X-OFAPI-Idempotency-Key": f"evt_{token}",
                    },
                )
                posted = time.perf_counter()
                assert reply.status_code == 200 and reply.json()["status"] == "accepted", (
                    reply.status_code,
                    reply.text,
                )
                for number, sock in enumerate(sockets):
                    arrived = sock.wait(token, timeout=5)
                    if i < 10:
                        continue
                    if arrived is None:
                        missed += 1
                        missed_at.setdefault(number, []).append(i - 10)
                        continue
                    latencies.append((arrived - started) * 1000)
                    fragment = sock.fragments[token]
                    if 'id="message-' not in fragment or "&lt;ok&gt; &amp; hi" not in fragment:
                        bad_fragments += 1
                if i >= 10:
                    posts.append((posted - started) * 1000)
                time.sleep(random.uniform(0.02, 0.08))
    finally:
        for sock in sockets:
            sock.close()
    return {
        "clients": clients,
        "webhooks": n,
        "deliveries": len(latencies),
        "missed": missed,
        "missed_webhooks_by_socket": missed_at,
        "socket_drops": sum(sock.drops for sock in sockets),
        "bad_fragments": bad_fragments,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "webhook_post_p50_ms": round(percentile(posts, 50), 1),
        "webhook_post_p95_ms": round(percentile(posts, 95), 1),
    }


def idle_socket(*, base: str, cookie: str, account_id: int, seconds: float) -> str:
    """Whether an inbox socket nobody writes to stays open (a page left open is idle)."""
    url = base.replace("http", "ws") + f"/ws/accounts/{account_id}/inbox/"
    sock = Socket(url, {"Cookie": cookie, "Origin": base})
    started = time.monotonic()
    with sock.changed:
        sock.changed.wait_for(lambda: sock.closed, timeout=seconds)
    if not sock.closed:
        sock.close()
        return f"kept open for {seconds:.0f} s"
    return (
        f"closed by the server after {time.monotonic() - started:.1f} s idle "
        f"({sock.close_reason or 'no reason given'}; see var/bench/inbox-web.log)"
    )


def server_wait(base: str, timeout: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code in (200, 503):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"the web server did not answer on {base} (var/bench/inbox-web.log)")


def live(ids: dict[str, int], n: int) -> dict[str, Any]:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    if port_open(WEB_PORT):
        raise SystemExit(f"port {WEB_PORT} is taken: stop whatever runs there first")
    VAR.mkdir(parents=True, exist_ok=True)
    log = open(VAR / "inbox-web.log", "wb")  # noqa: SIM115
    # Its own process group, so the workers go with it even when the parent must be killed.
    server = subprocess.Popen(
        web_server_argv(port=WEB_PORT),
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{WEB_PORT}"
    results: dict[str, Any] = {}
    try:
        server_wait(base)
        browser = Client()
        browser.force_login(User.objects.get(username="bench_owner"))
        session = browser.cookies[settings.SESSION_COOKIE_NAME].value
        cookie = f"{settings.SESSION_COOKIE_NAME}={session}"
        try:
            results["send"] = single_client_sends(base=base, account_id=ids["big"], n=n)
        except Exception as exc:  # an endpoint not built yet...
            results["send"] = {"missing": f"{type(exc).__name__}: {exc}"}
        scenarios = [("small", 1), ("big", 1), ("big", 2)]
        for name, clients in scenarios:
            label = f"{name}, {clients} socket{'s' if clients > 1 else ''}"
            try:
                results[label] = live_latency(
                    base=base,
                    cookie=cookie,
                    account_id=ids[name],
                    platform_account_id=ACCOUNTS[name]["account_id"],  # type: ignore[arg-type]
                    clients=clients,
                    n=n,
                )
            except Exception as exc:  # a route not built yet, a refused socket...
                results[label] = {"missing": f"{type(exc).__name__}: {exc}"}
            print(f"  live {label}: {json.dumps(results[label])}", flush=True)
        results["idle socket"] = idle_socket(
            base=base, cookie=cookie, account_id=ids["big"], seconds=15
        )
        print(f"  idle socket: {results['idle socket']}", flush=True)
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)  # workers still shutting down, if any
    return results


# --- A live event's render, and one client's sends, in process ---------------------------

RENDER_P95_MS = 20.0


def live_render(ids: dict[str, int], n: int, warmup: int = 5) -> dict[str, Row]:
    """Server time of one live event's inbox HTML (``crm.live.event_html``) on the big account,
    with its SQL queries: what each event costs when an inbox socket listens."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from crm import live as crm_live
    from crm.models import Message

    messages = list(
        Message.objects.filter(account_id=ids["big"])
        .order_by("?")
        .values_list("id", "conversation_id")[: n + warmup]
    )
    kinds: dict[str, Any] = {
        "message.received (bubble + row)": lambda m, c: (
            "message.received",
            {"message_id": m, "conversation_id": c},
        ),
        "conversation.changed (row)": lambda m, c: (
            "conversation.changed",
            {"conversation_id": c},
        ),
        "message.status (from the event)": lambda m, c: (
            "message.status",
            {"message_id": m, "conversation_id": c, "status": "sent"},
        ),
    }
    results: dict[str, Row] = {}
    for label, event_for in kinds.items():
        row = results[label] = Row()
        for i, (message_id, conversation_id) in enumerate(messages):
            event, payload = event_for(message_id, conversation_id)
            connection.queries_log.clear()
            with CaptureQueriesContext(connection) as captured:
                started, cpu_started = time.perf_counter(), time.process_time()
                html = crm_live.event_html(account_id=ids["big"], event=event, payload=payload)
                elapsed = (time.perf_counter() - started) * 1000
                cpu = (time.process_time() - cpu_started) * 1000
            if i < warmup:
                continue
            row.statuses.add(200 if html else 500)
            row.times_ms.append(elapsed)
            row.cpu_ms.append(cpu)
            row.queries.append(len(captured.captured_queries))
        print(f"  render {label}: {json.dumps(row.summary())}", flush=True)
    return results


def single_client_sends(*, base: str, account_id: int, n: int, warmup: int = 10) -> dict[str, Any]:
    """One API client's ``POST /api/onlyfans/messages/send`` to the web server, one after
    another, while no socket is open on the account (every live event of these sends has
    nobody to reach)."""
    import httpx
    from django.contrib.auth.models import User

    from crm.models import Fan
    from crm.services import api_token_create, api_token_revoke
    from onlyfans.broker import queues_ensure, sqs_client

    owner = User.objects.get(username="bench_owner")
    token, key = api_token_create(user=owner, name=f"inbox bench {uuid.uuid4().hex[:8]}")
    fans = list(
        Fan.objects.filter(account_id=account_id).order_by("?").values_list("id", flat=True)[:50]
    )
    queues = queues_ensure()
    times: list[float] = []
    statuses: set[int] = set()
    try:
        with httpx.Client(
            base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}
        ) as http:
            for i in range(n + warmup):
                body = {"fan_id": random.choice(fans), "text": f"inbox bench {i}"}
                started = time.perf_counter()
                reply = http.post("/api/onlyfans/messages/send", json=body)
                if i >= warmup:
                    times.append((time.perf_counter() - started) * 1000)
                    statuses.add(reply.status_code)
    finally:
        api_token_revoke(user=owner, token_id=token.pk)
        sqs = sqs_client()
        for url in queues.values():  # the queued sends are not this bench's subject
            with contextlib.suppress(Exception):  # at most one purge a minute per queue
                sqs.purge_queue(QueueUrl=url)
    result = {
        "n": len(times),
        "statuses": sorted(statuses),
        "p50_ms": round(percentile(times, 50), 1),
        "p95_ms": round(percentile(times, 95), 1),
    }
    print(f"  single client sends, nobody watching: {json.dumps(result)}", flush=True)
    return result


def render_table(results: dict[str, Row]) -> list[str]:
    lines = [
        f"{'live event render (big, in process)':38} {'n':>4} {'p50':>6} {'p95':>6} "
        f"{'max':>6} {'cpu p50':>7} {'q':>5}  p95<{RENDER_P95_MS:.0f}ms"
    ]
    for label, row in results.items():
        if not row.ok:
            lines.append(f"{label:38} missing: no HTML for some events")
            continue
        s = row.summary()
        low, high = s["queries_min"], s["queries_max"]
        queries = str(low) if low == high else f"{low}-{high}"
        lines.append(
            f"{label:38} {s['n']:>4} {s['p50_ms']:>6} {s['p95_ms']:>6} {s['max_ms']:>6} "
            f"{s['python_cpu_p50_ms']:>7} {queries:>5}  {verdict(s['p95_ms'] < RENDER_P95_MS)}"
        )
    return lines


def send_table(result: dict[str, Any]) -> list[str]:
    if "missing" in result:
        return [f"single client send: missing: {result['missing']}"]
    return [
        f"single client send (big, nobody watching): n {result['n']}, HTTP "
        f"{result['statuses']}, p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms"
    ]


# --- Report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def server_table(results: dict[str, dict[str, Row]]) -> list[str]:
    def cell(row: Row) -> str:
        if not row.ok:
            return f"missing (HTTP {','.join(map(str, sorted(row.statuses)))})"
        s = row.summary()
        return f"{s['p50_ms']:6.1f} {s['p95_ms']:6.1f} {s['max_ms']:6.1f}"

    def queries(row: Row) -> str:
        if not row.ok:
            return "-"
        low, high = min(row.queries), max(row.queries)
        return str(low) if low == high else f"{low}-{high}"

    lines = [
        f"{'request':38} {'small p50/p95/max ms':22} {'q':>5}  {'big p50/p95/max ms':22} "
        f"{'q':>5}  {'p95<100ms':9} {'same q':6}",
    ]
    for label, by_account in results.items():
        small, big = by_account["small"], by_account["big"]
        if small.ok and big.ok:
            fast = verdict(percentile(big.times_ms, 95) < SERVER_P95_MS)
            same = verdict(max(big.queries) == max(small.queries))
        else:
            fast = same = "missing"
        lines.append(
            f"{label:38} {cell(small):22} {queries(small):>5}  {cell(big):22} {queries(big):>5}  "
            f"{fast:9} {same:6}"
        )
    return lines


def live_table(results: dict[str, Any]) -> list[str]:
    lines = [
        f"{'webhook -> websocket':24} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7} "
        f"{'POST p50/p95':>14}  {'missed':>6} {'drops':>5}  p95<200ms",
    ]
    for label, r in results.items():
        if isinstance(r, str):
            lines.append(f"{label}: {r}")
            continue
        if "missing" in r:
            lines.append(f"{label:24} missing: {r['missing']}")
            continue
        ok = r["p95_ms"] < LIVE_P95_MS and r["missed"] == 0 and r["bad_fragments"] == 0
        lines.append(
            f"{label:24} {r['deliveries']:>4} {r['p50_ms']:>7} {r['p95_ms']:>7} {r['max_ms']:>7} "
            f"{r['webhook_post_p50_ms']:>6}/{r['webhook_post_p95_ms']:<7}  {r['missed']:>6} "
            f"{r['socket_drops']:>5}  {verdict(ok)}"
        )
    return lines


def context_lines() -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
        cursor.execute("SHOW shared_buffers")
        (buffers,) = cursor.fetchone()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return [
        f"inbox bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, "
        f"load average {load} at the start, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {version} "
        f"(shared_buffers {buffers}), DEBUG off",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reseed", action="store_true", help="seed both accounts again")
    parser.add_argument("-n", type=int, default=200, help="requests per row, webhooks per case")
    parser.add_argument("--only", choices=["server", "render", "send", "live"], action="append")
    args = parser.parse_args()
    only = set(args.only or ["server", "render", "send", "live"])

    setup_django()
    ids = seed(reseed=args.reseed)
    report: dict[str, Any] = {"accounts": ids}
    lines = context_lines()
    slow: list[str] = []

    def write() -> None:
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        text = "\n".join([*lines, "", f"load average at the end: {load}", *slow]) + "\n"
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "inbox-latest.txt").write_text(text)
        (RESULTS / "inbox-latest.json").write_text(json.dumps(report, indent=2))

    if "server" in only:
        print("server time, in process:", flush=True)
        rows = server_times(ids, args.n)
        report["server"] = {
            label: {name: row.summary() for name, row in by_account.items()}
            for label, by_account in rows.items()
        }
        lines += ["", *server_table(rows)]
        for label, by_account in rows.items():
            big = by_account["big"]
            if big.ok and percentile(big.times_ms, 95) >= SERVER_P95_MS and big.slowest[2]:
                p95, worst, sql = big.slowest
                slow += [
                    "",
                    f"'{label}' (big): slowest query p95 {p95:.1f} ms; this run {worst:.1f} ms:",
                    sql,
                    explain(sql),
                ]
        write()
    if "render" in only:
        print("live event render, in process:", flush=True)
        renders = live_render(ids, args.n)
        report["render"] = {label: row.summary() for label, row in renders.items()}
        lines += ["", *render_table(renders)]
        write()
    if "live" in only:
        print("webhook to websocket, from outside:", flush=True)
        report["live"] = live(ids, args.n)
        send = report["live"].pop("send")
        lines += ["", *live_table(report["live"]), "", *send_table(send)]
        report["send"] = send
        write()
    print()
    print((RESULTS / "inbox-latest.txt").read_text())
    print(f"written to {RESULTS / 'inbox-latest.txt'} (and .json)")


if __name__ == "__main__":
    main()
