"""The composer's checks before queueing: banned words and repeated text, in the inbox page
and both send APIs, with their confirmations, the settings, and the campaigns' exemption."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm import composer_checks
from crm.errors import ApplicationError
from crm.models import DEFAULT_BANNED_WORDS, CreatorAccount, Message
from onlyfans.services import message_enqueue
from tests.factories import ConversationFactory, FanFactory, MembershipFactory

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def _bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


def conversations(account, count: int):
    return [ConversationFactory(fan=FanFactory(account=account)) for _ in range(count)]


# --- Matching -------------------------------------------------------------------------------


def test_banned_words_match_whole_words_in_any_case():
    words = ["paypal", "cash app", "snap"]
    found = composer_checks.banned_words_find(
        text="Send it on PayPal or Cash  App! paypals and snapchat are fine; SNAP.",
        banned_words=words,
    )
    assert [m.entry for m in found] == ["paypal", "cash app", "snap"]
    assert composer_checks.banned_words_find(text="nothing here", banned_words=words) == []


def test_matching_is_linear_on_hostile_input():
    words = [f"{'a ' * 3}a{i}" for i in range(300)]  # many phrases sharing a first word
    text = "a " * 10_000
    started = time.perf_counter()
    assert composer_checks.banned_words_find(text=text, banned_words=words) == []
    assert time.perf_counter() - started < 1.0


def test_the_list_is_cleaned_and_capped():
    assert composer_checks.banned_words_clean([" PayPal ", "cash-app", "paypal", ""]) == [
        "paypal",
        "cash app",
    ]
    for bad in (["x" * 51], ["one two three four five"], [f"w{i}" for i in range(301)]):
        with pytest.raises(ApplicationError) as refused:
            composer_checks.banned_words_clean(bad)
        assert refused.value.code == "invalid_banned_words"


def test_normalised_texts_share_a_fingerprint():
    same = [
        "Hey babe, want to see more? 😍",
        "hey   babe want to see more 😍\ufe0f",
        "HEY BABE!! WANT TO SEE MORE?? 😍",
    ]
    assert len({composer_checks.text_fingerprint(t) for t in same}) == 1
    assert composer_checks.text_fingerprint("hey babe") != composer_checks.text_fingerprint(
        "hey baby"
    )
    assert composer_checks.text_fingerprint("?!…") is None


def test_new_accounts_start_with_the_default_list(account):
    assert CreatorAccount.objects.get(pk=account.pk).banned_words == list(DEFAULT_BANNED_WORDS)


# --- The send APIs ----------------------------------------------------------------------------


def test_both_send_apis_refuse_banned_words(account, chatter):
    conversation = conversations(account, 1)[0]
    api = _bearer(chatter)
    crm_send = api.post(
        f"/api/crm/conversations/{conversation.pk}/messages/",
        {"text": "pay me on PayPal"},
        format="json",
    )
    of_send = api.post(
        "/api/onlyfans/messages/send",
        {"fan_id": conversation.fan_id, "text": "pay me on PayPal"},
        format="json",
    )
    for response in (crm_send, of_send):
        assert response.status_code == 422, response.content
        body = response.json()
        assert body["code"] == "banned_words"
        assert body["banned_words"] == ["paypal"]
        assert body["can_send_anyway"] is False
    # "refuse": a confirmation does not help
    confirmed = api.post(
        "/api/onlyfans/messages/send",
        {"fan_id": conversation.fan_id, "text": "PayPal", "confirm_banned_words": True},
        format="json",
    )
    assert confirmed.status_code == 422
    assert not Message.objects.exists()


def test_send_anyway_needs_the_policy_and_the_flag(account, chatter):
    account.banned_words_policy = "confirm"
    account.save()
    conversation = conversations(account, 1)[0]
    api = _bearer(chatter)
    url = f"/api/crm/conversations/{conversation.pk}/messages/"
    asked = api.post(url, {"text": "my telegram?"}, format="json")
    assert (asked.status_code, asked.json()["can_send_anyway"]) == (422, True)
    sent = api.post(url, {"text": "my telegram?", "confirm_banned_words": True}, format="json")
    assert sent.status_code == 202
    assert Message.objects.get().text == "my telegram?"


@override_settings(COMPOSER_REPEATED_TEXT_MAX_FANS=2)
def test_repeated_text_is_refused_past_the_threshold_unless_confirmed(
    account, chatter, django_assert_num_queries
):
    convs = conversations(account, 5)
    api = _bearer(chatter)
    for conversation in convs[:3]:  # 3 fans: "more than 2" from the fourth on
        response = api.post(
            "/api/onlyfans/messages/send",
            {"fan_id": conversation.fan_id, "text": "Miss you! 💕"},
            format="json",
        )
        assert response.status_code == 202
    # the same text, other spaces and case, to a fourth fan
    refused = api.post(
        f"/api/crm/conversations/{convs[3].pk}/messages/", {"text": "miss you 💕"}, format="json"
    )
    assert refused.status_code == 422
    assert (refused.json()["code"], refused.json()["fans"]) == ("repeated_text", 3)
    assert refused.json()["window_minutes"] == 60
    # another member's copies do not count for this one
    colleague = _bearer(MembershipFactory(account=account).user)
    assert (
        colleague.post(
            "/api/onlyfans/messages/send",
            {"fan_id": convs[3].fan_id, "text": "miss you 💕"},
            format="json",
        ).status_code
        == 202
    )
    confirmed = api.post(
        f"/api/crm/conversations/{convs[4].pk}/messages/",
        {"text": "miss you 💕", "confirm_repeated_text": True},
        format="json",
    )
    assert confirmed.status_code == 202


def test_repeated_text_window_is_an_hour(account, chatter):
    convs = conversations(account, 8)
    for conversation in convs[:6]:
        message_enqueue(fan=conversation.fan, text="same", sent_by_id=chatter.pk)
    Message.objects.update(queued_at=timezone.now() - timedelta(minutes=61))
    composer_checks.check_before_queue(
        account=account, user_id=chatter.pk, fan_id=convs[7].fan_id, text="same"
    )  # nothing within the hour: no refusal


def test_campaign_messages_are_exempt(account, chatter):
    convs = conversations(account, 8)
    for conversation in convs[:7]:
        message = message_enqueue(
            fan=conversation.fan,
            text="Big sale tonight",
            sender_kind=Message.SenderKind.CAMPAIGN,
            campaign_id=1,
            sent_by_id=chatter.pk,
        )
        assert message.text_fingerprint is None
    composer_checks.check_before_queue(
        account=account, user_id=chatter.pk, fan_id=convs[7].fan_id, text="big sale tonight"
    )


def test_the_send_path_adds_one_indexed_query(account, chatter, django_assert_num_queries):
    conversation = conversations(account, 1)[0]
    with django_assert_num_queries(1) as captured:
        composer_checks.check_before_queue(
            account=account, user_id=chatter.pk, fan_id=conversation.fan_id, text="hello there"
        )
    assert "text_fingerprint" in captured.captured_queries[0]["sql"]


# --- Settings ---------------------------------------------------------------------------------


def test_owners_and_managers_edit_the_list_chatters_only_read_it(account, owner, chatter):
    url = f"/api/crm/accounts/{account.pk}/composer-settings"
    assert _bearer(chatter).get(url).json()["banned_words_policy"] == "refuse"
    refused = _bearer(chatter).patch(url, {"banned_words": ["x"]}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    changed = _bearer(owner).patch(
        url,
        {
            "banned_words": ["Venmo", "cash app"],
            "banned_words_policy": "confirm",
            "gateway_banned_words": "strict_ban",
        },
        format="json",
    )
    assert changed.status_code == 200, changed.content
    assert changed.json() == {
        "banned_words": ["venmo", "cash app"],
        "banned_words_policy": "confirm",
        "gateway_banned_words": "strict_ban",
    }
    bad = _bearer(owner).patch(url, {"banned_words": ["x" * 60]}, format="json")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_banned_words")
    assert _bearer(MembershipFactory().user).get(url).status_code == 404


def test_settings_page_saves_and_shows_errors(client, account, owner, chatter):
    url = reverse("composer_settings", args=[account.pk])
    client.force_login(owner)
    assert "paypal" in client.get(url).content.decode()
    saved = client.post(
        url, {"banned_words": "OnlyBad\nsnap me", "banned_words_policy": "refuse"}, follow=True
    )
    assert "Composer checks saved." in saved.content.decode()
    assert CreatorAccount.objects.get(pk=account.pk).banned_words == ["onlybad", "snap me"]
    wrong = client.post(url, {"banned_words": "x" * 80, "banned_words_policy": "refuse"})
    assert wrong.status_code == 400
    assert "longer than 50" in wrong.content.decode()
    client.force_login(chatter)
    assert (
        client.post(url, {"banned_words": "", "banned_words_policy": "refuse"}).status_code == 403
    )


# --- The inbox page ---------------------------------------------------------------------------


def test_composer_highlights_and_the_page_refuses(client, account, chatter):
    conversation = conversations(account, 1)[0]
    client.force_login(chatter)
    check = client.post(
        reverse("inbox_composer_check", args=[account.pk, conversation.pk]),
        {"text": "<i>add</i> me on Snapchat"},
        headers=HX,
    ).content.decode()
    assert "<mark>Snapchat</mark>" in check
    assert "&lt;i&gt;add&lt;/i&gt;" in check  # escaped around the marks
    sent = client.post(
        reverse("inbox_messages", args=[account.pk, conversation.pk]),
        {"text": "add me on Snapchat"},
        headers=HX,
    )
    assert sent.status_code == 422
    assert "banned words: snapchat" in sent.content.decode()
    assert "Send anyway" not in sent.content.decode()  # policy: refuse
    assert not Message.objects.exists()


def test_page_send_anyway_for_repeated_text(client, account, chatter):
    convs = conversations(account, 7)
    for conversation in convs[:6]:
        message_enqueue(fan=conversation.fan, text="Hi cutie", sent_by_id=chatter.pk)
    client.force_login(chatter)
    check = client.post(
        reverse("inbox_composer_check", args=[account.pk, convs[6].pk]),
        {"text": "hi cutie!"},
        headers=HX,
    ).content.decode()
    assert "Sent to 6 fans in the last hour" in check
    url = reverse("inbox_messages", args=[account.pk, convs[6].pk])
    asked = client.post(url, {"text": "hi cutie!"}, headers=HX)
    assert asked.status_code == 422
    assert 'name="confirm_repeated_text" value="on"' in asked.content.decode()
    sent = client.post(url, {"text": "hi cutie!", "confirm_repeated_text": "on"}, headers=HX)
    assert sent.status_code == 200
    assert Message.objects.filter(conversation=convs[6]).count() == 1
