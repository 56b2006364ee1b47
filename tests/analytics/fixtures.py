"""A small account whose every figure is worked out by hand in the tests (all times UTC).

Range 2025-03-01..2025-03-07 (7 days); previous period 2025-02-22..2025-02-28.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from analytics.periods import Period
from crm.models import Conversation, CreatorAccount, Fan, Message, Purchase
from tests.factories import (
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    PurchaseFactory,
)

FIRST = date(2025, 3, 1)
LAST = date(2025, 3, 7)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fan_make(account: CreatorAccount, joined: str, **fields: object) -> Fan:
    fan = FanFactory(account=account, **fields)
    Fan.objects.filter(pk=fan.pk).update(created_at=at(joined))
    fan.refresh_from_db()
    return fan


def message_make(
    conversation: Conversation,
    when: str,
    *,
    out_by: object = None,
    campaign: bool = False,
    price: int = 0,
    failed: bool = False,
) -> Message:
    """An incoming message, or (``out_by`` a user, or ``campaign``) an outgoing one, sent at
    the moment it was written unless ``failed``."""
    moment = at(when)
    if out_by is None and not campaign:
        fields: dict[str, object] = {
            "direction": "in",
            "status": "received",
            "sender_kind": "fan",
        }
    else:
        fields = {
            "direction": "out",
            "status": "failed" if failed else "sent",
            "sender_kind": "campaign" if campaign else "user",
            "sent_by": out_by,
            "sent_at": None if failed else moment,
            "price_cents": price,
        }
    message = Message.objects.create(
        account=conversation.account, conversation=conversation, text="hi", **fields
    )
    Message.objects.filter(pk=message.pk).update(created_at=moment)
    message.created_at = moment
    return message


def purchase_make(
    fan: Fan, kind: str, cents: int, when: str, message: Message | None = None
) -> Purchase:
    return PurchaseFactory(
        fan=fan, kind=kind, amount_cents=cents, purchased_at=at(when), message=message
    )


@dataclass
class Hand:
    account: CreatorAccount
    owner: object
    alice: object
    bob: object
    fans: list[Fan]
    conversations: list[Conversation]
    purchases: dict[str, Purchase]

    @property
    def period(self) -> Period:
        return Period(first_day=FIRST, last_day=LAST, zone_name=self.account.time_zone)


def hand_fixture(time_zone: str = "UTC") -> Hand:
    account = CreatorAccountFactory(time_zone=time_zone)
    owner = MembershipFactory(account=account, role="owner").user
    alice = MembershipFactory(account=account, role="chatter", user__username="alice").user
    bob = MembershipFactory(account=account, role="chatter", user__username="bob").user
    f1 = fan_make(account, "2025-01-10T00:00:00")
    f2 = fan_make(account, "2025-02-25T00:00:00")
    f3 = fan_make(account, "2025-03-02T00:00:00")
    f4 = fan_make(account, "2025-03-05T00:00:00")
    f5 = fan_make(account, "2025-03-10T00:00:00")
    c1, c2, c3 = (Conversation.objects.create(account=account, fan=f) for f in (f1, f2, f3))

    message_make(c1, "2025-03-01T10:00:00")
    message_make(c1, "2025-03-01T10:05:00", out_by=alice)  # answers in 300 s
    alice_ppv = message_make(c1, "2025-03-01T12:00:00", out_by=alice, price=1000)
    message_make(c1, "2025-03-03T09:00:00")
    message_make(c1, "2025-03-03T09:10:00")
    message_make(c1, "2025-03-03T10:00:00", out_by=bob)  # answers 09:00 in 3600 s

    message_make(c2, "2025-02-26T08:00:00")
    message_make(c2, "2025-02-26T08:02:00", out_by=bob)  # previous period: 120 s
    message_make(c2, "2025-03-04T15:00:00", out_by=bob, price=2000)  # never unlocked
    message_make(c2, "2025-03-04T16:00:00")
    message_make(c2, "2025-03-04T16:30:00", campaign=True)  # not an answer
    message_make(c2, "2025-03-04T17:00:00", out_by=alice)  # answers 16:00 in 3600 s
    message_make(c2, "2025-03-05T09:00:00", out_by=alice, failed=True)

    message_make(c3, "2025-03-06T20:00:00")  # unanswered

    purchases = {
        "ppv": purchase_make(f1, "ppv", 1000, "2025-03-02T09:00:00", alice_ppv),
        "tip_bob": purchase_make(f1, "tip", 500, "2025-03-03T11:00:00"),
        "tip_late": purchase_make(f2, "tip", 700, "2025-03-06T12:00:00"),
        "sub": purchase_make(f3, "subscription", 999, "2025-03-02T00:30:00"),
        "sub_before": purchase_make(f2, "subscription", 999, "2025-02-25T12:00:00"),
        "tip_no_chat": purchase_make(f4, "tip", 300, "2025-03-07T23:59:59"),
    }
    return Hand(
        account=account,
        owner=owner,
        alice=alice,
        bob=bob,
        fans=[f1, f2, f3, f4, f5],
        conversations=[c1, c2, c3],
        purchases=purchases,
    )
