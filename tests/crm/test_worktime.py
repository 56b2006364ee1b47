"""Worked time: clock-in and out, activity, the idle clock-out, and the send's session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from config.celery import beat_schedule
from crm import worktime
from crm.errors import ApplicationError
from crm.models import Membership, Message, WorkSession
from onlyfans import services
from tests.factories import MembershipFactory, WorkSessionFactory

pytestmark = pytest.mark.django_db


def test_a_members_message_records_their_open_session_in_the_insert(
    account, chatter, fan, django_assert_num_queries
):
    # given the chatter is clocked in on the account, and also on another one
    session = WorkSessionFactory(account=account, user=chatter)
    WorkSessionFactory(user=chatter)
    # when they send: the same one statement as without a session (the conversation, the
    # message with its session, their draft deleted)
    with django_assert_num_queries(1):
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


# --- Clock-in and out -------------------------------------------------------------------------


@pytest.fixture
def manager(account):
    return MembershipFactory(account=account, role=Membership.Role.MANAGER).user


def test_clock_in_opens_one_session_and_clock_out_ends_it(account, chatter, redis_client):
    first = worktime.work_session_clock_in(actor=chatter, account_id=account.pk)
    again = worktime.work_session_clock_in(actor=chatter, account_id=account.pk)
    assert first.pk == again.pk and first.is_open
    ended = worktime.work_session_clock_out(actor=chatter, account_id=account.pk)
    assert ended is not None and ended.pk == first.pk
    ended.refresh_from_db()
    assert ended.end_reason == WorkSession.EndReason.MANUAL and ended.ended_at is not None
    assert worktime.work_session_clock_out(actor=chatter, account_id=account.pk) is None


def test_the_database_allows_one_open_session_per_member(account, chatter):
    WorkSessionFactory(account=account, user=chatter)
    with pytest.raises(IntegrityError), transaction.atomic():
        WorkSessionFactory(account=account, user=chatter)


def test_a_manager_clocks_a_member_out_and_a_chatter_cannot(account, chatter, manager):
    WorkSessionFactory(account=account, user=manager)
    with pytest.raises(ApplicationError) as caught:
        worktime.work_session_clock_out(actor=chatter, account_id=account.pk, user_id=manager.pk)
    assert caught.value.status_code == 403
    WorkSessionFactory(account=account, user=chatter)
    ended = worktime.work_session_clock_out(
        actor=manager, account_id=account.pk, user_id=chatter.pk
    )
    assert ended is not None and ended.end_reason == WorkSession.EndReason.MANAGER
    assert ended.ended_by_id == manager.pk


def test_a_non_member_cannot_clock_in(account, other_account, chatter):
    with pytest.raises(ApplicationError) as caught:
        worktime.work_session_clock_in(actor=chatter, account_id=other_account.pk)
    assert caught.value.status_code == 404


# --- Activity and the idle clock-out ----------------------------------------------------------


def test_idle_for_the_setting_ends_the_session_at_its_last_activity(
    account, chatter, manager, settings
):
    settings.SHIFT_IDLE_MINUTES = 20
    now = timezone.now()
    idle = WorkSessionFactory(
        account=account,
        user=chatter,
        started_at=now - timedelta(hours=2),
        last_activity_at=now - timedelta(minutes=20, seconds=1),
    )
    busy = WorkSessionFactory(
        account=account,
        user=manager,
        started_at=now - timedelta(hours=2),
        last_activity_at=now - timedelta(minutes=19),
    )
    assert worktime.work_sessions_end_idle(now=now) == 1
    assert worktime.work_sessions_end_idle(now=now) == 0  # idempotent
    idle.refresh_from_db()
    busy.refresh_from_db()
    assert idle.end_reason == WorkSession.EndReason.IDLE
    assert idle.ended_at == now - timedelta(minutes=20, seconds=1)  # nothing beyond
    assert busy.is_open


def test_the_sweep_runs_every_minute_on_beat():
    entry = beat_schedule()["work-sessions-sweep"]
    assert entry == {"task": "crm.tasks.work_sessions_sweep_task", "schedule": 60.0}


def test_a_touch_costs_no_query_off_the_clock_and_one_a_minute_on_it(
    account, chatter, redis_client, django_assert_num_queries, django_capture_on_commit_callbacks
):
    with django_assert_num_queries(0):
        assert not worktime.work_session_touch(user_id=chatter.pk, account_id=account.pk)
    with django_capture_on_commit_callbacks(execute=True):
        session = worktime.work_session_clock_in(actor=chatter, account_id=account.pk)
    later = session.started_at + timedelta(seconds=30)
    with django_assert_num_queries(1):
        assert worktime.work_session_touch(user_id=chatter.pk, account_id=account.pk, now=later)
    with django_assert_num_queries(0):
        assert not worktime.work_session_touch(user_id=chatter.pk, account_id=account.pk)
    session.refresh_from_db()
    assert session.last_activity_at == later


def test_a_page_of_the_account_is_activity_and_the_clock_poll_is_not(
    client, account, chatter, redis_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        session = worktime.work_session_clock_in(actor=chatter, account_id=account.pk)
    WorkSession.objects.filter(pk=session.pk).update(
        started_at=session.started_at - timedelta(minutes=10),
        last_activity_at=session.started_at - timedelta(minutes=10),
    )
    client.force_login(chatter)
    client.get(reverse("clock", args=[account.pk]))
    session.refresh_from_db()
    assert session.last_activity_at < timezone.now() - timedelta(minutes=9)
    client.get(reverse("fan_list", args=[account.pk]))
    session.refresh_from_db()
    assert session.last_activity_at > timezone.now() - timedelta(minutes=1)


def test_removing_a_member_ends_their_session_and_keeps_it(account, chatter, redis_client):
    session = WorkSessionFactory(account=account, user=chatter)
    Membership.objects.filter(account=account, user=chatter).delete()
    session.refresh_from_db()
    assert session.end_reason == WorkSession.EndReason.ACCESS_REVOKED


def test_worked_time_for_a_period_is_scoped_and_clipped(account, chatter, manager):
    start = datetime(2026, 3, 2, tzinfo=UTC)
    mine = WorkSessionFactory(account=account, user=chatter, started_at=start - timedelta(hours=1))
    WorkSession.objects.filter(pk=mine.pk).update(
        ended_at=start + timedelta(hours=2), end_reason="manual"
    )
    WorkSessionFactory(account=account, user=manager, started_at=start + timedelta(hours=3))
    end = start + timedelta(days=1)
    as_chatter = list(
        worktime.work_sessions_for_period(
            actor=chatter, account_id=account.pk, start=start, end=end
        )
    )
    as_manager = list(
        worktime.work_sessions_for_period(
            actor=manager, account_id=account.pk, start=start, end=end
        )
    )
    assert [s.user_id for s in as_chatter] == [chatter.pk]
    assert len(as_manager) == 2
    assert worktime.worked_seconds_in(as_chatter, start=start, end=end, now=end) == 7200
    with pytest.raises(ApplicationError):
        worktime.work_sessions_for_period(
            actor=manager, account_id=account.pk, start=end, end=start
        )
