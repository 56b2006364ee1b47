"""The media page ("which content sells") at volume, from outside: the web server as ``make
run`` starts it, a logged-in owner's session, GET requests as the page's links send them.

Run with `.venv/bin/python bench/media_stats_bench.py [-n 100] [--reseed] [--explain]`. It
uses its own database (fancrm_bench_media, or BENCH_MEDIA_DATABASE), Redis database 9
(BENCH_MEDIA_REDIS_URL) and port 8798 (BENCH_MEDIA_PORT), DEBUG off. The data is generated
in SQL (generate_series), once, kept between runs:

- one account (Europe/Berlin) with an owner, a manager and eight chatters; 20,000 fans, each
  with a conversation;
- a vault of 20,000 items (photos, videos, gifs, audio; 20 lists; labels on a fifth), the
  earlier items sent far more often than the later ones (popular content);
- 500,000 sent messages over the last 365 days, 45 % free and 55 % pay-per-view at seven
  prices ($5 to $50), each carrying 1 to 7 items (about 2,000,000 MessageMedia rows), the
  first item of a PPV with several a free preview half of the time;
- a PPV purchase for about one offer in six (cheaper offers sell more), roll-ups for the
  analytics page (the baseline), and the media page's roll-up (``crm.media_stats``), built as
  the beat task builds it for rows written outside the send path.

It then measures, every request asked of the same server in turn so that a burst of load on
the shared machine falls on all alike: the media page for 30 days and for all time sorted by
revenue (the target: p95 < 150 ms), the other sorts, a filter, the price and chatter views,
an item's page, the API, and the analytics page for 30 days as the baseline. ``--explain``
prints the plans of the page's statements. Figures go to stdout and var/bench/media-stats.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import inbox_bench

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
DATABASE = os.environ.get("BENCH_MEDIA_DATABASE", "fancrm_bench_media")
PORT = int(os.environ.get("BENCH_MEDIA_PORT", "8798"))
ACCOUNT_ID = "acct_bench_media"
SPEC = {"fans": 20_000, "items": 20_000, "messages": 500_000, "lists": 20, "days": 365}
PRICES = [500, 1000, 1500, 2000, 2500, 3000, 5000]
CHATTERS = 8
TARGET_P95_MS = 150.0

ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-secret",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_HSTS_SECONDS": "0",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": os.environ.get("BENCH_MEDIA_REDIS_URL", "redis://127.0.0.1:6379/9"),
    "CACHE_KEY_PREFIX": "fancrm-bench-media",
    "CHANNELS_PREFIX": "fancrm-bench-media:asgi",
    "SQS_QUEUE_PREFIX": "fancrm-bench-media-",
    "ONLYFANS_WEBHOOK_SECRET": "bench-webhook-secret",
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    "API_THROTTLE_USER": "1000000/min",
}

# Every statement is set-based; %(name)s are the seed's parameters. Item popularity: an item
# id drawn as items * r^3 (r uniform), so the first few hundred items carry most sends; the
# k-th item of a message is that draw plus k * 7919 (a prime), all different within a message.
SEED_SQL = [
    """
    INSERT INTO crm_fan (account_id, platform_fan_id, username, display_name, email, tags,
        notes, lifetime_spend_cents, subscription_state, created_at, updated_at)
    SELECT %(account)s, 'bf' || g, 'benchfan' || g, 'Bench fan ' || g, '', '{}', '', 0,
        'active', now() - interval '400 days', now()
    FROM generate_series(1, %(fans)s) g
    """,
    """
    INSERT INTO crm_conversation (account_id, fan_id, last_message_at, unread_count,
        created_at, last_message_direction, last_message_preview)
    SELECT account_id, id, now(), 0, now() - interval '400 days', 'out', ''
    FROM crm_fan WHERE account_id = %(account)s
    """,
    """
    INSERT INTO crm_vaultlist (account_id, platform_list_id, name, list_type, photo_count,
        video_count, gif_count, audio_count, synced_at, created_at)
    SELECT %(account)s, 'bl' || g, 'List ' || g, 'custom', 0, 0, 0, 0, now(), now()
    FROM generate_series(1, %(lists)s) g
    """,
    """
    INSERT INTO crm_vaultitem (account_id, platform_media_id, media_type, duration_seconds,
        platform_created_at, is_ready, has_error, has_custom_preview, likes_count, tips_cents,
        thumb_name, labels, synced_at, created_at, updated_at)
    SELECT %(account)s, 'bm' || g,
        (ARRAY['photo', 'photo', 'photo', 'video', 'video', 'gif', 'audio'])[1 + g %% 7],
        CASE WHEN g %% 7 IN (3, 4, 6) THEN 10 + g %% 300 END,
        now() - interval '500 days' + g * interval '30 minutes', true, false, false,
        g %% 97, 0, '',
        CASE WHEN g %% 5 = 0 THEN ARRAY['tier' || (g %% 4)]::varchar[] ELSE '{}' END,
        now(), now(), now()
    FROM generate_series(1, %(items)s) g
    """,
    """
    INSERT INTO crm_vaultitemlist (item_id, vault_list_id)
    SELECT i.id, l.id
    FROM crm_vaultitem i
    JOIN crm_vaultlist l ON l.account_id = i.account_id
        AND l.platform_list_id = 'bl' || (1 + i.id %% %(lists)s)
    WHERE i.account_id = %(account)s
    """,
    # The messages: n = 1..7 items, PPV for 55 %% at one of the prices, a chatter each (a tenth
    # by nobody: campaigns), sent over the last %(days)s days.
    """
    CREATE TEMP TABLE bench_plan AS
    SELECT g AS n,
        (SELECT min(id) FROM crm_conversation WHERE account_id = %(account)s)
            + (g * 7) %% %(fans)s AS conversation_id,
        CASE WHEN random() < 0.55
             THEN (%(prices)s::int[])[1 + floor(random() * array_length(%(prices)s::int[], 1))]
             ELSE 0 END AS price_cents,
        1 + floor(random() * 7)::int AS media_n,
        floor(%(items)s * power(random(), 3))::int AS first_item,
        CASE WHEN g %% 10 = 0 THEN NULL
             ELSE (%(chatters)s::int[])[1 + g %% array_length(%(chatters)s::int[], 1)] END
             AS sent_by_id,
        now() - random() * (%(days)s * interval '1 day') AS sent_at,
        random() < 0.5 AS with_preview
    FROM generate_series(1, %(messages)s) g
    """,
    """
    INSERT INTO crm_message (account_id, conversation_id, direction, text, price_cents,
        media_ids, status, platform_message_id, idempotency_key, sender_kind, sent_by_id,
        attempts, last_error, queued_at, sent_at, created_at, updated_at)
    SELECT %(account)s, conversation_id, 'out', '', price_cents, '{}', 'sent',
        'bpm' || n, gen_random_uuid(), CASE WHEN sent_by_id IS NULL THEN 'campaign'
        ELSE 'user' END, sent_by_id, 1, '', sent_at, sent_at, sent_at, sent_at
    FROM bench_plan ORDER BY sent_at
    """,
    """
    INSERT INTO crm_messagemedia (account_id, message_id, vault_item_id, platform_media_id,
        is_preview, position)
    SELECT %(account)s, m.id, i.id, i.platform_media_id,
        p.price_cents > 0 AND p.media_n > 1 AND p.with_preview AND k = 0, k
    FROM bench_plan p
    JOIN crm_message m ON m.account_id = %(account)s AND m.platform_message_id = 'bpm' || p.n
    CROSS JOIN LATERAL generate_series(0, p.media_n - 1) k
    JOIN crm_vaultitem i ON i.account_id = %(account)s
        AND i.platform_media_id = 'bm' || (1 + (p.first_item + k * 7919) %% %(items)s)
    """,
    # Unlocks: cheaper offers sell more (about 30 %% at $5, 8 %% at $50), a few hours later.
    """
    INSERT INTO crm_purchase (account_id, fan_id, kind, amount_cents, purchased_at, message_id,
        platform_event_id, created_at)
    SELECT m.account_id, c.fan_id, 'ppv', m.price_cents,
        least(now(), m.sent_at + random() * interval '30 hours'), m.id,
        'ppv:' || m.platform_message_id || ':' || c.fan_id, now()
    FROM crm_message m JOIN crm_conversation c ON c.id = m.conversation_id
    WHERE m.account_id = %(account)s AND m.price_cents > 0
      AND random() < 0.32 - m.price_cents / 20000.0
    """,
    "DROP TABLE bench_plan",
]


def seed() -> int:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection, transaction

    from analytics.rollups import account_rollup_rebuild
    from crm.models import CreatorAccount, Membership, Message

    account = CreatorAccount.objects.filter(platform_account_id=ACCOUNT_ID).first()
    if account is not None and Message.objects.filter(account=account).count() >= SPEC["messages"]:
        media_rollup_ensure(account)
        return account.pk
    print(f"seeding {SPEC}", flush=True)
    started = time.perf_counter()
    if account is not None:
        raise SystemExit(f"{DATABASE} holds a partial seed: run again with --reseed")
    with transaction.atomic():
        account = CreatorAccount.objects.create(
            display_name="Bench media", platform_account_id=ACCOUNT_ID, time_zone="Europe/Berlin"
        )
        chatter_ids = []
        for n, role in [(0, "owner"), (1, "manager"), *((i + 2, "chatter") for i in range(8))]:
            name = {"owner": "bench_owner", "manager": "bench_manager"}.get(
                role, f"bench_chatter{n - 1}"
            )
            user, created = User.objects.get_or_create(username=name)
            if created:
                user.set_password(settings.DEMO_PASSWORD)
                user.save(update_fields=["password"])
            Membership.objects.create(user=user, account=account, role=role)
            if role != "owner":
                chatter_ids.append(user.pk)
        params = {**SPEC, "account": account.pk, "prices": PRICES, "chatters": chatter_ids}
        with connection.cursor() as cursor:
            for sql in SEED_SQL:
                step = time.perf_counter()
                cursor.execute(sql, params)
                print(
                    f"  {sql.split()[0].lower()} {sql.split()[2]}: {cursor.rowcount:,} rows "
                    f"in {time.perf_counter() - step:.1f} s",
                    flush=True,
                )
    with connection.cursor() as cursor:
        for table in ("crm_message", "crm_messagemedia", "crm_purchase", "crm_vaultitem"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    step = time.perf_counter()
    account_rollup_rebuild(account=account)
    print(f"  analytics roll-ups: {time.perf_counter() - step:.1f} s", flush=True)
    media_rollup_ensure(account)
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
    return account.pk


def media_rollup_ensure(account: Any) -> None:
    """The media page's roll-up (crm.media_stats), built as the beat task would build it for
    an account whose rows were written outside the send path (here: the seed's SQL)."""
    from crm.media_stats import media_stats_build, media_stats_zone

    if media_stats_zone(account_id=account.pk) is not None:
        return
    from django.db import connection

    step = time.perf_counter()
    media_stats_build(account=account)
    # As autovacuum would after so many rows: statistics, and the visibility map that lets
    # the range's scan stay in the index.
    with connection.cursor() as cursor:
        for table in ("crm_mediaitemday", "crm_mediaitemtotal", "crm_mediaofferday"):
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    print(f"  media roll-up: {time.perf_counter() - step:.1f} s", flush=True)


def database_drop() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def session_cookie() -> str:
    from django.contrib.auth.models import User
    from django.test import Client

    browser = Client()
    browser.force_login(
        User.objects.get(username="bench_owner"),
        backend="django.contrib.auth.backends.ModelBackend",
    )
    return browser.cookies["sessionid"].value


def kinds(account_id: int) -> dict[str, str]:
    from analytics.media_queries import MediaFilter, item_rows

    top, _ = item_rows(
        f=MediaFilter(account_id=account_id), sort="revenue", descending=True, limit=1
    )
    page = f"/accounts/{account_id}/analytics/media/"
    return {
        "BASELINE analytics page, 30 days": f"/accounts/{account_id}/analytics/?range=30",
        "media, 30 days, by revenue": f"{page}?range=30",
        "media, all time, by revenue": f"{page}?range=all",
        "media, 30 days, by revenue, page 3": f"{page}?range=30&page=3",
        "media, 30 days, photos by revenue": f"{page}?range=30&type=photo",
        "media, 30 days, by offers": f"{page}?range=30&sort=-offered",
        "media, 30 days, by conversion": f"{page}?range=30&sort=-conversion",
        "media, all time, by offers": f"{page}?range=all&sort=-offered",
        "media, 30 days, by price": f"{page}?range=30&view=prices",
        "media, 30 days, by chatter": f"{page}?range=30&view=chatters",
        "media, all time, by price": f"{page}?range=all&view=prices",
        "item page (best seller), 30 days": f"{page}{top[0].item_id}/?range=30",
        "API, 30 days, by revenue": f"/api/analytics/accounts/{account_id}/media/?range=30",
    }


TARGETED = ("media, 30 days, by revenue", "media, all time, by revenue")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def measure(base: str, cookie: str, urls: dict[str, str], rounds: int) -> dict[str, Any]:
    """Every kind asked once per round, in turn, so load on the shared machine falls on all
    alike; the first two rounds warm the server up."""
    import httpx

    times: dict[str, list[float]] = {label: [] for label in urls}
    statuses: dict[str, dict[int, int]] = {label: {} for label in urls}
    with httpx.Client(base_url=base, cookies={"sessionid": cookie}, timeout=120) as http:
        for n in range(rounds + 2):
            for label, url in urls.items():
                t0 = time.perf_counter()
                reply = http.get(url)
                ms = (time.perf_counter() - t0) * 1000
                if n >= 2:
                    times[label].append(ms)
                    statuses[label][reply.status_code] = (
                        statuses[label].get(reply.status_code, 0) + 1
                    )
    return {
        label: {
            "n": len(t),
            "statuses": statuses[label],
            "ms_p50": round(percentile(t, 50), 1),
            "ms_p95": round(percentile(t, 95), 1),
            "ms_max": round(max(t), 1),
        }
        for label, t in times.items()
    }


def explain(account_id: int) -> str:
    """EXPLAIN ANALYZE of the items statement, 30 days and all time, by revenue and by
    offers, with the filters the page builds (the roll-up when it is whole), then all time
    over the raw rows for comparison."""
    from dataclasses import replace

    from django.db import connection, transaction

    from analytics import media_queries as q
    from analytics.media_selectors import MediaScope
    from analytics.periods import period_for

    out: list[str] = []
    original = q._fetch

    def fetch(sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL jit = off; SET LOCAL work_mem = '{q.STATEMENT_WORK_MEM}'")
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            out.append("\n".join(line for (line,) in cursor.fetchall()))
        return original(sql, params)

    month = MediaScope(period=period_for(zone_name="Europe/Berlin", days=30))
    all_time = MediaScope(period=None).media_filter(account_id=account_id)
    q._fetch = fetch  # type: ignore[assignment]
    try:
        for label, f, sort in (
            ("30 days, by revenue", month.media_filter(account_id=account_id), "revenue"),
            ("all time, by revenue", all_time, "revenue"),
            ("all time, by offers", all_time, "offered"),
            ("all time, by revenue, raw rows", replace(all_time, rollup=False), "revenue"),
        ):
            out.append(f"-- {label} (roll-up: {f.rollup})")
            q.item_rows(f=f, sort=sort, descending=True, limit=50)
    finally:
        q._fetch = original  # type: ignore[assignment]
    return "\n\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=40, help="rounds (each asks every kind once)")
    parser.add_argument("--reseed", action="store_true", help="drop the database and seed again")
    parser.add_argument("--explain", action="store_true", help="print the query plans too")
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    if args.reseed:
        database_drop()
    inbox_bench.setup_django(env=ENV, database=DATABASE)
    account_id = seed()
    if args.explain:
        print(explain(account_id), flush=True)
    from crm.models import Message, MessageMedia, Purchase, VaultItem

    sizes = {
        "vault_items": VaultItem.objects.filter(account_id=account_id).count(),
        "sent_messages": Message.objects.filter(account_id=account_id, status="sent").count(),
        "message_media": MessageMedia.objects.filter(account_id=account_id).count(),
        "ppv_purchases": Purchase.objects.filter(account_id=account_id, kind="ppv").count(),
    }
    print(f"data: {json.dumps(sizes)}", flush=True)
    cookie = session_cookie()
    urls = kinds(account_id)
    log = open(VAR / "media-stats-web.log", "wb")  # noqa: SIM115
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
        "data": sizes,
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import httpx

        deadline = time.monotonic() + 300  # workers start slowly on a busy machine
        while True:
            try:
                httpx.get(f"{base}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the web server did not start") from None
                time.sleep(0.3)
        rows = measure(base, cookie, urls, args.n)
    finally:
        web.terminate()
        web.wait(timeout=20)
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    for label, row in rows.items():
        verdict = ""
        if label in TARGETED:
            verdict = "PASS " if row["ms_p95"] < TARGET_P95_MS else "MISS "
        print(f"{verdict}{label}: {json.dumps(row)}", flush=True)
    print(f"target: p95 < {TARGET_P95_MS:.0f} ms for {', '.join(TARGETED)}")
    print(f"load average {results['load_average_before']} -> {results['load_average_after']}")
    results["kinds"] = rows
    (VAR / "media-stats.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if sys.argv[1:] == ["--seed-only"]:
        inbox_bench.setup_django(env=ENV, database=DATABASE)
        seed()
    else:
        main()
