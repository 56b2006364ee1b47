"""Benchmark of the analytics page on a big account, against the same figures from raw rows.

Run with `make bench ARGS=analytics` (or `.venv/bin/python bench/analytics_bench.py --help`).
It uses its own database (fancrm_bench_analytics), seeds one account with
`manage.py bench_analytics_seed` (100,000 fans, 1,000,000 messages, 200,000 purchases, eight
chatters and a manager, Europe/Berlin; kept between runs unless --reseed) and measures, in
this process through Django's test client (middleware, templates, no network), with the SQL
queries of each request:

- the whole page for the last 90 days (the target: p95 under 300 ms), the htmx fragment for
  a change of grouping, 30 days, the CSV export and the two API calls, on the roll-ups;
- the same page computed from the raw rows: the roll-ups swapped for the raw queries and the
  index analytics adds (migration 0002) dropped inside a transaction that is rolled back;
  the ratio of the two p95s is the figure;
- the roll-up refresh after a minute's worth of new rows (what the Celery task costs).

Figures go to stdout and bench/results/analytics-latest.txt (and .json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline_bench import percentile

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DATABASE = "fancrm_bench_analytics"
ACCOUNT = "acct_bench_analytics"
SPEC = {"fans": 100_000, "messages": 1_000_000, "purchases": 200_000}
PAGE_P95_MS = 300.0
ADDED_INDEX = "analytics_message_account_created"

ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-secret",
    # Required with DEBUG off; the sandbox started here signs with its default.
    "ONLYFANS_WEBHOOK_SECRET": "sandbox-webhook-secret",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_HSTS_SECONDS": "0",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": "redis://127.0.0.1:6379/9",
    "CACHE_KEY_PREFIX": "fancrm-bench-analytics",
    "CHANNELS_PREFIX": "fancrm-bench-analytics:asgi",
    "SQS_QUEUE_PREFIX": "fancrm-bench-analytics-",
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    "API_THROTTLE_USER": "1000000/min",
}


def setup_django() -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if not c.execute("select 1 from pg_database where datname = %s", [DATABASE]).fetchone():
            c.execute(f"create database {DATABASE}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def seed(*, reseed: bool) -> int:
    from django.core.management import call_command

    from crm.models import CreatorAccount, Fan, Message, Purchase

    account = CreatorAccount.objects.filter(platform_account_id=ACCOUNT).first()
    ready = (
        account is not None
        and Fan.objects.filter(account=account).count() >= SPEC["fans"]
        and Message.objects.filter(account=account).count() >= SPEC["messages"]
        and Purchase.objects.filter(account=account).count() >= SPEC["purchases"]
    )
    if reseed or not ready:
        print(f"seeding {SPEC}", flush=True)
        call_command(
            "bench_analytics_seed", account_id=ACCOUNT, keep=not reseed, stdout=sys.stdout, **SPEC
        )
        account = CreatorAccount.objects.get(platform_account_id=ACCOUNT)
    assert account is not None
    return account.pk


@dataclass
class Row:
    times_ms: list[float] = field(default_factory=list)
    # This process's CPU time (Python: view, ORM, templates) and the SQL time of each request:
    # on a shared machine the wall time also holds waiting for a core.
    cpu_ms: list[float] = field(default_factory=list)
    sql_ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    statuses: set[int] = field(default_factory=set)
    slowest: tuple[float, str] = (0.0, "")

    def summary(self) -> dict[str, Any]:
        if not self.times_ms:
            return {"missing": sorted(self.statuses)}
        return {
            "n": len(self.times_ms),
            "p50_ms": round(percentile(self.times_ms, 50), 1),
            "p95_ms": round(percentile(self.times_ms, 95), 1),
            "max_ms": round(max(self.times_ms), 1),
            "cpu_p50_ms": round(percentile(self.cpu_ms, 50), 1),
            "sql_p50_ms": round(percentile(self.sql_ms, 50), 1),
            "queries": max(self.queries),
            "slowest_query_ms": round(self.slowest[0], 1),
            "statuses": sorted(self.statuses),
        }


def measure(client: Any, row: Row, path: str, headers: dict[str, str], record: bool) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        cpu = time.process_time()
        response = client.get(path, headers=headers)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        elapsed = (time.perf_counter() - started) * 1000
        cpu_ms = (time.process_time() - cpu) * 1000
    if not record:
        return
    row.statuses.add(response.status_code)
    if response.status_code != 200:
        return
    row.times_ms.append(elapsed)
    row.cpu_ms.append(cpu_ms)
    row.sql_ms.append(sum(float(q["time"]) for q in captured.captured_queries) * 1000)
    row.queries.append(len(captured.captured_queries))
    for query in captured.captured_queries:
        ms = float(query["time"]) * 1000
        if ms > row.slowest[0]:
            row.slowest = (ms, query["sql"])


def requests(account_id: int) -> dict[str, tuple[str, dict[str, str]]]:
    page = f"/accounts/{account_id}/analytics/"
    htmx = {"HX-Request": "true", "HX-Target": "analytics-body"}
    today = datetime.now(UTC).date()
    api_range = f"account={account_id}&from={today - timedelta(days=89)}&to={today}"
    return {
        "page, 90 days by day": (f"{page}?range=90", {}),
        "htmx: 90 days by week": (f"{page}?range=90&interval=week", htmx),
        "page, 30 days by day": (f"{page}?range=30", {}),
        "CSV: chatters, 90 days": (f"{page}export/chatters.csv?range=90", {}),
        "API kpis, 90 days": (f"/api/analytics/kpis?{api_range}", {}),
        "API timeseries revenue by day": (
            f"/api/analytics/timeseries?{api_range}&metric=revenue&interval=day",
            {},
        ),
    }


def run_rows(client: Any, wanted: dict[str, tuple[str, dict[str, str]]], n: int) -> dict[str, Row]:
    rows = {label: Row() for label in wanted}
    for i in range(-2, n):  # two warm-up rounds
        for label, (path, headers) in wanted.items():
            measure(client, rows[label], path, headers, record=i >= 0)
    for label, row in rows.items():
        print(f"  {label}: {json.dumps(row.summary())}", flush=True)
    return rows


def baseline(client: Any, account_id: int, n: int) -> Row:
    """The page with its figures from the raw rows and without the index analytics adds."""
    from django.db import connection, transaction

    from analytics import selectors

    path, headers = requests(account_id)["page, 90 days by day"]
    original = selectors._inputs_rollup
    selectors._inputs_rollup = selectors._inputs_raw  # type: ignore[assignment]
    row = Row()
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX IF EXISTS {ADDED_INDEX}")
            for i in range(-1, n):
                measure(client, row, path, headers, record=i >= 0)
                print(f"  raw page {i + 1}/{n}: {row.times_ms[-1] if i >= 0 else 0:.0f} ms",
                      flush=True)  # fmt: skip
            transaction.set_rollback(True)  # the index comes back
    finally:
        selectors._inputs_rollup = original
    return row


def refresh_cost(account_id: int) -> dict[str, Any]:
    """A minute of a busy account: 300 messages (half replies), 40 purchases; then the
    refresh task's work, timed; then the roll-ups are checked against the raw figures."""
    import random

    from django.contrib.auth.models import User
    from django.utils import timezone

    from analytics.periods import period_for
    from analytics.rollups import rollups_refresh
    from analytics.selectors import report_compute
    from crm.models import Conversation, CreatorAccount, Message, Purchase

    while rollups_refresh()["more"]:  # whatever earlier runs left
        pass
    account = CreatorAccount.objects.get(pk=account_id)
    rng = random.Random(7)
    chatters = list(User.objects.filter(username__startswith="bench_chatter"))
    conversations = list(
        Conversation.objects.filter(account=account).order_by("?")[:150].select_related("fan")
    )
    now = timezone.now()
    messages = []
    for c in conversations:
        messages.append(
            Message(account=account, conversation=c, direction="in", status="received",
                    sender_kind="fan", text="hey")
        )  # fmt: skip
        messages.append(
            Message(account=account, conversation=c, direction="out", status="sent",
                    sender_kind="user", sent_by=rng.choice(chatters), sent_at=now, text="hi")
        )  # fmt: skip
    Message.objects.bulk_create(messages)
    stamp = int(time.time())
    Purchase.objects.bulk_create(
        [
            Purchase(
                account=account,
                fan=c.fan,
                kind="tip",
                amount_cents=500,
                purchased_at=now,
                platform_event_id=f"bench_refresh_{stamp}_{i}",
            )
            for i, c in enumerate(conversations[:40])
        ]
    )
    started = time.perf_counter()
    result = rollups_refresh()
    elapsed = (time.perf_counter() - started) * 1000
    period = period_for(zone_name=account.time_zone, days=90)
    rolled = report_compute(account=account, period=period, interval="day", with_fans=False)
    raw = report_compute(
        account=account, period=period, interval="day", with_fans=False, source="raw"
    )
    same = all(
        (a.value, a.previous) == (b.value, b.previous)
        for a, b in zip(rolled.kpis, raw.kpis, strict=True)
        if a.unit != "seconds"
    )
    medians = [
        (round(a.value or 0), round(b.value or 0)) for a, b in zip(rolled.kpis, raw.kpis,
                                                                   strict=True)
        if a.unit == "seconds"
    ]  # fmt: skip
    return {
        "new_messages": len(messages),
        "new_purchases": 40,
        "refresh_ms": round(elapsed),
        "days_recomputed": result["days"],
        "rollups_equal_raw": same,
        "median_rollup_vs_raw_s": medians[0],
    }


def context_line() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        (version,) = cursor.fetchone()
        cursor.execute("SHOW shared_buffers")
        (buffers,) = cursor.fetchone()
        cursor.execute("SHOW work_mem")
        (work_mem,) = cursor.fetchone()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"analytics bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}, load average "
        f"{load} at the start, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"PostgreSQL {version} (shared_buffers {buffers}, work_mem {work_mem}), DEBUG off"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reseed", action="store_true", help="seed the account again")
    parser.add_argument("-n", type=int, default=50, help="requests per row (roll-ups)")
    parser.add_argument("--raw-n", type=int, default=5, help="requests of the raw baseline")
    args = parser.parse_args()

    setup_django()
    account_id = seed(reseed=args.reseed)
    from django.contrib.auth.models import User
    from django.test import Client

    from analytics.rollups import rollups_refresh

    rollups_refresh()
    client = Client()
    client.force_login(User.objects.get(username="bench_owner"))
    lines = [context_line(), ""]
    print(lines[0], flush=True)
    print("with the roll-ups:", flush=True)
    rows = run_rows(client, requests(account_id), args.n)
    print("baseline (raw rows, no added index):", flush=True)
    raw = baseline(client, account_id, args.raw_n)
    print("refresh after a minute of traffic:", flush=True)
    refresh = refresh_cost(account_id)
    print(f"  {json.dumps(refresh)}", flush=True)

    lines.append(
        f"{'request (ms)':34} {'p50':>8} {'p95':>8} {'max':>8} {'cpu p50':>8} {'sql p50':>8} "
        f"{'queries':>7}"
    )

    def line(label: str, s: dict[str, Any]) -> str:
        if "missing" in s:
            return f"{label:34} missing {s['missing']}"
        return (
            f"{label:34} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['max_ms']:>8} "
            f"{s['cpu_p50_ms']:>8} {s['sql_p50_ms']:>8} {s['queries']:>7}"
        )

    for label, row in rows.items():
        lines.append(line(label, row.summary()))
    page = rows["page, 90 days by day"].summary()
    r = raw.summary()
    lines.append(line("raw baseline: page, 90 days", r))
    ratio = r["p95_ms"] / page["p95_ms"] if page.get("p95_ms") else 0
    verdict = "PASS" if page.get("p95_ms", 1e9) < PAGE_P95_MS else "FAIL"
    lines += [
        "",
        f"page 90 days p95 {page['p95_ms']} ms < {PAGE_P95_MS:.0f} ms: {verdict}; "
        f"raw baseline p95 {r['p95_ms']} ms: {ratio:.0f}x slower",
        f"refresh after {refresh['new_messages']} messages and {refresh['new_purchases']} "
        f"purchases: {refresh['refresh_ms']} ms ({refresh['days_recomputed']} days recomputed); "
        f"roll-ups equal raw: {refresh['rollups_equal_raw']}; median response roll-up vs raw "
        f"(s): {refresh['median_rollup_vs_raw_s']}",
        "",
        "load average (1/5/15 min) at the end: " + " / ".join(f"{x:.1f}" for x in os.getloadavg()),
    ]
    text = "\n".join(lines) + "\n"
    print()
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "analytics-latest.txt").write_text(text)
    report = {
        "account": account_id,
        "rollups": {k: v.summary() for k, v in rows.items()},
        "raw_baseline": r,
        "ratio_p95": round(ratio, 1),
        "refresh": refresh,
    }
    (RESULTS / "analytics-latest.json").write_text(json.dumps(report, indent=2))
    print(f"written to {RESULTS / 'analytics-latest.txt'}")


if __name__ == "__main__":
    main()
