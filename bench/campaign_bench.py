"""Benchmark of campaigns (issue 9's figures). Run with `make bench ARGS=campaigns` or
`.venv/bin/python bench/campaign_bench.py [--only preflight|individual|mass|reply]`.

It starts its own moto SQS (port 4597), sandbox platform (8797, no limit of its own) and two
Celery workers (threads, 4 each, `nice 10` as `make run` starts them), uses its own database
(fancrm_bench_campaigns), Redis database 8 and queue names, and measures:

- pre-flight on a 100,000-fan account: server time of ``campaign_preflight`` (the counts
  statement, the queued-ahead count and the sample) for five rule sets, p50/p95 of 20 runs
  each; target p95 < 200 ms;
- individual mode, 50,000 fans on an account with a high limit: from the launch call until
  every recipient's message is queued (the fan-out runs in the workers, batch by batch over
  SQS, while they already send); target < 30 s;
- mass mode, the same 50,000 fans: from the launch call until the platform reports every
  chunk ``isDone`` (chunks of CAMPAIGN_MASS_CHUNK_SIZE through the workers); target < 30 s;
- a chatter's reply while a campaign drains (30 sends a minute, 1 s apart: a slot about every
  2 s): queued→sent of replies sent one at a time during a 400-fan campaign, against the same
  replies on the account with no campaign; target: the difference within one slot.

Figures go to stdout and bench/results/campaigns-latest.json; process logs to var/bench/.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_bench import VAR, Processes, percentile, wait_port

ROOT = Path(__file__).resolve().parents[1]
# Ports, database and Redis database can be moved (BENCH_CAMPAIGNS_*) when another run or
# another engineer's bench uses the defaults on the same machine.
SQS_PORT = int(os.environ.get("BENCH_CAMPAIGNS_SQS_PORT", "4597"))
SANDBOX_PORT = int(os.environ.get("BENCH_CAMPAIGNS_SANDBOX_PORT", "8797"))
DATABASE = os.environ.get("BENCH_CAMPAIGNS_DATABASE", "fancrm_bench_campaigns")
REDIS_DB = int(os.environ.get("BENCH_CAMPAIGNS_REDIS_DB", "8"))
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-secret",
    # Required with DEBUG off; the sandbox started here signs with its default.
    "ONLYFANS_WEBHOOK_SECRET": "sandbox-webhook-secret",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    "CACHE_KEY_PREFIX": "fancrm-bench-campaigns",
    "CHANNELS_PREFIX": "fancrm-bench-campaigns:asgi",
    "CELERY_BROKER_URL": f"sqs://test:test@127.0.0.1:{SQS_PORT}",
    "SQS_QUEUE_PREFIX": "fancrm-bench-camp-",
    "ONLYFANS_API_BASE_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
    "ONLYFANS_API_KEY": "bench-key",
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    "PROMETHEUS_MULTIPROC_DIR": str(VAR / "prometheus-campaigns"),
}
TAGS = ["vip", "whale", "new", "europe", "us", "cosplay", "feet", "dnd", "tipper", "lurker"]
PREFLIGHT_FANS = 100_000
CAMPAIGN_FANS = 50_000


def setup() -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    (VAR / "prometheus-campaigns").mkdir(parents=True, exist_ok=True)
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        if not c.execute("select 1 from pg_database where datname=%s", [DATABASE]).fetchone():
            c.execute(f'create database "{DATABASE}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def reset() -> None:
    from django.db import connection

    from config.redis import redis_client
    from onlyfans.broker import queues_ensure, sqs_client

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE crm_message, crm_conversation, crm_purchase, crm_fan, crm_membership,"
            " crm_creatoraccount, campaigns_campaign, campaigns_segment, auth_user"
            " RESTART IDENTITY CASCADE"
        )
    redis_client().flushdb()
    client = sqs_client()
    for url in queues_ensure(client).values():
        client.delete_queue(QueueUrl=url)
    queues_ensure(client)
    import httpx

    httpx.post(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/reset", json={}, timeout=30)


def account_with_fans(name: str, fans: int, *, per_minute: int, interval_ms: int) -> Any:
    """An account, its owner, and ``fans`` fans with tags, spend, activity; 2 % unlinked; a
    third with a conversation (5 % waiting), 10 % messaged today, 2 % bought media m1."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from crm.models import Conversation, CreatorAccount, Fan, Membership, Message, Purchase

    rng = random.Random(name)
    now = timezone.now()
    account = CreatorAccount.objects.create(
        display_name=name,
        platform_account_id=f"acct_{name}",
        send_rate_per_minute=per_minute,
        send_min_interval_ms=interval_ms,
    )
    user = get_user_model().objects.create_user(username=f"owner_{name}", password="x")
    Membership.objects.create(user=user, account=account, role="owner")
    rows = [
        Fan(
            account=account,
            platform_fan_id=None if rng.random() < 0.02 else str(1_000_000 + i),
            username=f"{name}_fan{i}",
            display_name=f"Fan {i}" if i % 3 else "",
            tags=rng.sample(TAGS, rng.randint(0, 3)),
            lifetime_spend_cents=int(rng.paretovariate(1.5) * 500),
            subscription_state=rng.choice(["active", "active", "expired", "never"]),
            last_seen_at=now - timedelta(days=rng.expovariate(1 / 20)),
        )
        for i in range(fans)
    ]
    created = Fan.objects.bulk_create(rows, batch_size=10_000)
    with_conv = [f for f in created if rng.random() < 0.33]
    conversations = Conversation.objects.bulk_create(
        [
            Conversation(
                account=account,
                fan=f,
                last_message_at=now,
                waiting_since=now if rng.random() < 0.15 else None,
            )
            for f in with_conv
        ],
        batch_size=10_000,
    )
    messaged = [c for c in conversations if rng.random() < 0.3]
    messages = Message.objects.bulk_create(
        [
            Message(
                account=account,
                conversation=c,
                direction="out",
                status="sent",
                sender_kind="user",
                text="hi",
                price_cents=500,
                media_ids=["m1"] if i % 5 == 0 else ["m2"],
                queued_at=now - timedelta(hours=rng.uniform(0, 48)),
                sent_at=now - timedelta(hours=1),
            )
            for i, c in enumerate(messaged)
        ],
        batch_size=10_000,
    )
    Purchase.objects.bulk_create(
        [
            Purchase(
                account=account,
                fan_id=m.conversation.fan_id,
                kind="ppv",
                amount_cents=500,
                purchased_at=now,
                message=m,
            )
            for m in messages[::3]
        ],
        batch_size=10_000,
    )
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE crm_fan; ANALYZE crm_conversation; ANALYZE crm_message;")
    account.owner = user
    return account


def bench_preflight(account: Any) -> dict[str, Any]:
    from campaigns.rules import segment_rules_parse
    from campaigns.selectors import campaign_preflight

    rule_sets = {
        "everyone": {},
        "tags_any": {"include_tags": ["vip", "whale"], "exclude_waiting": True},
        "tags_all_spend": {
            "include_tags": ["vip", "tipper"],
            "include_tags_mode": "all",
            "spend_min_cents": 1000,
            "exclude_tags": ["dnd"],
        },
        "activity": {
            "subscription_states": ["active"],
            "last_seen_within_days": 14,
            "exclude_messaged_within_hours": 24,
            "exclude_waiting": True,
        },
        "every_rule": {
            "include_tags": ["vip", "whale", "tipper"],
            "exclude_tags": ["dnd"],
            "spend_min_cents": 500,
            "spend_max_cents": 100_000,
            "subscription_states": ["active", "expired"],
            "last_seen_not_within_days": 2,
            "exclude_messaged_within_hours": 12,
            "exclude_waiting": True,
            "exclude_bought_media": True,
        },
    }
    out: dict[str, Any] = {}
    everything: list[float] = []
    for name, rules in rule_sets.items():
        parsed = segment_rules_parse(rules)
        times = []
        audience = 0
        for _ in range(20):
            started = time.perf_counter()
            preflight = campaign_preflight(
                account=account, rules=parsed, media_ids=["m1"], control_percent=10
            )
            times.append((time.perf_counter() - started) * 1000)
            audience = preflight.audience
        everything += times
        out[name] = {
            "audience": audience,
            "p50_ms": round(percentile(times, 50), 1),
            "p95_ms": round(percentile(times, 95), 1),
        }
        print(
            f"  pre-flight {name:15} audience {audience:6}  p50 {out[name]['p50_ms']:6.1f} ms"
            f"  p95 {out[name]['p95_ms']:6.1f} ms"
        )
    out["all_p95_ms"] = round(percentile(everything, 95), 1)
    return out


def launch(account: Any, *, mode: str, name: str, rules: dict[str, Any] | None = None) -> Any:
    from campaigns import services

    data = services.CampaignInput(
        name=name, text="Hey {name|babe}, new set!", mode=mode, rules=rules or {}
    )
    campaign = services.campaign_create(actor=account.owner, account_id=account.pk, data=data)
    return services.campaign_launch(actor=account.owner, campaign=campaign)


def wait(condition: Any, timeout: float, every: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return bool(condition())


def bench_individual(account: Any) -> dict[str, Any]:
    from campaigns import services
    from campaigns.models import Campaign
    from crm.models import Message

    started = time.perf_counter()
    campaign = launch(account, mode="individual", name="individual 50k")
    launched_s = time.perf_counter() - started

    def queued() -> bool:
        return bool(
            Campaign.objects.filter(
                pk=campaign.pk, fanned_out__gte=campaign.recipients_total
            ).exists()
        )

    ok = wait(queued, 180)
    all_queued_s = time.perf_counter() - started
    messages = Message.objects.filter(campaign_id=campaign.pk).count()
    sent = Message.objects.filter(campaign_id=campaign.pk, status="sent").count()
    result = {
        "recipients": campaign.recipients_total,
        "unlinked_skipped": campaign.unlinked_skipped,
        "launch_call_s": round(launched_s, 2),
        "all_queued_s": round(all_queued_s, 2) if ok else None,
        "messages": messages,
        "sent_meanwhile": sent,
    }
    # Stop the drain: cancel withdraws what is still queued (timed too).
    started = time.perf_counter()
    services.campaign_cancel(actor=account.owner, campaign=campaign)
    result["cancel_s"] = round(time.perf_counter() - started, 2)
    print(f"  individual: {result}")
    return result


def bench_mass(account: Any) -> dict[str, Any]:
    from campaigns.models import Campaign, MassChunk

    started = time.perf_counter()
    campaign = launch(account, mode="mass", name="mass 50k")
    launched_s = time.perf_counter() - started
    ok = wait(
        lambda: Campaign.objects.filter(pk=campaign.pk, state="done").exists(), 180, every=0.1
    )
    done_s = time.perf_counter() - started
    chunks = MassChunk.objects.filter(campaign=campaign)
    import httpx

    platform = httpx.get(
        f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/mass",
        params={"account": account.platform_account_id},
        timeout=60,
    ).json()["data"]
    fans = [u for m in platform for u in m["user_ids"]]
    result = {
        "recipients": campaign.recipients_total,
        "launch_call_s": round(launched_s, 2),
        "is_done_s": round(done_s, 2) if ok else None,
        "chunks": chunks.count(),
        "platform_messages": len(platform),
        "platform_copies": len(fans),
        "fans_twice": len(fans) - len(set(fans)),
    }
    print(f"  mass: {result}")
    return result


def bench_reply(per_minute: int = 30, interval_ms: int = 1000, replies: int = 8) -> dict[str, Any]:
    """Replies one at a time, each after the previous one left: queued→sent, with and without
    a campaign draining on the same account."""
    from django.utils import timezone

    from crm.models import Fan, Message
    from onlyfans import services as send_services

    account = account_with_fans("replies", 450, per_minute=per_minute, interval_ms=interval_ms)
    chat_fans = list(Fan.objects.filter(account=account, platform_fan_id__isnull=False)[:replies])
    slot_s = max((60_200 + 200) / per_minute, interval_ms + 400) / 1000

    def measure(tag: str) -> list[float]:
        delays = []
        for fan in chat_fans:
            message = send_services.message_enqueue(fan=fan, text=f"reply {tag}", sent_by_id=None)
            ok = wait(lambda m=message: Message.objects.filter(pk=m.pk, status="sent").exists(), 60)
            message.refresh_from_db()
            if ok and message.sent_at and message.queued_at:
                delays.append((message.sent_at - message.queued_at).total_seconds())
            time.sleep(slot_s * random.uniform(0.2, 1.0))  # replies land anywhere in a slot
        return delays

    baseline = measure("idle")
    rules = {
        "fan_ids": list(
            Fan.objects.filter(account=account, platform_fan_id__isnull=False)
            .exclude(pk__in=[f.pk for f in chat_fans])
            .values_list("pk", flat=True)[:400]
        )
    }
    campaign = launch(account, mode="individual", name="drain", rules=rules)
    wait(lambda: Message.objects.filter(campaign_id=campaign.pk, status="sent").count() >= 3, 60)
    draining = measure("drain")
    campaign_sent_during = Message.objects.filter(
        campaign_id=campaign.pk, status="sent", sent_at__lte=timezone.now()
    ).count()
    result = {
        "limit": f"{per_minute}/min, {interval_ms} ms apart",
        "slot_s": round(slot_s, 2),
        "idle_p50_s": round(percentile(baseline, 50), 2),
        "idle_max_s": round(max(baseline), 2),
        "draining_p50_s": round(percentile(draining, 50), 2),
        "draining_max_s": round(max(draining), 2),
        "extra_max_s": round(max(draining) - max(baseline), 2),
        "campaign_sent_meanwhile": campaign_sent_during,
    }
    print(f"  reply: {result}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["preflight", "individual", "mass", "reply"])
    args = parser.parse_args()
    VAR.mkdir(parents=True, exist_ok=True)
    procs = Processes()
    python = str(ROOT / ".venv/bin/python")
    procs.start("campaigns-sqs", [python, "scripts/sqs_local.py", "127.0.0.1", str(SQS_PORT)], ENV)
    procs.start(
        "campaigns-sandbox",
        [python, "-m", "onlyfans.sandbox", "--port", str(SANDBOX_PORT), "--api-key", "bench-key",
         "--rate-limit-per-minute", "0", "--min-interval-ms", "0"],
        ENV,
    )  # fmt: skip
    results: dict[str, Any] = {}
    try:
        wait_port(SQS_PORT)
        wait_port(SANDBOX_PORT)
        setup()
        reset()
        load = os.getloadavg()
        results["load_before"] = [round(x, 2) for x in load]
        print(f"load average before: {load}")
        from onlyfans.broker import worker_argv

        for i in range(2):
            procs.start(
                f"campaigns-worker{i}",
                ["nice", "-n", "10", *worker_argv(hostname=f"camp{i}@%h", concurrency=4,
                                                  loglevel=ENV["LOG_LEVEL"])],
                {**ENV, "SEND_DISPATCH_COALESCE_MS": "25"},
            )  # fmt: skip
        if args.only in (None, "preflight"):
            big = account_with_fans("preflight", PREFLIGHT_FANS, per_minute=10, interval_ms=3000)
            results["preflight"] = bench_preflight(big)
        time.sleep(5)  # the workers' start-up, outside the measured times
        if args.only in (None, "individual"):
            fast = account_with_fans("individual", CAMPAIGN_FANS, per_minute=100_000, interval_ms=0)
            results["individual"] = bench_individual(fast)
        if args.only in (None, "mass"):
            mass = account_with_fans("mass", CAMPAIGN_FANS, per_minute=100_000, interval_ms=0)
            results["mass"] = bench_mass(mass)
        if args.only in (None, "reply"):
            results["reply"] = bench_reply()
        results["load_after"] = [round(x, 2) for x in os.getloadavg()]
        print(f"load average after: {results['load_after']}")
    finally:
        procs.stop_all()
    out = ROOT / "bench" / "results" / "campaigns-latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
