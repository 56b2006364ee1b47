from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Q, Sum
from django.urls import reverse
from django.utils import timezone

from automations.models import Automation
from crm.management.commands.seed_demo import DEMO_USERS
from crm.models import (
    Conversation,
    CreatorAccount,
    Fan,
    Membership,
    Message,
    Purchase,
    ShiftTemplate,
)

pytestmark = pytest.mark.django_db

DEMO_USERNAMES = list(DEMO_USERS)


@pytest.fixture(autouse=True)
def _debug_on(settings):
    settings.DEBUG = True  # seed_demo runs on development databases only


def test_seed_demo_refuses_to_run_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="only with DEBUG on"):
        call_command("seed_demo", "--fans", "2")
    assert not get_user_model().objects.filter(username__in=DEMO_USERNAMES).exists()


DEMO = "acct_demo_"


def demo(model):
    # Scoped to the demo accounts: other suites may share the test database concurrently.
    return model.objects.filter(account__platform_account_id__startswith=DEMO)


def _counts() -> dict[str, int]:
    counts = {
        model.__name__: demo(model).count()
        for model in (Membership, Fan, Conversation, Message, Purchase, ShiftTemplate, Automation)
    }
    counts["User"] = get_user_model().objects.filter(username__in=DEMO_USERNAMES).count()
    counts["CreatorAccount"] = CreatorAccount.objects.filter(
        platform_account_id__startswith=DEMO
    ).count()
    return counts


def test_seed_demo_is_idempotent_and_consistent(capsys):
    call_command("seed_demo", "--fans", "100")
    first = _counts()
    out = capsys.readouterr().out
    assert "owner" in out and "chatter1" in out and "demo12345" in out

    call_command("seed_demo", "--fans", "100")

    assert _counts() == first
    assert first["Fan"] == 100
    assert first["Message"] > 100
    assert first["Purchase"] > 0
    assert (
        "0 new fans, 0 new conversations, 0 new messages, 0 new purchases"
        in capsys.readouterr().out
    )

    mismatched = [
        fan.pk
        for fan in demo(Fan).annotate(total=Sum("purchases__amount_cents"))
        if (fan.total or 0) != fan.lifetime_spend_cents
    ]
    assert mismatched == []


def test_seed_demo_fills_the_shifts_and_automations_pages(client):
    # given / when
    call_command("seed_demo", "--fans", "10")

    # then: each chatter has a week of weekly shifts (one day off), each account a welcome and
    # a win-back (off: the demo sends nothing by itself), and the owner's pages show them
    shifts = demo(ShiftTemplate).values_list("membership__user__username", "weekday")
    assert sorted(w for u, w in shifts if u == "chatter1") == [0, 1, 2, 3, 4, 5]
    assert sorted(w for u, w in shifts if u == "chatter2") == [0, 1, 2, 3, 5, 6]
    automations = demo(Automation).values_list("account__platform_account_id", "trigger", "enabled")
    assert sorted(automations) == [
        ("acct_demo_1", "expired_days_ago", False),
        ("acct_demo_1", "subscribed", False),
        ("acct_demo_2", "expired_days_ago", False),
        ("acct_demo_2", "subscribed", False),
    ]
    client.force_login(get_user_model().objects.get(username="owner"))
    account = CreatorAccount.objects.get(platform_account_id="acct_demo_1")
    week = client.get(reverse("shift_week", args=[account.pk])).content.decode()
    assert "chatter1" in week
    listing = client.get(reverse("automation_list", args=[account.pk])).content.decode()
    assert "Welcome new subscribers" in listing and "Win back after expiry" in listing


def test_seed_demo_team_and_accounts():
    call_command("seed_demo", "--fans", "20")
    user_model = get_user_model()

    owner = user_model.objects.get(username="owner")
    assert not owner.is_superuser
    assert owner.check_password("demo12345")
    assert user_model.objects.get(username="admin").is_superuser

    roles = set(
        demo(Membership).values_list("user__username", "account__platform_account_id", "role")
    )
    assert roles == {
        ("owner", "acct_demo_1", "owner"),
        ("owner", "acct_demo_2", "owner"),
        ("chatter1", "acct_demo_1", "chatter"),
        ("chatter2", "acct_demo_2", "chatter"),
    }
    assert Fan.objects.filter(account__platform_account_id="acct_demo_1").count() == 10
    assert Fan.objects.filter(account__platform_account_id="acct_demo_2").count() == 10


def test_seed_demo_data_is_varied_and_valid():
    call_command("seed_demo", "--fans", "200")
    now = timezone.now()

    assert demo(Fan).filter(tags__contains=["whale"]).exists()
    assert demo(Fan).filter(tags__contains=["europe"]).exists()
    assert set(demo(Fan).values_list("subscription_state", flat=True)) == {
        "active",
        "expired",
        "never",
    }
    assert set(demo(Purchase).values_list("kind", flat=True)) == {"tip", "ppv", "subscription"}
    assert not demo(Purchase).filter(purchased_at__lt=now - timedelta(days=91)).exists()
    # Messages go both ways with the status, sender and ids the pipeline would have given them.
    outgoing = demo(Message).filter(direction="out")
    assert outgoing.exists() and demo(Message).filter(direction="in").exists()
    assert not outgoing.filter(
        Q(sent_at__isnull=True) | Q(platform_message_id__isnull=True) | ~Q(status="sent")
    ).exists()
    assert not outgoing.exclude(sender_kind="user").exists()
    assert not demo(Message).filter(direction="in").exclude(sender_kind="fan").exists()
    assert demo(Message).filter(price_cents__gte=300).exists()
    assert demo(Purchase).filter(kind="ppv", message__price_cents__gt=0).exists()
    # History is spread over time, not stamped with the moment the seed ran.
    assert demo(Message).filter(created_at__lt=now - timedelta(days=1)).exists()


def test_seed_demo_growing_keeps_existing_rows():
    call_command("seed_demo", "--fans", "40")
    first_fans = dict(demo(Fan).values_list("platform_fan_id", "username"))

    call_command("seed_demo", "--fans", "60")

    after = dict(demo(Fan).values_list("platform_fan_id", "username"))
    assert len(after) == 60
    assert all(after[pid] == name for pid, name in first_fans.items())
