"""The fans page's search at 100,000 fans, from outside: the web server as ``make run`` starts
it, a logged-in browser session, GET requests as the page's search box sends them.

Run with `.venv/bin/python bench/fans_search_bench.py [-n 200] [--reseed] [--explain]
[--baseline-tree DIR]`. It uses
its own database (fancrm_bench_fans, seeded once with ``bench_inbox_seed``: 100,000 fans and
100,000 messages, kept between runs), Redis database 9 and port 8796, with DEBUG off; it prints
p50/p95/p99 per kind of request beside the target (p95 < 100 ms) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import inbox_bench

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
DATABASE = "fancrm_bench_fans"
PORT = int(os.environ.get("BENCH_FANS_PORT", "8796"))
ACCOUNT_ID, FANS, MESSAGES = "acct_fans_big", 100_000, 100_000
TARGET_P95_MS = 100.0

ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-secret",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_HSTS_SECONDS": "0",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": os.environ.get("BENCH_FANS_REDIS_URL", "redis://127.0.0.1:6379/9"),
    "CACHE_KEY_PREFIX": "fancrm-bench-fans",
    "CHANNELS_PREFIX": "fancrm-bench-fans:asgi",
    "SQS_QUEUE_PREFIX": "fancrm-bench-fans-",
    "ONLYFANS_WEBHOOK_SECRET": "bench-webhook-secret",
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    "API_THROTTLE_USER": "1000000/min",
    "API_THROTTLE_SEND": "1000000/min",
}


def seed(*, reseed: bool) -> int:
    from django.core.management import call_command

    from crm.models import CreatorAccount, Fan

    account = CreatorAccount.objects.filter(platform_account_id=ACCOUNT_ID).first()
    if reseed or account is None or Fan.objects.filter(account=account).count() != FANS:
        print(f"seeding {FANS:,} fans, {MESSAGES:,} messages", flush=True)
        call_command(
            "bench_inbox_seed",
            fans=FANS,
            messages=MESSAGES,
            account_id=ACCOUNT_ID,
            seed="fans-bench",
            stdout=sys.stdout,
        )
        account = CreatorAccount.objects.get(platform_account_id=ACCOUNT_ID)
    return account.pk


def session_cookie() -> str:
    from django.contrib.auth.models import User
    from django.test import Client

    browser = Client()
    browser.force_login(
        User.objects.get(username="bench_owner"),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    return browser.cookies["sessionid"].value


def search_terms(account_id: int, n: int, rng: random.Random) -> list[str]:
    """3 to 5 letters of a random fan's username, as someone types them."""
    from crm.models import Fan

    usernames = list(
        Fan.objects.filter(account_id=account_id)
        .order_by("?")
        .values_list("username", flat=True)[: max(n, 50)]
    )
    terms = []
    for _ in range(n):
        name = rng.choice(usernames)
        size = rng.randint(3, 5)
        start = rng.randint(0, max(0, len(name) - size))
        terms.append(name[start : start + size])
    return terms


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(
    bases: list[str], cookie: str, requests: list[tuple[str, dict[str, str]]]
) -> list[dict[str, Any]]:
    """Each request asked of every server in turn (with --baseline-tree: the baseline and this
    tree), so that a burst of load on the shared machine falls on both alike."""
    import httpx

    times: list[list[float]] = [[] for _ in bases]
    statuses: list[dict[int, int]] = [{} for _ in bases]
    https = [httpx.Client(base_url=b, cookies={"sessionid": cookie}, timeout=30) for b in bases]
    try:
        for i, (url, headers) in enumerate([*requests[:5], *requests]):
            for k, http in enumerate(https):
                t0 = time.perf_counter()
                reply = http.get(url, headers=headers)
                ms = (time.perf_counter() - t0) * 1000
                if i >= 5:  # the first five warm the server up
                    times[k].append(ms)
                    statuses[k][reply.status_code] = statuses[k].get(reply.status_code, 0) + 1
    finally:
        for http in https:
            http.close()
    return [
        {
            "n": len(t),
            "statuses": st,
            "ms_p50": round(percentile(t, 50), 1),
            "ms_p95": round(percentile(t, 95), 1),
            "ms_p99": round(percentile(t, 99), 1),
            "ms_max": round(max(t), 1),
        }
        for t, st in zip(times, statuses, strict=True)
    ]


def explain(account_id: int, term: str) -> str:
    """The plans of the page's two statements (its count and its first page)."""
    from django.contrib.auth.models import User
    from django.db import connection

    from crm.selectors import fans_for_account

    fans = fans_for_account(
        user=User.objects.get(username="bench_owner"), account_id=account_id, query=term
    )
    out = []
    for qs, count in ((fans.order_by().values("id"), True), (fans[:50], False)):
        sql, params = qs.query.sql_with_params()
        if count:
            sql = f"SELECT count(*) FROM ({sql}) t"
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            out.append("\n".join(line for (line,) in cursor.fetchall()))
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="requests per kind")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print the query plans too")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        help="a checkout of the baseline commit: its web server is measured in the same run,"
        " request by request beside this tree's",
    )
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    inbox_bench.setup_django(env=ENV, database=DATABASE)
    account_id = seed(reseed=args.reseed)
    rng = random.Random("fans-search-bench")
    terms = search_terms(account_id, args.n, rng)
    if args.explain:
        print(explain(account_id, terms[0]))
    cookie = session_cookie()
    page = f"/accounts/{account_id}/fans/"
    htmx = {"HX-Request": "true", "HX-Target": "fan-table"}
    kinds = {
        "fans page, no search": [(page, {})] * args.n,
        "fans page, search (3-5 letters)": [(f"{page}?q={t}", {}) for t in terms],
        "search as the box asks (htmx table)": [(f"{page}?q={t}", htmx) for t in terms],
    }
    trees = {"this tree": ROOT}
    if args.baseline_tree:
        trees = {"baseline": args.baseline_tree.resolve(), **trees}
    servers = []
    for i, tree in enumerate(trees.values()):
        log = open(VAR / f"fans-search-web-{i}.log", "wb")  # noqa: SIM115
        servers.append(
            subprocess.Popen(
                [
                    str(ROOT / ".venv/bin/uvicorn"),
                    "config.asgi:application",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(PORT + i),
                    "--workers",
                    "2",
                    "--no-access-log",
                ],
                cwd=tree,
                env={**os.environ, **ENV},
                stdout=log,
                stderr=log,
            )
        )
    bases = [f"http://127.0.0.1:{PORT + i}" for i in range(len(trees))]
    results: dict[str, Any] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}
    try:
        import httpx

        for base in bases:
            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.get(f"{base}/readyz", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the web server at {base} did not start") from None
                    time.sleep(0.3)
        for label, requests in kinds.items():
            rows = measure(bases, cookie, requests)
            results[label] = dict(zip(trees, rows, strict=True))
            for name, row in zip(trees, rows, strict=True):
                verdict = "PASS" if row["ms_p95"] < TARGET_P95_MS else "MISS"
                print(
                    f"{verdict}  {label} [{name}]: {json.dumps(row)}"
                    f"  (target p95 < {TARGET_P95_MS:.0f} ms)",
                    flush=True,
                )
    finally:
        for web in servers:
            web.terminate()
            web.wait(timeout=20)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {results['load_average_before']} -> {results['load_average_after']}")
    (VAR / "fans-search.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
