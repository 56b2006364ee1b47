from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from crm.models import Message
from tests.factories import ConversationFactory, FanFactory, MessageFactory

pytestmark = pytest.mark.django_db


def test_duplicate_platform_fan_id_within_account_fails(fan):
    with pytest.raises(IntegrityError), transaction.atomic():
        FanFactory(account=fan.account, platform_fan_id=fan.platform_fan_id)


def test_same_platform_fan_id_in_other_account_is_allowed(fan, other_account):
    twin = FanFactory(account=other_account, platform_fan_id=fan.platform_fan_id)
    assert twin.pk != fan.pk


def test_duplicate_username_within_account_fails(fan):
    with pytest.raises(IntegrityError), transaction.atomic():
        FanFactory(account=fan.account, username=fan.username)


def test_outgoing_message_cannot_be_received(fan):
    conversation = ConversationFactory(fan=fan)
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(
            conversation=conversation, direction=Message.Direction.OUT, status="received"
        )


def test_price_outside_platform_range_fails(fan):
    conversation = ConversationFactory(fan=fan)
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(
            conversation=conversation,
            direction=Message.Direction.OUT,
            status=Message.Status.QUEUED,
            sender_kind=Message.SenderKind.USER,
            price_cents=150,
        )


def test_platform_message_id_unique_per_account(fan):
    conversation = ConversationFactory(fan=fan)
    MessageFactory(conversation=conversation, platform_message_id="77")
    with pytest.raises(IntegrityError), transaction.atomic():
        MessageFactory(conversation=conversation, platform_message_id="77")


def test_usernames_are_unique_in_any_case(fan):
    with pytest.raises(IntegrityError), transaction.atomic():
        FanFactory(account=fan.account, username=fan.username.upper())
