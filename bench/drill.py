"""Fault drills on the real send pipeline: nothing lost, nothing sent twice, no limit exceeded.

`make drill` (or `.venv/bin/python bench/drill.py --help`). A backlog of 2,000 messages over 20
accounts (30 a minute each, at least 1 s apart) drains through the real stack: the sandbox
platform over HTTP, a local SQS (moto), two Celery workers, beat, PostgreSQL and Redis. While it
drains the drill, one after the other:

1. SIGKILLs a worker in the middle of its sends and starts it again;
2. restarts Redis with its data lost (the limiter's windows, locks, the dispatcher's line);
3. stops the local SQS for 30 s (SIGSTOP: connections hang, as in an outage; its state stays);
4. restarts PostgreSQL (fast shutdown: every connection is cut).

It judges from the sandbox's arrival log: messages lost, sent twice, 60 s window violations and
minimum interval violations per account, and how long each fault took to recover (from the
fault until sends arrive again at the pre-fault rate).

By default it runs its OWN Redis (port 6391) and PostgreSQL cluster (port 5441, in
var/drill/pg) besides its own moto, sandbox and workers, so that restarting them disturbs no
one else on the machine. `--shared-services` uses the machine's Redis and PostgreSQL instead
(and restarts THEM: every other user of those servers sees the outage).

Drill settings differ from production in three timeouts only, so that recoveries fit in
minutes: SEND_TASK_TIME_LIMIT_SECONDS=30, SQS_VISIBILITY_TIMEOUT_SECONDS=75 (must exceed twice
the time limit) and SEND_REDISPATCH_AFTER_SECONDS=90 (production: 60, 300 and 360).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "drill"
SQS_PORT, SANDBOX_PORT = 4621, 8821
OWN_REDIS_PORT, OWN_PG_PORT = 6391, 5441
PER_MINUTE, INTERVAL_MS = 30, 1000
PG_BIN = Path("/usr/lib/postgresql") / (
    sorted(os.listdir("/usr/lib/postgresql"))[-1] if Path("/usr/lib/postgresql").exists() else "15"
)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, timeout: float = 60, up: bool = True) -> float:
    started = time.monotonic()
    while port_open(port) != up:
        if time.monotonic() - started > timeout:
            raise SystemExit(f"port {port} did not {'open' if up else 'close'} in {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - started


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Stack:
    """The processes of the drill, each with its log in var/drill/."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        out = open(VAR / f"{name}.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            args, cwd=ROOT, env={**os.environ, **self.env}, stdout=out, stderr=out
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.procs)):
            self.stop(name)


# --- Redis and PostgreSQL: own instances, or the machine's --------------------------------------


class Services:
    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self.redis_port = 6379 if shared else OWN_REDIS_PORT
        self.pg_port = 5432 if shared else OWN_PG_PORT
        # Owned by the postgres user: the cluster, its socket and its log.
        self.pg_root = VAR / "pg"
        self.pg_data = self.pg_root / "data"

    def _redis_args(self) -> list[str]:
        args = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port"]
        args += [str(self.redis_port), "--save", "", "--appendonly", "no"]
        if self.shared:  # the machine's own command (env notes)
            return [*args, "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]
        return [*args, "--dir", str(VAR), "--logfile", str(VAR / "redis.log")]

    def start(self) -> None:
        if self.shared:
            return
        if not port_open(self.redis_port):
            subprocess.run(self._redis_args(), check=True)
            wait_port(self.redis_port)
        if not port_open(self.pg_port):
            if not (self.pg_data / "PG_VERSION").exists():
                self.pg_data.mkdir(parents=True, exist_ok=True)
                for path in (self.pg_root, self.pg_data):
                    shutil.chown(path, "postgres", "postgres")
                self._as_postgres([str(PG_BIN / "bin/initdb"), "-D", str(self.pg_data),
                                   "-A", "trust", "-U", "postgres"])  # fmt: skip
            self._pg_ctl("start")
            wait_port(self.pg_port)

    def stop(self) -> None:
        if self.shared:
            return
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"],
                       capture_output=True, check=False)  # fmt: skip
        self._pg_ctl("stop", check=False)

    def _as_postgres(self, args: list[str], check: bool = True) -> None:
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*runner, *args], check=check, capture_output=True)

    def _pg_ctl(self, action: str, check: bool = True) -> None:
        if self.shared:
            cluster = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main",
                            action, "-m", "fast"], check=check, capture_output=True)  # fmt: skip
            return
        options = f"-p {self.pg_port} -k {self.pg_root} -c listen_addresses=127.0.0.1"
        self._as_postgres([str(PG_BIN / "bin/pg_ctl"), "-D", str(self.pg_data), "-w", "-m",
                           "fast", "-o", options, "-l", str(self.pg_root / "pg.log"), action],
                          check=check)  # fmt: skip

    def redis_restart_empty(self) -> float:
        """Shut Redis down without saving and start it again at once: data lost."""
        started = time.monotonic()
        subprocess.run(["redis-cli", "-p", str(self.redis_port), "shutdown", "nosave"],
                       capture_output=True, check=False)  # fmt: skip
        wait_port(self.redis_port, up=False, timeout=10)
        subprocess.run(self._redis_args(), check=True)
        wait_port(self.redis_port)
        return time.monotonic() - started

    def pg_restart(self) -> float:
        started = time.monotonic()
        self._pg_ctl("restart")
        wait_port(self.pg_port)
        return time.monotonic() - started


# --- The drill ---------------------------------------------------------------------------------


def django_setup(env: dict[str, str], services: Services) -> None:
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:{services.pg_port}/postgres"
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname='fancrm_drill'").fetchone():
            conn.execute("create database fancrm_drill")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def backlog_create(accounts: int, per_account: int) -> tuple[list[Any], set[str]]:
    """Accounts with a fan per message (no ordering waits), and the queued messages."""
    from django.db import connection
    from django.utils import timezone

    from config.redis import redis_client
    from crm.models import Conversation, CreatorAccount, Fan, Message

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE crm_message, crm_conversation, crm_purchase, crm_fan, crm_membership,"
            " crm_creatoraccount, onlyfans_webhookevent RESTART IDENTITY CASCADE"
        )
    redis_client().flushdb()
    rows = CreatorAccount.objects.bulk_create(
        CreatorAccount(
            display_name=f"drill {i}",
            platform_account_id=f"acct_drill_{i}",
            send_rate_per_minute=PER_MINUTE,
            send_min_interval_ms=INTERVAL_MS,
        )
        for i in range(accounts)
    )
    fans = Fan.objects.bulk_create(
        Fan(account=a, platform_fan_id=str(50_000 + j), username=f"fan{j}")
        for a in rows
        for j in range(per_account)
    )
    conversations = Conversation.objects.bulk_create(
        Conversation(account_id=f.account_id, fan=f) for f in fans
    )
    now = timezone.now()
    Message.objects.bulk_create(
        (
            Message(
                account_id=c.account_id,
                conversation_id=c.pk,
                direction="out",
                status="queued",
                sender_kind="user",
                text="drill",
                queued_at=now,
            )
            for c in conversations
        ),
        batch_size=5000,
    )
    keys = {str(k) for k in Message.objects.values_list("idempotency_key", flat=True)}
    return rows, keys


def queues_reset() -> None:
    from onlyfans.broker import queues_ensure, sqs_client

    client = sqs_client()
    for url in queues_ensure(client).values():
        client.delete_queue(QueueUrl=url)
    queues_ensure(client)


def sandbox_get(path: str) -> Any:
    import httpx

    return httpx.get(f"http://127.0.0.1:{SANDBOX_PORT}{path}", timeout=60).json()


def arrivals() -> list[dict[str, Any]]:
    return sandbox_get("/_sandbox/messages")["data"]


def judge(stored: list[dict[str, Any]], keys: set[str]) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    by_account: dict[str, list[float]] = defaultdict(list)
    for s in stored:
        counts[s["idempotency_key"]] += 1
        by_account[s["account"]].append(s["arrived_at"])
    window = interval = 0
    details: list[str] = []
    for account, times in by_account.items():
        times.sort()
        for i in range(len(times) - PER_MINUTE):
            if times[i + PER_MINUTE] - times[i] < 60.0:
                window += 1
                span = times[i + PER_MINUTE] - times[i]
                details.append(f"{account}: {PER_MINUTE + 1} sends in {span:.3f} s")
        for a, b in itertools.pairwise(times):
            if b - a < INTERVAL_MS / 1000:
                interval += 1
                details.append(f"{account}: two sends {b - a:.3f} s apart at {a:.3f}")
    gaps = [b - a for times in by_account.values() for a, b in itertools.pairwise(times)]
    spans = [
        times[i + PER_MINUTE] - times[i]
        for times in by_account.values()
        for i in range(len(times) - PER_MINUTE)
    ]
    return {
        "expected": len(keys),
        "arrived": len(stored),
        # How close the accounts came to their limits (1.0 s and 60.0 s are the limits).
        "closest_two_sends_s": round(min(gaps), 3) if gaps else None,
        "shortest_span_of_limit_plus_one_s": round(min(spans), 3) if spans else None,
        "lost": len(keys - set(counts)),
        "sent_twice": sum(c - 1 for c in counts.values() if c > 1),
        "unknown": len(set(counts) - keys),
        "window_violations": window,
        "min_interval_violations": interval,
        "violations": details[:20],
    }


def recovery_seconds(times: list[float], fault_at: float, rate_before: float) -> float | None:
    """Seconds from the fault until a 10 s stretch had at least 80 % of the pre-fault rate."""
    after = sorted(t for t in times if t >= fault_at)
    for start in after:
        in_window = sum(1 for t in after if start <= t < start + 10)
        if in_window / 10 >= 0.8 * rate_before:
            return round(start - fault_at, 1)
    return None


def in_flight_ids() -> list[int]:
    """Messages on the broker or in a worker right now (published, not finished)."""
    from crm.models import Message

    return list(
        Message.objects.filter(
            status__in=["queued", "sending"], dispatched_at__isnull=False
        ).values_list("id", flat=True)
    )


def all_sent_after(ids: list[int], t0: float) -> float | None:
    """Seconds from ``t0`` until the last of these messages was sent (None: one never was)."""
    from django.db.models import Max

    from crm.models import Message

    rows = Message.objects.filter(pk__in=ids)
    if rows.exclude(status="sent").exists():
        return None
    last = rows.aggregate(last=Max("sent_at"))["last"]
    return round(last.timestamp() - t0, 1) if last else 0.0


def worker_figures() -> dict[str, Any]:
    """What the workers counted (Prometheus, multiprocess files): how late after their slot
    the sends were answered, how often a late answer held an account back, slots retaken."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    buckets: dict[str, float] = {}
    figures: dict[str, Any] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "crm_send_slot_to_answer_seconds_bucket":
                buckets[sample.labels["le"]] = buckets.get(sample.labels["le"], 0) + sample.value
            elif sample.name == "crm_send_slot_late_total":
                figures["answered_later_than_guard"] = int(sample.value)
            elif sample.name == "crm_send_retries_total":
                figures[f"retries_{sample.labels['reason']}"] = int(sample.value)
            elif sample.name == "crm_send_task_executions_total" and sample.labels[
                "outcome"
            ].startswith("infrastructure"):
                figures[f"tasks_{sample.labels['outcome']}"] = int(sample.value)
    if buckets:
        total = buckets.get("+Inf", 0)
        figures["slot_to_answer_calls"] = int(total)
        figures["slot_to_answer_over_s"] = {
            le: int(total - n) for le, n in sorted(buckets.items(), key=lambda b: float(b[0]))
            if le != "+Inf" and float(le) >= 0.2
        }  # fmt: skip
    return figures


def rate_between(times: list[float], start: float, end: float) -> float:
    return sum(1 for t in times if start <= t < end) / max(end - start, 1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--sqs-outage", type=float, default=30.0)
    parser.add_argument("--timeout", type=float, default=1200.0, help="for the whole drain")
    parser.add_argument(
        "--shared-services",
        action="store_true",
        help="restart the machine's Redis and PostgreSQL instead of the drill's own",
    )
    parser.add_argument("--faults", default="worker,redis,sqs,postgres")
    args = parser.parse_args()
    faults = args.faults.split(",")
    VAR.mkdir(parents=True, exist_ok=True)
    for old in VAR.glob("*.log"):
        old.unlink()
    services = Services(shared=args.shared_services)
    for port in (SQS_PORT, SANDBOX_PORT):
        if port_open(port):
            raise SystemExit(f"port {port} is taken: stop whatever runs there first")
    load_start = list(os.getloadavg())
    services.start()
    prom = VAR / "prometheus"
    shutil.rmtree(prom, ignore_errors=True)
    prom.mkdir()
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "drill-secret-not-for-production",
        # Required with DEBUG off; the sandbox started here signs with its default.
        "ONLYFANS_WEBHOOK_SECRET": "sandbox-webhook-secret",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "DJANGO_SECURE_COOKIES": "0",
        "DJANGO_HSTS_SECONDS": "0",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{services.pg_port}/fancrm_drill",
        "REDIS_URL": f"redis://127.0.0.1:{services.redis_port}/{8 if services.shared else 0}",
        "CACHE_KEY_PREFIX": "fancrm-drill",
        "CHANNELS_PREFIX": "fancrm-drill:asgi",
        "CELERY_BROKER_URL": f"sqs://test:test@127.0.0.1:{SQS_PORT}",
        "SQS_QUEUE_PREFIX": "fancrm-drill-",
        "ONLYFANS_API_BASE_URL": f"http://127.0.0.1:{SANDBOX_PORT}",
        "ONLYFANS_API_KEY": "drill-key",
        "LOG_LEVEL": os.environ.get("DRILL_LOG_LEVEL", "WARNING"),
        "LOG_FORMAT": "json",
        "PROMETHEUS_MULTIPROC_DIR": str(prom),
        "SEND_TASK_TIME_LIMIT_SECONDS": "30",
        "SQS_VISIBILITY_TIMEOUT_SECONDS": "75",
        "SEND_REDISPATCH_AFTER_SECONDS": "90",
        "SEND_LOCK_TTL_SECONDS": "30",
        "CLOUDWATCH_INSTALLATION": "drill",
    }
    stack = Stack(env)
    results: dict[str, Any] = {"faults": {}}
    try:
        moto = stack.start("sqs", [sys.executable, "scripts/sqs_local.py", "127.0.0.1",
                                   str(SQS_PORT)])  # fmt: skip
        stack.start("sandbox", [sys.executable, "-m", "onlyfans.sandbox", "--port",
                                str(SANDBOX_PORT), "--api-key", "drill-key",
                                # Limits off at the platform: a send our limiter should not
                                # have let through must show in the arrival log, not a 429.
                                "--rate-limit-per-minute", "0",
                                "--min-interval-ms", "0"])  # fmt: skip
        wait_port(SQS_PORT)
        wait_port(SANDBOX_PORT)
        django_setup(env, services)
        queues_reset()
        per_account = args.messages // args.accounts
        _accounts, keys = backlog_create(args.accounts, per_account)
        log(f"backlog: {len(keys)} messages over {args.accounts} accounts "
            f"({PER_MINUTE}/min, {INTERVAL_MS} ms apart each)")  # fmt: skip
        from onlyfans.broker import worker_argv

        def worker(i: int) -> None:
            # As make run starts them: below the web server (and here the sandbox platform,
            # which would be another machine), so their CPU does not delay its clock.
            argv = worker_argv(hostname=f"drill{i}@%h", concurrency=8, loglevel="WARNING")
            stack.start(f"worker{i}", ["nice", "-n", "10", *argv])

        worker(0)
        worker(1)
        stack.start("beat", [sys.executable, "-m", "celery", "-A", "config", "beat",
                             "--schedule", str(VAR / "celerybeat-schedule"),
                             "--loglevel", "WARNING"])  # fmt: skip
        from crm.models import Message
        from onlyfans.dispatch import outbox_sweep

        time.sleep(3)
        started = time.time()
        outbox_sweep()
        sent = Message.objects.filter(status="sent")

        def wait_sent(n: int, limit: float) -> None:
            deadline = time.monotonic() + limit
            while sent.count() < n and time.monotonic() < deadline:
                time.sleep(0.5)

        total = len(keys)
        fault_times: dict[str, tuple[float, float]] = {}
        in_flight: dict[str, list[int]] = {}
        if "worker" in faults:
            wait_sent(int(total * 0.08), 120)
            victim = stack.procs["worker0"]
            t0 = time.time()
            in_flight["worker_sigkill"] = in_flight_ids()
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            stack.procs.pop("worker0")
            log(f"worker0 (pid {victim.pid}) SIGKILLed mid-send; restarted")
            worker(0)
            fault_times["worker_sigkill"] = (t0, time.time())
        if "redis" in faults:
            wait_sent(int(total * 0.22), 180)
            t0 = time.time()
            in_flight["redis_restart_data_lost"] = in_flight_ids()
            outage = services.redis_restart_empty()
            log(f"Redis restarted with its data lost ({outage:.2f} s down)")
            fault_times["redis_restart_data_lost"] = (t0, time.time())
        if "sqs" in faults:
            wait_sent(int(total * 0.36), 180)
            t0 = time.time()
            in_flight["sqs_stopped"] = in_flight_ids()
            os.kill(moto.pid, signal.SIGSTOP)
            log(f"local SQS stopped (SIGSTOP) for {args.sqs_outage:.0f} s")
            time.sleep(args.sqs_outage)
            os.kill(moto.pid, signal.SIGCONT)
            log("local SQS running again")
            fault_times["sqs_stopped"] = (t0, time.time())
        if "postgres" in faults:
            wait_sent(int(total * 0.55), 240)
            t0 = time.time()
            in_flight["postgres_restart"] = in_flight_ids()
            outage = services.pg_restart()
            log(f"PostgreSQL restarted ({outage:.2f} s)")
            fault_times["postgres_restart"] = (t0, time.time())
        deadline = time.monotonic() + args.timeout
        last_report = 0.0
        while True:
            try:
                done = sent.count()
            except Exception:
                from django.db import connection

                connection.close()
                time.sleep(1)
                continue
            if done >= total or time.monotonic() > deadline:
                break
            if time.monotonic() - last_report > 30:
                log(f"sent {done}/{total}")
                last_report = time.monotonic()
            time.sleep(1)
        drained = time.time() - started
        time.sleep(2)
        stored = arrivals()
        verdict = judge(stored, keys)
        times = sorted(s["arrived_at"] for s in stored)
        first_fault = min((t for t, _ in fault_times.values()), default=started + drained)
        steady = rate_between(times, started + 10, first_fault)
        from django.db import connection

        connection.close()  # the drill's own connection may predate the PostgreSQL restart
        results["fault_moments"] = {name: round(t0, 3) for name, (t0, _) in fault_times.items()}
        for name, (t0, t1) in fault_times.items():
            gap_after = [t for t in times if t >= t0]
            before = rate_between(times, t0 - 30, t0)
            results["faults"][name] = {
                "fault_seconds": round(t1 - t0, 2),
                "first_arrival_after_fault_s": round(gap_after[0] - t0, 1) if gap_after else None,
                "rate_30s_before_per_s": round(before, 2),
                "rate_30s_after_end_per_s": round(rate_between(times, t1, t1 + 30), 2),
                "back_to_80pct_rate_s": recovery_seconds(times, t0, before),
                "in_flight_at_fault": len(in_flight[name]),
                "all_in_flight_sent_after_s": all_sent_after(in_flight[name], t0),
            }
        # What beat published to CloudWatch meanwhile (moto serves it on the SQS endpoint).
        try:
            from onlyfans.cloudwatch import cloudwatch_client

            listed = cloudwatch_client().list_metrics(Namespace="FanCRM/OnlyFans")["Metrics"]
            results["cloudwatch_metrics"] = sorted({m["MetricName"] for m in listed})
            results["cloudwatch_series"] = len(listed)
        except Exception as error:
            results["cloudwatch_metrics"] = f"unavailable: {type(error).__name__}"
        try:
            results["workers"] = worker_figures()
        except Exception as error:
            results["workers"] = f"unavailable: {type(error).__name__}"
        results["load_average_1_5_15"] = {"start": load_start, "end": list(os.getloadavg())}
        from django.db.models import Count

        statuses = dict(Message.objects.values_list("status").annotate(n=Count("id")).order_by())
        results.update(
            verdict,
            drained_in_s=round(drained, 1),
            steady_rate_per_s=round(steady, 2),
            allowed_rate_per_s=round(args.accounts * PER_MINUTE / 60, 2),
            statuses=statuses,
        )
    finally:
        for name in list(stack.procs):
            proc = stack.procs[name]
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)  # never leave moto stopped
        stack.stop_all()
        services.stop()
    print()
    print(json.dumps(results, indent=2))
    ok = (
        results.get("lost") == 0
        and results.get("sent_twice") == 0
        and results.get("window_violations") == 0
        and results.get("min_interval_violations") == 0
        and results.get("arrived") == results.get("expected")
    )
    print(
        f"\n{'PASS' if ok else 'FAIL'}: {results.get('arrived')}/{results.get('expected')} "
        f"arrived, {results.get('lost')} lost, {results.get('sent_twice')} sent twice, "
        f"{results.get('window_violations')} window and "
        f"{results.get('min_interval_violations')} interval violations"
    )
    print(
        f"  closest two sends of an account {results.get('closest_two_sends_s')} s (limit "
        f"{INTERVAL_MS / 1000}), shortest span of {PER_MINUTE + 1} sends "
        f"{results.get('shortest_span_of_limit_plus_one_s')} s (limit 60); load average "
        f"{results.get('load_average_1_5_15')}"
    )
    for name, f in results["faults"].items():
        print(
            f"  {name:24} down {f['fault_seconds']:5.2f} s | first send after "
            f"{f['first_arrival_after_fault_s']} s | rate {f['rate_30s_before_per_s']}/s before, "
            f"back to 80 % in {f['back_to_80pct_rate_s']} s | the {f['in_flight_at_fault']} "
            f"messages in flight all sent {f['all_in_flight_sent_after_s']} s after the fault"
        )
    (VAR / "results.json").write_text(json.dumps(results, indent=2))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
