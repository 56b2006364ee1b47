"""The agency overview and the review feed at 20 accounts of 100,000 fans each, from outside:
the web server as ``make run`` starts it (uvicorn, two workers, DEBUG off), a logged-in
owner's session, GET requests as the browser sends them.

Run with `.venv/bin/python bench/overview_bench.py [-n 200] [--reseed] [--explain]`. It uses
its own database (fancrm_bench_overview), Redis database 7 and port 8795. The first account is
seeded with ``bench_inbox_seed`` (COPY: 100,000 fans, 200,000 messages, their purchases), the
other 19 are copies of it made in SQL (``INSERT … SELECT`` with shifted ids, a few seconds
each); every account gets two chatters, one clocked in, and queued messages. Kept between
runs unless --reseed. The settings page (same session, middleware and top bar) is measured
in the same run as the baseline. Target: the
overview's p95 under 200 ms.
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
from fans_search_bench import measure

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
DATABASE = "fancrm_bench_overview"
PORT = int(os.environ.get("BENCH_OVERVIEW_PORT", "8795"))
ACCOUNTS, FANS, MESSAGES = 20, 100_000, 200_000
SOURCE_ID = "acct_bench_ov0"
ID_STEP = 10_000_000  # copy k's ids are the source's + k * ID_STEP
TARGET_P95_MS = 200.0

ENV = {
    **inbox_bench.ENV,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": os.environ.get("BENCH_OVERVIEW_REDIS_URL", "redis://127.0.0.1:6379/7"),
    "CACHE_KEY_PREFIX": "fancrm-bench-overview",
    "CHANNELS_PREFIX": "fancrm-bench-overview:asgi",
    "SQS_QUEUE_PREFIX": "fancrm-bench-overview-",
}


def _columns(model: Any, replace: dict[str, str]) -> tuple[str, str]:
    """The table's column list, and the SELECT list that copies a row with ``replace``d
    columns (SQL expressions over the source row)."""
    names = [f.column for f in model._meta.concrete_fields]
    return ", ".join(names), ", ".join(replace.get(n, n) for n in names)


def _account_copy(source_id: int, k: int) -> int:
    """Copy the source account's fans, conversations, messages and purchases into a new
    account, ids shifted by ``k * ID_STEP``; returns the new account's id."""
    from django.db import connection

    from crm.models import Conversation, CreatorAccount, Fan, Membership, Message, Purchase

    source = CreatorAccount.objects.get(pk=source_id)
    account = CreatorAccount.objects.create(
        platform_account_id=f"acct_bench_ov{k}",
        display_name=f"Creator {k:02d}",
        send_rate_per_minute=source.send_rate_per_minute,
        send_min_interval_ms=0,
        time_zone=["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"][k % 4],
    )
    owner_id = Membership.objects.get(account_id=source_id, role="owner").user_id
    Membership.objects.create(account=account, user_id=owner_id, role="owner")
    off = k * ID_STEP
    plans = [
        (Fan, {"id": f"id + {off}", "account_id": str(account.pk)}),
        (
            Conversation,
            {"id": f"id + {off}", "account_id": str(account.pk), "fan_id": f"fan_id + {off}"},
        ),
        (
            Message,
            {
                "id": f"id + {off}",
                "account_id": str(account.pk),
                "conversation_id": f"conversation_id + {off}",
                "idempotency_key": "gen_random_uuid()",
            },
        ),
        (
            Purchase,
            {
                "id": f"id + {off}",
                "account_id": str(account.pk),
                "fan_id": f"fan_id + {off}",
                "message_id": f"message_id + {off}",
            },
        ),
    ]
    with connection.cursor() as cursor:
        for model, replace in plans:
            table = model._meta.db_table
            columns, select = _columns(model, replace)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {select} FROM {table} "
                "WHERE account_id = %s",
                [source_id],
            )
    return account.pk


def _staff(account_ids: list[int]) -> None:
    """Two chatters per account, the first clocked in; 25 queued messages per account."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.utils import timezone

    from crm.models import Membership, Message, WorkSession

    now = timezone.now()
    for i, account_id in enumerate(account_ids):
        for j in range(2):
            user, _ = User.objects.get_or_create(username=f"bench_chatter_{i}_{j}")
            Membership.objects.get_or_create(account_id=account_id, user=user, role="chatter")
            if j == 0:
                WorkSession.objects.get_or_create(
                    account_id=account_id,
                    user=user,
                    ended_at=None,
                    defaults={"started_at": now, "last_activity_at": now},
                )
        conversation_id = (
            Message.objects.filter(account_id=account_id).values_list("conversation_id", flat=True)
        ).first()
        Message.objects.bulk_create(
            Message(
                account_id=account_id,
                conversation_id=conversation_id,
                direction="out",
                status="queued",
                sender_kind="user",
                text=f"queued {n}",
                queued_at=now,
            )
            for n in range(25)
        )
    with connection.cursor() as cursor:
        for table in ("crm_fan", "crm_conversation", "crm_message", "crm_purchase"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"
            )


def seed(*, reseed: bool) -> list[int]:
    from django.core.management import call_command
    from django.db import connection

    from crm.models import CreatorAccount, Fan

    ids = list(
        CreatorAccount.objects.filter(platform_account_id__startswith="acct_bench_ov")
        .order_by("id")
        .values_list("id", flat=True)
    )
    if not reseed and len(ids) == ACCOUNTS and Fan.objects.count() == ACCOUNTS * FANS:
        return ids
    started = time.perf_counter()
    CreatorAccount.objects.filter(platform_account_id__startswith="acct_bench_ov").exclude(
        platform_account_id=SOURCE_ID
    ).delete()
    print(f"seeding {SOURCE_ID}: {FANS:,} fans, {MESSAGES:,} messages", flush=True)
    call_command(
        "bench_inbox_seed",
        fans=FANS,
        messages=MESSAGES,
        account_id=SOURCE_ID,
        seed="overview-bench",
        stdout=sys.stdout,
    )
    source = CreatorAccount.objects.get(platform_account_id=SOURCE_ID)
    ids = [source.pk]
    for k in range(1, ACCOUNTS):
        t0 = time.perf_counter()
        ids.append(_account_copy(source.pk, k))
        print(f"  copy {k}: {time.perf_counter() - t0:.1f} s", flush=True)
    _staff(ids)
    with connection.cursor() as cursor:
        for table in ("crm_fan", "crm_conversation", "crm_message", "crm_purchase"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    print(f"seeded {ACCOUNTS} accounts in {time.perf_counter() - started:.0f} s", flush=True)
    return ids


def session_cookie() -> str:
    from django.contrib.auth.models import User
    from django.test import Client

    browser = Client()
    browser.force_login(
        User.objects.get(username="bench_owner"),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    return browser.cookies["sessionid"].value


def explain(user_id: int) -> str:
    """The plan of the overview's figures statement for the bench owner."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from workday import selectors

    user = User.objects.get(pk=user_id)
    with CaptureQueriesContext(connection) as queries:
        selectors.overview_tiles(user=user)
    sql = queries.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def figures(account_ids: list[int]) -> dict[str, Any]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE waiting_since IS NOT NULL), "
            "count(*) FILTER (WHERE unread_count > 0), count(*) FROM crm_conversation "
            "WHERE account_id = ANY(%s)",
            [account_ids],
        )
        waiting, unread, conversations = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM crm_message WHERE account_id = ANY(%s)", [account_ids])
        (messages,) = cursor.fetchone()
    return {
        "accounts": len(account_ids),
        "conversations": conversations,
        "waiting": waiting,
        "unread": unread,
        "messages": messages,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=100, help="requests per kind")
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print the overview's plan")
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    inbox_bench.setup_django(env=ENV, database=DATABASE)
    account_ids = seed(reseed=args.reseed)
    data = figures(account_ids)
    print(f"data: {json.dumps(data)}", flush=True)
    from django.contrib.auth.models import User

    owner = User.objects.get(username="bench_owner")
    if args.explain:
        print(explain(owner.pk))
    chatter = User.objects.get(username="bench_chatter_0_0")
    cookie = session_cookie()
    rng = random.Random("overview-bench")
    n = args.n
    tiles = {"HX-Request": "true", "HX-Target": "overview-tiles"}
    more = {"HX-Request": "true", "HX-Target": "review-more"}
    from workday import selectors

    first = selectors.review_feed_page(user=owner, filters=selectors.ReviewFilters())
    kinds: dict[str, list[tuple[str, dict[str, str]]]] = {
        # The home page counts every account's fans (2,000,000 here): the settings page is
        # the baseline, the same session, middleware and top bar with no figures of its own.
        "baseline: settings page": [("/settings/", {})] * n,
        "overview page": [("/overview/", {})] * n,
        "overview tiles (the 30 s poll)": [("/overview/", tiles)] * n,
        "overview API": [("/api/workday/overview", {})] * n,
        "review feed, 20 accounts": [("/review/", {})] * n,
        "review feed, next page (htmx)": [(f"/review/?cursor={first.next_cursor}", more)] * n,
        "review feed, one account, paid": [
            (f"/review/?account={rng.choice(account_ids)}&price=paid", {}) for _ in range(n)
        ],
        "review feed, one chatter": [(f"/review/?chatter={chatter.pk}", {})] * n,
        "review feed, flag long wait": [("/review/?flag=long_wait", {})] * n,
    }
    server_log = open(VAR / "overview-web.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        inbox_bench.web_server_argv(port=PORT),
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=server_log,
        stderr=server_log,
    )
    base = f"http://127.0.0.1:{PORT}"
    results: dict[str, Any] = {
        "data": data,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        inbox_bench.server_wait(base)
        for label, requests in kinds.items():
            (row,) = measure([base], cookie, requests)
            results[label] = row
            target = label.startswith("overview")
            verdict = ("PASS" if row["ms_p95"] < TARGET_P95_MS else "MISS") if target else "    "
            print(
                f"{verdict}  {label}: {json.dumps(row)}"
                + (f"  (target p95 < {TARGET_P95_MS:.0f} ms)" if target else ""),
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=20)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {results['load_average_before']} -> {results['load_average_after']}")
    (VAR / "overview.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
