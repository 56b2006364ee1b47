"""Worked time: clock-in and out, activity, the idle clock-out, and the send's session."""

from __future__ import annotations

import pytest

from crm.models import Message
from onlyfans import services
from tests.factories import WorkSessionFactory

pytestmark = pytest.mark.django_db


def test_a_members_message_records_their_open_session_in_the_insert(
    account, chatter, fan, django_assert_num_queries
):
    # given the chatter is clocked in on the account, and also on another one
    session = WorkSessionFactory(account=account, user=chatter)
    WorkSessionFactory(user=chatter)
    # when they send: the same four statements as without a session
    with django_assert_num_queries(4):
        message = services.message_enqueue(fan=fan, text="hi", sent_by_id=chatter.pk)
    # then the message carries the session, on the instance and in the row
    assert message.work_session_id == session.pk
    assert Message.objects.get(pk=message.pk).work_session_id == session.pk


def test_a_message_sent_off_the_clock_or_by_a_campaign_has_no_session(account, chatter, fan):
    off_clock = services.message_enqueue(fan=fan, text="hi", sent_by_id=chatter.pk)
    WorkSessionFactory(account=account, user=chatter)
    campaign = services.message_enqueue(
        fan=fan, text="all", sender_kind=Message.SenderKind.CAMPAIGN, campaign_id=1
    )
    assert off_clock.work_session_id is None
    assert campaign.work_session_id is None
    assert Message.objects.filter(work_session__isnull=False).count() == 0
