"""The composer's media picker at volume, from outside: a vault of 20,000 items and a fan with
2,000 media events, the picker's first page with the fan's marks as the page asks for it,
beside the thread page of the same conversation (the baseline) in the same run.

Run with `.venv/bin/python bench/vault_picker_bench.py [-n 200] [--reseed]`. It uses its own
database (fancrm_bench_vault or BENCH_VAULT_DATABASE, seeded once and kept between runs),
Redis database 9 (BENCH_FANS_REDIS_URL) and port 8797 (BENCH_VAULT_PORT), with DEBUG off
(uvicorn, 2 workers, as ``make run``); it prints p50/p95/p99 per kind of request beside the
target (picker p95 < 150 ms), the query count of one picker request at this
volume and at a tiny vault (flat: the same), and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fans_search_bench
import inbox_bench

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
DATABASE = os.environ.get("BENCH_VAULT_DATABASE", "fancrm_bench_vault")
PORT = int(os.environ.get("BENCH_VAULT_PORT", "8797"))
ACCOUNT_ID, ITEMS, EVENTS, THREAD_MESSAGES = "acct_vault_big", 20_000, 2_000, 200
TARGET_P95_MS = 150.0
ENV = {
    **fans_search_bench.ENV,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "CACHE_KEY_PREFIX": "fancrm-bench-vault",
    "CHANNELS_PREFIX": "fancrm-bench-vault:asgi",
    "SQS_QUEUE_PREFIX": "fancrm-bench-vault-",
}


def seed(*, reseed: bool) -> dict[str, int]:
    """An account with ITEMS vault items (types and labels mixed), a fan whose conversation has
    THREAD_MESSAGES messages and EVENTS media events over as many items (bought, offered, sent
    free), and a second, tiny account for the flat-count check."""
    from django.contrib.auth.models import User

    from crm.models import (
        Conversation,
        CreatorAccount,
        Fan,
        FanMediaEvent,
        Membership,
        Message,
        VaultItem,
    )

    account = CreatorAccount.objects.filter(platform_account_id=ACCOUNT_ID).first()
    if (
        not reseed
        and account is not None
        and VaultItem.objects.filter(account=account).count() == ITEMS
    ):
        fan = Fan.objects.get(account=account, platform_fan_id="bench-fan")
        small = CreatorAccount.objects.get(platform_account_id=f"{ACCOUNT_ID}_small")
        return {
            "account": account.pk,
            "conversation": Conversation.objects.get(fan=fan).pk,
            "small_account": small.pk,
            "small_conversation": Conversation.objects.get(account=small).pk,
        }
    print(f"seeding {ITEMS:,} vault items, {EVENTS:,} media events", flush=True)
    CreatorAccount.objects.filter(platform_account_id__startswith=ACCOUNT_ID).delete()
    owner, _ = User.objects.get_or_create(username="bench_owner")
    now = datetime.now(UTC)
    rng = random.Random("vault-bench")
    ids: dict[str, int] = {}
    for suffix, items_n, events_n in (("", ITEMS, EVENTS), ("_small", 5, 3)):
        account = CreatorAccount.objects.create(
            platform_account_id=f"{ACCOUNT_ID}{suffix}", display_name=f"Vault bench{suffix}"
        )
        Membership.objects.create(account=account, user=owner, role="owner")
        fan = Fan.objects.create(
            account=account, platform_fan_id="bench-fan", username=f"bench_fan{suffix}"
        )
        conversation = Conversation.objects.create(account=account, fan=fan, last_message_at=now)
        types = ["photo"] * 6 + ["video"] * 3 + ["gif", "audio"]
        labels = ["feet", "custom", "$25 tier", "lingerie", "shower", "b/g"]
        VaultItem.objects.bulk_create(
            [
                VaultItem(
                    account=account,
                    platform_media_id=str(5_000_000 + i),
                    media_type=rng.choice(types),
                    platform_created_at=now - timedelta(minutes=i),
                    labels=rng.sample(labels, rng.randint(0, 2)),
                    is_ready=i % 97 != 0,
                    # A stored thumbnail name, so each card builds its members-only URL.
                    thumb_name=f"bench/{i}.jpg",
                    thumb_fetched_at=now,
                    synced_at=now,
                )
                for i in range(items_n)
            ],
            batch_size=2000,
        )
        Message.objects.bulk_create(
            [
                Message(
                    account=account,
                    conversation=conversation,
                    direction="in" if i % 2 else "out",
                    status="received" if i % 2 else "sent",
                    sent_at=None if i % 2 else now,
                    text=f"message {i}",
                    sender_kind="fan" if i % 2 else "user",
                )
                for i in range(min(THREAD_MESSAGES, items_n * 40))
            ]
        )
        # The fan's history spread over the newest items, so the first page carries marks.
        items = list(
            VaultItem.objects.filter(account=account)
            .order_by("-platform_created_at")
            .values_list("pk", "platform_media_id")[:events_n]
        )
        kinds = ["bought", "offered", "sent_free"]
        FanMediaEvent.objects.bulk_create(
            [
                FanMediaEvent(
                    account=account,
                    fan=fan,
                    vault_item_id=pk,
                    platform_media_id=platform_id,
                    kind=kinds[n % 3],
                    price_cents=0 if n % 3 == 2 else 1500,
                    at=now - timedelta(hours=n),
                    source="platform_history",
                )
                for n, (pk, platform_id) in enumerate(items)
            ],
            batch_size=2000,
        )
        ids["small_account" if suffix else "account"] = account.pk
        ids["small_conversation" if suffix else "conversation"] = conversation.pk
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return ids


def query_counts(ids: dict[str, int]) -> dict[str, int]:
    """Queries of one picker request at 20,000 items and 2,000 events, and at 5 and 3."""
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    browser = Client()
    browser.force_login(User.objects.get(username="bench_owner"))
    counts = {}
    for label, account, conversation in (
        ("big", ids["account"], ids["conversation"]),
        ("small", ids["small_account"], ids["small_conversation"]),
    ):
        url = reverse("inbox_media_picker", args=[account, conversation])
        browser.get(url, headers={"HX-Request": "true"})
        with CaptureQueriesContext(connection) as captured:
            reply = browser.get(url, headers={"HX-Request": "true"})
        assert reply.status_code == 200, reply.status_code
        counts[label] = len(captured.captured_queries)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="requests per kind")
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    inbox_bench.setup_django(env=ENV, database=DATABASE)
    ids = seed(reseed=args.reseed)
    counts = query_counts(ids)
    flat = "flat" if counts["big"] == counts["small"] else "NOT FLAT"
    print(
        f"picker queries: {counts['big']} at {ITEMS:,} items / {EVENTS:,} events, "
        f"{counts['small']} at 5 items / 3 events ({flat})"
    )
    cookie = fans_search_bench.session_cookie()
    account, conversation = ids["account"], ids["conversation"]
    picker = f"/accounts/{account}/inbox/{conversation}/media-picker/"
    htmx = {"HX-Request": "true"}
    kinds = {
        "thread page (baseline)": [(f"/accounts/{account}/inbox/{conversation}/", {})] * args.n,
        "picker, first open (filters + first page + marks)": [(picker, htmx)] * args.n,
        "picker grid, a filter (type=video)": [(f"{picker}?part=grid&type=video", htmx)] * args.n,
        "picker grid, a label (feet)": [(f"{picker}?part=grid&label=feet", htmx)] * args.n,
        # Search by part of a label or list name: one that matches nothing reads every item.
        "picker grid, a search (q=fee)": [(f"{picker}?part=grid&q=fee", htmx)] * args.n,
        "picker grid, a search matching nothing": [(f"{picker}?part=grid&q=zzq", htmx)] * args.n,
    }
    log = open(VAR / "vault-picker-web.log", "wb")  # noqa: SIM115
    web = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(PORT),
            "--workers",
            "2",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{PORT}"
    results: dict[str, Any] = {
        "query_counts": counts,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        inbox_bench.server_wait(base)
        for label, requests in kinds.items():
            [row] = fans_search_bench.measure([base], cookie, requests)
            results[label] = row
            target = "" if "baseline" in label else f"  (target p95 < {TARGET_P95_MS:.0f} ms)"
            verdict = (
                "    " if not target else ("PASS" if row["ms_p95"] < TARGET_P95_MS else "MISS")
            )
            print(f"{verdict}  {label}: {json.dumps(row)}{target}", flush=True)
    finally:
        web.terminate()
        web.wait(timeout=20)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {results['load_average_before']} -> {results['load_average_after']}")
    (VAR / "vault-picker.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
