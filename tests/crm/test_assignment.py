"""Auto-assignment (crm.assignment): who gets a conversation when a fan writes, the cap, ties,
off-shift assignees, manual assignment, other accounts, and two messages at once."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from crm import assignment, services
from crm.errors import ApplicationError
from crm.models import Conversation, ConversationAssignment, CreatorAccount, Membership
from onlyfans.inbound import message_receive
from tests.factories import (
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    WorkSessionFactory,
)

pytestmark = pytest.mark.django_db

_sequence = iter(range(10**6))


def fan_writes(account: CreatorAccount, *, fan_id: str | None = None, text: str = "hi") -> Any:
    """A fan's message, stored as the webhook stores it; the conversation, reloaded."""
    fan_id = fan_id or f"auto{next(_sequence)}"
    message = message_receive(
        account=account,
        platform_fan={"id": fan_id, "username": f"fan_{fan_id}", "name": f"Fan {fan_id}"},
        platform_message_id=f"pm-{fan_id}-{next(_sequence)}",
        text=text,
        price_cents=0,
        created_at=timezone.now(),
        event_key=f"evt-{fan_id}-{next(_sequence)}",
    )
    return Conversation.objects.get(pk=message.conversation_id)


def chatter(account: CreatorAccount, *, clocked_in: bool = True, **fields: Any) -> Membership:
    membership = MembershipFactory(account=account, role=Membership.Role.CHATTER, **fields)
    if clocked_in:
        WorkSessionFactory(account=account, user=membership.user)
    return membership


def waiting_for(account: CreatorAccount, member: Membership, count: int) -> None:
    """``count`` conversations of the account the member holds that fans wait in."""
    for _ in range(count):
        ConversationFactory(
            fan=FanFactory(account=account),
            assigned_to=member.user,
            waiting_since=timezone.now() - timedelta(minutes=1),
            last_message_at=timezone.now(),
        )


@pytest.fixture
def account() -> CreatorAccount:
    return CreatorAccountFactory(auto_assign=True, auto_assign_cap=3)


def test_fewest_waiting_under_the_cap_gets_it(account):
    # given: a has 2 waiting, b 1, c is at the cap (3), d has none but is clocked out, and a
    # clocked-in manager with none (managers are not in the pool)
    a, b, c = chatter(account), chatter(account), chatter(account)
    d = chatter(account, clocked_in=False)
    manager = MembershipFactory(account=account, role=Membership.Role.MANAGER)
    WorkSessionFactory(account=account, user=manager.user)
    waiting_for(account, a, 2)
    waiting_for(account, b, 1)
    waiting_for(account, c, 3)
    # when
    conversation = fan_writes(account)
    # then
    assert conversation.assigned_to_id == b.user_id
    entry = ConversationAssignment.objects.get(conversation=conversation)
    assert (entry.from_user_id, entry.to_user_id, entry.by_user_id) == (None, b.user_id, None)
    assert entry.reason == ConversationAssignment.Reason.AUTO_UNASSIGNED
    b.refresh_from_db()
    assert b.last_assigned_at == entry.at
    assert d.user_id != conversation.assigned_to_id


def test_every_chatter_at_the_cap_leaves_it_unassigned(account):
    a = chatter(account)
    waiting_for(account, a, 3)
    conversation = fan_writes(account)
    assert conversation.assigned_to_id is None
    assert not ConversationAssignment.objects.filter(conversation=conversation).exists()


def test_ties_go_to_the_least_recently_assigned(account):
    now = timezone.now()
    recent = chatter(account, last_assigned_at=now - timedelta(minutes=5))
    earlier = chatter(account, last_assigned_at=now - timedelta(hours=2))
    never = chatter(account, last_assigned_at=None)
    # never assigned first, then the one assigned longest ago, then round again
    assert fan_writes(account).assigned_to_id == never.user_id
    assert fan_writes(account).assigned_to_id == earlier.user_id
    assert fan_writes(account).assigned_to_id == recent.user_id
    # each has one waiting now; the least recently assigned (never's turn came first) again
    assert fan_writes(account).assigned_to_id == never.user_id


def test_a_second_message_in_a_held_conversation_changes_nothing(account):
    a, b = chatter(account), chatter(account)
    first = fan_writes(account, fan_id="f1")
    again = fan_writes(account, fan_id="f1", text="hello?")
    assert again.assigned_to_id == first.assigned_to_id in (a.user_id, b.user_id)
    assert ConversationAssignment.objects.filter(conversation=first).count() == 1


def test_an_off_shift_assignee_is_replaced(account):
    # given: the conversation is a's, and a clocked out (a closed session)
    a = chatter(account, clocked_in=False)
    WorkSessionFactory(
        account=account,
        user=a.user,
        started_at=timezone.now() - timedelta(hours=8),
        ended_at=timezone.now() - timedelta(hours=1),
        end_reason="manual",
    )
    b = chatter(account)
    conversation = ConversationFactory(
        fan=FanFactory(account=account, platform_fan_id="f-off"), assigned_to=a.user
    )
    # when
    after = fan_writes(account, fan_id="f-off")
    # then
    assert after.pk == conversation.pk
    assert after.assigned_to_id == b.user_id
    entry = ConversationAssignment.objects.get(conversation=conversation)
    assert entry.reason == ConversationAssignment.Reason.AUTO_OFF_SHIFT
    assert (entry.from_user_id, entry.to_user_id) == (a.user_id, b.user_id)


def test_an_off_shift_assignee_stays_when_nobody_is_clocked_in(account):
    a = chatter(account, clocked_in=False)
    ConversationFactory(fan=FanFactory(account=account, platform_fan_id="f-x"), assigned_to=a.user)
    assert fan_writes(account, fan_id="f-x").assigned_to_id == a.user_id


def test_manual_assignment_wins_while_the_assignee_is_clocked_in(account):
    # given: a manager gives the conversation to a, who is clocked in and busier than b
    manager = MembershipFactory(account=account, role=Membership.Role.MANAGER)
    a, b = chatter(account), chatter(account)
    waiting_for(account, a, 2)
    conversation = ConversationFactory(fan=FanFactory(account=account, platform_fan_id="f-m"))
    services.conversation_assign(
        actor=manager.user, conversation=conversation, assignee_id=a.user_id
    )
    # when: the fan writes (twice)
    fan_writes(account, fan_id="f-m")
    after = fan_writes(account, fan_id="f-m", text="?")
    # then: still a's; the log has the manual change only
    assert after.assigned_to_id == a.user_id
    [entry] = ConversationAssignment.objects.filter(conversation=conversation)
    assert entry.reason == ConversationAssignment.Reason.MANUAL
    assert (entry.by_user_id, entry.from_user_id, entry.to_user_id) == (
        manager.user_id,
        None,
        a.user_id,
    )
    # when a clocks out, the fan's next message moves it to b
    a.user.work_sessions.filter(ended_at__isnull=True).update(
        ended_at=timezone.now(), end_reason="manual"
    )
    assert fan_writes(account, fan_id="f-m", text="??").assigned_to_id == b.user_id


def test_a_manual_reassignment_is_logged_and_unchanged_is_not(account):
    manager = MembershipFactory(account=account, role=Membership.Role.MANAGER)
    a, b = chatter(account), chatter(account)
    conversation = ConversationFactory(fan=FanFactory(account=account), assigned_to=a.user)
    services.conversation_assign(
        actor=manager.user, conversation=conversation, assignee_id=b.user_id
    )
    services.conversation_assign(
        actor=manager.user, conversation=conversation, assignee_id=b.user_id
    )
    services.conversation_assign(actor=manager.user, conversation=conversation, assignee_id=None)
    log = list(
        ConversationAssignment.objects.filter(conversation=conversation)
        .order_by("id")
        .values_list("from_user_id", "to_user_id", "reason")
    )
    assert log == [(a.user_id, b.user_id, "manual"), (b.user_id, None, "manual")]


def test_never_assigned_to_a_member_of_another_account_or_a_non_member(account):
    # given: on this account nobody who may take it: a chatter of another account clocked in
    # there, and a user with an open session here but no membership (removed, say)
    other = CreatorAccountFactory(auto_assign=True)
    outsider = chatter(other)
    stray = MembershipFactory(account=other).user
    WorkSessionFactory(account=account, user=stray)
    # when
    conversation = fan_writes(account)
    # then
    assert conversation.assigned_to_id is None
    assert outsider.user_id != conversation.assigned_to_id
    # and one of this account's chatters clocking in is the one who gets the next
    mine = chatter(account)
    assert fan_writes(account).assigned_to_id == mine.user_id


def test_a_non_member_assignee_with_an_open_session_is_replaced(account):
    # a user removed from the account whose session somehow stayed open is off the account
    gone = MembershipFactory(account=CreatorAccountFactory()).user
    WorkSessionFactory(account=account, user=gone)
    ConversationFactory(fan=FanFactory(account=account, platform_fan_id="f-g"), assigned_to=gone)
    b = chatter(account)
    assert fan_writes(account, fan_id="f-g").assigned_to_id == b.user_id


def test_off_does_nothing(django_assert_num_queries):
    account = CreatorAccountFactory(auto_assign=False)
    chatter(account)
    conversation = fan_writes(account)
    assert conversation.assigned_to_id is None
    with django_assert_num_queries(0):
        assert assignment.conversation_auto_assign(account=account, conversation_id=0) is None


def test_the_assignment_reaches_the_live_row(
    account, django_capture_on_commit_callbacks, monkeypatch
):
    a = chatter(account)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(assignment, "account_event_broadcast", lambda **kw: sent.append(kw))
    with django_capture_on_commit_callbacks(execute=True):
        conversation = fan_writes(account)
    assert conversation.assigned_to_id == a.user_id
    assert sent == [
        {
            "account_id": account.pk,
            "event": "conversation.changed",
            "payload": {"conversation_id": conversation.pk},
        }
    ]


# --- Two fans at once ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_inbound_messages_respect_the_cap(monkeypatch):
    """Two fans write at the same moment and one chatter, cap 1, is clocked in: one of them is
    assigned. Each assignment waits 0.3 s between choosing and committing, so without the lock
    on the candidates' rows both would count zero waiting and both would take the chatter."""
    account = CreatorAccountFactory(auto_assign=True, auto_assign_cap=1)
    only = chatter(account)
    record = assignment.assignment_record

    def slow_record(**kwargs: Any) -> Any:
        time.sleep(0.3)
        return record(**kwargs)

    monkeypatch.setattr(assignment, "assignment_record", slow_record)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def write(fan_id: str) -> None:
        try:
            barrier.wait(timeout=10)
            fan_writes(account, fan_id=fan_id)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(f"race{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assigned = Conversation.objects.filter(account=account, assigned_to=only.user).count()
    unassigned = Conversation.objects.filter(account=account, assigned_to__isnull=True).count()
    assert (assigned, unassigned) == (1, 1)
    assert ConversationAssignment.objects.filter(account=account).count() == 1


# --- The settings page --------------------------------------------------------------------


def test_owners_and_managers_change_the_settings(client, account):
    manager = MembershipFactory(account=account, role=Membership.Role.MANAGER)
    client.force_login(manager.user)
    url = reverse("assignment_settings", args=[account.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "auto_assign": "on",
            "auto_assign_cap": "8",
            "reply_target": "4",
            "vip_spend_threshold": "250.50",
            "vip_reply_target": "1.5",
        },
    )
    assert response.status_code == 302
    account.refresh_from_db()
    assert (
        account.auto_assign,
        account.auto_assign_cap,
        account.reply_target_seconds,
        account.vip_spend_threshold_cents,
        account.vip_reply_target_seconds,
    ) == (True, 8, 240, 25050, 90)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("auto_assign_cap", "0", "greater than or equal to 1"),
        ("auto_assign_cap", "lots", "Enter a whole number"),
        ("reply_target", "0.1", "greater than or equal to 0.5"),
        ("vip_reply_target", "9", "at most the first-reply target"),
        ("vip_spend_threshold", "-1", "greater than or equal to 0"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(client, account, field, value, message):
    owner = MembershipFactory(account=account, role=Membership.Role.OWNER)
    client.force_login(owner.user)
    data = {
        "auto_assign_cap": "5",
        "reply_target": "5",
        "vip_spend_threshold": "100",
        "vip_reply_target": "2",
        field: value,
    }
    response = client.post(reverse("assignment_settings", args=[account.pk]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    account.refresh_from_db()
    assert account.auto_assign_cap == 3  # unchanged


def test_chatters_read_but_cannot_change_the_settings(client, account):
    member = chatter(account)
    client.force_login(member.user)
    url = reverse("assignment_settings", args=[account.pk])
    assert b"Owners and managers change these." in client.get(url).content
    data = {"auto_assign_cap": "9", "reply_target": "5", "vip_spend_threshold": "1",
            "vip_reply_target": "1"}  # fmt: skip
    assert client.post(url, data).status_code == 403
    account.refresh_from_db()
    assert account.auto_assign_cap == 3


def test_another_accounts_settings_are_404(client, account):
    outsider = MembershipFactory(account=CreatorAccountFactory())
    client.force_login(outsider.user)
    assert client.get(reverse("assignment_settings", args=[account.pk])).status_code == 404


def test_the_service_refuses_a_vip_target_longer_than_the_target(account):
    owner = MembershipFactory(account=account, role=Membership.Role.OWNER)
    with pytest.raises(ApplicationError) as caught:
        assignment.assignment_settings_update(
            actor=owner.user,
            account_id=account.pk,
            auto_assign=True,
            auto_assign_cap=5,
            reply_target_seconds=60,
            vip_spend_threshold_cents=100,
            vip_reply_target_seconds=120,
        )
    assert caught.value.code == "invalid_settings"
    assert "vip_reply_target" in caught.value.fields
