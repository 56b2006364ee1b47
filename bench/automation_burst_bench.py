"""Benchmark of automations under a webhook burst (issue 19). Run with
`.venv/bin/python bench/automation_burst_bench.py [--webhooks 10000 --seconds 60]`.

It starts its own moto SQS (port 4594), sandbox platform (8794), web server (uvicorn, 2
processes, 8793, as `make run` starts it), two Celery workers (threads, `nice 10`; with
`--workers split` as scripts/run.sh: send+default at nice 10, bulk alone at nice 15) and beat,
with its own database (fancrm_bench_autom), Redis database 15 and queue names; it stops them
all when it ends. Then, twice in the same run:

- baseline: the burst with the account's welcome automation off;
- automations on: the same burst (new fans) with the welcome on (10 % control group).

A burst is ``--webhooks`` ``subscriptions.new`` deliveries, new fans each, posted over
``--seconds`` at an even rate (open loop: each is sent at its time, whatever the earlier ones
took) by 32 client threads, each body signed as the platform signs it (``Signature``: hex
HMAC-SHA256 of the raw body with the webhook secret, ``onlyfans/webhooks.py``). Meanwhile a
chatter replies to other fans of the account one message at a time (each after the previous
one was sent, at a random point of a slot), from the start of the burst until 30 s after it,
while the welcomes drain through the campaign lane at the account's pace (30 a minute, 1 s
apart: a slot about every 2 s).

Figures: webhook answer p50/p95/max and errors; welcomes scheduled (``AutomationRun`` rows,
treated and control) and the lag from each webhook's send to its run's creation (p95, max);
the chatter's queued→sent p50/max against the slot. Targets: every welcome scheduled within
30 s, webhook p95 < 100 ms, the chatter's worst wait within one slot of the baseline's.
Results to stdout and bench/results/automation-burst-latest.json; process logs in var/bench/.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline_bench import VAR, Processes, percentile, wait_port, web_server_argv

PROFILE: dict[str, Any] = {}  # --py-spy: the web server's pid, set in main

ROOT = Path(__file__).resolve().parents[1]
SQS_PORT = int(os.environ.get("BENCH_AUTOM_SQS_PORT", "4594"))
SANDBOX_PORT = int(os.environ.get("BENCH_AUTOM_SANDBOX_PORT", "8794"))
WEB_PORT = int(os.environ.get("BENCH_AUTOM_WEB_PORT", "8793"))
DATABASE = os.environ.get("BENCH_AUTOM_DATABASE", "fancrm_bench_autom")
REDIS_DB = int(os.environ.get("BENCH_AUTOM_REDIS_DB", "15"))
SECRET = "sandbox-webhook-secret"
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-secret",
    "ONLYFANS_WEBHOOK_SECRET": SECRET,
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_SECURE_SSL_REDIRECT": "0",
    "DJANGO_SECURE_COOKIES": "0",
    "DJANGO_HSTS_SECONDS": "0",
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
    "CACHE_KEY_PREFIX": "fancrm-bench-autom",
    "CHANNELS_PREFIX": "fancrm-bench-autom:asgi",
    "CELERY_BROKER_URL": f"sqs://test:test@127.0.0.1:{SQS_PORT}",
    "SQS_QUEUE_PREFIX": "fancrm-bench-autom-",
    "ONLYFANS_API_BASE_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
    "ONLYFANS_API_KEY": "bench-key",
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
    "PROMETHEUS_MULTIPROC_DIR": str(VAR / "prometheus-autom"),
    "CLOUDWATCH_ENABLED": "0",
}
PER_MINUTE, INTERVAL_MS = 30, 1000
# A send slot at that pace, as the limiter's forecast paces it (bench/campaign_bench.py).
SLOT_S = max((60_200 + 200) / PER_MINUTE, INTERVAL_MS + 400) / 1000
CHATTER_FANS = 20
CHATTER_PAUSE_SLOTS = (1.0, 3.0)  # --chatter-pause-slots
PAUSE = list(CHATTER_PAUSE_SLOTS)  # as asked on the command line
CLIENT_THREADS = 32


def setup() -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    Path(ENV["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
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
            " crm_creatoraccount, automations_automation, onlyfans_webhookevent, auth_user"
            " RESTART IDENTITY CASCADE"
        )
    redis_client().flushdb()
    client = sqs_client()
    for url in queues_ensure(client).values():
        client.delete_queue(QueueUrl=url)
    queues_ensure(client)
    import httpx

    httpx.post(f"http://127.0.0.1:{SANDBOX_PORT}/_sandbox/reset", json={}, timeout=30)


def account_create(name: str, *, welcome_on: bool) -> Any:
    """An account at 30 sends a minute, its owner, the fans the chatter writes to (never in
    the burst), and a welcome automation with a 10 % control group, on or off."""
    from django.contrib.auth import get_user_model

    from automations.services import AutomationInput, automation_create
    from crm.models import Conversation, CreatorAccount, Fan, Membership

    account = CreatorAccount.objects.create(
        display_name=name,
        platform_account_id=f"acct_{name}",
        send_rate_per_minute=PER_MINUTE,
        send_min_interval_ms=INTERVAL_MS,
    )
    owner = get_user_model().objects.create_user(username=f"owner_{name}", password="x")
    Membership.objects.create(user=owner, account=account, role="owner")
    fans = Fan.objects.bulk_create(
        Fan(account=account, platform_fan_id=f"{name}-chat-{i}", username=f"{name}_chat{i}")
        for i in range(CHATTER_FANS)
    )
    Conversation.objects.bulk_create(Conversation(account=account, fan=f) for f in fans)
    automation_create(
        actor=owner,
        account_id=account.pk,
        data=AutomationInput(
            name="Welcome",
            trigger="subscribed",
            text="Hey {name|babe}, thanks for subscribing!",
            control_percent=10,
        ),
        enabled=welcome_on,
    )
    account.chat_fans = fans
    return account


def signed(body: bytes) -> str:
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(account: Any, fan_id: str, at: datetime) -> bytes:
    event = {
        "event": "subscriptions.new",
        "account_id": account.platform_account_id,
        "payload": {
            "user": {"id": fan_id, "username": f"u{fan_id}", "name": f"Fan {fan_id}"},
            "subscribedAt": at.isoformat(),
            "expiresAt": (at + timedelta(days=30)).isoformat(),
        },
    }
    return json.dumps(event).encode()


def post_burst(account: Any, *, count: int, seconds: float, tag: str) -> dict[str, Any]:
    """Post ``count`` signed webhooks over ``seconds``; returns send times and latencies."""
    import httpx

    local = threading.local()
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = time.monotonic() + 1.0
    wall_offset = time.time() - time.monotonic()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=f"http://127.0.0.1:{WEB_PORT}", timeout=30)
        return local.client

    def one(i: int) -> None:
        fan_id = f"{tag}-{i}"
        due = start + i * seconds / count
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        body = webhook_body(account, fan_id, datetime.now(UTC))
        began = time.monotonic()
        try:
            response = client().post(
                "/api/onlyfans/webhooks",
                content=body,
                headers={"Content-Type": "application/json", "Signature": signed(body)},
            )
            ok = response.status_code == 200
            error = "" if ok else str(response.status_code)
        except httpx.HTTPError as exc:
            ok, error = False, type(exc).__name__
        took = time.monotonic() - began
        with lock:
            sent_at[fan_id] = began + wall_offset
            latencies.append(took)
            if not ok:
                errors.append(error)

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.monotonic() - start
    return {"sent_at": sent_at, "latencies": latencies, "errors": errors, "elapsed": elapsed}


def chatter_replies(
    account: Any, stop: threading.Event, ids: list[int] | None = None
) -> list[float]:
    """A chatter's replies, one at a time, each once the previous one was sent (their ids
    into ``ids``, the warm-up's left out)."""
    from django.db import close_old_connections

    from crm.models import Message
    from onlyfans.services import message_enqueue

    waits: list[float] = []
    fans = list(account.chat_fans)
    i = 0

    def reply() -> float:
        nonlocal i
        fan = fans[i % len(fans)]
        i += 1
        message = message_enqueue(fan=fan, text=f"reply {i} to {fan.username}")
        if ids is not None and i > 1:
            ids.append(message.pk)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            message.refresh_from_db(fields=["status", "sent_at", "queued_at"])
            if message.status in (Message.Status.SENT, Message.Status.FAILED):
                break
            time.sleep(0.05)
        if message.status == Message.Status.SENT and message.sent_at and message.queued_at:
            return (message.sent_at - message.queued_at).total_seconds()
        return float("inf")

    try:
        reply()  # warm-up: the account's first send, outside the figures
        while not stop.is_set():
            waits.append(reply())
            # Replies land anywhere in a slot, and the chatter alone stays below the account's
            # rate (pauses of 1-3 slots by default): at 0.2-1.0 slot the chatter by itself
            # sent about 37 a minute against the account's 30, so its replies waited for the
            # 60 s window, welcomes or not, which no lane can change.
            time.sleep(SLOT_S * random.uniform(*PAUSE))
    finally:
        close_old_connections()
    return waits


def scheduled_lags(account: Any, sent_at: dict[str, float]) -> dict[str, Any]:
    """Each burst fan's run: created how long after its webhook was sent."""
    from automations.models import AutomationRun

    rows = AutomationRun.objects.filter(account_id=account.pk).values_list(
        "fan__platform_fan_id", "created_at", "is_control"
    )
    lags = []
    control = 0
    for platform_fan_id, created_at, is_control in rows:
        if platform_fan_id in sent_at:
            lags.append(created_at.timestamp() - sent_at[platform_fan_id])
            control += bool(is_control)
    return {"runs": len(lags), "control": control, "lags": lags}


def sends_ahead_and_waits(account: Any, reply_ids: list[int]) -> list[tuple[int, float]]:
    """For each sent reply: how many automated messages of the account were sent after it was
    queued and before it was sent (the slots it waited behind the welcomes), and its
    queued→sent seconds."""
    from django.db import connection

    if not reply_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM crm_message w WHERE w.account_id = r.account_id"
            " AND w.sender_kind = 'automation' AND w.status = 'sent'"
            " AND w.sent_at > r.queued_at AND w.sent_at < r.sent_at),"
            " extract(epoch FROM r.sent_at - r.queued_at)"
            " FROM crm_message r WHERE r.id = ANY(%s) AND r.status = 'sent' ORDER BY r.id",
            [reply_ids],
        )
        return [(int(n), float(w)) for n, w in cursor.fetchall()]


def pairs_none(pairs: list[tuple[int, float]]) -> list[tuple[float, int]]:
    return [(w, n) for n, w in pairs if n == 0]


def run_burst(account: Any, *, count: int, seconds: float, tag: str) -> dict[str, Any]:
    from crm.models import Message

    stop = threading.Event()
    waits: list[float] = []
    reply_ids: list[int] = []
    chatter = threading.Thread(
        target=lambda: waits.extend(chatter_replies(account, stop, reply_ids))
    )
    chatter.start()
    time.sleep(SLOT_S * 2)  # the chatter's warm-up reply leaves before the burst starts
    spies = web_profile(tag, seconds) if PROFILE.get("web") else []
    burst = post_burst(account, count=count, seconds=seconds, tag=tag)
    time.sleep(30)  # the welcomes keep draining; the chatter keeps replying
    stop.set()
    chatter.join(timeout=90)
    for spy in spies:
        spy.wait(timeout=60)
    lat = [x * 1000 for x in burst["latencies"]]
    runs = scheduled_lags(account, burst["sent_at"])
    welcomes_sent = Message.objects.filter(
        account_id=account.pk, sender_kind=Message.SenderKind.AUTOMATION, status="sent"
    ).count()
    finite = [w for w in waits if w != float("inf")]
    pairs = sends_ahead_and_waits(account, reply_ids)
    ahead = [n for n, _ in pairs]
    result = {
        "webhooks": count,
        "post_seconds": round(burst["elapsed"], 1),
        "webhooks_per_s": round(count / burst["elapsed"], 1),
        "webhook_errors": len(burst["errors"]),
        "webhook_error_kinds": dict(Counter(burst["errors"]).most_common(3)),
        "webhook_p50_ms": round(percentile(lat, 50), 1),
        "webhook_p95_ms": round(percentile(lat, 95), 1),
        "webhook_max_ms": round(max(lat), 1),
        "runs_scheduled": runs["runs"],
        "runs_control": runs["control"],
        "schedule_lag_p95_s": round(percentile(runs["lags"], 95), 3) if runs["lags"] else None,
        "schedule_lag_max_s": round(max(runs["lags"]), 3) if runs["lags"] else None,
        "welcomes_sent_meanwhile": welcomes_sent,
        "chatter_replies": len(waits),
        "chatter_unsent": len(waits) - len(finite),
        "chatter_p50_s": round(percentile(finite, 50), 2) if finite else None,
        "chatter_max_s": round(max(finite), 2) if finite else None,
        "slot_s": round(SLOT_S, 2),
        # Welcomes sent while a reply waited: at most one is "within one send slot".
        "chatter_welcomes_ahead_max": max(ahead) if ahead else None,
        "chatter_replies_behind_2plus": sum(n >= 2 for n in ahead),
        "chatter_replies_behind_1plus": sum(n >= 1 for n in ahead),
        # The worst wait of a reply no welcome went ahead of: the pipeline's own latency.
        "chatter_max_s_none_ahead": max((round(w, 2) for w, n in pairs_none(pairs)), default=None),
        "load": [round(x, 2) for x in os.getloadavg()],
    }
    print(f"  {tag}: {json.dumps(result)}", flush=True)
    return result


def web_profile(tag: str, seconds: float) -> list[Any]:
    """Sample the web server's two processes and the send worker with py-spy (installed by
    hand, not a dependency) for most of the burst and after it: raw stacks in
    var/bench/py-spy-autom-<process>-<tag>.txt."""
    import subprocess

    web = PROFILE["web"]
    children = Path(f"/proc/{web}/task/{web}/children").read_text().split()
    targets = {f"web{i}": pid for i, pid in enumerate(children)}
    targets["send-worker"] = str(PROFILE["send_worker"])  # ``nice`` execs it: the same pid
    spies = []
    for name, pid in targets.items():
        out = VAR / f"py-spy-autom-{name}-{tag}.txt"
        spies.append(
            subprocess.Popen(
                [str(ROOT / ".venv/bin/py-spy"), "record", "-p", pid, "-r", "50", "-d",
                 str(int(seconds) + 20), "-f", "raw", "-o", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
    return spies


def verdicts(base: dict[str, Any], on: dict[str, Any]) -> list[str]:
    expected = on["webhooks"]
    lines = [
        f"welcomes scheduled: {on['runs_scheduled']}/{expected} "
        f"(control {on['runs_control']}), lag p95 {on['schedule_lag_p95_s']} s, "
        f"max {on['schedule_lag_max_s']} s (target: all, within 30 s) -> "
        + (
            "OK"
            if on["runs_scheduled"] == expected and (on["schedule_lag_max_s"] or 99) < 30
            else "MISSED"
        ),
        f"webhook p95: {on['webhook_p95_ms']} ms with automations on, "
        f"{base['webhook_p95_ms']} ms off (target < 100 ms) -> "
        + ("OK" if on["webhook_p95_ms"] < 100 else "MISSED"),
        f"chatter's worst queued→sent: {on['chatter_max_s']} s while welcomes drain "
        f"(p50 {on['chatter_p50_s']} s); without: p50 {base['chatter_p50_s']} s, worst "
        f"{base['chatter_max_s']} s (slot {on['slot_s']} s; target: every reply within one slot "
        "of the baseline's typical wait) -> "
        + (
            "OK"
            if on["chatter_max_s"] is not None
            and base["chatter_p50_s"] is not None
            and on["chatter_unsent"] == 0
            and on["chatter_max_s"] <= base["chatter_p50_s"] + on["slot_s"]
            else "MISSED"
        ),
        f"chatter's worst queued→sent: {on['chatter_max_s']} s while welcomes drain, "
        f"{base['chatter_max_s']} s without (target: at most one slot, {on['slot_s']} s, more) -> "
        + (
            "OK"
            if on["chatter_max_s"] is not None
            and base["chatter_max_s"] is not None
            and on["chatter_unsent"] == 0
            and on["chatter_max_s"] <= base["chatter_max_s"] + on["slot_s"]
            else "MISSED"
        ),
        f"welcomes sent while a reply waited: at most {on.get('chatter_welcomes_ahead_max')} "
        f"({on.get('chatter_replies_behind_1plus')} of {on['chatter_replies']} replies behind one,"
        f" {on.get('chatter_replies_behind_2plus')} behind 2 or more; worst wait with none ahead"
        f" {on.get('chatter_max_s_none_ahead')} s; target: at most one, the slot already under"
        " way) -> " + ("OK" if (on.get("chatter_welcomes_ahead_max") or 0) <= 1 else "MISSED"),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--chatter-pause-slots",
        type=float,
        nargs=2,
        default=CHATTER_PAUSE_SLOTS,
        metavar=("LOW", "HIGH"),
        help="the chatter's pause after each sent reply, in slots, drawn evenly (before stop "
        "25: 0.2 1.0, more than the account's rate by itself)",
    )
    parser.add_argument(
        "--py-spy",
        action="store_true",
        help="sample the web processes with py-spy during each burst (var/bench/py-spy-*)",
    )
    parser.add_argument(
        "--workers",
        choices=("shared", "split"),
        default="shared",
        help="shared: two workers on every queue at nice 10 (as before); split: as "
        "scripts/run.sh, send+default at nice 10 and bulk alone at nice 15",
    )
    args = parser.parse_args()
    PAUSE[:] = args.chatter_pause_slots
    VAR.mkdir(parents=True, exist_ok=True)
    for port in (SQS_PORT, SANDBOX_PORT, WEB_PORT):
        if wait_port_free(port):
            raise SystemExit(f"port {port} is taken: stop whatever runs there first")
    procs = Processes()
    python = str(ROOT / ".venv/bin/python")
    results: dict[str, Any] = {"workers": args.workers, "chatter_pause_slots": PAUSE}
    try:
        procs.start("autom-sqs", [python, "scripts/sqs_local.py", "127.0.0.1", str(SQS_PORT)], ENV)
        procs.start(
            "autom-sandbox",
            [python, "-m", "onlyfans.sandbox", "--port", str(SANDBOX_PORT), "--api-key",
             "bench-key", "--rate-limit-per-minute", "0", "--min-interval-ms", "0"],
            ENV,
        )  # fmt: skip
        wait_port(SQS_PORT)
        wait_port(SANDBOX_PORT)
        setup()
        reset()
        from onlyfans.broker import worker_argv

        web_pid = procs.start("autom-web", web_server_argv(port=WEB_PORT), ENV)
        if args.py_spy:
            PROFILE["web"] = web_pid
        if args.workers == "split":
            # As scripts/run.sh: sends and housekeeping at nice 10, the bulk queue (the deferred
            # webhooks' apply among it) in a process of its own at nice 15.
            PROFILE["send_worker"] = procs.start(
                "autom-worker0",
                ["nice", "-n", "10", *worker_argv(hostname="autom0@%h", concurrency=8,
                                                  loglevel=ENV["LOG_LEVEL"],
                                                  queues=("send", "default"))],
                ENV,
            )  # fmt: skip
            procs.start(
                "autom-worker1",
                ["nice", "-n", "15", *worker_argv(hostname="autom1@%h", concurrency=4,
                                                  loglevel=ENV["LOG_LEVEL"], queues=("bulk",))],
                ENV,
            )  # fmt: skip
        for i in range(2 if args.workers == "shared" else 0):
            pid = procs.start(
                f"autom-worker{i}",
                ["nice", "-n", "10", *worker_argv(hostname=f"autom{i}@%h", concurrency=4,
                                                  loglevel=ENV["LOG_LEVEL"])],
                ENV,
            )  # fmt: skip
            PROFILE.setdefault("send_worker", pid)
        procs.start(
            "autom-beat",
            [python, "-m", "celery", "-A", "config", "beat", "--schedule",
             str(VAR / "autom-celerybeat-schedule"), "--loglevel", "WARNING"],
            ENV,
        )  # fmt: skip
        wait_port(WEB_PORT, timeout=240)  # a loaded machine boots it slowly
        time.sleep(5)  # workers' start-up, outside the measured time
        results["load_before"] = [round(x, 2) for x in os.getloadavg()]
        print(f"load average before: {results['load_before']}", flush=True)
        off = account_create("off", welcome_on=False)
        results["baseline"] = run_burst(off, count=args.webhooks, seconds=args.seconds, tag="off")
        on = account_create("on", welcome_on=True)
        results["automations_on"] = run_burst(
            on, count=args.webhooks, seconds=args.seconds, tag="on"
        )
        results["load_after"] = [round(x, 2) for x in os.getloadavg()]
        print(f"load average after: {results['load_after']}")
        print()
        results["verdicts"] = verdicts(results["baseline"], results["automations_on"])
        for line in results["verdicts"]:
            print(line)
    finally:
        procs.stop_all()
    out = ROOT / "bench" / "results" / "automation-burst-latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))


def wait_port_free(port: int) -> bool:
    """True when something already answers on ``port``."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
