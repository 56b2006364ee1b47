"""Schedules: weekly occurrences across midnight and DST, weeks, coverage, and the edits."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from crm import shifts
from crm.errors import ApplicationError, NotFoundError
from crm.models import Membership, Shift
from crm.shift_schedule import (
    Occurrence,
    Week,
    coverage_gaps,
    hour_slots,
    member_overlaps,
    occurrences_for_members,
)
from tests.factories import (
    CreatorAccountFactory,
    MembershipFactory,
    ShiftFactory,
    ShiftTemplateFactory,
)

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def berlin():
    return CreatorAccountFactory(time_zone="Europe/Berlin")


@pytest.fixture
def manager(berlin):
    return MembershipFactory(account=berlin, role=Membership.Role.MANAGER).user


@pytest.fixture
def member(berlin):
    return MembershipFactory(account=berlin, role=Membership.Role.CHATTER)


def occurrences(member: Membership, start: datetime, end: datetime) -> list[Occurrence]:
    return occurrences_for_members(
        membership_ids=[member.pk], zones={member.account_id: BERLIN}, start=start, end=end
    )


# --- Weeks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "2026", "2026-W54", "2026-w5", "20x6-W05", "2026-W05x"])
def test_a_bad_week_is_none(value):
    assert Week.parse(value, BERLIN) is None


def test_a_week_runs_monday_to_monday_local_and_dst_weeks_are_short_or_long():
    normal = Week.parse("2026-W10", BERLIN)
    spring = Week.parse("2026-W13", BERLIN)  # clocks forward on Sunday 29 March
    autumn = Week.parse("2026-w43", BERLIN)  # back on Sunday 25 October
    assert normal and spring and autumn
    assert normal.starts_at == utc(2026, 3, 1, 23)  # Monday 2 March 00:00 CET
    assert (normal.ends_at - normal.starts_at) == timedelta(hours=168)
    assert (spring.ends_at - spring.starts_at) == timedelta(hours=167)
    assert (autumn.ends_at - autumn.starts_at) == timedelta(hours=169)
    assert len(hour_slots([], start=spring.starts_at, end=spring.ends_at, zone=BERLIN)) == 167
    assert str(autumn) == "2026-W43" and str(autumn.shifted(1)) == "2026-W44"
    assert Week.parse("2026-W53", BERLIN) is not None  # 2026 has 53 ISO weeks
    assert Week.parse("2027-W53", BERLIN) is None  # 2027 has 52


# --- Occurrences: midnight and DST ------------------------------------------------------------


def test_a_night_shift_keeps_local_wall_clock_across_both_dst_changes(member):
    # given 22:00 for 8 h every Saturday, in Berlin
    ShiftTemplateFactory(membership=member, weekday=5, start_time=time(22), duration_minutes=480)
    # when the nights before the changes are computed
    [spring] = occurrences(member, utc(2026, 3, 28), utc(2026, 3, 29, 12))
    [autumn] = occurrences(member, utc(2026, 10, 24), utc(2026, 10, 25, 12))
    [normal] = occurrences(member, utc(2026, 3, 7), utc(2026, 3, 8, 12))
    # then each runs 22:00 to 06:00 local: 7, 9 and 8 real hours
    for occurrence in (spring, autumn, normal):
        assert occurrence.starts_at.astimezone(BERLIN).time() == time(22)
        assert occurrence.ends_at.astimezone(BERLIN).time() == time(6)
    assert spring.ends_at - spring.starts_at == timedelta(hours=7)
    assert autumn.ends_at - autumn.starts_at == timedelta(hours=9)
    assert normal.ends_at - normal.starts_at == timedelta(hours=8)
    assert autumn.starts_at == utc(2026, 10, 24, 20) and autumn.ends_at == utc(2026, 10, 25, 5)


def test_a_start_inside_the_spring_gap_is_read_an_hour_later(member):
    # 02:30 does not exist in Berlin on 29 March 2026: it is 03:30 CEST (01:30 UTC)
    ShiftTemplateFactory(membership=member, weekday=6, start_time=time(2, 30), duration_minutes=60)
    [occurrence] = occurrences(member, utc(2026, 3, 29), utc(2026, 3, 30))
    assert occurrence.starts_at == utc(2026, 3, 29, 1, 30)
    assert occurrence.ends_at > occurrence.starts_at


def test_a_weekly_shift_crossing_midnight_shows_in_the_next_weeks_view_too(member):
    # Sunday 22:00 to Monday 06:00 in Berlin
    ShiftTemplateFactory(membership=member, weekday=6, start_time=time(22), duration_minutes=480)
    week = Week.parse("2026-W11", BERLIN)  # Monday 9 March
    assert week is not None
    found = occurrences(member, week.starts_at, week.ends_at)
    # the one that began on Sunday 8 March and the one of Sunday 15 March
    assert [o.occurrence_date for o in found] == [date(2026, 3, 8), date(2026, 3, 15)]


def test_active_days_bound_a_weekly_shift(member):
    ShiftTemplateFactory(
        membership=member,
        weekday=0,
        active_from=date(2026, 3, 9),
        active_until=date(2026, 3, 16),
    )
    found = occurrences(member, utc(2026, 3, 1), utc(2026, 4, 1))
    assert [o.occurrence_date for o in found] == [date(2026, 3, 9), date(2026, 3, 16)]


def test_one_day_of_a_weekly_shift_moved_or_cancelled_replaces_it(member):
    template = ShiftTemplateFactory(membership=member, weekday=0)  # Mondays 09:00 to 17:00
    ShiftFactory(
        membership=member,
        template=template,
        occurrence_date=date(2026, 3, 9),
        starts_at=utc(2026, 3, 9, 12),
        ends_at=utc(2026, 3, 9, 14),
    )
    ShiftFactory(
        membership=member,
        template=template,
        occurrence_date=date(2026, 3, 16),
        starts_at=utc(2026, 3, 16, 8),
        ends_at=utc(2026, 3, 16, 16),
        cancelled=True,
    )
    found = occurrences(member, utc(2026, 3, 9), utc(2026, 3, 24))
    assert [(o.starts_at, o.shift_id is not None) for o in found] == [
        (utc(2026, 3, 9, 12), True),
        (utc(2026, 3, 23, 8), False),  # 09:00 CET
    ]


# --- Coverage and overlaps --------------------------------------------------------------------


def test_gaps_are_the_stretches_nobody_covers_and_overlaps_pair_one_members_shifts():
    def occ(member_id: int, start: int, end: int) -> Occurrence:
        return Occurrence(
            1, member_id, utc(2026, 3, 2, start), utc(2026, 3, 2, end), shift_id=start
        )

    found = [occ(1, 8, 12), occ(2, 10, 14), occ(1, 11, 13), occ(3, 16, 18)]
    gaps = coverage_gaps(found, start=utc(2026, 3, 2, 6), end=utc(2026, 3, 2, 20))
    assert gaps == [
        (utc(2026, 3, 2, 6), utc(2026, 3, 2, 8)),
        (utc(2026, 3, 2, 14), utc(2026, 3, 2, 16)),
        (utc(2026, 3, 2, 18), utc(2026, 3, 2, 20)),
    ]
    [(first, second)] = member_overlaps(found)
    assert (first.membership_id, first.starts_at.hour, second.starts_at.hour) == (1, 8, 11)


# --- Week view selector -----------------------------------------------------------------------


def test_the_week_of_an_account_in_four_queries(berlin, manager, member, django_assert_num_queries):
    other = MembershipFactory(account=berlin)
    ShiftTemplateFactory(membership=member, weekday=0)
    ShiftTemplateFactory(membership=other, weekday=1, start_time=time(20), duration_minutes=600)
    ShiftFactory(membership=other, starts_at=utc(2026, 3, 4, 8), ends_at=utc(2026, 3, 4, 12))
    with django_assert_num_queries(4):
        week = shifts.shift_week_get(user=manager, account_id=berlin.pk, week="2026-W10")
        rows = {row.membership.pk: row for row in week.rows}
        assert [len(day) for day in rows[member.pk].days] == [1, 0, 0, 0, 0, 0, 0]
        assert [len(day) for day in rows[other.pk].days] == [0, 1, 1, 0, 0, 0, 0]
        assert week.gaps and week.hours and not week.overlaps
    assert len(week.rows) == 3  # the manager too


def test_a_chatter_sees_only_their_own_row_and_no_coverage(berlin, member):
    ShiftTemplateFactory(membership=MembershipFactory(account=berlin), weekday=0)
    week = shifts.shift_week_get(user=member.user, account_id=berlin.pk, week="2026-W10")
    assert [row.membership.pk for row in week.rows] == [member.pk]
    assert week.occurrences == [] and week.gaps == [] and not week.can_edit


def test_another_accounts_schedule_is_not_found(member):
    with pytest.raises(NotFoundError):
        shifts.shift_week_get(user=member.user, account_id=CreatorAccountFactory().pk)


# --- Edits ------------------------------------------------------------------------------------


def test_a_manager_adds_a_one_off_shift(berlin, manager, member):
    shift = shifts.shift_create(
        actor=manager,
        account_id=berlin.pk,
        membership_id=member.pk,
        starts_at=utc(2026, 3, 2, 8),
        ends_at=utc(2026, 3, 2, 16),
    )
    assert shift.membership_id == member.pk and shift.created_by_id == manager.pk


@pytest.mark.parametrize(
    ("starts", "ends", "code", "field"),
    [
        (utc(2026, 3, 2, 16), utc(2026, 3, 2, 8), "invalid_shift", "ends_at"),
        (utc(2026, 3, 2, 8), utc(2026, 3, 2, 8), "invalid_shift", "ends_at"),
        (utc(2026, 3, 2, 8), utc(2026, 3, 3, 9), "invalid_shift", "ends_at"),
        (datetime(2026, 3, 2, 8), datetime(2026, 3, 2, 9), "invalid_shift", "starts_at"),
    ],
)
def test_a_bad_span_is_refused_with_its_field(berlin, manager, member, starts, ends, code, field):
    with pytest.raises(ApplicationError) as caught:
        shifts.shift_create(
            actor=manager,
            account_id=berlin.pk,
            membership_id=member.pk,
            starts_at=starts,
            ends_at=ends,
        )
    assert caught.value.code == code and field in caught.value.fields


def test_a_member_of_another_account_cannot_be_scheduled(berlin, manager):
    stranger = MembershipFactory()
    with pytest.raises(ApplicationError) as caught:
        shifts.shift_create(
            actor=manager,
            account_id=berlin.pk,
            membership_id=stranger.pk,
            starts_at=utc(2026, 3, 2, 8),
            ends_at=utc(2026, 3, 2, 9),
        )
    assert caught.value.code == "invalid_member" and "membership" in caught.value.fields
    assert not Shift.objects.exists()


def test_a_chatter_cannot_edit_the_schedule(berlin, member):
    with pytest.raises(ApplicationError) as caught:
        shifts.shift_create(
            actor=member.user,
            account_id=berlin.pk,
            membership_id=member.pk,
            starts_at=utc(2026, 3, 2, 8),
            ends_at=utc(2026, 3, 2, 9),
        )
    assert caught.value.status_code == 403


def test_a_one_off_overlapping_a_weekly_shift_of_the_member_is_refused(berlin, manager, member):
    ShiftTemplateFactory(membership=member, weekday=0)  # Mondays 09:00 to 17:00 local
    with pytest.raises(ApplicationError) as caught:
        shifts.shift_create(
            actor=manager,
            account_id=berlin.pk,
            membership_id=member.pk,
            starts_at=utc(2026, 3, 2, 15),  # 16:00 CET
            ends_at=utc(2026, 3, 2, 18),
        )
    assert caught.value.code == "shift_overlap"
    assert "Mon 02 Mar 09:00 to 17:00" in caught.value.message
    # another member at the same time is fine, and so is the member right after
    shifts.shift_create(
        actor=manager,
        account_id=berlin.pk,
        membership_id=MembershipFactory(account=berlin).pk,
        starts_at=utc(2026, 3, 2, 15),
        ends_at=utc(2026, 3, 2, 18),
    )
    shifts.shift_create(
        actor=manager,
        account_id=berlin.pk,
        membership_id=member.pk,
        starts_at=utc(2026, 3, 2, 16),
        ends_at=utc(2026, 3, 2, 18),
    )


def test_a_weekly_shift_overlapping_a_far_one_off_or_another_weekly_is_refused(
    berlin, manager, member
):
    ShiftFactory(membership=member, starts_at=utc(2026, 5, 4, 10), ends_at=utc(2026, 5, 4, 11))
    weekly = {
        "actor": manager,
        "account_id": berlin.pk,
        "membership_id": member.pk,
        "weekday": 0,
        "start_time": time(9),
        "duration_minutes": 480,
    }
    with pytest.raises(ApplicationError) as caught:
        shifts.shift_template_create(**weekly, active_from=date(2026, 3, 2))
    assert caught.value.code == "shift_overlap"
    # ending before that Monday, it fits; a second one on Monday nights overlaps nothing;
    # one on Sundays 22:00 for 12 h runs into Monday 09:00 and is refused
    shifts.shift_template_create(
        **weekly, active_from=date(2026, 3, 2), active_until=date(2026, 4, 30)
    )
    shifts.shift_template_create(
        **{**weekly, "start_time": time(18), "duration_minutes": 240}, active_from=date(2026, 3, 2)
    )
    with pytest.raises(ApplicationError):
        shifts.shift_template_create(
            **{**weekly, "weekday": 6, "start_time": time(22), "duration_minutes": 720},
            active_from=date(2026, 3, 1),
        )


def test_a_weekly_shift_starts_on_its_first_weekday(berlin, manager, member):
    template = shifts.shift_template_create(
        actor=manager,
        account_id=berlin.pk,
        membership_id=member.pk,
        weekday=2,
        start_time=time(9),
        duration_minutes=60,
        active_from=date(2026, 3, 2),  # a Monday
    )
    assert template.active_from == date(2026, 3, 4)


def test_one_day_of_a_weekly_shift_is_cancelled_then_restored(berlin, manager, member):
    template = ShiftTemplateFactory(membership=member, weekday=0)
    change = shifts.shift_occurrence_change(
        actor=manager,
        account_id=berlin.pk,
        template_id=template.pk,
        occurrence_date=date(2026, 3, 9),
        cancel=True,
    )
    assert [o.occurrence_date for o in occurrences(member, utc(2026, 3, 9), utc(2026, 3, 17))] == [
        date(2026, 3, 16)
    ]
    shifts.shift_delete(actor=manager, account_id=berlin.pk, shift_id=change.pk)
    assert len(occurrences(member, utc(2026, 3, 9), utc(2026, 3, 17))) == 2
    with pytest.raises(NotFoundError):  # not a Monday
        shifts.shift_occurrence_change(
            actor=manager,
            account_id=berlin.pk,
            template_id=template.pk,
            occurrence_date=date(2026, 3, 10),
            cancel=True,
        )


def test_another_accounts_shift_is_not_found_to_a_manager(berlin, manager):
    elsewhere = ShiftFactory()
    template = ShiftTemplateFactory()
    with pytest.raises(NotFoundError):
        shifts.shift_delete(actor=manager, account_id=berlin.pk, shift_id=elsewhere.pk)
    with pytest.raises(NotFoundError):
        shifts.shift_template_delete(actor=manager, account_id=berlin.pk, template_id=template.pk)
    with pytest.raises(NotFoundError):  # not a member there at all
        shifts.shift_delete(actor=manager, account_id=elsewhere.account_id, shift_id=elsewhere.pk)
    assert Shift.objects.filter(pk=elsewhere.pk).exists()


def test_a_members_week_across_accounts_each_in_its_zone(member):
    tokyo = MembershipFactory(
        user=member.user, account=CreatorAccountFactory(time_zone="Asia/Tokyo")
    )
    ShiftTemplateFactory(membership=member, weekday=0, start_time=time(9))
    ShiftTemplateFactory(membership=tokyo, weekday=0, start_time=time(9))
    week = shifts.member_week_get(viewer=member.user, week="2026-W10")
    by_account = {row.membership.account_id: row for row in week.rows}
    berlin_monday = by_account[member.account_id].days[0][0]
    tokyo_monday = by_account[tokyo.account_id].days[0][0]
    assert berlin_monday.starts_at == utc(2026, 3, 2, 8)
    assert tokyo_monday.starts_at == utc(2026, 3, 2, 0)


def test_a_manager_sees_a_members_week_only_where_they_manage(berlin, manager, member):
    assert shifts.member_week_get(viewer=manager, user_id=member.user_id).rows
    with pytest.raises(NotFoundError):
        shifts.member_week_get(viewer=manager, user_id=MembershipFactory().user_id)
    with pytest.raises(NotFoundError):  # a chatter does not see a colleague's week
        shifts.member_week_get(viewer=member.user, user_id=manager.pk)


# --- Pages ------------------------------------------------------------------------------------


def week_url(account_id: int, week: str = "2026-W10", **extra: str) -> str:
    query = "&".join([f"week={week}", *(f"{k}={v}" for k, v in extra.items())])
    return f"{reverse('shift_week', args=[account_id])}?{query}"


def test_the_week_page_pins_its_queries_and_shows_blocks_gaps_and_overlaps(
    client, berlin, manager, member, django_assert_num_queries
):
    others = [MembershipFactory(account=berlin) for _ in range(3)]
    ShiftTemplateFactory(membership=member, weekday=0)  # Mon 09:00 to 17:00
    for other in others:
        ShiftTemplateFactory(membership=other, weekday=2, start_time=time(22), duration_minutes=480)
        ShiftFactory(membership=other, starts_at=utc(2026, 3, 5, 8), ends_at=utc(2026, 3, 5, 12))
    # booked twice: a one-off over the weekly shift (made past the service's check)
    ShiftFactory(membership=member, starts_at=utc(2026, 3, 2, 15), ends_at=utc(2026, 3, 2, 18))
    client.force_login(manager)
    client.get(week_url(berlin.pk))  # warm the session and caches
    # session, user; the page's four (membership, members, shifts, weekly shifts); the top
    # bar's current membership and account switcher
    with django_assert_num_queries(8):
        response = client.get(week_url(berlin.pk))
    html = response.content.decode()
    assert response.status_code == 200
    assert "09:00\u201317:00" in html and "22:00\u201306:00" in html
    assert html.count('class="shift-block') == 1 + 3 + 3 + 1
    assert html.count(' overlap"') == 2 and 'id="overlaps"' in html
    assert "Nobody on" in html and "00:00\u201309:00" in html
    # more members and shifts, the same count
    for _ in range(3):
        extra = MembershipFactory(account=berlin)
        ShiftTemplateFactory(membership=extra, weekday=4)
    with django_assert_num_queries(8):
        client.get(week_url(berlin.pk))
    with django_assert_num_queries(8):
        hours = client.get(week_url(berlin.pk, view="hours"))
    assert hours.content.decode().count('<tr><th scope="row">') == 24


def test_the_hours_view_of_the_autumn_week_has_the_doubled_hour(client, berlin, manager):
    client.force_login(manager)
    html = client.get(week_url(berlin.pk, week="2026-W43", view="hours")).content.decode()
    assert "02:00 (again)" in html


def test_a_chatter_sees_their_own_week_read_only(client, berlin, member):
    ShiftTemplateFactory(membership=member, weekday=0)
    ShiftTemplateFactory(membership=MembershipFactory(account=berlin), weekday=1)
    client.force_login(member.user)
    html = client.get(week_url(berlin.pk)).content.decode()
    assert html.count('class="shift-block') == 1 and '<a class="shift-block' not in html
    assert "Add shift" not in html and "Nobody on" not in html
    assert client.get(reverse("shift_new", args=[berlin.pk])).status_code == 403


def test_another_accounts_week_and_shifts_are_404(client, manager):
    elsewhere = ShiftFactory()
    client.force_login(manager)
    assert client.get(week_url(elsewhere.account_id)).status_code == 404
    edit = reverse("shift_edit", args=[elsewhere.account_id, elsewhere.pk])
    assert client.get(edit).status_code == 404
    delete = reverse("shift_delete", args=[elsewhere.account_id, elsewhere.pk])
    assert client.post(delete).status_code == 404
    assert Shift.objects.filter(pk=elsewhere.pk).exists()


def post_shift(client, account_id: int, **data: str):
    return client.post(reverse("shift_new", args=[account_id]), data, HTTP_HX_REQUEST="true")


def test_the_editor_adds_a_night_shift_and_a_weekly_one(client, berlin, manager, member):
    client.force_login(manager)
    form = client.get(
        reverse("shift_new", args=[berlin.pk]) + f"?member={member.pk}&day=2026-03-02",
        HTTP_HX_REQUEST="true",
    )
    assert form.status_code == 200 and 'id="shift-editor"' in form.content.decode()
    night = post_shift(
        client, berlin.pk, membership=str(member.pk), day="2026-03-03", start="22:00", end="06:00"
    )
    assert night.status_code == 200 and night["HX-Redirect"].endswith("week=2026-W10")
    shift = Shift.objects.get()
    assert (shift.starts_at, shift.ends_at) == (utc(2026, 3, 3, 21), utc(2026, 3, 4, 5))
    weekly = post_shift(
        client,
        berlin.pk,
        membership=str(member.pk),
        day="2026-03-06",
        start="09:00",
        end="17:00",
        weekly="on",
    )
    assert weekly.status_code == 200
    template = member.shift_templates.get()
    assert (template.weekday, template.duration_minutes) == (4, 480)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"start": "09:00", "end": "09:00"}, "must end after it starts"),
        ({"start": "23:00", "end": "07:00", "day": "2026-03-02"}, "overlaps this one"),
        ({"weekly": "on", "until": "2026-03-01"}, "on or after the day"),
        ({"membership": "999999"}, "Select a valid choice"),
    ],
)
def test_the_editor_shows_clear_errors(client, berlin, manager, member, data, message):
    ShiftFactory(membership=member, starts_at=utc(2026, 3, 3, 5), ends_at=utc(2026, 3, 3, 8))
    client.force_login(manager)
    fields = {
        "membership": str(member.pk),
        "day": "2026-03-02",
        "start": "10:00",
        "end": "12:00",
        **data,
    }
    response = post_shift(client, berlin.pk, **fields)
    assert response.status_code == 422
    assert message in response.content.decode()
    assert Shift.objects.count() == 1


def test_a_member_of_another_account_is_not_offered_nor_accepted(client, berlin, manager):
    stranger = MembershipFactory()
    client.force_login(manager)
    form = client.get(reverse("shift_new", args=[berlin.pk])).content.decode()
    assert stranger.user.get_username() not in form
    response = post_shift(
        client, berlin.pk, membership=str(stranger.pk), day="2026-03-02", start="09:00", end="10:00"
    )
    assert response.status_code == 422 and not Shift.objects.exists()


def test_one_day_of_a_weekly_shift_is_cancelled_from_the_editor(client, berlin, manager, member):
    template = ShiftTemplateFactory(membership=member, weekday=0)
    client.force_login(manager)
    editor = client.get(
        reverse("shift_template_edit", args=[berlin.pk, template.pk]) + "?day=2026-03-09"
    )
    assert "Only Mon Mar 9" in editor.content.decode()
    url = reverse("shift_template_day", args=[berlin.pk, template.pk, "2026-03-09"])
    response = client.post(url, {"cancel": "1"})
    assert response.status_code == 302 and response["Location"].endswith("week=2026-W11")
    html = client.get(week_url(berlin.pk, week="2026-W11")).content.decode()
    assert "09:00\u201317:00" not in html


def test_shift_only_access_is_switched_on_the_week_page(client, berlin, manager):
    client.force_login(manager)
    url = reverse("shift_settings", args=[berlin.pk])
    client.post(url, {"shift_only_access": "on", "shift_grace_minutes": "10"})
    berlin.refresh_from_db()
    assert berlin.shift_only_access and berlin.shift_grace_minutes == 10
    client.post(url, {"shift_grace_minutes": "999"})
    berlin.refresh_from_db()
    assert berlin.shift_grace_minutes == 10


def test_my_week_and_a_managers_view_of_a_member(client, berlin, manager, member):
    ShiftTemplateFactory(membership=member, weekday=0)
    client.force_login(member.user)
    mine = client.get(reverse("member_week") + "?week=2026-W10")
    assert mine.status_code == 200 and "09:00\u201317:00" in mine.content.decode()
    assert client.get(reverse("member_week") + f"?member={manager.pk}").status_code == 404
    client.force_login(manager)
    theirs = client.get(reverse("member_week") + f"?member={member.user_id}&week=2026-W10")
    assert "09:00\u201317:00" in theirs.content.decode()
