"""The vault library's reads at 20,000 items: the selector the page and the picker share, with
each filter, a deep keyset page, and the whole page through Django's test client.

Run with `.venv/bin/python bench/vault_bench.py [-n 100] [--reseed]` after `source
.helper-env` (or with DATABASE_URL set): it seeds one account ``acct_vault_bench`` in that
database once (20,000 items, 8 lists, labels on a third; kept between runs) and prints p50/p95
per read beside the baseline measured in the same run (the bare keyset query on the index,
no lists, no rendering), the query count of each read, and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-secret")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ONLYFANS_WEBHOOK_SECRET", "bench-webhook-secret")
os.environ.setdefault("LOG_LEVEL", "WARNING")

ACCOUNT_ID, ITEMS, LISTS = "acct_vault_bench", 20_000, 8
TARGET_P95_MS = 150.0
TYPES = ("photo", "photo", "photo", "video", "photo", "gif", "video", "photo", "audio", "photo")
LABELS = ("feet", "custom", "$25 tier", "lingerie", "teaser", "b/g", "solo", "shower")


def seed(*, reseed: bool) -> tuple[int, int]:
    """The bench account and a member's id (created once)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from crm.models import CreatorAccount, Membership, VaultItem, VaultItemList, VaultList

    with transaction.atomic():
        account = CreatorAccount.objects.filter(platform_account_id=ACCOUNT_ID).first()
        if account is not None and (
            reseed or VaultItem.objects.filter(account=account).count() != ITEMS
        ):
            VaultItemList.objects.filter(item__account=account).delete()
            VaultItem.objects.filter(account=account).delete()
            VaultList.objects.filter(account=account).delete()
        if account is None:
            account = CreatorAccount.objects.create(
                display_name="Vault bench", platform_account_id=ACCOUNT_ID
            )
        user, _ = get_user_model().objects.get_or_create(username="vault_bench")
        Membership.objects.get_or_create(user=user, account=account, defaults={"role": "owner"})
        if VaultItem.objects.filter(account=account).count() == ITEMS:
            return account.pk, user.pk
        print(f"seeding {ITEMS:,} items", flush=True)
        now = datetime.now(UTC)
        lists = VaultList.objects.bulk_create(
            VaultList(account=account, platform_list_id=str(k), name=f"List {k}", synced_at=now)
            for k in range(1, LISTS + 1)
        )
        start = datetime(2024, 1, 1, tzinfo=UTC)
        items = VaultItem.objects.bulk_create(
            (
                VaultItem(
                    account=account,
                    platform_media_id=str(5_000_000 + n),
                    media_type=TYPES[n % len(TYPES)],
                    duration_seconds=30 + n % 600 if TYPES[n % len(TYPES)] == "video" else None,
                    platform_created_at=start + timedelta(minutes=n),
                    labels=[LABELS[n % len(LABELS)], LABELS[(n // 3) % len(LABELS)]]
                    if n % 3 == 0
                    else [],
                    thumb_name=f"vault/bench/{n}.jpg",
                    thumb_fetched_at=now,
                    gone_at=now if n % 97 == 0 else None,
                    synced_at=now,
                )
                for n in range(ITEMS)
            ),
            batch_size=2000,
        )
        VaultItemList.objects.bulk_create(
            (
                VaultItemList(item=item, vault_list=lists[k])
                for n, item in enumerate(items)
                for k in range(LISTS)
                if (n + k) % (k + 2) == 0
            ),
            batch_size=5000,
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_vaultitem; ANALYZE crm_vaultitemlist")
    return account.pk, user.pk


def timed(fn: Callable[[], object], n: int) -> tuple[float, float, int]:
    """(p50 ms, p95 ms, queries of one call). Queries are counted with an execute wrapper:
    a request through the test client resets Django's own query log when it starts."""
    from django.db import connection

    fn()  # warm
    executed: list[str] = []

    def count(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        executed.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1], len(executed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--reseed", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.test.utils import override_settings

    # DEBUG off (as in production) without a collectstatic: plain static storage.
    override_settings(
        STORAGES={
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
    ).enable()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from crm.models import Membership, VaultList
    from crm.vault import VaultFilters, vault_items_for_account

    account_id, user_id = seed(reseed=args.reseed)
    user = get_user_model().objects.get(pk=user_id)
    membership = Membership.objects.select_related("account").get(user=user, account_id=account_id)
    some_list = VaultList.objects.filter(account_id=account_id).order_by("-pk").first()
    assert some_list is not None

    def baseline() -> object:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM crm_vaultitem WHERE account_id = %s AND gone_at IS NULL "
                "ORDER BY platform_created_at DESC, id DESC LIMIT 49",
                [account_id],
            )
            return cursor.fetchall()

    def page(filters: VaultFilters, cursor: str | None = None) -> Callable[[], object]:
        return lambda: vault_items_for_account(
            user=user, account_id=account_id, filters=filters, cursor=cursor, membership=membership
        )

    # A cursor 20 pages deep (960 items in).
    cursor = None
    for _ in range(20):
        cursor = vault_items_for_account(
            user=user, account_id=account_id, cursor=cursor, membership=membership
        ).next_cursor
    client = Client()
    client.force_login(user)
    for path in (f"/accounts/{account_id}/vault/", f"/accounts/{account_id}/vault/?type=video"):
        status = client.get(path).status_code
        assert status == 200, f"{path}: {status}"

    reads: list[tuple[str, Callable[[], object]]] = [
        ("baseline: bare keyset query", baseline),
        ("selector: first page", page(VaultFilters())),
        ("selector: type=video", page(VaultFilters(media_type="video"))),
        ("selector: one list", page(VaultFilters(list_id=some_list.pk))),
        ("selector: label=shower", page(VaultFilters(label="shower"))),
        ("selector: search 'tier'", page(VaultFilters(q="tier"))),
        ("selector: search 'list 8'", page(VaultFilters(q="list 8"))),
        ("selector: sendable only", page(VaultFilters(only_sendable=True))),
        ("selector: 20 pages deep", page(VaultFilters(), cursor)),
        ("page: GET /vault/ (render)", lambda: client.get(f"/accounts/{account_id}/vault/")),
        (
            "page: GET /vault/?type=video (grid)",
            lambda: client.get(
                f"/accounts/{account_id}/vault/?type=video",
                headers={"HX-Request": "true", "HX-Target": "vault-grid"},
            ),
        ),
    ]
    print(f"vault of {ITEMS:,} items, {args.n} runs each; load {os.getloadavg()[0]:.2f}")
    print(f"{'read':40} {'p50 ms':>8} {'p95 ms':>8} {'queries':>8}")
    for name, fn in reads:
        p50, p95, queries = timed(fn, args.n)
        flag = "" if p95 < TARGET_P95_MS else f"  over {TARGET_P95_MS:.0f} ms"
        print(f"{name:40} {p50:8.1f} {p95:8.1f} {queries:8d}{flag}")
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
