"""Shift-only access: a chatter opens a shift-only account's inbox, fans, APIs and sockets only
while clocked in within a shift ± grace; refused and allowed at the edges of the grace, for
pages, the API and the socket; owners and managers never restricted; cheap when off."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import cast
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from config.routing import websocket_urlpatterns
from crm import consumers, worktime
from crm.models import CreatorAccount, Membership, Shift, WorkSession
from crm.selectors import membership_get
from crm.shift_access import OffShiftError, shift_access_check
from tests.factories import (
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    MessageFactory,
    ShiftFactory,
    ShiftTemplateFactory,
    WorkSessionFactory,
)

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
GRACE = timedelta(minutes=15)


@pytest.fixture
def account():
    return CreatorAccountFactory(
        time_zone="Europe/Berlin", shift_only_access=True, shift_grace_minutes=15
    )


@pytest.fixture
def member(account):
    return MembershipFactory(account=account, role=Membership.Role.CHATTER)


@pytest.fixture
def chatter(member):
    return member.user


def shift_around_now(member: Membership, *, starts_in: timedelta, hours: int = 4):
    now = timezone.now()
    return ShiftFactory(
        membership=member,
        starts_at=now + starts_in,
        ends_at=now + starts_in + timedelta(hours=hours),
    )


def clocked_in(account, user) -> WorkSession:
    return WorkSessionFactory(
        account=account, user=user, started_at=timezone.now() - timedelta(minutes=1)
    )


# --- The rule, at its edges -------------------------------------------------------------------


def test_the_window_is_the_shift_widened_by_the_grace_on_a_dst_night(account, member, chatter):
    # Saturday 24 October 2026, 22:00 to 06:00 local: the night the clocks go back (9 h)
    ShiftTemplateFactory(
        membership=member, weekday=5, start_time=time(22), duration_minutes=480,
        active_from=date(2026, 10, 1),
    )  # fmt: skip
    clocked_in_since = datetime(2026, 10, 24, 19, tzinfo=UTC)
    WorkSessionFactory(account=account, user=chatter, started_at=clocked_in_since)
    starts = datetime(2026, 10, 24, 22, tzinfo=BERLIN).astimezone(UTC)  # 20:00 UTC
    ends = datetime(2026, 10, 25, 6, tzinfo=BERLIN).astimezone(UTC)  # 05:00 UTC (CET)
    assert ends - starts == timedelta(hours=9)

    def allowed(at: datetime) -> bool:
        return shift_access_check(user=chatter, account=account, now=at).allowed

    assert not allowed(starts - GRACE - timedelta(seconds=1))
    assert allowed(starts - GRACE)
    assert allowed(ends + GRACE - timedelta(seconds=1))
    assert not allowed(ends + GRACE)
    # the next one is a week later, at 22:00 local again (CET now)
    after = shift_access_check(user=chatter, account=account, now=ends + GRACE)
    assert after.next is not None
    assert after.next.starts_at == datetime(2026, 10, 31, 21, tzinfo=UTC)


def test_in_the_window_but_not_clocked_in_is_refused_and_may_clock_in(account, member, chatter):
    shift_around_now(member, starts_in=-timedelta(hours=1))
    access = shift_access_check(user=chatter, account=account)
    assert not access.allowed and access.in_window and not access.clocked_in
    error = OffShiftError(access, account)
    assert error.extra["can_clock_in"] is True and error.code == "off_shift"


def test_owners_and_managers_are_never_restricted_and_off_costs_nothing(
    account, chatter, django_assert_num_queries
):
    manager = MembershipFactory(account=account, role=Membership.Role.MANAGER)
    with django_assert_num_queries(0):
        assert shift_access_check(user=manager.user, account=account, membership=manager).allowed
    account.shift_only_access = False
    with django_assert_num_queries(0):
        assert shift_access_check(user=chatter, account=account).allowed


def test_one_query_per_request_however_often_it_is_asked(
    account, member, chatter, django_assert_num_queries
):
    shift_around_now(member, starts_in=-timedelta(hours=1))
    clocked_in(account, chatter)
    with django_assert_num_queries(3):  # two memberships, one access check
        membership_get(user=chatter, account_id=account.pk)
        membership_get(user=chatter, account_id=account.pk)


def test_clock_in_is_refused_outside_the_window_and_allowed_inside(account, member, chatter):
    shift = shift_around_now(member, starts_in=GRACE + timedelta(minutes=1))
    with pytest.raises(OffShiftError) as caught:
        worktime.work_session_clock_in(actor=chatter, account_id=account.pk)
    assert caught.value.extra["next_shift_starts_at"] == shift.starts_at.isoformat()
    shift.starts_at -= timedelta(minutes=2)  # now within the grace before it
    shift.save()
    assert worktime.work_session_clock_in(actor=chatter, account_id=account.pk).is_open


def test_the_sweep_clocks_a_chatter_out_when_the_window_closes(account, member, chatter):
    now = timezone.now()
    ShiftFactory(
        membership=member, starts_at=now - timedelta(hours=5), ends_at=now - timedelta(hours=1)
    )
    session = WorkSessionFactory(
        account=account,
        user=chatter,
        started_at=now - timedelta(hours=5),
        last_activity_at=now - timedelta(minutes=2),
    )
    manager = MembershipFactory(account=account, role=Membership.Role.MANAGER)
    WorkSessionFactory(account=account, user=manager.user, started_at=now - timedelta(hours=5))
    assert worktime.work_sessions_end_after_shift(now=now) == 1
    session.refresh_from_db()
    assert session.end_reason == WorkSession.EndReason.SHIFT_ENDED
    assert session.ended_at == now - timedelta(hours=1) + GRACE  # the shift's end + grace


# --- Pages ------------------------------------------------------------------------------------


def test_off_shift_the_inbox_and_fans_are_a_clear_403_page(client, account, member, chatter):
    shift = shift_around_now(member, starts_in=timedelta(hours=3))
    fan = FanFactory(account=account)
    client.force_login(chatter)
    for url in (
        reverse("inbox", args=[account.pk]),
        reverse("fan_list", args=[account.pk]),
        reverse("fan_detail", args=[account.pk, fan.pk]),
    ):
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 403, url
        assert "Off shift" in html and 'id="next-shift"' in html
        local = shift.starts_at.astimezone(BERLIN)
        assert f"{local:%H:%M}" in html and "off-shift-clock-in" not in html
    # the schedule stays open to them
    assert client.get(reverse("shift_week", args=[account.pk])).status_code == 200


def test_an_htmx_request_off_shift_reloads_into_the_page(client, account, chatter):
    client.force_login(chatter)
    response = client.get(reverse("inbox", args=[account.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 403 and response["HX-Refresh"] == "true"


@pytest.mark.parametrize(
    ("starts_in", "clock", "status"),
    [
        (GRACE - timedelta(minutes=1), True, 200),  # inside the grace before the shift
        (GRACE + timedelta(minutes=1), True, 403),  # just before it
        (-timedelta(hours=4) - GRACE + timedelta(minutes=1), True, 200),  # grace after it
        (-timedelta(hours=4) - GRACE - timedelta(minutes=1), True, 403),  # just after
        (-timedelta(hours=1), False, 403),  # on shift, not clocked in
    ],
)
def test_the_inbox_at_the_edges_of_the_grace(
    client, account, member, chatter, starts_in, clock, status
):
    shift_around_now(member, starts_in=starts_in)
    if clock:
        clocked_in(account, chatter)
    client.force_login(chatter)
    response = client.get(reverse("inbox", args=[account.pk]))
    assert response.status_code == status
    if not clock:
        assert 'id="off-shift-clock-in"' in response.content.decode()


def test_clocking_in_from_the_off_shift_page_opens_the_inbox(client, account, member, chatter):
    shift_around_now(member, starts_in=timedelta(minutes=5))
    client.force_login(chatter)
    inbox = reverse("inbox", args=[account.pk])
    assert client.get(inbox).status_code == 403
    response = client.post(reverse("clock_in", args=[account.pk]), {"next": inbox})
    assert response.status_code == 302 and response["Location"] == inbox
    assert client.get(inbox).status_code == 200


def test_owner_is_never_restricted(client, account):
    owner = MembershipFactory(account=account, role=Membership.Role.OWNER).user
    client.force_login(owner)
    assert client.get(reverse("inbox", args=[account.pk])).status_code == 200


def test_on_shift_the_inbox_costs_one_query_more(
    client, account, member, chatter, django_assert_num_queries
):
    shift_around_now(member, starts_in=-timedelta(hours=1))
    clocked_in(account, chatter)
    MessageFactory.create_batch(
        3, conversation=ConversationFactory(fan=FanFactory(account=account))
    )
    client.force_login(chatter)
    url = reverse("inbox", args=[account.pk])
    client.get(url)
    with django_assert_num_queries(8) as on:
        assert client.get(url).status_code == 200
    account.shift_only_access = False
    account.save()
    with django_assert_num_queries(len(on.captured_queries) - 1):
        assert client.get(url).status_code == 200


# --- API --------------------------------------------------------------------------------------


def api_for(user) -> APIClient:
    """A client as one request sees it: a fresh user object (the access answer is kept on the
    request's user for a few seconds, and force_authenticate would share one across calls)."""
    api = APIClient()
    api.force_authenticate(type(user).objects.get(pk=user.pk))
    return api


def test_off_shift_the_api_answers_403_off_shift_with_the_next_shift(account, member, chatter):
    shift = shift_around_now(member, starts_in=timedelta(hours=2))
    fan = FanFactory(account=account)
    conversation = ConversationFactory(fan=fan)
    api = api_for(chatter)
    for response in (
        api.get("/api/crm/conversations/", {"account": account.pk}),
        api.get("/api/crm/fans/", {"account": account.pk}),
        api.get(f"/api/crm/fans/{fan.pk}/"),
        api.get(f"/api/crm/conversations/{conversation.pk}/messages/"),
        api.post(
            f"/api/crm/conversations/{conversation.pk}/messages/", {"text": "hi"}, format="json"
        ),
        api.post("/api/onlyfans/messages/send", {"fan_id": fan.pk, "text": "hi"}, format="json"),
    ):
        body = response.json()
        assert (response.status_code, body.get("code")) == (403, "off_shift"), body
        assert body["next_shift_starts_at"] == shift.starts_at.isoformat()


def test_off_shift_the_failed_messages_list_leaves_the_account_out(account, member, chatter):
    # given: the chatter also chats on an account without shifts; a failed message on each
    other = cast(CreatorAccount, CreatorAccountFactory())
    MembershipFactory(account=other, user=chatter, role=Membership.Role.CHATTER)
    failed: dict[int, int] = {}
    for acc in (account, other):
        conversation = ConversationFactory(fan=FanFactory(account=acc))
        failed[acc.pk] = MessageFactory(
            conversation=conversation, direction="out", status="failed", sender_kind="user"
        ).pk
    manager = MembershipFactory(account=account, role=Membership.Role.MANAGER).user

    def listed(user, **params) -> tuple[int, list[int]]:
        response = api_for(user).get("/api/onlyfans/messages/failed", params)
        body = response.json()
        return response.status_code, [m["message_id"] for m in body.get("results", [])]

    # when / then: off shift, the list holds the other account's only, and asking for the
    # shift-only account by name is the 403 its inbox gives
    shift_around_now(member, starts_in=timedelta(hours=2))
    assert listed(chatter) == (200, [failed[other.pk]])
    status, _ = listed(chatter, account=account.pk)
    assert status == 403
    # ...a manager is never restricted
    assert sorted(listed(manager)[1]) == [failed[account.pk]]
    # ...and on shift, clocked in, the chatter sees both
    shift_around_now(member, starts_in=-timedelta(minutes=30))
    clocked_in(account, chatter)
    assert sorted(listed(chatter)[1]) == sorted(failed.values())
    assert listed(chatter, account=account.pk) == (200, [failed[account.pk]])


def test_on_shift_the_api_costs_one_query_more(account, member, chatter, django_assert_num_queries):
    shift_around_now(member, starts_in=-timedelta(minutes=30))
    clocked_in(account, chatter)
    conversation = ConversationFactory(fan=FanFactory(account=account))
    MessageFactory.create_batch(3, conversation=conversation)
    listing: tuple[str, dict[str, int]] = ("/api/crm/conversations/", {"account": account.pk})
    thread: tuple[str, dict[str, int]] = (f"/api/crm/conversations/{conversation.pk}/messages/", {})
    # membership, access, page; conversation, access, page, unlocked (the pinned counts of
    # tests/crm/test_api_conversations.py, less the token, plus the access check)
    for (url, params), count in ((listing, 3), (thread, 4)):
        api = api_for(chatter)
        with django_assert_num_queries(count):
            assert api.get(url, params).status_code == 200
    account.shift_only_access = False
    account.save()
    for (url, params), count in ((listing, 2), (thread, 3)):
        api = api_for(chatter)
        with django_assert_num_queries(count):
            assert api.get(url, params).status_code == 200


def test_a_send_on_shift_records_the_session(account, member, chatter, sqs_queues):
    shift_around_now(member, starts_in=-timedelta(minutes=30))
    session = clocked_in(account, chatter)
    fan = FanFactory(account=account)
    response = api_for(chatter).post(
        "/api/onlyfans/messages/send", {"fan_id": fan.pk, "text": "hi"}, format="json"
    )
    assert response.status_code == 202
    assert fan.account.messages.get().work_session_id == session.pk


# --- Socket -----------------------------------------------------------------------------------

application = URLRouter(websocket_urlpatterns)


def socket_outcome(user, account_id: int) -> tuple[bool, int | None]:
    async def scenario() -> tuple[bool, int | None]:
        communicator = WebsocketCommunicator(application, f"/ws/accounts/{account_id}/")
        communicator.scope["user"] = user
        connected, code = await communicator.connect()
        if connected:
            await communicator.disconnect()
        return connected, code

    return async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("starts_in", "connected"),
    [(GRACE - timedelta(minutes=1), True), (GRACE + timedelta(minutes=1), False)],
)
def test_the_socket_at_the_edge_of_the_grace(
    account, member, chatter, redis_client, starts_in, connected
):
    shift_around_now(member, starts_in=starts_in)
    clocked_in(account, chatter)
    accepted, code = socket_outcome(chatter, account.pk)
    assert accepted is connected
    if not connected:
        assert code == consumers.CLOSE_OFF_SHIFT


def test_an_off_shift_chatter_may_switch_to_the_account_and_see_its_clock(
    client, account, member, chatter
):
    shift_around_now(member, starts_in=timedelta(minutes=10))
    client.force_login(chatter)
    response = client.post(reverse("account_switch"), {"account_id": account.pk, "next": "/"})
    assert response.status_code == 302
    clock = client.get(reverse("clock", args=[account.pk])).content.decode()
    assert 'id="clock-in"' in clock  # within the grace before the shift
    Shift.objects.update(starts_at=F("starts_at") + timedelta(hours=1))
    clock = client.get(reverse("clock", args=[account.pk])).content.decode()
    assert 'id="clock-off"' in clock and "next" in clock and 'id="clock-in"' not in clock
