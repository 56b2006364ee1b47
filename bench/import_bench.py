"""Benchmark of the CSV import: 100,000 and 1,000,000 rows from the task's start to done.

Run with `make bench ARGS=import` (or `.venv/bin/python bench/import_bench.py --help`). It uses
its own database (fancrm_bench_import) and generates spreadsheet-like files once (kept in
var/bench/import/): US money ("$1,234.50") and dates of two formats, tags in a tier column,
emoji names, about 1% invalid rows and 1% duplicate keys; a tenth of the rows match fans the
account has already (seeded before the clock starts), so the run creates and updates.

For each size, in a fresh account of an emptied database (the bench's own):
- the import: the task's work (``fan_import_advance`` until done, as the task and its
  re-enqueued runs do) in a child process, timed from the start to done, with its peak RSS,
  the CPU it and the rest of the machine (PostgreSQL) used and the load average;
- a plain ``COPY … FROM STDIN (FORMAT csv)`` of the same file into an unindexed table of
  text columns, in the same run: the floor any import of that file stands on;
- the account's fans inserted into crm_fan again with nothing else (rolled back): what
  crm_fan's indexes alone cost, the floor of any import into it;
- for 100,000 rows, a row-by-row ORM import (``update_or_create`` per row, the same value
  conversion): what the set-based engine replaces.

Targets (issue #8, on 2 cores): 100k < 4 s, 1M < 30 s, peak < 300 MB, under 4x the COPY.
Figures go to stdout and bench/results/import-latest.txt.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FILES = ROOT / "var" / "bench" / "import"
DATABASE = "fancrm_bench_import"
SIZES = {"100k": 100_000, "1m": 1_000_000}
HEADER = [
    "Fan ID", "Username", "Display Name", "Email", "Subscription Tier", "Total Spent",
    "Last Seen", "Subscribed At", "Status", "Notes",
]  # fmt: skip
EXISTING_SHARE = 0.10
TARGETS = {"100k": 4.0, "1m": 30.0}
PEAK_MB_TARGET = 300
COPY_RATIO_TARGET = 4.0

# The PostgreSQL server (host:port) the bench runs against: the machine's own by default;
# BENCH_PG points it at another one (for example one configured as in production).
SERVER = os.environ.get("BENCH_PG", "127.0.0.1:5432")
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-secret",
    # Required with DEBUG off; the sandbox started here signs with its default.
    "ONLYFANS_WEBHOOK_SECRET": "sandbox-webhook-secret",
    "DATABASE_URL": f"postgres://postgres@{SERVER}/{DATABASE}",
    "DATABASE_POOL_MAX_SIZE": "0",
    "REDIS_URL": "redis://127.0.0.1:6379/8",
    "CACHE_KEY_PREFIX": "fancrm-bench-import",
    "IMPORT_STORAGE_DIR": str(ROOT / "var" / "bench" / "import" / "storage"),
    "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
}


def setup_django() -> None:
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import psycopg

    with psycopg.connect(f"postgresql://postgres@{SERVER}/postgres", autocommit=True) as c:
        if not c.execute("select 1 from pg_database where datname = %s", [DATABASE]).fetchone():
            c.execute(f'create database "{DATABASE}"')
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import DatabaseError, connection

    try:
        call_command("migrate", verbosity=0, interactive=False)
    except DatabaseError:
        # Migrations rewritten since the last run: the bench's data is disposable.
        connection.close()
        with psycopg.connect(f"postgresql://postgres@{SERVER}/postgres", autocommit=True) as c:
            c.execute(f'drop database "{DATABASE}" with (force)')
            c.execute(f'create database "{DATABASE}"')
        call_command("migrate", verbosity=0, interactive=False)


# --- Files -------------------------------------------------------------------------------------

TIERS = ["vip", "whale", "gold", "silver", "bronze", "new", "promo|trial", "vip;whale"]
NAMES = ["Alex", "Sam", "Jordan", "Chris", "Robin", "Zoë", "José", "Mia 🎉", "Lee", "Kai"]


def file_generate(rows: int) -> Path:
    """A file of ``rows`` data rows (kept between runs): fan ids 1..rows, some invalid cells,
    some keys repeated by a later row."""
    path = FILES / f"fans-{rows}.csv"
    if path.exists():
        return path
    FILES.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    base = datetime(2025, 1, 1, tzinfo=UTC)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for n in range(1, rows + 1):
            fan_id = n if rng.random() > 0.01 else max(1, n - rng.randint(1, 1000))
            seen = base + timedelta(minutes=rng.randint(0, 500_000))
            spend = rng.randint(0, 500_000)
            writer.writerow(
                [
                    fan_id,
                    f"fan_{fan_id}" if rng.random() > 0.001 else "",
                    f"{rng.choice(NAMES)} {n}",
                    f"fan{n}@example.com" if rng.random() > 0.005 else "not-an-email",
                    rng.choice(TIERS),
                    f"${spend // 100:,}.{spend % 100:02d}" if n % 3 else f"{spend / 100:.2f}",
                    seen.strftime("%Y-%m-%d %H:%M") if n % 2 else seen.strftime("%m/%d/%Y"),
                    (seen - timedelta(days=30)).strftime("%b %d, %Y"),
                    rng.choice(["active", "expired", "Active", "never"]),
                    "" if n % 4 else "Likes long chats,\nasks for customs",
                ]
            )
    tmp.replace(path)
    return path


# --- One size --------------------------------------------------------------------------------


def database_reset() -> None:
    """The bench's database back to no accounts (it is the bench's own): every run adds more
    than a million fans, and a crm_fan grown to millions of rows (GBs, far beyond
    shared_buffers) made each size's figure depend on how many runs came before."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE crm_creatoraccount CASCADE")
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relkind = 'r'"
            " AND relname ~ '^imports_staged_fan_[0-9]+$'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f'DROP TABLE IF EXISTS "{table}"')
        cursor.execute("CHECKPOINT")


def account_prepare(rows: int) -> int:
    """A fresh account whose fans already include a tenth of the file's ids (by COPY)."""
    from django.db import connection

    from crm.models import CreatorAccount

    account = CreatorAccount.objects.create(
        display_name=f"Import bench {rows}",
        platform_account_id=f"acct_bench_import_{uuid.uuid4().hex[:10]}",
    )
    existing = int(rows * EXISTING_SHARE)
    with connection.cursor() as cursor:
        with cursor.copy(
            "COPY crm_fan (account_id, platform_fan_id, username, display_name, email, tags,"
            " notes, lifetime_spend_cents, subscription_state, created_at, updated_at)"
            " FROM STDIN"
        ) as copy:
            now = datetime.now(UTC)
            for n in range(1, rows + 1, rows // existing):
                copy.write_row(
                    (account.pk, str(n), f"fan_{n}", "", "", ["old"], "", 0, "never", now, now)
                )
        cursor.execute("ANALYZE crm_fan")
    return account.pk


def import_create(path: Path, account_id: int) -> int:
    import shutil

    from django.contrib.auth import get_user_model

    from crm.models import Membership
    from imports import services

    user, _ = get_user_model().objects.get_or_create(username="bench-import")
    Membership.objects.get_or_create(user=user, account_id=account_id, defaults={"role": "owner"})
    upload = FILES / f"upload-{uuid.uuid4().hex}.csv"
    shutil.copyfile(path, upload)
    fan_import = services.fan_import_create(
        actor=user, account_id=account_id, upload_path=upload, file_name=path.name, start=False
    )
    return fan_import.pk


def load_average() -> float:
    """The machine's 1-minute load average (2 cores: above 2, processes wait for a core)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine_busy_seconds() -> float:
    """CPU time (all cores, user + system) the machine has spent, from /proc/stat: during the
    import, what is not the import's process is PostgreSQL's (its connection and its merge
    workers', whose backends end with the run) and whatever else runs on the machine."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_run(import_id: int) -> None:
    """In a fresh process: the task's work, timed, with the process's peak RSS and the CPU
    it and the rest of the machine used (the machine is shared: CPU time says what the import
    costs, wall time also holds waiting for a core)."""
    from django.db import connection, transaction

    from imports import run
    from imports.models import FanImport

    with transaction.atomic():
        FanImport.objects.filter(pk=import_id).update(state="queued")
    connection.ensure_connection()
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_before = load_average()
    cpu_before, machine_before = own_cpu_seconds(), machine_busy_seconds()
    started = time.perf_counter()
    runs = 1
    while not run.fan_import_advance(import_id=import_id):
        runs += 1
    seconds = time.perf_counter() - started
    cpu = own_cpu_seconds() - cpu_before
    db_cpu = max(machine_busy_seconds() - machine_before - cpu, 0.0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds, "peak_mb": peak_mb, "base_mb": base_mb, "runs": runs,
                "cpu_seconds": cpu, "db_cpu_seconds": db_cpu,
                "load": [load_before, load_average()],
            }
        )
    )  # fmt: skip


def plain_copy(path: Path) -> float:
    """COPY the file as it is into an unindexed table of text columns."""
    from django.db import connection

    columns = ", ".join(f"c{i} text" for i in range(len(HEADER)))
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_plain_copy")
        cursor.execute(f"CREATE TABLE bench_plain_copy ({columns})")
        started = time.perf_counter()
        sql = "COPY bench_plain_copy FROM STDIN (FORMAT csv, HEADER true)"
        with cursor.copy(sql) as copy, open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - started
        cursor.execute("DROP TABLE bench_plain_copy")
    return seconds


def crm_fan_insert_floor(account_id: int) -> tuple[float, int]:
    """The same fans inserted into crm_fan with nothing else (no file, no conversion, no
    matching): ``INSERT … SELECT`` of the imported account's fans into a fresh account, with
    the foreign key checked at once, rolled back. What crm_fan's indexes alone cost."""
    from django.db import connection, transaction

    from crm.models import CreatorAccount

    with transaction.atomic():
        target = CreatorAccount.objects.create(
            display_name="Import bench floor",
            platform_account_id=f"acct_bench_floor_{uuid.uuid4().hex[:10]}",
        )
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            started = time.perf_counter()
            cursor.execute(
                "INSERT INTO crm_fan (account_id, platform_fan_id, username, display_name, email,"
                " tags, notes, lifetime_spend_cents, subscription_state, subscribed_at,"
                " subscription_expires_at, last_seen_at, created_at, updated_at)"
                " SELECT %s, platform_fan_id, username, display_name, email, tags, notes,"
                " lifetime_spend_cents, subscription_state, subscribed_at,"
                " subscription_expires_at, last_seen_at, created_at, updated_at"
                " FROM crm_fan WHERE account_id = %s",
                [target.pk, account_id],
            )
            seconds = time.perf_counter() - started
            rows = cursor.rowcount
        transaction.set_rollback(True)
    return seconds, rows


def orm_import(path: Path, account_id: int) -> float:
    """The import written the obvious way: one update_or_create per row."""
    from crm.models import Fan
    from imports import values

    date = values.date_converter(values.MONTH_FIRST)
    started = time.perf_counter()
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                defaults = {
                    "username": values.username_convert(row["Username"]),
                    "display_name": row["Display Name"],
                    "email": values.email_convert(row["Email"]) if row["Email"] else "",
                    "tags": values.tags_convert(row["Subscription Tier"]),
                    "lifetime_spend_cents": values.money_convert(row["Total Spent"]),
                    "last_seen_at": date(row["Last Seen"]),
                    "subscribed_at": date(row["Subscribed At"]),
                    "subscription_state": values.subscription_state_convert(row["Status"]),
                    "notes": row["Notes"],
                }
            except values.CellError:
                continue
            try:
                Fan.objects.update_or_create(
                    account_id=account_id, platform_fan_id=row["Fan ID"], defaults=defaults
                )
            except Exception:
                continue
    return time.perf_counter() - started


def size_run(name: str, rows: int, *, orm: bool) -> dict[str, Any]:
    from imports.models import FanImport

    path = file_generate(rows)
    database_reset()
    account_id = account_prepare(rows)
    import_id = import_create(path, account_id)
    child = subprocess.run(
        [sys.executable, __file__, "--child", str(import_id)],
        cwd=ROOT, env={**os.environ}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if child.returncode != 0:
        raise SystemExit(child.stderr)
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    fan_import = FanImport.objects.get(pk=import_id)
    assert fan_import.state == "done", (fan_import.error_code, fan_import.error_message)
    # The stored upload and its report are the bench's litter (100+ MB each at 1M rows).
    for leftover in (fan_import.file_path, fan_import.errors_path):
        if leftover:
            Path(leftover).unlink(missing_ok=True)
    copy_load = load_average()
    copy_seconds = min(plain_copy(path) for _ in range(2))
    floor_seconds, floor_rows = crm_fan_insert_floor(account_id)
    result = {
        "size": name,
        "rows": rows,
        "file_mb": path.stat().st_size / 1e6,
        "seconds": measured["seconds"],
        "peak_mb": measured["peak_mb"],
        "base_mb": measured["base_mb"],
        "task_runs": measured["runs"],
        "cpu_seconds": measured["cpu_seconds"],
        "db_cpu_seconds": measured["db_cpu_seconds"],
        "load": [*measured["load"], copy_load],
        "copy_seconds": copy_seconds,
        "copy_ratio": measured["seconds"] / copy_seconds,
        "floor_seconds": floor_seconds,
        "floor_rows": floor_rows,
        "created": fan_import.created,
        "updated": fan_import.updated,
        "skipped": fan_import.skipped,
        "rejected": fan_import.rejected,
    }
    if orm:
        orm_account = account_prepare(rows)
        result["orm_load"] = load_average()
        result["orm_seconds"] = orm_import(path, orm_account)
        result["orm_ratio"] = result["orm_seconds"] / measured["seconds"]
    return result


def report(results: list[dict[str, Any]]) -> str:
    lines = [
        f"Import bench {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} CPUs · "
        f"{platform.python_implementation()} {platform.python_version()}",
        "",
        f"{'rows':>9} {'file MB':>8} {'import s':>9} {'target':>7} {'rows/s':>9} {'peak MB':>8}"
        f" {'COPY s':>7} {'x COPY':>7} {'ORM s':>8} {'ORM/import':>11}",
    ]
    for r in results:
        orm_s = f"{r['orm_seconds']:.1f}" if "orm_seconds" in r else "-"
        orm_x = f"{r['orm_ratio']:.0f}x" if "orm_ratio" in r else "-"
        lines.append(
            f"{r['rows']:>9,} {r['file_mb']:>8.1f} {r['seconds']:>9.2f} {TARGETS[r['size']]:>6.0f}s"
            f" {r['rows'] / r['seconds']:>9,.0f} {r['peak_mb']:>8.0f} {r['copy_seconds']:>7.2f}"
            f" {r['copy_ratio']:>6.1f}x {orm_s:>8} {orm_x:>11}"
        )
    lines.append("")
    for r in results:
        db_cpu = f"{r['db_cpu_seconds']:.2f} s"
        orm_load = (
            f"; load at the ORM import's start {r['orm_load']:.1f}" if "orm_load" in r else ""
        )
        lines.append(
            f"{r['size']}: created {r['created']:,}, updated {r['updated']:,}, skipped "
            f"{r['skipped']:,}, rejected {r['rejected']:,}; task runs {r['task_runs']}; "
            f"process before the import {r['base_mb']:.0f} MB"
        )
        lines.append(
            f"  floor: the account's {r['floor_rows']:,} fans inserted into crm_fan again, alone"
            f" (INSERT … SELECT, rolled back): {r['floor_seconds']:.2f} s"
            f" = {r['floor_seconds'] / r['copy_seconds']:.1f}x the COPY"
        )
        lines.append(
            f"  CPU: the import's process {r['cpu_seconds']:.2f} s + the rest of the machine"
            f" (PostgreSQL: the import's connection and its merge workers) {db_cpu};"
            f" load average at start/end {r['load'][0]:.1f}/{r['load'][1]:.1f}, "
            f"at the COPY {r['load'][2]:.1f}{orm_load}"
        )
    verdicts = []
    for r in results:
        verdicts.append(
            f"{r['size']}: {'OK' if r['seconds'] < TARGETS[r['size']] else 'MISSED'} time, "
            f"{'OK' if r['peak_mb'] < PEAK_MB_TARGET else 'MISSED'} memory, "
            f"{'OK' if r['copy_ratio'] < COPY_RATIO_TARGET else 'MISSED'} vs COPY"
        )
    lines += ["", *verdicts]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="100k,1m", help="comma-separated: 100k, 1m")
    parser.add_argument("--no-orm", action="store_true", help="skip the row-by-row ORM import")
    args = parser.parse_args()
    setup_django()
    if args.child:
        child_run(args.child)
        return
    results = []
    for name in args.sizes.split(","):
        print(f"running {name} …", flush=True)
        results.append(size_run(name, SIZES[name], orm=name == "100k" and not args.no_orm))
    text = report(results)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import-latest.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
