"""Benchmark data for analytics: the inbox bench's account, made to look like an agency's.

    python manage.py bench_analytics_seed --fans 100000 --messages 1000000 --purchases 200000

Calls ``bench_inbox_seed`` for the fans, conversations, messages and PPV unlocks (COPY), then:
spreads the chatters' messages over eight chatters (one per conversation, as assignments
go) and a manager; gives campaign messages a campaign id; adds monthly subscription payments
and tips by COPY until there are ``--purchases`` purchases; recomputes each fan's lifetime
spend from their purchases; sets the account's time zone; and builds the analytics roll-ups
(timed: it is what a new account or a time zone change costs). ``--keep`` reuses an account
that already has the messages and only redoes the steps after it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from analytics.rollups import account_rollup_rebuild
from crm.management.commands.bench_inbox_seed import copy_rows, copy_time
from crm.models import Conversation, CreatorAccount, Fan, Membership, Message, Purchase

CHATTERS = 8
DAY = 86_400.0
SUBSCRIPTION_CENTS = 999
TIP_AMOUNTS = [300, 500, 1000, 2000, 5000]


class Command(BaseCommand):
    help = "Seed (or top up) the analytics benchmark account, then build its roll-ups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fans", type=int, default=100_000)
        parser.add_argument("--messages", type=int, default=1_000_000)
        parser.add_argument("--purchases", type=int, default=200_000)
        parser.add_argument("--account-id", default="acct_bench_analytics")
        parser.add_argument("--time-zone", default="Europe/Berlin")
        parser.add_argument("--keep", action="store_true", help="reuse the account's messages")

    def handle(self, *args: Any, **options: Any) -> None:
        platform_id: str = options["account_id"]
        started = time.perf_counter()
        account = CreatorAccount.objects.filter(platform_account_id=platform_id).first()
        ready = (
            options["keep"]
            and account is not None
            and Message.objects.filter(account=account).count() >= options["messages"]
        )
        if not ready:
            call_command(
                "bench_inbox_seed",
                fans=options["fans"],
                messages=options["messages"],
                account_id=platform_id,
                stdout=self.stdout,
            )
            account = CreatorAccount.objects.get(platform_account_id=platform_id)
        assert account is not None
        rng = random.Random(f"analytics-bench:{platform_id}")
        with transaction.atomic():
            step = time.perf_counter()
            chatter_ids = self._team(account)
            self._spread(account, chatter_ids)
            self._say("chatters and campaign ids set", step)
            step = time.perf_counter()
            added = self._purchases(account, options["purchases"], rng)
            self._say(f"added {added:,} subscription and tip purchases", step)
            step = time.perf_counter()
            self._spend(account)
            account.time_zone = options["time_zone"]
            account.save(update_fields=["time_zone", "updated_at"])
            self._say("lifetime spend recomputed", step)
        with connection.cursor() as cursor:
            for model in (Fan, Message, Purchase):
                cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
        step = time.perf_counter()
        account_rollup_rebuild(account=account)
        self._say("analytics roll-ups built (whole history)", step)
        self.stdout.write(
            f"{platform_id} (id {account.pk}): "
            f"{Fan.objects.filter(account=account).count():,} fans, "
            f"{Message.objects.filter(account=account).count():,} messages, "
            f"{Purchase.objects.filter(account=account).count():,} purchases, "
            f"time zone {account.time_zone}, in {time.perf_counter() - started:.1f} s"
        )

    def _say(self, what: str, since: float) -> None:
        self.stdout.write(f"  {what}: {time.perf_counter() - since:.1f} s")

    def _team(self, account: CreatorAccount) -> list[int]:
        ids = []
        for n in range(1, CHATTERS + 2):
            role = Membership.Role.MANAGER if n > CHATTERS else Membership.Role.CHATTER
            name = "bench_manager" if role == Membership.Role.MANAGER else f"bench_chatter{n}"
            user, created = User.objects.get_or_create(username=name)
            if created:
                user.set_password(settings.DEMO_PASSWORD)
                user.save(update_fields=["password"])
            Membership.objects.get_or_create(user=user, account=account, defaults={"role": role})
            ids.append(user.pk)
        return ids

    def _spread(self, account: CreatorAccount, chatter_ids: list[int]) -> None:
        """One chatter per conversation (the manager takes every tenth), campaign messages
        get a campaign id."""
        message = Message._meta.db_table
        if Message.objects.filter(account=account, sent_by_id=chatter_ids[0]).exists():
            return  # done by an earlier run
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {message} SET sent_by_id = (%s::bigint[])[1 + conversation_id %% %s]
                WHERE account_id = %s AND sender_kind = 'user'
                """,  # noqa: S608
                [chatter_ids, len(chatter_ids), account.pk],
            )
            # A campaign sends a conversation one message: the nth campaign message of a
            # conversation belongs to campaign n.
            cursor.execute(
                f"""
                UPDATE {message} m SET campaign_id = r.n
                FROM (SELECT id, row_number() OVER (PARTITION BY conversation_id
                                                    ORDER BY created_at, id) AS n
                      FROM {message} WHERE account_id = %s AND sender_kind = 'campaign') r
                WHERE m.id = r.id AND m.campaign_id IS NULL
                """,  # noqa: S608
                [account.pk],
            )

    def _purchases(self, account: CreatorAccount, target: int, rng: random.Random) -> int:
        have = Purchase.objects.filter(account=account).count()
        wanted = target - have
        if wanted <= 0:
            return 0
        now = timezone.now().timestamp()
        fans = list(
            Fan.objects.filter(account=account)
            .exclude(subscribed_at=None)
            .values_list("pk", "subscribed_at", "subscription_expires_at")
        )
        fan_ids = list(Fan.objects.filter(account=account).values_list("pk", flat=True))
        talkers = dict(Conversation.objects.filter(account=account).values_list("fan_id", "pk"))
        plans: list[tuple[int, str, int, float]] = []
        # Monthly payments from subscribing until the subscription ends (or now).
        for fan_id, subscribed, expires in fans:
            assert subscribed is not None  # excluded above
            at = subscribed.timestamp()
            end = min(expires.timestamp() if expires else now, now)
            while at < end and len(plans) < wanted * 0.7:
                plans.append((fan_id, "subscription", SUBSCRIPTION_CENTS, at))
                at += 30 * DAY
        # The rest: tips from fans who talk, leaning recent.
        talking = [f for f in fan_ids if f in talkers] or fan_ids
        while len(plans) < wanted:
            at = now - 1 - 120 * DAY * rng.random() ** 1.5
            plans.append((rng.choice(talking), "tip", rng.choice(TIP_AMOUNTS), at))
        stamp = int(now)

        def lines() -> Iterator[str]:
            for number, (fan_id, kind, amount, at) in enumerate(plans):
                when = copy_time(at)
                yield (
                    f"{account.pk}\t{fan_id}\t{kind}\t{amount}\t{when}\t\\N\t"
                    f"bench_{kind}_{stamp}_{number}\t{when}\n"
                )

        return copy_rows(
            Purchase._meta.db_table,
            ["account_id", "fan_id", "kind", "amount_cents", "purchased_at", "message_id",
             "platform_event_id", "created_at"],
            lines(),
        )  # fmt: skip

    def _spend(self, account: CreatorAccount) -> None:
        fan, purchase = Fan._meta.db_table, Purchase._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {fan} f SET lifetime_spend_cents = COALESCE(s.total, 0)
                FROM (SELECT f2.id, SUM(p.amount_cents) AS total FROM {fan} f2
                      LEFT JOIN {purchase} p ON p.fan_id = f2.id
                      WHERE f2.account_id = %s GROUP BY f2.id) s
                WHERE f.id = s.id AND f.lifetime_spend_cents <> COALESCE(s.total, 0)
                """,  # noqa: S608
                [account.pk],
            )
