"""CPU per send of ``onlyfans.pipeline.message_deliver`` in-process, split by component.

No Celery, no SQS: one thread calls ``message_deliver`` for a backlog of queued messages,
against the sandbox (started here), PostgreSQL and a redis-server of its own. Prints the
thread's CPU (``time.thread_time``) per send (and the process's: with the thread that sends
the live events, crm.broadcasts), and its exclusive split over the delivery's
parts (the row's load, the status updates, the lock and the limiter's scripts, the gateway
call, the log lines), measured by wrapping each part; "rest" is the pipeline's own code.

    .venv/bin/python bench/deliver_cpu_bench.py [--messages 2000] [--accounts 20]

Ports and database: BENCH_DELIVER_SANDBOX_PORT (8797), BENCH_DELIVER_REDIS_PORT (6397),
BENCH_DELIVER_DATABASE (fancrm_bench_deliver).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# pipeline_bench reads its ports at import: give it this bench's own.
os.environ["BENCH_SANDBOX_PORT"] = os.environ.get("BENCH_DELIVER_SANDBOX_PORT", "8797")
os.environ["BENCH_REDIS_PORT"] = os.environ.get("BENCH_DELIVER_REDIS_PORT", "6397")
os.environ["BENCH_DATABASE"] = os.environ.get("BENCH_DELIVER_DATABASE", "fancrm_bench_deliver")
sys.path.insert(0, str(ROOT))

from bench import pipeline_bench as pb  # noqa: E402


class Split:
    """Exclusive thread CPU per wrapped part (a part's nested parts are not counted in it)."""

    def __init__(self) -> None:
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[list[Any]] = []  # [name, started, nested]

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            frame = [name, time.thread_time(), 0.0]
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                spent = time.thread_time() - frame[1]
                self.cpu[name] += spent - frame[2]
                self.calls[name] += 1
                if self.stack:
                    self.stack[-1][2] += spent

        return wrapped


def instrument(split: Split) -> None:
    """Wrap the delivery's parts where pipeline looks them up."""
    import logging

    from redis.commands.core import Script
    from redis.lock import Lock

    from onlyfans import gateway, pipeline, ratelimit

    for name in ("_delivery_load", "message_mark_sending", "message_mark_sent"):
        setattr(pipeline, name, split.wrap(f"sql:{name}", getattr(pipeline, name)))
    gateway_send = gateway.message_send
    gateway.message_send = split.wrap("http:gateway.message_send", gateway_send)
    Script.__call__ = split.wrap("redis:scripts", Script.__call__)  # type: ignore[method-assign]
    Lock.acquire = split.wrap("redis:lock", Lock.acquire)  # type: ignore[method-assign]
    Lock.do_release = split.wrap("redis:lock", Lock.do_release)  # type: ignore[method-assign]
    for name in ("rate_limit_acquire", "rate_limit_slot_usable", "rate_limit_release"):
        wrapped = split.wrap(f"limiter:{name}", getattr(ratelimit, name))
        setattr(ratelimit, name, wrapped)
        if hasattr(pipeline, name):
            setattr(pipeline, name, wrapped)
    logging.Logger.handle = split.wrap("log:handle", logging.Logger.handle)  # type: ignore[method-assign]
    import structlog

    structlog.stdlib.BoundLogger._proxy_to_logger = split.wrap(  # type: ignore[method-assign]
        "log:structlog", structlog.stdlib.BoundLogger._proxy_to_logger
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    from django.db import connection

    from config.redis import redis_client
    from crm.models import Message
    from onlyfans import pipeline

    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE crm_message, crm_conversation, crm_purchase, crm_fan, crm_membership,"
            " crm_creatoraccount RESTART IDENTITY CASCADE"
        )
    redis_client().flushdb()
    pb.sandbox_post("/_sandbox/reset", {})
    accounts = pb.make_accounts(args.accounts, per_minute=1_000_000, min_interval_ms=0, fans=50)
    pb.backlog_create(accounts, args.messages // args.accounts)
    # Accounts round-robin, one message of each in turn, as the workers see them.
    ids = list(Message.objects.order_by("id").values_list("id", flat=True))
    warm, measured = ids[: args.warm_up], ids[args.warm_up :]
    for message_id in warm:
        pipeline.message_deliver(message_id=message_id)
    split = Split()
    if args.split:
        instrument(split)
    outcomes: dict[str, int] = defaultdict(int)
    cpu_started, wall_started = time.thread_time(), time.perf_counter()
    process_started = time.process_time()
    for message_id in measured:
        outcomes[pipeline.message_deliver(message_id=message_id).result] += 1
    cpu = time.thread_time() - cpu_started
    time.sleep(0.5)  # the live-event thread's last events
    process_cpu = time.process_time() - process_started
    wall = time.perf_counter() - wall_started
    n = max(len(measured), 1)
    parts = {k: round(v * 1000 / n, 3) for k, v in sorted(split.cpu.items())}
    if args.split:
        parts["rest"] = round(cpu * 1000 / n - sum(parts.values()), 3)
    return {
        "deliveries": len(measured),
        "outcomes": dict(outcomes),
        "cpu_ms_per_send": round(cpu * 1000 / n, 3),
        # With the process's other threads: the live events' presence checks (crm.broadcasts).
        "process_cpu_ms_per_send": round(process_cpu * 1000 / n, 3),
        "wall_ms_per_send": round(wall * 1000 / n, 3),
        "split_ms_per_send": parts,
        "calls_per_send": {k: round(v / n, 2) for k, v in sorted(split.calls.items())},
        "note": "with --split the wrappers add their own cost to cpu_ms_per_send",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--accounts", type=int, default=20)
    parser.add_argument("--warm-up", type=int, default=100)
    parser.add_argument(
        "--split", action=argparse.BooleanOptionalAction, default=True, help="per-part split"
    )
    args = parser.parse_args()
    pb.VAR.mkdir(parents=True, exist_ok=True)
    for port in (pb.SANDBOX_PORT, pb.REDIS_PORT):
        if pb.port_open(port):
            raise SystemExit(f"port {port} is taken: stop whatever runs there first")
    procs = pb.Processes()
    try:
        procs.start(
            "deliver-redis",
            ["redis-server", "--port", str(pb.REDIS_PORT), "--save", "", "--appendonly", "no"],
        )
        procs.start(
            "deliver-sandbox",
            [
                sys.executable, "-m", "onlyfans.sandbox", "--port", str(pb.SANDBOX_PORT),
                "--api-key", pb.ENV["ONLYFANS_API_KEY"],
                "--rate-limit-per-minute", "0", "--min-interval-ms", "0",
            ],
        )  # fmt: skip
        pb.wait_port(pb.SANDBOX_PORT)
        pb.wait_port(pb.REDIS_PORT)
        pb.setup_django()
        from onlyfans.client import api_client

        _ = api_client().chats.messages  # the SDK's imports, as the worker warms up
        result = run(args)
        print(json.dumps(result, indent=2))
    finally:
        procs.stop_all()


if __name__ == "__main__":
    main()
