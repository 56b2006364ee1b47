"""A realistic demo: two creator accounts, their team, fans, conversations and purchases, a
week of shifts for the chatters, and a welcome and a win-back automation on each account.

Idempotent: every row has a natural key (username, platform ids, platform event ids, a weekly
shift's member and weekday, an automation's name) and each fan's data comes from its own seeded
random generator, so a second run inserts nothing new.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction
from django.db.models import OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import (
    Conversation,
    CreatorAccount,
    Fan,
    Membership,
    Message,
    Purchase,
    ShiftTemplate,
)
from crm.services import conversation_summaries_recompute
from crm.shifts import shift_template_create

SEED = 20_240_601
BATCH_SIZE = 1000
DEMO_ACCOUNTS = [("acct_demo_1", "Luna Rivers"), ("acct_demo_2", "Mia Stone")]
# username -> (accounts as (platform id, role), is_superuser)
DEMO_USERS: dict[str, tuple[list[tuple[str, str]], bool]] = {
    "owner": ([("acct_demo_1", "owner"), ("acct_demo_2", "owner")], False),
    "chatter1": ([("acct_demo_1", "chatter")], False),
    "chatter2": ([("acct_demo_2", "chatter")], False),
    "admin": ([], True),
}
FIRST_NAMES = [
    "alex", "sam", "chris", "jordan", "taylor", "mike", "dave", "tom", "lucas", "noah",
    "liam", "ethan", "max", "leo", "ben", "jack", "ryan", "kevin", "marco", "jonas",
    "felix", "omar", "ivan", "pierre", "hugo", "mateo", "oscar", "nico", "paul", "sven",
]  # fmt: skip
LAST_NAMES = [
    "smith", "miller", "brown", "wilson", "moore", "clark", "lewis", "walker", "young", "king",
    "novak", "rossi", "muller", "dubois", "garcia", "jensen", "silva", "kowalski", "berg", "meyer",
]  # fmt: skip
INCOMING_TEXTS = [
    "hey beautiful 😍", "how was your day?", "loved the last post", "any new content soon?",
    "you're amazing", "what are you up to tonight?", "sent you a little something",
    "can I get something special?", "good morning!", "haha that's cute", "miss you",
    "is the bundle still available?",
]  # fmt: skip
OUTGOING_TEXTS = [
    "hey babe, thanks for being here 💕", "just posted something you'll like",
    "how's your week going?", "I made this just for you", "you always make me smile",
    "exclusive set, only for my favourites", "thank you so much for the tip!",
    "good night 😘", "what would you like to see next?",
]  # fmt: skip
# The chatters' week on the account's clock: (start, hours) for Monday..Sunday, one day off.
_Span = tuple[time, int] | None
_WEEKDAY: _Span = (time(9), 8)
_EVENING: _Span = (time(14), 8)
DEMO_SHIFTS: dict[str, list[_Span]] = {
    "chatter1": [_WEEKDAY] * 5 + [(time(12), 6), None],
    "chatter2": [_EVENING] * 4 + [None, (time(16), 8), (time(16), 8)],
}
PPV_PRICES = [500, 800, 999, 1200, 1500, 2000, 2500, 3500, 5000]
SUBSCRIPTION_PRICE = 999


@dataclass
class FanPlan:
    """Everything the seed creates for one fan, before any database ids exist."""

    fan: Fan
    messages: list[Message] = field(default_factory=list)
    # (kind, amount, purchased_at, event id, platform message id of the PPV it unlocked)
    purchases: list[tuple[str, int, datetime, str, str | None]] = field(default_factory=list)


@contextmanager
def _explicit_created_at(model: type[models.Model]) -> Iterator[None]:
    """Let bulk_create keep the created_at we set, so demo history is spread over time."""
    created_at = model._meta.get_field("created_at")
    assert isinstance(created_at, models.DateTimeField)
    created_at.auto_now_add = False
    try:
        yield
    finally:
        created_at.auto_now_add = True


def _fan_plan(
    *, account: CreatorAccount, index: int, number: int, now: datetime, sender_id: int | None
) -> FanPlan:
    platform_fan_id = str(5_000_000 + number * 1_000_000 + index)
    rng = random.Random(f"{SEED}:{platform_fan_id}")  # one generator per fan: order-free
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    state = rng.choices(["active", "expired", "never"], weights=[55, 30, 15])[0]
    profile = rng.choices(["whale", "buyer", "casual", "lurker"], weights=[4, 21, 40, 35])[0]

    subscribed_at = expires_at = None
    if state != "never":
        subscribed_at = now - timedelta(days=rng.randint(1, 400), minutes=rng.randint(0, 1439))
    if state == "active":
        expires_at = now + timedelta(days=rng.randint(1, 30))
    elif state == "expired":
        assert subscribed_at is not None
        expires_at = min(now - timedelta(days=1), subscribed_at + timedelta(days=30))
    if state == "active":
        last_seen = now - timedelta(minutes=rng.randint(1, 7 * 24 * 60))
    elif rng.random() < 0.1:
        last_seen = None
    else:
        last_seen = now - timedelta(days=rng.randint(8, 150), minutes=rng.randint(0, 1439))

    fan = Fan(
        account=account,
        platform_fan_id=platform_fan_id,
        username=f"{first}{last[:3]}{index}",
        display_name=f"{first.title()} {last[0].upper()}.",
        subscription_state=state,
        subscribed_at=subscribed_at,
        subscription_expires_at=expires_at,
        last_seen_at=last_seen,
    )
    plan = FanPlan(fan=fan)
    window_start = now - timedelta(days=90)

    def in_window() -> datetime:
        return now - timedelta(seconds=rng.randint(60, 90 * 24 * 3600))

    if subscribed_at is not None and subscribed_at > window_start:
        plan.purchases.append(
            ("subscription", SUBSCRIPTION_PRICE, subscribed_at, f"demo_sub_{platform_fan_id}", None)
        )
    tips = {"whale": rng.randint(3, 12), "buyer": rng.randint(0, 4), "casual": rng.randint(0, 1)}
    for j in range(tips.get(profile, 0)):
        amount = rng.choice(
            [300, 500, 1000, 2000, 5000, 10000] if profile == "whale" else [300, 500, 1000]
        )
        plan.purchases.append(("tip", amount, in_window(), f"demo_tip_{platform_fan_id}_{j}", None))

    has_conversation = profile in ("whale", "buyer") or rng.random() < 0.5
    if has_conversation:
        message_count = rng.randint(6, 24) if profile == "whale" else rng.randint(2, 10)
        at = now - timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 1439))
        for j in range(message_count):
            at = min(
                now - timedelta(seconds=30), at + timedelta(minutes=rng.randint(2, 2 * 24 * 60))
            )
            incoming = rng.random() < 0.5
            pid = f"dm_{platform_fan_id}_{j}"
            if incoming:
                message = Message(
                    account=account,
                    direction=Message.Direction.IN,
                    status=Message.Status.RECEIVED,
                    sender_kind=Message.SenderKind.FAN,
                    text=rng.choice(INCOMING_TEXTS),
                    platform_message_id=pid,
                    created_at=at,
                )
            else:
                price = rng.choice(PPV_PRICES) if rng.random() < 0.25 else 0
                message = Message(
                    account=account,
                    direction=Message.Direction.OUT,
                    status=Message.Status.SENT,
                    sender_kind=Message.SenderKind.USER,
                    sent_by_id=sender_id,
                    text=rng.choice(OUTGOING_TEXTS),
                    price_cents=price,
                    platform_message_id=pid,
                    attempts=1,
                    queued_at=at - timedelta(seconds=4),
                    sent_at=at,
                    created_at=at - timedelta(seconds=5),
                )
                buys = {"whale": 0.8, "buyer": 0.5, "casual": 0.1}.get(profile, 0.0)
                if price and at > window_start and rng.random() < buys:
                    plan.purchases.append(
                        ("ppv", price, at + timedelta(minutes=rng.randint(1, 240)),
                         f"demo_ppv_{platform_fan_id}_{j}", pid)
                    )  # fmt: skip
            plan.messages.append(message)

    spent = sum(amount for _, amount, *_ in plan.purchases)
    tags: list[str] = []
    if profile == "whale" or spent >= 20_000:
        tags.append("whale")
    if spent >= 5_000:
        tags.append("vip")
    if subscribed_at is not None and subscribed_at > now - timedelta(days=14):
        tags.append("new")
    if any(kind == "ppv" for kind, *_ in plan.purchases):
        tags.append("ppv-buyer")
    if any(kind == "tip" for kind, *_ in plan.purchases):
        tags.append("tipper")
    if last_seen is None or last_seen < now - timedelta(days=30):
        tags.append("inactive")
    region = rng.choices(["europe", "us", None], weights=[35, 40, 25])[0]
    if region:
        tags.append(region)
    fan.tags = tags
    return plan


class Command(BaseCommand):
    help = "Create demo users, two creator accounts with fans, chats and purchases (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--fans", type=int, default=2000, help="Fans in total, split across the two accounts."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            # Its users have a published password, one of them a superuser.
            raise CommandError(
                "seed_demo creates demo users with a known password (and a superuser): it "
                "runs only with DEBUG on (DJANGO_DEBUG=1), never on a production database."
            )
        total_fans: int = options["fans"]
        now = timezone.now().replace(microsecond=0)
        with transaction.atomic():
            users = self._users()
            accounts = self._accounts(users)
            created = {"fans": 0, "conversations": 0, "messages": 0, "purchases": 0}
            for number, account in enumerate(accounts, start=1):
                share = total_fans // len(accounts) + (
                    1 if number <= total_fans % len(accounts) else 0
                )
                sender = users["chatter1" if number == 1 else "chatter2"]
                plans = [
                    _fan_plan(account=account, index=i, number=number, now=now, sender_id=sender.pk)
                    for i in range(share)
                ]
                for key, count in self._insert(account, plans).items():
                    created[key] += count
            self._spend_recompute(accounts)
            conversation_summaries_recompute(account_ids=[a.pk for a in accounts])
            created["weekly shifts"] = self._shifts(users, now.date())

        self.stdout.write(
            "Demo data ready: "
            + ", ".join(f"{count} new {name}" for name, count in created.items())
            + "."
        )
        # The analytics roll-ups now, not when beat first fires a minute or two later (the
        # page's figures come from them). By name: crm does not import analytics.
        call_command("analytics_rollups_refresh", stdout=self.stdout)
        call_command(
            "seed_demo_automations", accounts=[pid for pid, _ in DEMO_ACCOUNTS], stdout=self.stdout
        )
        password = settings.DEMO_PASSWORD
        self.stdout.write(f"Demo logins (password: {password}):")
        self.stdout.write("  owner     owns both creator accounts")
        self.stdout.write("  chatter1  chatter on Luna Rivers")
        self.stdout.write("  chatter2  chatter on Mia Stone")
        self.stdout.write("  admin     superuser, for /admin/")

    def _users(self) -> dict[str, User]:
        users: dict[str, User] = {}
        for username, (_, is_superuser) in DEMO_USERS.items():
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "email": f"{username}@demo.example",
                    "is_staff": is_superuser,
                    "is_superuser": is_superuser,
                },
            )
            if created:
                user.set_password(settings.DEMO_PASSWORD)
                user.save(update_fields=["password"])
            users[username] = user
        return users

    def _accounts(self, users: dict[str, User]) -> list[CreatorAccount]:
        accounts = {
            platform_id: CreatorAccount.objects.get_or_create(
                platform_account_id=platform_id, defaults={"display_name": name}
            )[0]
            for platform_id, name in DEMO_ACCOUNTS
        }
        for username, (roles, _) in DEMO_USERS.items():
            for platform_id, role in roles:
                Membership.objects.get_or_create(
                    user=users[username], account=accounts[platform_id], defaults={"role": role}
                )
        return list(accounts.values())

    def _shifts(self, users: dict[str, User], today: date) -> int:
        """The chatters' weekly shifts from this week's Monday, through the schedule's own
        service (its overlap checks); a member's weekday that has one already is left."""
        created = 0
        monday = today - timedelta(days=today.weekday())
        for membership in Membership.objects.filter(
            user__username__in=DEMO_SHIFTS, role=Membership.Role.CHATTER
        ).select_related("user", "account"):
            owner = membership.account.memberships.filter(role=Membership.Role.OWNER).first()
            if owner is None:
                continue
            taken = set(
                ShiftTemplate.objects.filter(membership=membership).values_list(
                    "weekday", flat=True
                )
            )
            for weekday, span in enumerate(DEMO_SHIFTS[membership.user.get_username()]):
                if span is None or weekday in taken:
                    continue
                start, hours = span
                shift_template_create(
                    actor=owner.user,
                    account_id=membership.account_id,
                    membership_id=membership.pk,
                    weekday=weekday,
                    start_time=start,
                    duration_minutes=hours * 60,
                    active_from=monday,
                )
                created += 1
        return created

    def _insert(self, account: CreatorAccount, plans: list[FanPlan]) -> dict[str, int]:
        before = {
            "fans": Fan.objects.filter(account=account).count(),
            "conversations": Conversation.objects.filter(account=account).count(),
            "messages": Message.objects.filter(account=account).count(),
            "purchases": Purchase.objects.filter(account=account).count(),
        }
        Fan.objects.bulk_create(
            [plan.fan for plan in plans], batch_size=BATCH_SIZE, ignore_conflicts=True
        )
        fan_ids = dict(
            Fan.objects.filter(
                account=account, platform_fan_id__in=[plan.fan.platform_fan_id for plan in plans]
            ).values_list("platform_fan_id", "id")
        )

        conversations = []
        for plan in plans:
            if not plan.messages:
                continue
            unread = 0
            for message in reversed(plan.messages):
                if message.direction != Message.Direction.IN:
                    break
                unread += 1
            conversations.append(
                Conversation(
                    account=account,
                    fan_id=fan_ids[plan.fan.platform_fan_id],
                    last_message_at=plan.messages[-1].sent_at or plan.messages[-1].created_at,
                    unread_count=unread,
                )
            )
        Conversation.objects.bulk_create(
            conversations, batch_size=BATCH_SIZE, ignore_conflicts=True
        )
        conversation_ids = dict(
            Conversation.objects.filter(account=account).values_list("fan_id", "id")
        )

        messages = []
        for plan in plans:
            if not plan.messages:
                continue
            conversation_id = conversation_ids[fan_ids[plan.fan.platform_fan_id]]
            for message in plan.messages:
                message.conversation_id = conversation_id
                messages.append(message)
        with _explicit_created_at(Message):
            Message.objects.bulk_create(messages, batch_size=BATCH_SIZE, ignore_conflicts=True)
        ppv_message_ids = dict(
            Message.objects.filter(account=account, price_cents__gt=0).values_list(
                "platform_message_id", "id"
            )
        )

        purchases = [
            Purchase(
                account=account,
                fan_id=fan_ids[plan.fan.platform_fan_id],
                kind=kind,
                amount_cents=amount,
                purchased_at=purchased_at,
                platform_event_id=event_id,
                message_id=ppv_message_ids.get(message_pid) if message_pid else None,
            )
            for plan in plans
            for kind, amount, purchased_at, event_id, message_pid in plan.purchases
        ]
        Purchase.objects.bulk_create(purchases, batch_size=BATCH_SIZE, ignore_conflicts=True)
        return {
            "fans": Fan.objects.filter(account=account).count() - before["fans"],
            "conversations": Conversation.objects.filter(account=account).count()
            - before["conversations"],
            "messages": Message.objects.filter(account=account).count() - before["messages"],
            "purchases": Purchase.objects.filter(account=account).count() - before["purchases"],
        }

    def _spend_recompute(self, accounts: list[CreatorAccount]) -> None:
        """Lifetime spend is the sum of the fan's purchases: one UPDATE per run."""
        total = (
            Purchase.objects.filter(fan_id=OuterRef("pk"))
            .order_by()
            .values("fan_id")
            .annotate(total=Sum("amount_cents"))
            .values("total")
        )
        Fan.objects.filter(account__in=accounts).update(
            lifetime_spend_cents=Coalesce(Subquery(total), Value(0))
        )
