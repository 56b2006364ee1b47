"""The shift-only access check's cost per request, beside its baseline (the setting off).

Run with `make manage ARGS="shell -c 'exec(open(\"bench/shift_access_bench.py\").read())'"` or
`DJANGO_SETTINGS_MODULE=config.settings.base .venv/bin/python bench/shift_access_bench.py`
against a development database: it makes one throwaway account (deleted at the end) with a
chatter who has 14 weekly shifts and 30 one-off ones, clocks them in, then times
``shift_access_check`` uncached (a new request each time) with the setting off and on, and the
one query's server time (EXPLAIN ANALYZE). Prints p50/p95 in microseconds.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    import django

    django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402

from crm.models import CreatorAccount, Membership, Shift, ShiftTemplate, WorkSession  # noqa: E402
from crm.shift_access import _ACCESS_SQL, shift_access_check  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "2000"))


def timed(fn: object, runs: int = RUNS) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def main() -> None:
    tag = uuid.uuid4().hex[:8]
    account = CreatorAccount.objects.create(
        display_name=f"bench {tag}",
        platform_account_id=f"acct_bench_{tag}",
        time_zone="Europe/Berlin",
    )
    user = get_user_model().objects.create(username=f"bench-{tag}")
    member = Membership.objects.create(user=user, account=account, role="chatter")
    try:
        for weekday in range(7):
            for start in (clock_time(6), clock_time(18)):
                ShiftTemplate.objects.create(
                    account=account, membership=member, weekday=weekday, start_time=start,
                    duration_minutes=300, active_from=date(2026, 1, 5),
                )  # fmt: skip
        now = datetime.now(UTC)
        for day in range(-15, 15):
            starts = now + timedelta(days=day, hours=11)
            Shift.objects.create(
                account=account,
                membership=member,
                starts_at=starts,
                ends_at=starts + timedelta(hours=1),
            )
        WorkSession.objects.create(account=account, user=user, started_at=now, last_activity_at=now)

        def check() -> None:
            fresh = get_user_model()(pk=user.pk)  # a new request's user: nothing kept
            shift_access_check(user=fresh, account=account, membership=member)

        account.shift_only_access = False
        off = timed(check)
        account.shift_only_access = True
        on = timed(check)
        with connection.cursor() as cursor:
            grace = timedelta(minutes=15)
            cursor.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + _ACCESS_SQL,
                {
                    "user": user.pk,
                    "account": account.pk,
                    "from": now - grace,
                    "from_start": now - grace - timedelta(hours=25),
                    "to": now + timedelta(days=8),
                    "day0": (now - timedelta(days=2)).date(),
                    "day1": (now + timedelta(days=9)).date(),
                },
            )
            plan = cursor.fetchone()[0][0]
        print(f"shift_access_check, {RUNS} calls, uncached (µs):")
        print(f"  setting off (baseline): p50 {off[0]:8.1f}  p95 {off[1]:8.1f}")
        print(f"  setting on, chatter   : p50 {on[0]:8.1f}  p95 {on[1]:8.1f}")
        print(f"  the one query's server time: {plan['Execution Time']:.3f} ms")
        print(f"  load average: {os.getloadavg()}")
    finally:
        account.delete()
        user.delete()


main()
