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
