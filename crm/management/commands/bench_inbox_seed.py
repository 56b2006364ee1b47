"""Benchmark data for the inbox: one creator account with many fans, chats and messages.

    python manage.py bench_inbox_seed --fans 100000 --messages 1000000 --account-id acct_bench_big
    python manage.py bench_inbox_seed --fans 100 --messages 1000 --account-id acct_bench_small

Drops the account (and everything of it) and writes it again, so a second run gives the same
data. Rows go in with PostgreSQL COPY, not the ORM: the ORM would take an hour for a million
messages. Every conversation's denormalised columns (last message time, preview and direction,
unread count, waiting-since) are computed while the messages are generated, from the same
rules the services follow, and the tables are vacuumed and analysed at the end so the planner
sees them as a steady-state database would.

The data is deterministic (one seeded generator per account) and shaped like an agency's:
thread lengths follow a long tail (most fans wrote a few messages, the longest near 2,000),
activity leans towards the last days of a 90-day window, a fifth of outgoing messages are
pay-per-view and some of those were unlocked (the purchases give fans their spend and tags).
"""

from __future__ import annotations

import random
import time
import uuid
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from crm.management.commands.seed_demo import (
    FIRST_NAMES,
    INCOMING_TEXTS,
    LAST_NAMES,
    OUTGOING_TEXTS,
)
from crm.models import Conversation, CreatorAccount, Fan, Membership, Message, Purchase
from crm.models import message_preview as preview_of

BENCH_USERNAME = "bench_owner"
DAY = 24 * 3600.0
WINDOW = 90 * DAY
COPY_CHUNK_ROWS = 20_000
PPV_PRICES = [300, 500, 800, 999, 1200, 1500, 2000, 2500, 3500, 5000, 10000, 20000]
TIP_AMOUNTS = [300, 500, 1000, 2000, 5000]
# Texts the lists in seed_demo lack: several lines, and longer than the preview.
LONG_INCOMING = [
    "ok so I have a question\nis the custom video still possible this week?\nthanks x",
    "I've been thinking about what you posted yesterday and honestly it made my whole week, "
    "you have no idea how much I look forward to your messages every single morning ❤️",
]
LONG_OUTGOING = [
    "new bundle just dropped 🔥\n12 photos + 3 videos\nunlock it before midnight",
    "hey you! I just finished shooting a brand new set and I thought of you straight away, "
    "it's the one you asked for last month, tell me what you think when you've seen it 😘",
]
INCOMING = INCOMING_TEXTS + LONG_INCOMING
OUTGOING = OUTGOING_TEXTS + LONG_OUTGOING


@dataclass
class FanRow:
    platform_fan_id: str
    username: str
    display_name: str
    state: str
    subscribed_at: float | None
    expires_at: float | None
    spend: int = 0
    last_seen_at: float | None = None
    first_message_at: float | None = None


@dataclass
class ConversationRow:
    last_message_at: float
    preview: str
    direction: str
    unread_count: int
    waiting_since: float | None
    assigned: bool


# A message before it has an id: (created_at, sequence number, conversation index, incoming,
# text, price in cents, seconds from created to sent, sender kind). Tuples, not objects: there
# are a million of them.
MessagePlan = tuple[float, int, int, bool, str, int, float, str]
# (fan index, kind, amount, purchased_at, sequence number of the unlocked message or -1)
PurchasePlan = tuple[int, str, int, float, int]


@dataclass
class Plan:
    fans: list[FanRow]
    conversations: list[ConversationRow]
    messages: list[MessagePlan]
    purchases: list[PurchasePlan]


def thread_lengths(rng: random.Random, *, fans: int, messages: int) -> list[int]:
    """How many messages each conversation gets: a long tail that adds up to ``messages``.

    Every conversation gets one when there are enough; the rest is shared out by Pareto
    weights (largest remainders first): most threads are short, a few whales' are long.
    """
    base = 1 if messages >= fans else 0
    rest = messages - base * fans
    # Capped: with 1,000,000 messages the longest thread gets about 1,850 (20 a day), not 30,000.
    weights = [min(rng.paretovariate(1.2), 1000.0) for _ in range(fans)]
    total = sum(weights)
    shares = [rest * w / total for w in weights]
    lengths = [base + int(s) for s in shares]
    short = messages - sum(lengths)
    by_remainder = sorted(range(fans), key=lambda i: shares[i] - int(shares[i]), reverse=True)
    for i in by_remainder[:short]:
        lengths[i] += 1
    return lengths


def plan_build(*, seed: str, fans: int, messages: int, now: float) -> Plan:
    rng = random.Random(seed)
    window_start = now - WINDOW
    plan = Plan(fans=[], conversations=[], messages=[], purchases=[])
    sequence = 0
    for index, length in enumerate(thread_lengths(rng, fans=fans, messages=messages)):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        state = rng.choices(["active", "expired", "never"], weights=[55, 30, 15])[0]
        subscribed_at = expires_at = None
        if state != "never":
            subscribed_at = now - rng.uniform(1, 400) * DAY
            expires_at = (
                now + rng.uniform(1, 30) * DAY
                if state == "active"
                else min(now - DAY, subscribed_at + 30 * DAY)
            )
        fan = FanRow(
            platform_fan_id=str(700_000_000 + index),
            username=f"{first}{last}{index}",
            display_name=f"{first.title()} {last[0].upper()}.",
            state=state,
            subscribed_at=subscribed_at,
            expires_at=expires_at,
        )
        plan.fans.append(fan)
        if length == 0:
            continue
        # Last activity leans recent; a thread spans up to a few weeks before it.
        last_at = now - 60 - (WINDOW - 120) * rng.random() ** 2
        first_at = max(window_start, last_at - rng.expovariate(1 / (10 * DAY)))
        times = [*sorted(rng.uniform(first_at, last_at) for _ in range(length - 1)), last_at]
        fan.first_message_at = times[0]
        whale = length > 50 or rng.random() < 0.05
        last_out = -1
        for position, at in enumerate(times):
            incoming = rng.random() < 0.5
            if incoming:
                text = rng.choice(INCOMING)
                plan.messages.append((at, sequence, index, True, text, 0, 0.0, "fan"))
                fan.last_seen_at = at
            else:
                last_out = position
                text = rng.choice(OUTGOING)
                price = rng.choice(PPV_PRICES) if rng.random() < 0.2 else 0
                kind = "campaign" if rng.random() < 0.05 else "user"
                delay = rng.uniform(0.5, 8.0)
                plan.messages.append((at, sequence, index, False, text, price, delay, kind))
                if price and rng.random() < (0.6 if whale else 0.2):
                    bought = min(now - 1, at + rng.uniform(60, 6 * 3600))
                    plan.purchases.append((index, "ppv", price, bought, sequence))
            sequence += 1
        for _ in range(rng.randint(1, 6) if whale else int(rng.random() < 0.1)):
            plan.purchases.append(
                (index, "tip", rng.choice(TIP_AMOUNTS), rng.uniform(first_at, now - 1), -1)
            )
        # As the services keep them: waiting since the oldest message after the last answer;
        # unread until someone opens the chat (most waiting chats are still unread).
        trailing_in = len(times) - 1 - last_out
        _, _, _, last_incoming, last_text, *_ = plan.messages[-1]
        plan.conversations.append(
            ConversationRow(
                last_message_at=last_at,
                preview=preview_of(last_text),
                direction="in" if last_incoming else "out",
                unread_count=trailing_in if rng.random() < 0.7 else 0,
                waiting_since=times[last_out + 1] if trailing_in else None,
                assigned=rng.random() < 0.1,
            )
        )
    for fan_index, _, amount, _, _ in plan.purchases:
        plan.fans[fan_index].spend += amount
    return plan


def fan_tags(fan: FanRow, *, now: float, rng: random.Random) -> list[str]:
    tags = []
    if fan.spend >= 20_000:
        tags.append("whale")
    if fan.spend >= 5_000:
        tags.append("vip")
    if fan.subscribed_at is not None and fan.subscribed_at > now - 14 * DAY:
        tags.append("new")
    if fan.last_seen_at is None or fan.last_seen_at < now - 30 * DAY:
        tags.append("inactive")
    region = rng.choices(["europe", "us", ""], weights=[35, 40, 25])[0]
    if region:
        tags.append(region)
    return tags


# --- COPY text format -------------------------------------------------------------------------

NULL = "\\N"


def copy_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def copy_time(moment: float | None) -> str:
    if moment is None:
        return NULL
    return datetime.fromtimestamp(moment, UTC).isoformat()


def copy_rows(table: str, columns: Iterable[str], lines: Iterator[str]) -> int:
    """COPY tab-separated ``lines`` (each ending in a newline) into ``table``."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    count = 0
    chunk: list[str] = []
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for line in lines:
            chunk.append(line)
            if len(chunk) == COPY_CHUNK_ROWS:
                copy.write("".join(chunk))
                count += len(chunk)
                chunk.clear()
        if chunk:
            copy.write("".join(chunk))
            count += len(chunk)
    return count


def ids_reserve(model: type[Any], count: int) -> list[int]:
    """``count`` ids from the table's own sequence, so later ORM inserts never collide."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, count],
        )
        return [row[0] for row in cursor.fetchall()]


class Command(BaseCommand):
    help = "Create (or recreate) one creator account with bench-sized inbox data, via COPY."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fans", type=int, default=100, help="Fans, one conversation each.")
        parser.add_argument("--messages", type=int, default=1000, help="Messages in total.")
        parser.add_argument("--account-id", default="acct_bench_small", help="Platform id.")
        parser.add_argument("--seed", default="inbox-bench", help="Random seed (with the id).")

    def handle(self, *args: Any, **options: Any) -> None:
        fans: int = options["fans"]
        messages: int = options["messages"]
        platform_id: str = options["account_id"]
        if not platform_id.startswith("acct_"):
            raise CommandError("--account-id must start with acct_.")
        if fans < 1 or messages < 0:
            raise CommandError("--fans must be at least 1 and --messages not negative.")
        started = time.perf_counter()
        now = timezone.now().replace(microsecond=0).timestamp()

        step = time.perf_counter()
        seed = f"{options['seed']}:{platform_id}"
        plan = plan_build(seed=seed, fans=fans, messages=messages, now=now)
        plan.messages.sort()  # ids in time order, as a live table's would be
        self._say(f"generated {len(plan.messages):,} messages", step)

        with transaction.atomic():
            step = time.perf_counter()
            deleted = self._account_delete(platform_id)
            if deleted:
                self._say(f"dropped the old {platform_id} ({deleted:,} messages)", step)
            owner = self._owner()
            account = CreatorAccount.objects.create(
                platform_account_id=platform_id,
                display_name=f"Bench {platform_id.removeprefix('acct_')}",
                # Outgoing sends are not what this data is for: no pacing in the way.
                send_rate_per_minute=1_000_000,
                send_min_interval_ms=0,
            )
            Membership.objects.create(user=owner, account=account, role=Membership.Role.OWNER)
            self._copy(plan, account_id=account.pk, owner_id=owner.pk, now=now, seed=seed)
            step = time.perf_counter()
        # Django's foreign keys are deferred: PostgreSQL checks every copied row here.
        self._say("committed (foreign keys checked)", step)

        step = time.perf_counter()
        with connection.cursor() as cursor:
            for model in (Fan, Conversation, Message, Purchase):
                cursor.execute(f"VACUUM (ANALYZE) {model._meta.db_table}")
        self._say("vacuumed and analysed", step)
        self.stdout.write(
            f"{platform_id} (id {account.pk}): {fans:,} fans, {len(plan.conversations):,} "
            f"conversations, {len(plan.messages):,} messages, {len(plan.purchases):,} purchases "
            f"in {time.perf_counter() - started:.1f} s; log in as {BENCH_USERNAME}."
        )

    def _say(self, what: str, since: float) -> None:
        self.stdout.write(f"  {what}: {time.perf_counter() - since:.1f} s")

    def _owner(self) -> User:
        owner, _ = User.objects.get_or_create(
            username=BENCH_USERNAME, defaults={"email": "bench_owner@bench.example"}
        )
        if not owner.check_password(settings.DEMO_PASSWORD):
            owner.set_password(settings.DEMO_PASSWORD)
            owner.save(update_fields=["password"])
        return owner

    def _account_delete(self, platform_id: str) -> int:
        """Delete the account. The big tables go first in plain SQL (the ORM's cascade would
        load a million ids); the ORM then cascades over what is left (members, webhooks...)."""
        account = CreatorAccount.objects.filter(platform_account_id=platform_id).first()
        if account is None:
            return 0
        counts: dict[type[Any], int] = {}
        with connection.cursor() as cursor:
            for model in (Purchase, Message, Conversation, Fan):
                table = model._meta.db_table  # a model's, never input
                cursor.execute(f"DELETE FROM {table} WHERE account_id = %s", [account.pk])  # noqa: S608
                counts[model] = cursor.rowcount
        account.delete()
        return counts[Message]

    def _copy(self, plan: Plan, *, account_id: int, owner_id: int, now: float, seed: str) -> None:
        rng = random.Random(f"{seed}:tags")
        created = copy_time(now)

        step = time.perf_counter()
        fan_ids = ids_reserve(Fan, len(plan.fans))

        def fan_lines() -> Iterator[str]:
            for fan_id, fan in zip(fan_ids, plan.fans, strict=True):
                tags = "{" + ",".join(fan_tags(fan, now=now, rng=rng)) + "}"
                joined = min(
                    t for t in (fan.subscribed_at, fan.first_message_at, now) if t is not None
                )
                yield (
                    f"{fan_id}\t{account_id}\t{fan.platform_fan_id}\t{fan.username}\t"
                    f"{copy_text(fan.display_name)}\t\t{tags}\t\t{fan.spend}\t{fan.state}\t"
                    f"{copy_time(fan.subscribed_at)}\t{copy_time(fan.expires_at)}\t"
                    f"{copy_time(fan.last_seen_at)}\t{copy_time(joined)}\t{created}\n"
                )

        count = copy_rows(
            Fan._meta.db_table,
            ["id", "account_id", "platform_fan_id", "username", "display_name", "email", "tags",
             "notes", "lifetime_spend_cents", "subscription_state", "subscribed_at",
             "subscription_expires_at", "last_seen_at", "created_at", "updated_at"],
            fan_lines(),
        )  # fmt: skip
        self._say(f"copied {count:,} fans", step)

        step = time.perf_counter()
        # Conversations without messages (only when --messages < --fans) get no row here.
        fan_of_conversation = [i for i, fan in enumerate(plan.fans) if fan.first_message_at]
        conversation_ids = ids_reserve(Conversation, len(plan.conversations))
        conversation_of_fan = dict(zip(fan_of_conversation, conversation_ids, strict=True))

        def conversation_lines() -> Iterator[str]:
            rows = zip(conversation_ids, fan_of_conversation, plan.conversations, strict=True)
            for conversation_id, fan_index, c in rows:
                yield (
                    f"{conversation_id}\t{account_id}\t{fan_ids[fan_index]}\t"
                    f"{copy_time(c.last_message_at)}\t{copy_text(c.preview)}\t{c.direction}\t"
                    f"{c.unread_count}\t{copy_time(c.waiting_since)}\t"
                    f"{owner_id if c.assigned else NULL}\t"
                    f"{copy_time(plan.fans[fan_index].first_message_at)}\n"
                )

        count = copy_rows(
            Conversation._meta.db_table,
            ["id", "account_id", "fan_id", "last_message_at", "last_message_preview",
             "last_message_direction", "unread_count", "waiting_since", "assigned_to_id",
             "created_at"],
            conversation_lines(),
        )  # fmt: skip
        self._say(f"copied {count:,} conversations", step)

        step = time.perf_counter()
        message_ids = ids_reserve(Message, len(plan.messages))
        id_of_sequence = array("q", bytes(8 * len(plan.messages)))
        escaped = {text: copy_text(text) for text in INCOMING + OUTGOING}
        key_bits = random.Random(f"{seed}:keys").getrandbits

        def message_lines() -> Iterator[str]:
            for message_id, message in zip(message_ids, plan.messages, strict=True):
                at, sequence, fan_index, incoming, text, price, delay, kind = message
                id_of_sequence[sequence] = message_id
                key = uuid.UUID(int=key_bits(128), version=4)
                when = copy_time(at)
                prefix = f"{message_id}\t{account_id}\t{conversation_of_fan[fan_index]}\t"
                if incoming:
                    yield (
                        f"{prefix}in\t{escaped[text]}\t0\t{{}}\treceived\tbm_{message_id}\t{key}"
                        f"\tfan\t\\N\t\\N\t0\t\t\\N\t\\N\t\\N\t{when}\t{when}\n"
                    )
                else:
                    sent = copy_time(at + delay)
                    sender = owner_id if kind == "user" else NULL
                    yield (
                        f"{prefix}out\t{escaped[text]}\t{price}\t{{}}\tsent\tbm_{message_id}\t"
                        f"{key}\t{kind}\t{sender}\t\\N\t1\t\t{when}\t{when}\t{sent}\t{when}\t"
                        f"{sent}\n"
                    )

        count = copy_rows(
            Message._meta.db_table,
            ["id", "account_id", "conversation_id", "direction", "text", "price_cents",
             "media_ids", "status", "platform_message_id", "idempotency_key", "sender_kind",
             "sent_by_id", "campaign_id", "attempts", "last_error", "queued_at", "dispatched_at",
             "sent_at", "created_at", "updated_at"],
            message_lines(),
        )  # fmt: skip
        self._say(f"copied {count:,} messages", step)

        step = time.perf_counter()

        def purchase_lines() -> Iterator[str]:
            for number, (fan_index, kind, amount, at, sequence) in enumerate(plan.purchases):
                message = id_of_sequence[sequence] if sequence >= 0 else None
                event = f"bench_ppv_{message}" if message else f"bench_tip_{number}"
                yield (
                    f"{account_id}\t{fan_ids[fan_index]}\t{kind}\t{amount}\t{copy_time(at)}\t"
                    f"{message or NULL}\t{event}\t{copy_time(at)}\n"
                )

        count = copy_rows(
            Purchase._meta.db_table,
            ["account_id", "fan_id", "kind", "amount_cents", "purchased_at", "message_id",
             "platform_event_id", "created_at"],
            purchase_lines(),
        )  # fmt: skip
        self._say(f"copied {count:,} purchases", step)
