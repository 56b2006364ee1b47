"""The inbox pages and fragments: scoping, the list (filters, keyset pages), the thread, the
composer, the fan panel and saved replies, with pinned query counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from crm import selectors
from crm.models import Conversation, ConversationNote, Fan, Message, SavedReply
from crm.selectors import InboxFilters
from onlyfans.inbound import message_receive
from onlyfans.services import message_enqueue, message_mark_failed
from tests.factories import (
    ConversationFactory,
    FanFactory,
    MembershipFactory,
    MessageFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}


def inbound(account, *, fan_id: str, text: str = "hi", at: datetime | None = None) -> Message:
    """A fan's message, stored the way the webhook stores it."""
    return message_receive(
        account=account,
        platform_fan={"id": fan_id, "username": f"fan_{fan_id}", "name": f"Fan {fan_id}"},
        platform_message_id=f"pm-{fan_id}-{text}-{(at or timezone.now()).timestamp()}",
        text=text,
        price_cents=0,
        created_at=at or timezone.now(),
        event_key=f"evt-{fan_id}-{text}",
    )


def conversations(account, count: int, *, start: datetime | None = None) -> list[Conversation]:
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    made = []
    for i in range(count):
        message = inbound(account, fan_id=str(1000 + i), at=start + timedelta(minutes=i))
        made.append(message.conversation)
    return made


def thread_url(conversation: Conversation) -> str:
    return reverse("inbox_thread", args=[conversation.account_id, conversation.pk])


# --- Scoping -------------------------------------------------------------------------------


def test_every_inbox_url_of_another_account_is_404(client, chatter, other_account):
    foreign = inbound(other_account, fan_id="77").conversation
    reply = SavedReply.objects.create(account=other_account, title="hi", text="hello")
    failed = message_enqueue(fan=foreign.fan, text="x")
    client.force_login(chatter)
    a, c = other_account.pk, foreign.pk
    gets = [
        reverse("inbox", args=[a]),
        reverse("inbox_thread", args=[a, c]),
        reverse("inbox_messages", args=[a, c]),
        reverse("saved_reply_picker", args=[a]),
        reverse("saved_reply_list", args=[a]),
        reverse("saved_reply_edit", args=[a, reply.pk]),
    ]
    posts = [
        reverse("inbox_messages", args=[a, c]),
        reverse("inbox_message_retry", args=[a, c, failed.pk]),
        reverse("inbox_assign", args=[a, c]),
        reverse("inbox_fan_tag_add", args=[a, c]),
        reverse("inbox_fan_tag_remove", args=[a, c]),
        reverse("inbox_fan_notes", args=[a, c]),
        reverse("saved_reply_list", args=[a]),
        reverse("saved_reply_delete", args=[a, reply.pk]),
    ]
    for url in gets:
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers=HX).status_code == 404, url
    for url in posts:
        assert client.post(url, {"text": "hi", "tag": "x", "notes": "x"}).status_code == 404, url
    assert Message.objects.filter(conversation=foreign).count() == 2
    assert SavedReply.objects.filter(pk=reply.pk).exists()


def test_own_account_url_with_another_accounts_conversation_is_404(
    client, chatter, account, other_account
):
    foreign = inbound(other_account, fan_id="78").conversation
    client.force_login(chatter)
    assert client.get(reverse("inbox_thread", args=[account.pk, foreign.pk])).status_code == 404


def test_inbox_requires_login(client, account):
    response = client.get(reverse("inbox", args=[account.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_inbox_shortcut_opens_the_current_accounts_inbox(client, chatter, account):
    client.force_login(chatter)
    response = client.get(reverse("inbox_current"))
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox", args=[account.pk])


def test_inbox_link_is_in_the_top_bar(client, chatter, account):
    client.force_login(chatter)
    html = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("inbox", args=[account.pk])}"' in html


# --- The list ------------------------------------------------------------------------------


def test_list_shows_newest_activity_first_with_row_details(client, chatter, account):
    old, new = conversations(account, 2)
    FanFactory  # noqa: B018 (factories imported for other tests)
    Fan.objects.filter(pk=new.fan_id).update(lifetime_spend_cents=12345)
    client.force_login(chatter)
    html = client.get(reverse("inbox", args=[account.pk])).content.decode()
    assert html.index(f'id="conversation-{new.pk}"') < html.index(f'id="conversation-{old.pk}"')
    assert "$123.45" in html
    assert "@fan_1001" in html
    assert 'class="unread-badge"' in html
    assert "waiting" in html
    assert f'ws-connect="/ws/accounts/{account.pk}/inbox/"' in html
    assert 'hx-ext="ws"' in html


def test_waiting_sort_lists_longest_waiting_first_and_only_waiting(chatter, account):
    first, second, answered = conversations(account, 3)
    message_enqueue(fan=answered.fan, text="thanks!")
    page = selectors.conversations_for_account(
        user=chatter, account_id=account.pk, filters=InboxFilters(sort="waiting")
    )
    assert [c.pk for c in page.conversations] == [first.pk, second.pk]


def test_filters_unread_waiting_mine_tag_state_and_search(chatter, account):
    a, b, c, d = conversations(account, 4)
    Conversation.objects.filter(pk=a.pk).update(unread_count=0)
    message_enqueue(fan=b.fan, text="answered")
    Conversation.objects.filter(pk=c.pk).update(assigned_to=chatter)
    Fan.objects.filter(pk=d.fan_id).update(
        tags=["whale"], subscription_state="active", display_name="Zed Zebra"
    )

    def ids(**filters: Any) -> list[int]:
        page = selectors.conversations_for_account(
            user=chatter, account_id=account.pk, filters=InboxFilters(**filters)
        )
        return sorted(conv.pk for conv in page.conversations)

    assert a.pk not in ids(unread=True)
    assert b.pk not in ids(waiting=True)
    assert ids(mine=True) == [c.pk]
    assert ids(tag="WHALE") == [d.pk]
    assert ids(subscription_state="active") == [d.pk]
    assert ids(query="zebra") == [d.pk]
    assert ids(query="fan_1000") == [a.pk]


def test_a_search_matching_only_fans_without_a_chat_points_to_them(client, chatter, account):
    # Imported fans have no conversation (or an empty one): the list cannot show them, so
    # the empty result names them with a link to their page (where "Message" opens a chat).
    imported = FanFactory(account=account, platform_fan_id="77", username="zora_x")
    opened = FanFactory(account=account, platform_fan_id="78", username="zora_y")
    ConversationFactory(fan=opened, account=account, last_message_at=None)
    FanFactory(account=FanFactory().account, platform_fan_id="79", username="zora_z")
    client.force_login(chatter)

    html = client.get(reverse("inbox", args=[account.pk]), {"q": "zora"}).content.decode()

    assert "No conversations match." in html
    assert reverse("fan_detail", args=[account.pk, imported.pk]) in html
    assert reverse("fan_detail", args=[account.pk, opened.pk]) in html
    assert "zora_z" not in html  # another account's fan
    # a search that finds conversations does not look for them
    (conv,) = conversations(account, 1)
    html = client.get(reverse("inbox", args=[account.pk]), {"q": "fan_1000"}).content.decode()
    assert thread_url(conv) in html and "fans-without-chat" not in html


def test_filters_live_in_the_url_and_are_kept_on_links(client, chatter, account):
    (conv,) = conversations(account, 1)
    client.force_login(chatter)
    html = client.get(reverse("inbox", args=[account.pk]), {"unread": "on", "q": "fan"}).content
    text = html.decode()
    assert f"{thread_url(conv)}?q=fan&amp;unread=on" in text
    assert 'name="unread" value="on" checked' in text


def test_keyset_pages_walk_every_conversation_once(chatter, account):
    made = conversations(account, 7)
    seen: list[int] = []
    cursor = ""
    while True:
        page = selectors.conversations_for_account(
            user=chatter, account_id=account.pk, filters=InboxFilters(), cursor=cursor, limit=3
        )
        seen += [c.pk for c in page.conversations]
        if not page.next_cursor:
            break
        cursor = page.next_cursor
    assert seen == [c.pk for c in reversed(made)]


def test_next_page_fragment_and_a_bad_cursor(client, chatter, account):
    made = conversations(account, 52)
    client.force_login(chatter)
    first = selectors.conversations_for_account(
        user=chatter, account_id=account.pk, filters=InboxFilters()
    )
    assert first.next_cursor
    url = reverse("inbox", args=[account.pk])
    html = client.get(url, {"cursor": first.next_cursor}, headers=HX).content.decode()
    assert f'id="conversation-{made[1].pk}"' in html
    assert f'id="conversation-{made[0].pk}"' in html
    assert f'id="conversation-{made[2].pk}"' not in html
    assert "<html" not in html
    # A broken cursor is the first page, not an error.
    response = client.get(url, {"cursor": "garbage"}, headers=HX)
    assert response.status_code == 200
    assert f'id="conversation-{made[-1].pk}"' in response.content.decode()


def test_list_query_count_does_not_grow_with_rows(
    client, chatter, account, django_assert_num_queries
):
    conversations(account, 3)
    client.force_login(chatter)
    url = reverse("inbox", args=[account.pk])
    client.get(url)  # session and middleware warm-up
    # One query for the member's own drafts among the page's rows (the "Draft" marker), and
    # one for the member's open mentions (the "Mentions" chip, full page only).
    with django_assert_num_queries(8) as few:
        client.get(url)
    conversations(account, 30, start=datetime(2026, 2, 1, tzinfo=UTC))
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)
    with django_assert_num_queries(5):
        client.get(url, headers={**HX, "HX-Target": "conversation-list"})


# --- The thread ----------------------------------------------------------------------------


def test_thread_shows_messages_oldest_first_and_marks_read(client, chatter, account):
    conv = inbound(account, fan_id="5", text="first").conversation
    inbound(account, fan_id="5", text="second")
    assert Conversation.objects.get(pk=conv.pk).unread_count == 2
    client.force_login(chatter)
    html = client.get(thread_url(conv)).content.decode()
    thread = html.split(f'id="thread-messages-{conv.pk}"')[1]
    assert thread.index("first") < thread.index("second")
    assert Conversation.objects.get(pk=conv.pk).unread_count == 0
    assert f'id="thread-messages-{conv.pk}"' in html


def test_thread_shows_price_unlocked_status_and_failed_error(client, chatter, account):
    fan = FanFactory(account=account)
    paid = message_enqueue(fan=fan, text="pic", price_cents=1500, media_ids=["m1"])
    PurchaseFactory(fan=fan, kind="ppv", amount_cents=1500, message=paid)
    failed = message_enqueue(fan=fan, text="oops")
    message_mark_failed(message=failed, error="invalid_recipient: fan blocked you")
    client.force_login(chatter)
    html = client.get(thread_url(fan.conversation)).content.decode()
    assert "$15 · unlocked" in html
    assert "st-queued" in html
    assert "invalid_recipient: fan blocked you" in html
    assert reverse("inbox_message_retry", args=[account.pk, fan.conversation.pk, failed.pk]) in html


def test_thread_loads_the_newest_hundred_then_older_on_demand(client, chatter, account):
    conv = ConversationFactory(fan=FanFactory(account=account))
    base = datetime(2026, 3, 1, tzinfo=UTC)
    for i in range(130):
        MessageFactory(conversation=conv, text=f"msg-{i:03d}", created_at=base)
    Message.objects.filter(conversation=conv).update(created_at=base)  # ties on time: id decides
    client.force_login(chatter)
    html = client.get(thread_url(conv)).content.decode()
    assert "msg-129" in html and "msg-030" in html
    assert "msg-029" not in html
    older = selectors.conversation_messages(conversation=conv).older_cursor
    url = reverse("inbox_messages", args=[account.pk, conv.pk])
    page = client.get(url, {"before": older}, headers=HX).content.decode()
    assert "msg-029" in page and "msg-000" in page and "msg-030" not in page
    assert client.get(url, {"before": "nope"}, headers=HX).status_code == 400


def test_thread_and_fan_panel_query_count_does_not_grow(
    client, chatter, account, django_assert_num_queries
):
    fan = FanFactory(account=account)
    conv = ConversationFactory(fan=fan)
    for _ in range(3):
        MessageFactory(conversation=conv)
        PurchaseFactory(fan=fan)
    client.force_login(chatter)
    url = thread_url(conv)
    client.get(url)
    # Already read: no write. The member's draft for the composer is one query (the list
    # is empty here: these conversations have no last message, so no draft marker query);
    # the thread's internal notes, whether a note names the member (mentions cleared on
    # open) and the open-mentions count of the list's chip are three more.
    with django_assert_num_queries(14) as few:
        client.get(url)
    for _ in range(30):
        MessageFactory(conversation=conv, direction="out", status="sent", sender_kind="user",
                       sent_by=chatter, sent_at=timezone.now())  # fmt: skip
        PurchaseFactory(fan=fan)
        ConversationNote.objects.create(
            account=account, conversation=conv, author=chatter, text="internal"
        )
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)
    with django_assert_num_queries(10):  # the composer's draft, the notes, the mentions
        client.get(url, headers={**HX, "HX-Target": "thread-pane"})


def test_thread_query_count_for_a_manager_does_not_grow(
    client, owner, account, django_assert_num_queries
):
    # An owner also gets the members to assign to: one query more, whatever the thread's size.
    conv = ConversationFactory(fan=FanFactory(account=account))
    MessageFactory(conversation=conv)
    client.force_login(owner)
    url = thread_url(conv)
    client.get(url)
    with django_assert_num_queries(15) as few:  # as a chatter's (14), plus the members
        client.get(url)
    for _ in range(30):
        MessageFactory(conversation=conv)
        ConversationFactory(fan=FanFactory(account=account))
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)
    with django_assert_num_queries(11):
        client.get(url, headers={**HX, "HX-Target": "thread-pane"})


def test_opening_a_thread_writes_only_when_it_has_unread_messages(
    client, chatter, account, django_assert_num_queries
):
    conv = inbound(account, fan_id="7", text="hi").conversation
    client.force_login(chatter)
    client.get(thread_url(conv))  # unread: marked read
    assert Conversation.objects.get(pk=conv.pk).unread_count == 0
    # 10, the member's draft for the composer and their drafts among the list's rows, the
    # thread's notes, the mentions check and the mentions count.
    with django_assert_num_queries(15) as opened:
        client.get(thread_url(conv))
    assert not [q for q in opened.captured_queries if q["sql"].startswith("UPDATE")]


# --- The composer ---------------------------------------------------------------------------


def test_send_queues_through_the_pipeline_and_returns_the_bubble(client, chatter, account):
    conv = inbound(account, fan_id="9").conversation
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[account.pk, conv.pk])
    response = client.post(url, {"text": "hello\nthere", "price": ""}, headers=HX)
    assert response.status_code == 200
    message = Message.objects.get(conversation=conv, direction="out")
    assert message.status == "queued"
    assert message.sent_by_id == chatter.pk
    html = response.content.decode()
    assert f'id="message-{message.pk}"' in html
    assert f"beforeend:#thread-messages-{conv.pk}" in html
    assert 'Esc leaves; /note for an internal note)"></textarea>' in html
    conv.refresh_from_db()
    assert conv.waiting_since is None
    assert conv.last_message_preview == "hello"


def test_paid_send_in_dollars(client, chatter, account):
    conv = inbound(account, fan_id="10").conversation
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[account.pk, conv.pk])
    client.post(url, {"text": "pic", "price": "12.50", "media_ids": "v1, v2"}, headers=HX)
    message = Message.objects.get(conversation=conv, direction="out")
    assert message.price_cents == 1250
    assert message.media_ids == ["v1", "v2"]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"text": "   "}, "Text is required."),
        ({"text": "x" * 5001}, "longer than 5000"),
        ({"text": "hi", "price": "2.50", "media_ids": "m"}, "between 300 and 20000"),
        ({"text": "hi", "price": "250", "media_ids": "m"}, "between 300 and 20000"),
        ({"text": "hi", "price": "5"}, "needs at least one media"),
        ({"text": "hi", "price": "abc"}, "Enter a number"),
    ],
)
def test_bad_composer_input_is_refused_in_the_form(client, chatter, account, data, reason):
    conv = inbound(account, fan_id="11").conversation
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[account.pk, conv.pk])
    response = client.post(url, data, headers=HX)
    assert response.status_code == 422
    assert reason in response.content.decode()
    assert not Message.objects.filter(direction="out").exists()
    # Without JavaScript: the whole page, with the reason.
    page = client.post(url, data)
    assert page.status_code == 400
    assert reason in page.content.decode()


def test_send_without_javascript_redirects_to_the_thread(client, chatter, account):
    conv = inbound(account, fan_id="12").conversation
    client.force_login(chatter)
    response = client.post(reverse("inbox_messages", args=[account.pk, conv.pk]), {"text": "yo"})
    assert response.status_code == 302
    assert response["Location"] == thread_url(conv)


def test_retry_puts_a_failed_message_back_in_the_queue(client, chatter, account):
    fan = FanFactory(account=account)
    message = message_enqueue(fan=fan, text="again")
    message_mark_failed(message=message, error="boom")
    client.force_login(chatter)
    url = reverse("inbox_message_retry", args=[account.pk, fan.conversation.pk, message.pk])
    response = client.post(url, headers=HX)
    assert response.status_code == 200
    message.refresh_from_db()
    assert message.status == "queued"
    assert "st-queued" in response.content.decode()
    # Retrying a message that is not failed changes nothing and does not break.
    assert client.post(url, headers=HX).status_code == 200


def test_a_cancelled_campaigns_failed_message_points_to_its_campaign_not_retry(
    client, chatter, account
):
    from campaigns.models import Campaign

    # given: a campaign message that failed, and its campaign cancelled since
    fan = FanFactory(account=account)
    campaign = Campaign.objects.create(
        account=account, name="Promo", text="hi", state=Campaign.State.CANCELLED
    )
    message = message_enqueue(
        fan=fan, text="hi", sender_kind=Message.SenderKind.CAMPAIGN, campaign_id=campaign.pk
    )
    message_mark_failed(message=message, error="cancelled: the campaign was cancelled")
    client.force_login(chatter)
    # when: its thread is opened
    html = client.get(thread_url(fan.conversation)).content.decode()
    # then: the bubble links to the campaign instead of offering a Retry that could not send
    retry = reverse("inbox_message_retry", args=[account.pk, fan.conversation.pk, message.pk])
    assert retry not in html
    assert reverse("campaign_detail", args=[account.pk, campaign.pk]) in html
    # and a retry posted anyway is refused, the message stays failed
    assert client.post(retry, headers=HX).status_code == 200
    message.refresh_from_db()
    assert message.status == "failed"


def test_a_paused_campaigns_queued_message_says_it_waits_for_the_campaign(client, chatter, account):
    from campaigns.models import Campaign

    fan = FanFactory(account=account)
    other = FanFactory(account=account)
    paused = Campaign.objects.create(account=account, name="P", text="hi", state="paused")
    running = Campaign.objects.create(account=account, name="R", text="hi", state="running")
    held = message_enqueue(
        fan=fan, text="hi", sender_kind=Message.SenderKind.CAMPAIGN, campaign_id=paused.pk
    )
    moving = message_enqueue(
        fan=other, text="hi", sender_kind=Message.SenderKind.CAMPAIGN, campaign_id=running.pk
    )
    client.force_login(chatter)

    html = client.get(thread_url(fan.conversation)).content.decode()
    assert "Queued · campaign paused" in html and f"message-status-{held.pk}" in html
    html = client.get(thread_url(other.conversation)).content.decode()
    assert f"message-status-{moving.pk}" in html and "campaign paused" not in html
    # resumed: plain queued again
    Campaign.objects.filter(pk=paused.pk).update(state="running")
    html = client.get(thread_url(fan.conversation)).content.decode()
    assert "campaign paused" not in html


# --- The fan panel --------------------------------------------------------------------------


def test_tags_add_and_remove_inline(client, chatter, account):
    conv = inbound(account, fan_id="20").conversation
    client.force_login(chatter)
    add = reverse("inbox_fan_tag_add", args=[account.pk, conv.pk])
    html = client.post(add, {"tag": " VIP "}, headers=HX).content.decode()
    assert ">vip<" in html
    client.post(add, {"tag": "whale"}, headers=HX)
    remove = reverse("inbox_fan_tag_remove", args=[account.pk, conv.pk])
    client.post(remove, {"tag": "vip"}, headers=HX)
    assert Fan.objects.get(pk=conv.fan_id).tags == ["whale"]
    bad = client.post(add, {"tag": "a,b"}, headers=HX)
    assert bad.status_code == 422
    assert "comma" in bad.content.decode()


def test_notes_edit_inline(client, chatter, account):
    conv = inbound(account, fan_id="21").conversation
    client.force_login(chatter)
    url = reverse("inbox_fan_notes", args=[account.pk, conv.pk])
    response = client.post(url, {"notes": "likes cats"}, headers=HX)
    assert "Saved" in response.content.decode()
    assert Fan.objects.get(pk=conv.fan_id).notes == "likes cats"
    too_long = client.post(url, {"notes": "x" * 10_001}, headers=HX)
    assert too_long.status_code == 422
    assert Fan.objects.get(pk=conv.fan_id).notes == "likes cats"


def test_only_owners_and_managers_assign_and_only_to_members(
    client, chatter, account, user_factory
):
    conv = inbound(account, fan_id="22").conversation
    manager = MembershipFactory(account=account, role="manager").user
    outsider = user_factory()
    url = reverse("inbox_assign", args=[account.pk, conv.pk])

    client.force_login(chatter)
    refused = client.post(url, {"assignee": chatter.pk}, headers=HX)
    assert refused.status_code == 422
    assert "Only owners and managers" in refused.content.decode()

    client.force_login(manager)
    assert client.post(url, {"assignee": outsider.pk}, headers=HX).status_code == 422
    assert client.post(url, {"assignee": chatter.pk}, headers=HX).status_code == 200
    assert Conversation.objects.get(pk=conv.pk).assigned_to_id == chatter.pk
    client.post(url, {"assignee": ""}, headers=HX)
    assert Conversation.objects.get(pk=conv.pk).assigned_to_id is None


# --- Saved replies --------------------------------------------------------------------------


def test_managers_keep_saved_replies_and_chatters_pick_them(client, chatter, account):
    manager = MembershipFactory(account=account, role="manager").user
    url = reverse("saved_reply_list", args=[account.pk])

    client.force_login(chatter)
    refused = client.post(url, {"title": "Hi", "text": "Hello!"})
    assert refused.status_code == 403
    assert not SavedReply.objects.exists()

    client.force_login(manager)
    assert client.post(url, {"title": "Hi", "text": "Hello!", "price": ""}).status_code == 302
    client.post(url, {"title": "Bundle", "text": "Pics for you", "price": "9.99"})
    duplicate = client.post(url, {"title": "Hi", "text": "again"})
    assert duplicate.status_code == 400
    assert "exists already" in duplicate.content.decode()
    bad_price = client.post(url, {"title": "Cheap", "text": "x", "price": "1"})
    assert bad_price.status_code == 400
    assert SavedReply.objects.get(title="Bundle").price_cents == 999

    client.force_login(chatter)
    picker = reverse("saved_reply_picker", args=[account.pk])
    html = client.get(picker, {"q": "pics"}, headers=HX).content.decode()
    assert "Bundle" in html and 'data-price-cents="999"' in html
    assert ">Hi<" not in html


def test_saved_reply_edit_and_delete(client, account):
    owner = MembershipFactory(account=account, role="owner").user
    reply = SavedReply.objects.create(account=account, title="Old", text="t")
    client.force_login(owner)
    edit = reverse("saved_reply_edit", args=[account.pk, reply.pk])
    assert client.get(edit).status_code == 200
    client.post(edit, {"title": "New", "text": "t2"})
    reply.refresh_from_db()
    assert (reply.title, reply.text) == ("New", "t2")
    client.post(reverse("saved_reply_delete", args=[account.pk, reply.pk]))
    assert not SavedReply.objects.exists()


def test_read_endpoint_clears_unread(client, chatter, account, other_account):
    conv = inbound(account, fan_id="30").conversation
    foreign = inbound(other_account, fan_id="31").conversation
    client.force_login(chatter)
    response = client.post(reverse("inbox_read", args=[account.pk, conv.pk]), headers=HX)
    assert response.status_code == 204
    assert Conversation.objects.get(pk=conv.pk).unread_count == 0
    assert (
        client.post(reverse("inbox_read", args=[other_account.pk, foreign.pk])).status_code == 404
    )
    assert Conversation.objects.get(pk=foreign.pk).unread_count == 1


def test_sending_to_a_fan_not_linked_to_the_platform_is_refused(client, chatter, account):
    fan = FanFactory(account=account, platform_fan_id=None, username="imported_only")
    conv = ConversationFactory(fan=fan)
    client.force_login(chatter)
    url = reverse("inbox_messages", args=[account.pk, conv.pk])
    response = client.post(url, {"text": "hello"}, headers=HX)
    assert response.status_code == 422
    assert "not linked to the platform" in response.content.decode()
    assert not Message.objects.exists()


@pytest.mark.parametrize(
    "cursor", ["1.99999999999999999999999", "abc", "1", "5.-3", "9" * 40 + ".1"]
)
def test_malformed_cursors_are_invalid_cursor(chatter, account, cursor):
    from crm.errors import ApplicationError

    with pytest.raises(ApplicationError) as raised:
        selectors.conversations_for_account(
            user=chatter, account_id=account.pk, filters=InboxFilters(), cursor=cursor
        )
    assert raised.value.code == "invalid_cursor"


def test_search_with_many_matching_fans_still_finds_them(chatter, account, monkeypatch):
    # Past the prefilter's cap the matching fans stay a subquery; the result is the same.
    made = conversations(account, 3)
    monkeypatch.setattr(selectors, "SEARCH_PREFILTER_MAX", 1)
    page = selectors.conversations_for_account(
        user=chatter, account_id=account.pk, filters=InboxFilters(query="FAN_100")
    )
    assert sorted(c.pk for c in page.conversations) == sorted(c.pk for c in made)


@pytest.mark.parametrize("sort", ["recent", "waiting"])
def test_search_pages_are_the_same_prefiltered_or_not(chatter, account, monkeypatch, sort):
    # A few matching fans are read through the fan index and sorted by an expression; many
    # stay a subquery walked in the index's order. Same pages, same cursors, either way.
    conversations(account, 7)

    def pages() -> list[list[int]]:
        seen, cursor = [], ""
        while True:
            page = selectors.conversations_for_account(
                user=chatter,
                account_id=account.pk,
                filters=InboxFilters(query="fan_100", sort=sort),
                cursor=cursor,
                limit=3,
            )
            seen.append([c.pk for c in page.conversations])
            if page.next_cursor is None:
                return seen
            cursor = page.next_cursor

    prefiltered = pages()
    monkeypatch.setattr(selectors, "SEARCH_PREFILTER_MAX", 1)
    assert pages() == prefiltered
    assert sum(len(p) for p in prefiltered) == 7
