"""What presence and typing traffic costs the inbox's live path.

Run with `.venv/bin/python bench/presence_bench.py [-n 200]`. The approach is the inbox
bench's (bench/inbox_bench.py, whose helpers it reuses): the web server as `make run` starts
it, signed ``messages.received`` webhooks posted one after another, and the time from just
before each POST until the rendered message reaches each inbox socket. Here 50 members of one
account each hold an inbox socket, and the webhooks are measured in alternating rounds:

- baseline: the 50 sockets open, sending nothing;
- with presence: the same sockets, each heartbeating every 10 s with a thread open (five
  threads, ten members each), and 10 of them typing in bursts of 3-8 s with pauses of 1-4 s
  (a typing notice every 2 s while typing, as static/js/presence.js sends them, and a stop
  after each burst; every start and stop is broadcast to all 50 sockets).

Rounds alternate (baseline, presence, baseline, presence), so drift on this shared machine
falls on both. Target: the with-presence p95 under 1.1 x the baseline p95. It uses its own
database (fancrm_bench_presence), Redis database 14 and a free port, and seeds a 100-fan
account with `manage.py bench_inbox_seed` when it is missing. Figures go to stdout and
bench/results/presence-latest.txt (and .json).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import inbox_bench
from pipeline_bench import percentile, web_server_argv

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
VAR = ROOT / "var" / "bench"
DATABASE = "fancrm_bench_presence"
PLATFORM_ACCOUNT = "acct_bench_presence"
MEMBERS = 50
TYPISTS = 10
THREADS_OPEN = 5
HEARTBEAT_SECONDS = 10.0
TARGET_RATIO = 1.10

ENV = {
    **inbox_bench.ENV,
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "CACHE_KEY_PREFIX": "fancrm-bench-presence",
    "CHANNELS_PREFIX": "fancrm-bench-presence:asgi",
    "SQS_QUEUE_PREFIX": "fancrm-bench-presence-",
}


def setup() -> tuple[int, list[int], list[tuple[str, str]]]:
    """The account, its open threads and its fans; seeded when missing."""
    # The inbox bench's setup, pointed at this bench's database, Redis and prefixes.
    inbox_bench.DATABASE = DATABASE
    inbox_bench.ENV = ENV
    inbox_bench.setup_django()
    from django.core.management import call_command

    from crm.models import Conversation, CreatorAccount, Fan

    account = CreatorAccount.objects.filter(platform_account_id=PLATFORM_ACCOUNT).first()
    if account is None:
        call_command(
            "bench_inbox_seed",
            fans=100,
            messages=1_000,
            account_id=PLATFORM_ACCOUNT,
            stdout=sys.stdout,
        )
        account = CreatorAccount.objects.get(platform_account_id=PLATFORM_ACCOUNT)
    threads = list(
        Conversation.objects.filter(account=account)
        .order_by("pk")
        .values_list("pk", flat=True)[:THREADS_OPEN]
    )
    fans = list(Fan.objects.filter(account=account).values_list("platform_fan_id", "username"))
    return account.pk, threads, fans


def free_port() -> int:
    # Other benchmarks (and other checkouts' runs) hold the fixed ports on a shared machine.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def member_cookies(account_id: int) -> list[str]:
    """Fifty chatters of the account, each logged in (a session cookie of their own)."""
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    from crm.models import Membership

    cookies = []
    for i in range(MEMBERS):
        user, _ = User.objects.get_or_create(username=f"bench_presence_{i:02d}")
        Membership.objects.get_or_create(
            user=user, account_id=account_id, defaults={"role": Membership.Role.CHATTER}
        )
        browser = Client()
        browser.force_login(user)
        cookies.append(
            f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"
        )
    return cookies


class Traffic:
    """The presence frames the 50 pages send while ``on`` is set: heartbeats naming their
    thread every 10 s (spread over the period) and keystrokes from the typists."""

    def __init__(self, sockets: list[inbox_bench.Socket], threads: list[int]) -> None:
        self.sockets, self.threads = sockets, threads
        self.on = threading.Event()
        self.stop = threading.Event()
        self.frames = 0
        self.lock = threading.Lock()
        self.workers = [
            threading.Thread(target=self._page, args=(i,), daemon=True) for i in range(len(sockets))
        ]
        for worker in self.workers:
            worker.start()

    def _send(self, index: int, message: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):  # a socket being reopened
            self.sockets[index].ws.send(json.dumps(message))
            with self.lock:
                self.frames += 1

    def _page(self, index: int) -> None:
        rng = random.Random(index)
        thread = self.threads[index % len(self.threads)]
        typist = index < TYPISTS
        next_beat = time.monotonic() + rng.uniform(0, HEARTBEAT_SECONDS)
        while not self.stop.is_set():
            if not self.on.wait(timeout=0.2):
                continue
            now = time.monotonic()
            if now >= next_beat:
                self._send(index, {"presence": "heartbeat", "conversation_id": thread})
                next_beat = now + HEARTBEAT_SECONDS
            if typist:
                # A burst of typing (3-8 s, a keystroke every 150-300 ms, a notice at most
                # every 2 s as presence.js sends them), then a pause of 1-4 s, as people write.
                burst_end = now + rng.uniform(3, 8)
                last_notice = 0.0
                while time.monotonic() < burst_end and self.on.is_set():
                    if time.monotonic() - last_notice >= 2.0:
                        self._send(index, {"presence": "typing", "conversation_id": thread})
                        last_notice = time.monotonic()
                    time.sleep(rng.uniform(0.15, 0.3))
                self._send(index, {"presence": "typing_stop", "conversation_id": thread})
                time.sleep(rng.uniform(1, 4))
            else:
                time.sleep(0.2)

    def start(self) -> None:
        # Every page says which thread it has open at once, as a page does on opening it.
        for index in range(len(self.sockets)):
            self._send(
                index,
                {
                    "presence": "heartbeat",
                    "conversation_id": self.threads[index % len(self.threads)],
                },
            )
        self.on.set()

    def pause(self) -> None:
        # No "leave": the views expire unseen (nobody heartbeats to sweep them), so the
        # baseline round that follows carries no presence frames at all.
        self.on.clear()

    def close(self) -> None:
        self.stop.set()


def webhook_round(
    *, http: Any, sockets: list[inbox_bench.Socket], fans: list[tuple[str, str]], n: int
) -> tuple[list[float], int]:
    """n webhooks, each timed to every socket: the latencies (ms) and the misses."""
    latencies: list[float] = []
    missed = 0
    for _ in range(n):
        for sock in sockets:
            sock.reopen_if_closed()
        token = f"bench-{uuid.uuid4().hex[:16]}"
        body = inbox_bench.webhook_body(PLATFORM_ACCOUNT, random.choice(fans), f"{token} hi")
        signature = hmac.new(inbox_bench.WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
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
        assert reply.status_code == 200, (reply.status_code, reply.text)
        for sock in sockets:
            arrived = sock.wait(token, timeout=5)
            if arrived is None:
                missed += 1
            else:
                latencies.append((arrived - started) * 1000)
        time.sleep(random.uniform(0.02, 0.08))
    return latencies, missed


def summary(latencies: list[float], missed: int, webhooks: int) -> dict[str, Any]:
    return {
        "webhooks": webhooks,
        "deliveries": len(latencies),
        "missed": missed,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
    }


def run(n: int, rounds: int) -> dict[str, Any]:
    import httpx

    account_id, threads, fans = setup()
    cookies = member_cookies(account_id)
    port = free_port()
    VAR.mkdir(parents=True, exist_ok=True)
    log = open(VAR / "presence-web.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(
        web_server_argv(port=port),
        cwd=ROOT,
        env={**os.environ, **ENV},
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    report: dict[str, Any] = {"members": MEMBERS, "typists": TYPISTS, "threads_open": threads}
    try:
        inbox_bench.server_wait(base)
        ws_url = base.replace("http", "ws") + f"/ws/accounts/{account_id}/inbox/"
        sockets = [inbox_bench.Socket(ws_url, {"Cookie": c, "Origin": base}) for c in cookies]
        time.sleep(1.0)  # the consumers join the account's group after accepting
        traffic = Traffic(sockets, threads)
        samples: dict[str, list[float]] = {"baseline": [], "with presence": []}
        misses = {"baseline": 0, "with presence": 0}
        rounds_p95: dict[str, list[float]] = {}
        per_round = max(1, n // rounds)
        with httpx.Client(base_url=base, timeout=30) as http:
            webhook_round(http=http, sockets=sockets, fans=fans, n=10)  # warm-up
            for number in range(rounds):
                for label in ("baseline", "with presence"):
                    if label == "with presence":
                        traffic.start()
                        # 50 pages joining at once is 2,500 frames: measure the steady state
                        time.sleep(5.0)
                    latencies, missed = webhook_round(
                        http=http, sockets=sockets, fans=fans, n=per_round
                    )
                    if label == "with presence":
                        traffic.pause()
                        time.sleep(2.0)  # the typists' last stops
                    samples[label] += latencies
                    misses[label] += missed
                    rounds_p95.setdefault(label, []).append(round(percentile(latencies, 95), 1))
                    print(
                        f"  round {number + 1} {label}: "
                        f"p95 {percentile(latencies, 95):.1f} ms over {len(latencies)}",
                        flush=True,
                    )
        traffic.close()
        for sock in sockets:
            sock.close()
        for label in samples:
            report[label] = summary(samples[label], misses[label], per_round * rounds)
        report["presence_frames_sent"] = traffic.frames
        report["rounds_p95_ms"] = rounds_p95
        report["socket_drops"] = sum(sock.drops for sock in sockets)
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=200, help="webhooks per case (over all rounds)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two cases")
    args = parser.parse_args()
    started = datetime.now(UTC)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    report = run(args.n, args.rounds)
    base, live = report["baseline"], report["with presence"]
    ratio = live["p95_ms"] / base["p95_ms"] if base["p95_ms"] else float("nan")
    ok = ratio < TARGET_RATIO and base["missed"] == 0 and live["missed"] == 0
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    lines = [
        f"presence bench {started:%Y-%m-%d %H:%M} UTC, commit {commit}, load average {load} at "
        f"the start, {os.cpu_count()} CPUs; {MEMBERS} members' inbox sockets on one account, "
        f"{TYPISTS} typing, {len(report['threads_open'])} threads open",
        "",
        f"{'webhook -> 50 sockets':22} {'webhooks':>8} {'deliveries':>10} {'p50':>7} "
        f"{'p95':>7} {'max':>7} {'missed':>6}",
    ]
    for label in ("baseline", "with presence"):
        r = report[label]
        lines.append(
            f"{label:22} {r['webhooks']:>8} {r['deliveries']:>10} {r['p50_ms']:>7} "
            f"{r['p95_ms']:>7} {r['max_ms']:>7} {r['missed']:>6}"
        )
    by_round = report["rounds_p95_ms"]
    pairs = list(zip(by_round["baseline"], by_round["with presence"], strict=True))
    ratios = sorted(live_p95 / base_p95 for base_p95, live_p95 in pairs if base_p95)
    lines += [
        "",
        "per round p95 (baseline, with presence) ms: "
        + ", ".join(f"({b}, {w})" for b, w in pairs)
        + f"; median of the rounds' ratios {percentile(ratios, 50):.3f} (the load on this "
        "shared machine moves whole rounds: compare it with the pooled ratio)",
        f"p95 with presence / baseline: {ratio:.3f} (target < {TARGET_RATIO}): "
        f"{'PASS' if ok else 'FAIL'}; presence frames sent by the pages: "
        f"{report['presence_frames_sent']}; socket drops: {report['socket_drops']}",
        f"load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}",
    ]
    report["p95_ratio"] = round(ratio, 3)
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    (RESULTS / "presence-latest.txt").write_text(text)
    (RESULTS / "presence-latest.json").write_text(json.dumps(report, indent=2))
    print()
    print(text)


if __name__ == "__main__":
    main()
