"""``python -m onlyfans.sandbox``: run the sandbox platform until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import sys

from onlyfans.sandbox.server import SandboxServer


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m onlyfans.sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--api-key", default="sandbox-key", help="expected Bearer key; '' accepts any")
    p.add_argument("--rate-limit-per-minute", type=int, default=10, help="per account; 0: off")
    p.add_argument("--min-interval-ms", type=int, default=3000, help="per account; 0: off")
    p.add_argument(
        "--read-rate-limit-per-minute", type=int, default=1000, help="reads per account; 0: off"
    )
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--fail-rate", type=float, default=0.0, help="share of sends answered 500")
    p.add_argument("--timeout-rate", type=float, default=0.0, help="share of sends never answered")
    p.add_argument(
        "--timeout-mode", choices=("after_send", "before_send", "random"), default="random"
    )
    p.add_argument("--timeout-sleep-ms", type=int, default=30_000)
    p.add_argument("--accounts", default="", help="comma-separated account ids listed at start")
    p.add_argument("--webhook-url", default=None)
    p.add_argument("--webhook-secret", default="sandbox-webhook-secret")
    p.add_argument("--fans-per-minute", type=float, default=0.0)
    p.add_argument("--fans-per-account", type=int, default=25)
    return p


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    server = SandboxServer(
        args.host,
        args.port,
        api_key=args.api_key or None,
        rate_limit_per_minute=args.rate_limit_per_minute,
        min_interval_ms=args.min_interval_ms,
        read_rate_limit_per_minute=args.read_rate_limit_per_minute,
        latency_ms=args.latency_ms,
        fail_rate=args.fail_rate,
        timeout_rate=args.timeout_rate,
        timeout_mode=args.timeout_mode,
        timeout_sleep_ms=args.timeout_sleep_ms,
        accounts=[a for a in args.accounts.split(",") if a],
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        fans_per_minute=args.fans_per_minute,
        fans_per_account=args.fans_per_account,
    )
    print(f"sandbox platform listening on {server.url}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
