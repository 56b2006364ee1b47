"""First-reply targets (crm.response_targets): the time left a waiting row shows, the VIP
target, overdue rows standing out and sorting first in the waiting view, the live row."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import live, selectors
from crm.models import Conversation, CreatorAccount
from crm.response_targets import ReplyTargets, duration_short, reply_due
from crm.selectors import InboxFilters
from tests.factories import ConversationFactory, CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
TARGETS = ReplyTargets(seconds=300, vip_seconds=120, vip_spend_threshold_cents=10_000)


def waiting(account: CreatorAccount, *, minutes: float, spend_cents: int = 0) -> Conversation:
    now = timezone.now()
    return ConversationFactory(
        fan=FanFactory(account=account, lifetime_spend_cents=spend_cents),
        waiting_since=now - timedelta(minutes=minutes),
        last_message_at=now - timedelta(minutes=minutes),
        last_message_preview="hi",
        last_message_direction="in",
    )


@pytest.fixture
def account() -> CreatorAccount:
    return CreatorAccountFactory(
        reply_target_seconds=300, vip_spend_threshold_cents=10_000, vip_reply_target_seconds=120
    )


# --- Time left ------------------------------------------------------------------------------


def test_time_left_against_the_target():
    now = timezone.now()
    conversation = Conversation(
        fan=FanFactory.build(lifetime_spend_cents=9_999), waiting_since=now - timedelta(seconds=110)
    )
    due = reply_due(conversation, TARGETS, now)
    assert due is not None
    assert (due.seconds_left, due.target_seconds, due.vip, due.overdue) == (190, 300, False, False)
    assert due.due_at == now - timedelta(seconds=110) + timedelta(seconds=300)
    assert due.text == "3m 10s left"
    assert due.title == "First-reply target: 5m"


def test_vip_fans_get_the_shorter_target():
    now = timezone.now()
    conversation = Conversation(
        fan=FanFactory.build(lifetime_spend_cents=10_000),  # at the threshold counts
        waiting_since=now - timedelta(seconds=150),
    )
    due = reply_due(conversation, TARGETS, now)
    assert due is not None
    assert (due.seconds_left, due.target_seconds, due.vip, due.overdue) == (-30, 120, True, True)
    assert due.text == "overdue 30s"
    assert due.title == "VIP first-reply target: 2m"


def test_no_time_left_when_nobody_waits_or_vip_target_is_off():
    conversation = Conversation(fan=FanFactory.build(), waiting_since=None)
    assert reply_due(conversation, TARGETS) is None
    same = ReplyTargets(seconds=300, vip_seconds=300, vip_spend_threshold_cents=0)
    rich = Conversation(
        fan=FanFactory.build(lifetime_spend_cents=10**9), waiting_since=timezone.now()
    )
    due = reply_due(rich, same)
    assert due is not None and (due.target_seconds, due.vip) == (300, False)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (250, "4m 10s"), (3600, "1h"), (3720, "1h 2m"),
     (86_400, "1d"), (90_000, "1d 1h")],
)  # fmt: skip
def test_duration_short(seconds, text):
    assert duration_short(seconds) == text


def _badge(html: str, conversation: Conversation) -> str | None:
    row = re.search(rf'<li id="conversation-{conversation.pk}".*?</li>', html, flags=re.DOTALL)
    assert row is not None, f"row {conversation.pk} not in the page"
    badge = re.search(r'<span class="reply-due[^"]*"[^>]*>[^<]*</span>', row.group(0))
    return badge.group(0) if badge else None


def test_the_list_shows_time_left_and_overdue_in_words(client, account, owner):
    # given: one normal fan with 2 of 5 minutes gone, one VIP 3 minutes into a 2-minute target
    fresh = waiting(account, minutes=2)
    late_vip = waiting(account, minutes=3, spend_cents=50_000)
    answered = ConversationFactory(
        fan=FanFactory(account=account), last_message_at=timezone.now(), waiting_since=None
    )
    client.force_login(owner)
    html = client.get(reverse("inbox", args=[account.pk])).content.decode()
    # then
    fresh_badge = _badge(html, fresh)
    assert fresh_badge is not None and "overdue" not in fresh_badge
    left = int(re.search(r'data-reply-left="(-?\d+)"', fresh_badge).group(1))  # type: ignore[union-attr]
    assert 175 <= left <= 180
    assert re.search(r">2m 5[0-9]s left<|>3m left<", fresh_badge)
    vip_badge = _badge(html, late_vip)
    assert vip_badge is not None
    assert 'class="reply-due overdue"' in vip_badge  # colour, and the words:
    assert ">overdue 1m" in vip_badge
    assert 'title="VIP first-reply target: 2m"' in vip_badge
    assert _badge(html, answered) is None
    assert "js/reply_due.js" in html


# --- The waiting view -----------------------------------------------------------------------


def test_overdue_ones_sort_first_in_the_waiting_view(client, account, owner):
    # given (due = waiting_since + target): a normal fan 4 min in (due in 1 min), a VIP 3 min
    # in (overdue by 1), a normal fan 10 min in (overdue by 5), a normal fan 1 min in
    normal_4 = waiting(account, minutes=4)
    vip_3 = waiting(account, minutes=3, spend_cents=20_000)
    normal_10 = waiting(account, minutes=10)
    normal_1 = waiting(account, minutes=1)
    expected = [normal_10.pk, vip_3.pk, normal_4.pk, normal_1.pk]
    # when / then: longest waiting would be 10, 4, 3, 1; by time left the overdue VIP moves up
    page = selectors.conversations_for_account(
        user=owner, account_id=account.pk, filters=InboxFilters(sort="waiting")
    )
    assert [c.pk for c in page.conversations] == expected
    # keyset pages of two keep the order
    first = selectors.conversations_for_account(
        user=owner, account_id=account.pk, filters=InboxFilters(sort="waiting"), limit=2
    )
    assert first.next_cursor
    second = selectors.conversations_for_account(
        user=owner,
        account_id=account.pk,
        filters=InboxFilters(sort="waiting"),
        limit=2,
        cursor=first.next_cursor,
    )
    assert [c.pk for c in first.conversations + second.conversations] == expected
    assert second.next_cursor is None
    # the page shows them in that order too, and a search among them keeps it
    client.force_login(owner)
    html = client.get(reverse("inbox", args=[account.pk]), {"sort": "waiting"}).content.decode()
    shown = [int(pk) for pk in re.findall(r'<li id="conversation-(\d+)"', html)]
    assert shown == expected
    page = selectors.conversations_for_account(
        user=owner, account_id=account.pk, filters=InboxFilters(sort="waiting", query="fan")
    )
    assert [c.pk for c in page.conversations] == expected


def test_without_a_vip_target_the_waiting_view_is_longest_waiting_first(account, owner):
    CreatorAccount.objects.filter(pk=account.pk).update(vip_reply_target_seconds=300)
    a = waiting(account, minutes=4)
    b = waiting(account, minutes=3, spend_cents=20_000)
    c = waiting(account, minutes=10)
    page = selectors.conversations_for_account(
        user=owner, account_id=account.pk, filters=InboxFilters(sort="waiting")
    )
    assert [x.pk for x in page.conversations] == [c.pk, a.pk, b.pk]


def test_waiting_view_query_count_does_not_grow(client, account, owner, django_assert_num_queries):
    for i in range(3):
        waiting(account, minutes=i, spend_cents=i * 10_000)
    client.force_login(owner)
    url = reverse("inbox", args=[account.pk])
    client.get(url, {"sort": "waiting"})  # session and middleware warm-up
    # as the newest-activity list (tests/crm/test_inbox_views.py): the targets come with
    # the membership's account, no query of their own
    with django_assert_num_queries(8) as few:
        client.get(url, {"sort": "waiting"})
    for i in range(30):
        waiting(account, minutes=i + 0.5, spend_cents=i * 1_000)
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url, {"sort": "waiting"})
    with django_assert_num_queries(5):
        client.get(url, {"sort": "waiting"}, headers={**HX, "HX-Target": "conversation-list"})


# --- Live rows ------------------------------------------------------------------------------


def test_the_live_row_has_the_time_left_and_loses_it_once_answered(account):
    conversation = waiting(account, minutes=6)
    html = live.conversation_changed_html(conversation_id=conversation.pk)
    assert html is not None
    badge = _badge(html, conversation)
    assert badge is not None and ">overdue 1m" in badge
    # answered: nobody waits, no badge
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=None)
    html = live.conversation_changed_html(conversation_id=conversation.pk)
    assert html is not None and _badge(html, conversation) is None


def test_the_targets_follow_the_accounts_settings(account):
    conversation = waiting(account, minutes=1)
    CreatorAccount.objects.filter(pk=account.pk).update(
        reply_target_seconds=45, vip_reply_target_seconds=45
    )
    shown = selectors.conversation_for_display(conversation_id=conversation.pk)
    assert shown is not None and shown.reply_targets == ReplyTargets(
        seconds=45, vip_seconds=45, vip_spend_threshold_cents=10_000
    )
    due = reply_due(shown, shown.reply_targets)
    assert due is not None and due.overdue


# --- The API --------------------------------------------------------------------------------


def test_the_api_lists_reply_due_at_in_the_waiting_order(
    client, account, owner, django_assert_num_queries
):
    normal_4 = waiting(account, minutes=4)
    vip_3 = waiting(account, minutes=3, spend_cents=20_000)
    answered = ConversationFactory(
        fan=FanFactory(account=account), last_message_at=timezone.now(), waiting_since=None
    )
    client.force_login(owner)
    url = f"/api/crm/conversations/?account={account.pk}"
    client.get(url)  # warm-up
    with django_assert_num_queries(4):  # session, user, membership with its account, page
        rows = client.get(f"{url}&sort=waiting").json()["results"]
    assert [r["id"] for r in rows] == [vip_3.pk, normal_4.pk]
    assert vip_3.waiting_since is not None and normal_4.waiting_since is not None
    due = {r["id"]: r["reply_due_at"] for r in rows}
    assert due[vip_3.pk] == (vip_3.waiting_since + timedelta(seconds=120)).isoformat().replace(
        "+00:00", "Z"
    )
    assert due[normal_4.pk] == (
        normal_4.waiting_since + timedelta(seconds=300)
    ).isoformat().replace("+00:00", "Z")
    everyone = {r["id"]: r["reply_due_at"] for r in client.get(url).json()["results"]}
    assert everyone[answered.pk] is None
