"""Snooze (crm.snooze): presets in the account's time zone, the list's views, waking by time
(the beat task), by a fan's message (the inbound path) and by hand; the API and the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm import selectors, snooze
from crm.errors import ApplicationError, NotFoundError
from crm.models import Conversation
from crm.selectors import InboxFilters
from tests.crm.test_inbox_views import HX, inbound, thread_url
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")


def _bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


@pytest.fixture
def conversation(account):
    return inbound(account, fan_id="61", text="hey").conversation


def listed(user, account, **filters) -> list[int]:
    page = selectors.conversations_for_account(
        user=user, account_id=account.pk, filters=InboxFilters(**filters)
    )
    return [c.pk for c in page.conversations]


# --- When a snooze ends -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("preset", "local_now", "local_until"),
    [
        ("1h", datetime(2026, 5, 4, 10, 30), datetime(2026, 5, 4, 11, 30)),
        ("tonight", datetime(2026, 5, 4, 10, 30), datetime(2026, 5, 4, 20, 0)),
        ("tonight", datetime(2026, 5, 4, 21, 0), datetime(2026, 5, 5, 20, 0)),
        ("tomorrow", datetime(2026, 5, 4, 23, 30), datetime(2026, 5, 5, 9, 0)),
        ("next_week", datetime(2026, 5, 4, 8, 0), datetime(2026, 5, 11, 9, 0)),  # a Monday
        ("next_week", datetime(2026, 5, 10, 8, 0), datetime(2026, 5, 11, 9, 0)),  # a Sunday
    ],
)
def test_presets_end_at_the_accounts_local_times(preset, local_now, local_until):
    now = local_now.replace(tzinfo=BERLIN)

    until = snooze.snooze_preset_until(preset=preset, zone=BERLIN, now=now)

    assert until == local_until.replace(tzinfo=BERLIN)


def test_an_unknown_preset_is_refused():
    with pytest.raises(ApplicationError) as refused:
        snooze.snooze_preset_until(preset="someday", zone=BERLIN, now=timezone.now())
    assert refused.value.code == "invalid_snooze_preset"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-06-01", datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN)),
        ("2026-06-01T18:15", datetime(2026, 6, 1, 18, 15, tzinfo=BERLIN)),
        ("2026-06-01T18:15:00+00:00", datetime(2026, 6, 1, 18, 15, tzinfo=UTC)),
        ("2026-06-01T18:15:00Z", datetime(2026, 6, 1, 18, 15, tzinfo=UTC)),
    ],
)
def test_a_date_or_time_without_an_offset_is_in_the_accounts_zone(value, expected):
    assert snooze.snooze_until_parse(value=value, zone=BERLIN) == expected


@pytest.mark.parametrize("value", ["", "tomorrow", "2026-13-01", "2026-06-01T25:00", "9" * 500])
def test_a_bad_time_is_refused_with_a_code(value):
    with pytest.raises(ApplicationError) as refused:
        snooze.snooze_until_parse(value=value, zone=BERLIN)
    assert refused.value.code == "invalid_snooze_until"


# --- Snoozing and the list's views ------------------------------------------------------------


def test_a_snoozed_conversation_leaves_every_view_but_snoozed_and_search(
    chatter, account, conversation
):
    awake = inbound(account, fan_id="62", text="also here").conversation

    snooze.conversation_snooze(
        actor=chatter, conversation=conversation, until=timezone.now() + timedelta(hours=1)
    )

    assert listed(chatter, account) == [awake.pk]
    assert listed(chatter, account, unread=True) == [awake.pk]
    assert listed(chatter, account, waiting=True) == [awake.pk]
    assert listed(chatter, account, sort="waiting") == [awake.pk]
    assert listed(chatter, account, snoozed=True) == [conversation.pk]
    assert conversation.pk in listed(chatter, account, query="fan_61")


def test_snooze_needs_a_time_or_until_reply_and_a_time_ahead(chatter, conversation):
    now = timezone.now()
    cases = [
        ({}, "snooze_time_required"),
        ({"until": now - timedelta(seconds=1)}, "snooze_in_past"),
        ({"until": now + timedelta(days=400)}, "snooze_too_far"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ApplicationError) as refused:
            snooze.conversation_snooze(actor=chatter, conversation=conversation, **kwargs)
        assert refused.value.code == code
        assert refused.value.status_code == 400
    assert Conversation.objects.get(pk=conversation.pk).snoozed_at is None


def test_a_non_member_cannot_snooze(other_account, conversation):
    stranger = MembershipFactory(account=other_account).user
    with pytest.raises(NotFoundError):
        snooze.conversation_snooze(actor=stranger, conversation=conversation, until_reply=True)


# --- Waking -----------------------------------------------------------------------------------


def test_the_wake_task_wakes_due_snoozes_to_the_top_once(chatter, account, conversation):
    newer = inbound(account, fan_id="63", text="newer").conversation
    later = inbound(account, fan_id="64", text="later").conversation
    now = timezone.now()
    snooze.conversation_snooze(
        actor=chatter, conversation=conversation, until=now + timedelta(minutes=5)
    )
    snooze.conversation_snooze(actor=chatter, conversation=later, until=now + timedelta(days=1))
    snooze.conversation_snooze(actor=chatter, conversation=newer, until_reply=True)
    wake_at = now + timedelta(minutes=6)

    woke = snooze.snoozes_wake_due(now=wake_at)
    again = snooze.snoozes_wake_due(now=wake_at)

    assert (woke, again) == (1, 0)
    row = Conversation.objects.get(pk=conversation.pk)
    assert row.snoozed_at is None and row.snoozed_until is None
    assert row.woke_from_snooze_at == wake_at
    assert row.last_message_at == wake_at
    assert listed(chatter, account) == [conversation.pk]  # the others still sleep
    assert Conversation.objects.get(pk=later.pk).snoozed_at is not None


def test_the_wake_task_runs_the_service(chatter, conversation):
    from crm.tasks import snoozes_wake_task

    snooze.conversation_snooze(
        actor=chatter, conversation=conversation, until=timezone.now() + timedelta(seconds=1)
    )
    Conversation.objects.filter(pk=conversation.pk).update(
        snoozed_until=timezone.now() - timedelta(seconds=1)
    )

    assert snoozes_wake_task.apply().get() == 1


@pytest.mark.parametrize("timed", [False, True])
def test_a_fan_message_wakes_a_snooze_of_either_kind(chatter, account, conversation, timed):
    until = timezone.now() + timedelta(days=2) if timed else None
    snooze.conversation_snooze(
        actor=chatter, conversation=conversation, until=until, until_reply=not timed
    )

    inbound(account, fan_id="61", text="are you there?")

    row = Conversation.objects.get(pk=conversation.pk)
    assert row.snoozed_at is None and row.snoozed_until is None
    assert row.woke_from_snooze_at is not None
    assert row.last_message_preview == "are you there?"
    assert listed(chatter, account, unread=True) == [conversation.pk]


def test_a_fan_message_in_an_awake_conversation_costs_no_query_for_snooze(
    account, conversation, django_assert_num_queries, settings
):
    settings.AUTOMATION_ACCOUNT_CACHE_SECONDS = 60  # as deployed
    inbound(account, fan_id="61", text="warm")  # the fan exists: a steady-state message
    # 10 as before snooze existed; the automations' cancel-on-reply costs none on an account
    # without automations (automations/receivers.py: one statement on one with them)
    with django_assert_num_queries(10) as counted:
        inbound(account, fan_id="61", text="again")
    assert not [q for q in counted.captured_queries if "snoozed_at" in q["sql"].split("WHERE")[-1]]


def test_unsnooze_by_hand_has_no_marker_and_is_idempotent(chatter, account, conversation):
    snooze.conversation_snooze(actor=chatter, conversation=conversation, until_reply=True)

    snooze.conversation_unsnooze(actor=chatter, conversation=conversation)
    snooze.conversation_unsnooze(actor=chatter, conversation=conversation)

    row = Conversation.objects.get(pk=conversation.pk)
    assert row.snoozed_at is None and row.woke_from_snooze_at is None
    assert listed(chatter, account) == [conversation.pk]


def test_waking_broadcasts_the_row_to_the_top(
    chatter, account, conversation, django_capture_on_commit_callbacks, monkeypatch
):
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(
        snooze,
        "account_event_broadcast",
        lambda **kwargs: sent.append((kwargs["event"], kwargs["payload"])),
    )
    snooze.conversation_snooze(actor=chatter, conversation=conversation, until_reply=True)
    Conversation.objects.filter(pk=conversation.pk).update(
        snoozed_until=timezone.now() - timedelta(seconds=1)
    )

    with django_capture_on_commit_callbacks(execute=True):
        snooze.snoozes_wake_due()

    assert sent == [("conversation.woke", {"conversation_id": conversation.pk})]
    html = selectors_live_html(account, conversation)
    assert 'hx-swap-oob="afterbegin:#conversation-list[data-live-top], #live-sink"' in html
    assert "woke from snooze" in html


def selectors_live_html(account, conversation) -> str:
    from crm.live import event_html

    html = event_html(
        account_id=account.pk,
        event="conversation.woke",
        payload={"conversation_id": conversation.pk},
    )
    assert html is not None
    return html


# --- API --------------------------------------------------------------------------------------


def _url(conversation, action: str = "snooze") -> str:
    return f"/api/crm/conversations/{conversation.pk}/{action}"


def test_api_snooze_until_a_local_time_then_unsnooze(chatter, account, conversation):
    account.time_zone = "Europe/Berlin"
    account.save()
    api = _bearer(chatter)
    local = (timezone.now() + timedelta(days=2)).astimezone(BERLIN)
    value = local.strftime("%Y-%m-%dT%H:%M")

    snoozed = api.post(_url(conversation), {"until": value}, format="json")
    listed_snoozed = api.get("/api/crm/conversations/", {"account": account.pk, "snoozed": 1})
    listed_default = api.get("/api/crm/conversations/", {"account": account.pk})
    woke = api.post(_url(conversation, "unsnooze"))

    assert snoozed.status_code == 200, snoozed.content
    body = snoozed.json()
    assert body["snoozed"] is True and body["snoozed_until_reply"] is False
    expected = local.replace(second=0, microsecond=0)
    assert datetime.fromisoformat(body["snoozed_until"]) == expected
    assert [c["id"] for c in listed_snoozed.json()["results"]] == [conversation.pk]
    assert listed_default.json()["results"] == []
    assert woke.status_code == 200 and woke.json()["snoozed"] is False


def test_api_snooze_until_reply_and_delete(chatter, conversation):
    api = _bearer(chatter)

    snoozed = api.post(_url(conversation), {"until_reply": True}, format="json")
    deleted = api.delete(_url(conversation))

    assert snoozed.status_code == 200
    assert snoozed.json()["snoozed_until_reply"] is True
    assert deleted.status_code == 200 and deleted.json()["snoozed"] is False


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "snooze_time_required"),
        ({"until": "2020-01-01T10:00:00Z"}, "snooze_in_past"),
        ({"until": "next tuesday"}, "invalid_snooze_until"),
        ({"until": "2999-01-01"}, "snooze_too_far"),
        ({"until": "x" * 41}, "validation_error"),
        ({"until_reply": "maybe"}, "validation_error"),
    ],
)
def test_api_snooze_refuses_with_stable_codes(chatter, conversation, body, code):
    response = _bearer(chatter).post(_url(conversation), body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_api_snooze_of_another_accounts_conversation_is_404(other_account, conversation):
    stranger = _bearer(MembershipFactory(account=other_account).user)

    for response in (
        stranger.post(_url(conversation), {"until_reply": True}, format="json"),
        stranger.post(_url(conversation, "unsnooze")),
        stranger.delete(_url(conversation)),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "conversation_not_found"
    assert Conversation.objects.get(pk=conversation.pk).snoozed_at is None


def test_api_list_query_count_with_snoozed_view(
    chatter, account, conversation, django_assert_num_queries
):
    api = _bearer(chatter)
    snooze.conversation_snooze(actor=chatter, conversation=conversation, until_reply=True)
    api.get("/api/crm/conversations/", {"account": account.pk})
    with django_assert_num_queries(3):
        api.get("/api/crm/conversations/", {"account": account.pk, "snoozed": 1})


# --- Inbox pages ------------------------------------------------------------------------------


def test_the_thread_menu_snoozes_and_shows_until_when(client, chatter, account, conversation):
    account.time_zone = "America/New_York"
    account.save()
    client.force_login(chatter)
    url = reverse("inbox_snooze", args=[account.pk, conversation.pk])

    menu = client.get(thread_url(conversation)).content.decode()
    response = client.post(url, {"preset": "tomorrow"}, headers=HX)

    assert f'id="thread-snooze-{conversation.pk}"' in menu
    assert 'name="preset" value="tonight"' in menu and "America/New_York" in menu
    assert response.status_code == 200
    html = response.content.decode()
    assert "Snoozed until" in html and "09:00" in html
    assert f'hx-swap-oob="outerHTML:#conversation-{conversation.pk}, #live-sink"' in html
    assert "is-snoozed" in html
    until = Conversation.objects.get(pk=conversation.pk).snoozed_until
    assert until is not None and until.astimezone(ZoneInfo("America/New_York")).hour == 9


def test_the_thread_menu_refuses_a_past_time_in_the_page(client, chatter, account, conversation):
    client.force_login(chatter)
    url = reverse("inbox_snooze", args=[account.pk, conversation.pk])

    response = client.post(url, {"until": "2020-01-01T10:00"}, headers=HX)
    no_time = client.post(url, {}, headers=HX)

    assert response.status_code == 422
    assert "That time has passed already." in response.content.decode()
    assert no_time.status_code == 422
    assert Conversation.objects.get(pk=conversation.pk).snoozed_at is None


def test_the_thread_shows_until_reply_and_unsnoozes(client, chatter, account, conversation):
    client.force_login(chatter)
    client.post(reverse("inbox_snooze", args=[account.pk, conversation.pk]), {"until_reply": "on"})

    html = client.get(thread_url(conversation)).content.decode()
    response = client.post(reverse("inbox_unsnooze", args=[account.pk, conversation.pk]))

    assert "Snoozed until the fan writes" in html
    assert response.status_code == 302
    assert Conversation.objects.get(pk=conversation.pk).snoozed_at is None


def test_the_snoozed_view_and_the_woke_marker_in_the_list(client, chatter, account, conversation):
    client.force_login(chatter)
    snooze.conversation_snooze(
        actor=chatter, conversation=conversation, until=timezone.now() + timedelta(hours=1)
    )
    inbox_url = reverse("inbox", args=[account.pk])

    default = client.get(inbox_url).content.decode()
    snoozed_view = client.get(inbox_url, {"snoozed": "on"}).content.decode()
    snooze.snoozes_wake_due(now=timezone.now() + timedelta(hours=2))
    woke = client.get(inbox_url).content.decode()

    assert f'id="conversation-{conversation.pk}"' not in default
    assert f'id="conversation-{conversation.pk}"' in snoozed_view
    assert 'data-view="snoozed"' in snoozed_view and "snoozed until" in snoozed_view
    row = woke.split(f'id="conversation-{conversation.pk}"')[1].split("</li>")[0]
    assert "woke from snooze" in row


def test_opening_a_woken_thread_clears_the_marker(client, chatter, account, conversation):
    snooze.conversation_snooze(actor=chatter, conversation=conversation, until_reply=True)
    inbound(account, fan_id="61", text="back")
    client.force_login(chatter)

    client.get(thread_url(conversation))

    assert Conversation.objects.get(pk=conversation.pk).woke_from_snooze_at is None


def test_snooze_pages_of_another_account_are_404(client, chatter, other_account):
    foreign = inbound(other_account, fan_id="65", text="x").conversation
    client.force_login(chatter)

    for name in ("inbox_snooze", "inbox_unsnooze"):
        url = reverse(name, args=[other_account.pk, foreign.pk])
        assert client.post(url, {"until_reply": "on"}).status_code == 404
    assert Conversation.objects.get(pk=foreign.pk).snoozed_at is None
