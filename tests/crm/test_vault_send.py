"""Media in the inbox (issue 18): the per-fan marks, the composer's picker, sending picked media
through the page with its resend guard, the bubble's thumbnails, the fan's media history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from crm import media_send
from crm.models import FanMediaEvent, Message, MessageMedia, Purchase
from onlyfans.services import message_enqueue, message_mark_sent
from tests.factories import (
    ConversationFactory,
    FanFactory,
    MembershipFactory,
    UserFactory,
    VaultItemFactory,
)

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
NOV_3 = datetime(2026, 11, 3, 10, tzinfo=UTC)


def event(fan, item, kind, *, price=0, at=NOV_3, **extra):
    return FanMediaEvent.objects.create(
        account=fan.account,
        fan=fan,
        vault_item=item,
        platform_media_id=item.platform_media_id,
        kind=kind,
        price_cents=price,
        at=at,
        source=extra.pop("source", "platform_history"),
        **extra,
    )


@pytest.fixture
def thread(chatter, fan):
    return ConversationFactory(account=fan.account, fan=fan)


# --- marks --------------------------------------------------------------------------------
def test_marks_say_bought_over_offered_over_sent_free(fan, django_assert_num_queries):
    bought, offered, free, never = VaultItemFactory.create_batch(4, account=fan.account)
    event(fan, bought, "offered", price=2500, at=NOV_3 - timedelta(days=1))
    event(fan, bought, "bought", price=2500)
    event(fan, offered, "offered", price=1500)
    event(fan, free, "sent_free")
    other_fan = FanFactory(account=fan.account)
    event(other_fan, never, "bought", price=900)
    with django_assert_num_queries(1):
        marks = media_send.fan_media_marks(
            fan_id=fan.pk, item_ids=[bought.pk, offered.pk, free.pk, never.pk]
        )
    assert (marks[bought.pk].state, marks[bought.pk].price_cents) == ("bought", 2500)
    assert (marks[offered.pk].state, marks[offered.pk].price_cents) == ("offered", 1500)
    assert marks[free.pk].state == "sent_free"
    assert never.pk not in marks


def test_events_come_from_our_sent_messages_and_ppv_purchases(fan, chatter):
    # given: a PPV with two items queued by the chatter, then marked sent (as the pipeline does)
    a, b = VaultItemFactory.create_batch(2, account=fan.account)
    message = message_enqueue(
        fan=fan, text="x", price_cents=1500, vault_item_ids=[a.pk, b.pk], sent_by_id=chatter.pk
    )
    assert not FanMediaEvent.objects.exists()  # queued is not sent
    message.refresh_from_db()
    message_mark_sent(message=message, platform_message_id="pm-1", sent_at=NOV_3)
    message_mark_sent(message=message, platform_message_id="pm-1", sent_at=NOV_3)  # no-op
    marks = media_send.fan_media_marks(fan_id=fan.pk, item_ids=[a.pk, b.pk])
    assert {k: (m.state, m.price_cents) for k, m in marks.items()} == {
        a.pk: ("offered", 1500),
        b.pk: ("offered", 1500),
    }
    assert set(FanMediaEvent.objects.values_list("sent_by_id", "message_id", "source")) == {
        (chatter.pk, message.pk, "ours")
    }


# --- the picker ---------------------------------------------------------------------------
def picker_url(thread, **params):
    url = reverse("inbox_media_picker", args=[thread.account_id, thread.pk])
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def test_picker_marks_items_for_the_fan_and_disables_unsendable(client, chatter, fan, thread):
    bought = VaultItemFactory(account=fan.account, labels=["feet"])
    offered = VaultItemFactory(account=fan.account)
    VaultItemFactory(account=fan.account, is_ready=False)
    VaultItemFactory(account=fan.account, gone_at=NOV_3)
    event(fan, bought, "bought", price=2500)
    event(fan, offered, "offered", price=1500)
    client.force_login(chatter)
    body = client.get(picker_url(thread), headers=HX).content.decode()
    assert "bought $25 · 3 Nov" in body
    assert "offered $15 · not bought" in body
    assert body.count("never sent") >= 2
    assert 'aria-disabled="true" data-unavailable' not in body  # attribute order in markup
    assert body.count('aria-disabled="true"') == 2
    assert "Still processing" in body and "Removed on the platform" in body
    assert 'role="listbox"' in body and 'aria-multiselectable="true"' in body
    # filters: by label, by type
    grid = client.get(picker_url(thread, part="grid", label="feet"), headers=HX).content.decode()
    assert f'data-item-id="{bought.pk}"' in grid and f'data-item-id="{offered.pk}"' not in grid
    videos = client.get(picker_url(thread, part="grid", type="video"), headers=HX).content.decode()
    assert "No items match." in videos


def test_marks_history_and_resend_guard_give_days_in_the_accounts_zone(
    client, chatter, fan, thread, sqs_queues
):
    # given an account in Los Angeles and a purchase at 03:00 UTC on 3 November: there, still
    # 19:00 on 2 November
    fan.account.time_zone = "America/Los_Angeles"
    fan.account.save(update_fields=["time_zone"])
    item = VaultItemFactory(account=fan.account)
    late = datetime(2026, 11, 3, 3, tzinfo=UTC)
    event(fan, item, "bought", price=2500, at=late)
    client.force_login(chatter)
    # then the picker's mark, the fan's history and the resend guard say 2 November
    picker = client.get(picker_url(thread), headers=HX).content.decode()
    assert "bought $25 · 2 Nov" in picker and "3 Nov" not in picker
    grid = client.get(picker_url(thread, part="grid"), headers=HX).content.decode()
    assert "bought $25 · 2 Nov" in grid
    history = client.get(
        reverse("fan_media_history", args=[fan.account_id, fan.pk]), headers=HX
    ).content.decode()
    assert "2 Nov 2026, 19:00" in history
    asked = client.post(
        send_url(thread), {"text": "again?", "price": "15", "vault_item_ids": [item.pk]}, headers=HX
    )
    assert asked.status_code == 409
    assert f"bought photo {item.platform_media_id} ($25) on 2 Nov" in asked.content.decode()


def test_picker_of_another_account_is_404(client, chatter, other_fan):
    foreign = ConversationFactory(account=other_fan.account, fan=other_fan)
    client.force_login(chatter)
    assert client.get(picker_url(foreign), headers=HX).status_code == 404


def test_picker_page_query_count_is_flat(client, chatter, fan, thread, django_assert_num_queries):
    client.force_login(chatter)
    VaultItemFactory.create_batch(3, account=fan.account)
    client.get(picker_url(thread, part="grid"), headers=HX)
    # session, user, conversation (scoped), membership, items, their lists, marks
    with django_assert_num_queries(7):
        assert client.get(picker_url(thread, part="grid"), headers=HX).status_code == 200
    items = VaultItemFactory.create_batch(30, account=fan.account)
    for item in items[:10]:
        event(fan, item, "sent_free")
    with django_assert_num_queries(7):
        response = client.get(picker_url(thread, part="grid"), headers=HX)
    assert response.content.decode().count('role="option"') == 24
    assert "More items" in response.content.decode()


# --- sending from the page ----------------------------------------------------------------
def send_url(thread):
    return reverse("inbox_messages", args=[thread.account_id, thread.pk])


def test_composer_sends_picked_media_with_a_preview(client, chatter, fan, thread, sqs_queues):
    a, b = VaultItemFactory.create_batch(2, account=fan.account)
    client.force_login(chatter)
    response = client.post(
        send_url(thread),
        {
            "text": "for you",
            "price": "15",
            "vault_item_ids": [a.pk, b.pk],
            "preview_item_ids": [a.pk],
        },
        headers=HX,
    )
    assert response.status_code == 200, response.content.decode()
    message = Message.objects.get()
    assert message.price_cents == 1500
    assert message.media_ids == [a.platform_media_id, b.platform_media_id]
    assert list(MessageMedia.objects.values_list("vault_item_id", "is_preview")) == [
        (a.pk, True),
        (b.pk, False),
    ]
    # the bubble in the answer shows both, the preview marked
    body = response.content.decode()
    assert body.count('<li class="bubble-thumb') == 2
    assert "free preview" in body


def test_composer_explains_price_and_media_errors(client, chatter, fan, thread, sqs_queues):
    a = VaultItemFactory(account=fan.account)
    client.force_login(chatter)
    no_media = client.post(send_url(thread), {"text": "x", "price": "15"}, headers=HX)
    assert no_media.status_code == 422
    assert "needs at least one media" in no_media.content.decode()
    preview_free = client.post(
        send_url(thread),
        {"text": "x", "vault_item_ids": [a.pk], "preview_item_ids": [a.pk]},
        headers=HX,
    )
    assert preview_free.status_code == 422
    assert "set a price" in preview_free.content.decode()
    # the chosen item is still on the composer (its chip), so nothing is lost
    assert f'name="vault_item_ids" value="{a.pk}"' in preview_free.content.decode()
    assert Message.objects.count() == 0


def test_composer_asks_before_resending_and_sends_on_confirmation(
    client, chatter, fan, thread, sqs_queues
):
    item = VaultItemFactory(account=fan.account)
    event(fan, item, "bought", price=2500)
    client.force_login(chatter)
    body = {"text": "again?", "price": "15", "vault_item_ids": [item.pk]}
    asked = client.post(send_url(thread), body, headers=HX)
    assert asked.status_code == 409
    page = asked.content.decode()
    assert f"This fan already bought photo {item.platform_media_id} ($25) on 3 Nov" in page
    assert 'name="allow_resend"' in page
    assert Message.objects.count() == 0
    sent = client.post(send_url(thread), {**body, "allow_resend": "on"}, headers=HX)
    assert sent.status_code == 200
    assert Message.objects.count() == 1


# --- the bubble ---------------------------------------------------------------------------
def test_thread_bubble_shows_thumbnails_price_and_unlocked(client, chatter, fan, thread):
    item = VaultItemFactory(account=fan.account, thumb_name="t/1.jpg", thumb_fetched_at=NOV_3)
    message = message_enqueue(fan=fan, text="ppv", price_cents=1500, vault_item_ids=[item.pk])
    message.refresh_from_db()
    message_mark_sent(message=message, platform_message_id="pm-9")
    Purchase.objects.create(
        account=fan.account,
        fan=fan,
        kind="ppv",
        amount_cents=1500,
        purchased_at=NOV_3,
        message=message,
    )
    client.force_login(chatter)
    page = client.get(reverse("inbox_thread", args=[thread.account_id, thread.pk])).content.decode()
    thumb = reverse("vault_item_thumb", args=[fan.account_id, item.pk])
    assert f'src="{thumb}?v=' in page
    assert "$15 · unlocked" in page


# --- the fan's media history --------------------------------------------------------------
def test_fan_media_history_is_keyset_paged_and_scoped(
    client, chatter, fan, other_fan, django_assert_num_queries
):
    items = VaultItemFactory.create_batch(25, account=fan.account)
    for i, item in enumerate(items):
        event(
            fan,
            item,
            "bought" if i % 2 else "offered",
            price=1000,
            at=NOV_3 + timedelta(hours=i),
            sent_by=chatter,
        )
    client.force_login(chatter)
    url = reverse("fan_media_history", args=[fan.account_id, fan.pk])
    client.get(url, headers=HX)
    # session, user, fan (scoped), its events with items, senders and messages
    with django_assert_num_queries(4):
        first = client.get(url, headers=HX).content.decode()
    assert first.count('class="fan-media-row') == 20
    assert f"#{items[-1].platform_media_id}" in first and f"by {chatter.username}" in first
    cursor = first.split("?cursor=")[1].split('"')[0]
    second = client.get(f"{url}?cursor={cursor}", headers=HX).content.decode()
    assert second.count('class="fan-media-row') == 5
    assert f"#{items[0].platform_media_id}" in second
    other = reverse("fan_media_history", args=[other_fan.account_id, other_fan.pk])
    assert client.get(other, headers=HX).status_code == 404


def test_a_member_of_the_account_sees_the_page_another_does_not(client, fan, thread):
    outsider = UserFactory()
    MembershipFactory(user=outsider)
    client.force_login(outsider)
    assert client.get(picker_url(thread), headers=HX).status_code == 404


def test_picker_loads_the_label_filter_after_its_first_page(client, chatter, fan, thread):
    VaultItemFactory(account=fan.account, labels=["feet", "custom"])
    VaultItemFactory(account=fan.account, labels=["feet"])
    client.force_login(chatter)
    first = client.get(picker_url(thread), headers=HX).content.decode()
    assert "?part=labels" in first and '<option value="feet"' not in first
    labels = client.get(picker_url(thread, part="labels"), headers=HX).content.decode()
    assert labels.index('<option value="feet"') < labels.index('<option value="custom"')


def test_saved_replies_carry_media_into_the_composer(client, owner, chatter, fan, thread):
    from crm.models import SavedReply

    a, b = VaultItemFactory.create_batch(2, account=fan.account)
    foreign = VaultItemFactory()
    client.force_login(owner)
    url = reverse("saved_reply_list", args=[fan.account_id])
    refused = client.post(url, {"title": "T", "text": "x", "vault_item_ids": [a.pk, foreign.pk]})
    assert refused.status_code == 400 and "not in this vault" in refused.content.decode()
    client.post(
        url, {"title": "Sets", "text": "new sets", "price": "20", "vault_item_ids": [b.pk, a.pk]}
    )
    assert SavedReply.objects.get(title="Sets").vault_item_ids == [b.pk, a.pk]
    client.force_login(chatter)
    options = client.get(reverse("saved_reply_picker", args=[fan.account_id]), headers=HX)
    body = options.content.decode()
    assert "2 media" in body
    chip = 'name="vault_item_ids" value="{}"'
    assert body.index(chip.format(b.pk)) < body.index(chip.format(a.pk))
