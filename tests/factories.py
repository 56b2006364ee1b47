from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from crm.models import Conversation, CreatorAccount, Fan, Membership, Message, Purchase


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.test")
    password = factory.django.Password("pw-for-tests-123")


class CreatorAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CreatorAccount

    display_name = factory.Sequence(lambda n: f"Creator {n}")
    platform_account_id = factory.Sequence(lambda n: f"acct_test{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    account = factory.SubFactory(CreatorAccountFactory)
    role = Membership.Role.CHATTER


class FanFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Fan

    account = factory.SubFactory(CreatorAccountFactory)
    platform_fan_id = factory.Sequence(lambda n: str(100000 + n))
    username = factory.Sequence(lambda n: f"fan{n}")
    display_name = factory.Sequence(lambda n: f"Fan {n}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    fan = factory.SubFactory(FanFactory)
    account = factory.LazyAttribute(lambda o: o.fan.account)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    account = factory.LazyAttribute(lambda o: o.conversation.account)
    direction = Message.Direction.IN
    status = Message.Status.RECEIVED
    sender_kind = Message.SenderKind.FAN
    text = factory.Faker("sentence")


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase

    fan = factory.SubFactory(FanFactory)
    account = factory.LazyAttribute(lambda o: o.fan.account)
    kind = Purchase.Kind.TIP
    amount_cents = 500
    purchased_at = factory.Faker("date_time_this_month", tzinfo=__import__("datetime").UTC)


# --- shifts: schedules and worked time ---
from datetime import UTC, datetime, time, timedelta  # noqa: E402

from crm.models import Shift, ShiftTemplate, WorkSession  # noqa: E402


class ShiftFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shift

    membership = factory.SubFactory(MembershipFactory)
    account = factory.LazyAttribute(lambda o: o.membership.account)
    starts_at = factory.LazyFunction(lambda: datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    ends_at = factory.LazyAttribute(lambda o: o.starts_at + timedelta(hours=8))


class ShiftTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ShiftTemplate

    membership = factory.SubFactory(MembershipFactory)
    account = factory.LazyAttribute(lambda o: o.membership.account)
    weekday = 0
    start_time = time(9, 0)
    duration_minutes = 8 * 60
    active_from = factory.LazyFunction(lambda: datetime(2026, 1, 5, tzinfo=UTC).date())


class WorkSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WorkSession

    account = factory.SubFactory(CreatorAccountFactory)
    user = factory.SubFactory(UserFactory)
    started_at = factory.LazyFunction(lambda: datetime.now(UTC))
    last_activity_at = factory.LazyAttribute(lambda o: o.started_at)


# --- vault -------------------------------------------------------------------------------------

from crm.models import VaultItem, VaultList  # noqa: E402


class VaultListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VaultList

    account = factory.SubFactory(CreatorAccountFactory)
    platform_list_id = factory.Sequence(lambda n: str(7000 + n))
    name = factory.Sequence(lambda n: f"List {n}")
    list_type = "custom"
    synced_at = factory.LazyFunction(lambda: datetime.now(UTC))


class VaultItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VaultItem

    account = factory.SubFactory(CreatorAccountFactory)
    platform_media_id = factory.Sequence(lambda n: str(900000 + n))
    media_type = "photo"
    # Later items are newer, as on the platform.
    platform_created_at = factory.Sequence(
        lambda n: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n)
    )
    synced_at = factory.LazyFunction(lambda: datetime.now(UTC))


# --- autom: automations ----------------------------------------------------------------------


class AutomationFactory(factory.django.DjangoModelFactory):
    """An enabled welcome without delay; tests set the trigger and what they need."""

    class Meta:
        model = "automations.Automation"

    account = factory.SubFactory(CreatorAccountFactory)
    name = factory.Sequence(lambda n: f"Automation {n}")
    trigger = "subscribed"
    trigger_value = 0
    text = "Welcome {name|babe}!"
    enabled = True
    enabled_at = factory.LazyFunction(timezone.now)


# --- automations pages -----------------------------------------------------------------------
from automations.models import AutomationRun  # noqa: E402


class AutomationRunFactory(factory.django.DjangoModelFactory):
    """A run; pass ``state`` (and ``reason``/``is_control`` as the constraints want)."""

    class Meta:
        model = AutomationRun

    automation = factory.SubFactory(AutomationFactory)
    account = factory.LazyAttribute(lambda o: o.automation.account)
    fan = factory.SubFactory(FanFactory, account=factory.SelfAttribute("..account"))
    event_key = factory.Sequence(lambda n: f"test:{n}")
    state = AutomationRun.State.SCHEDULED
    triggered_at = factory.LazyFunction(lambda: datetime.now(UTC) - timedelta(hours=1))
    due_at = factory.LazyAttribute(lambda o: o.triggered_at + timedelta(minutes=2))
    finished_at = factory.LazyAttribute(
        lambda o: None if o.state == AutomationRun.State.SCHEDULED else o.due_at
    )
    is_control = factory.LazyAttribute(lambda o: o.state == AutomationRun.State.HELD_CONTROL)
