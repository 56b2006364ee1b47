"""Composer drafts (crm.drafts): per member and conversation, never shown to others, gone
when sent or cleared, expired after DRAFT_TTL_DAYS; through the services, the API and the
inbox pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm import drafts
from crm.errors import ApplicationError, NotFoundError
from crm.models import DRAFT_TEXT_MAX_LENGTH, Draft
from onlyfans.services import message_enqueue
from tests.crm.test_inbox_views import HX, inbound, thread_url
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


@pytest.fixture
def conversation(account):
    return inbound(account, fan_id="41", text="hey").conversation


@pytest.fixture
def colleague(account):
    return MembershipFactory(account=account, role="chatter").user


# --- Services ---------------------------------------------------------------------------------


def test_a_draft_is_kept_per_member_and_replaced_by_the_next_save(chatter, colleague, conversation):
    drafts.draft_save(actor=chatter, conversation=conversation, text="hel")
    drafts.draft_save(actor=chatter, conversation=conversation, text="hello", price_cents=500)
    drafts.draft_save(actor=colleague, conversation=conversation, text="theirs")

    mine = drafts.draft_get(user=chatter, conversation=conversation)
    assert mine is not None and (mine.text, mine.price_cents) == ("hello", 500)
    theirs = drafts.draft_get(user=colleague, conversation=conversation)
    assert theirs is not None and theirs.text == "theirs"
    assert Draft.objects.filter(conversation=conversation).count() == 2


def test_an_empty_composer_deletes_the_draft(chatter, conversation):
    drafts.draft_save(actor=chatter, conversation=conversation, text="hello")

    assert drafts.draft_save(actor=chatter, conversation=conversation, text="  \n") is None
    assert drafts.draft_get(user=chatter, conversation=conversation) is None
    assert drafts.draft_delete(actor=chatter, conversation=conversation) is False  # idempotent


def test_a_draft_is_capped_and_checked(chatter, conversation):
    with pytest.raises(ApplicationError) as too_long:
        drafts.draft_save(
            actor=chatter, conversation=conversation, text="x" * (DRAFT_TEXT_MAX_LENGTH + 1)
        )
    with pytest.raises(ApplicationError) as bad_price:
        drafts.draft_save(actor=chatter, conversation=conversation, text="x", price_cents=50)

    assert too_long.value.code == bad_price.value.code == "invalid_draft"
    assert not Draft.objects.exists()


def test_a_non_member_cannot_save_a_draft(other_account, conversation):
    stranger = MembershipFactory(account=other_account).user

    with pytest.raises(NotFoundError):
        drafts.draft_save(actor=stranger, conversation=conversation, text="hi")


def test_sending_removes_the_senders_draft_with_the_send(chatter, colleague, conversation):
    drafts.draft_save(actor=chatter, conversation=conversation, text="on my way")
    drafts.draft_save(actor=colleague, conversation=conversation, text="not sent")

    message_enqueue(fan=conversation.fan, text="on my way", sent_by_id=chatter.pk)

    assert drafts.draft_get(user=chatter, conversation=conversation) is None
    assert drafts.draft_get(user=colleague, conversation=conversation) is not None


def test_a_send_that_rolls_back_keeps_the_draft(chatter, conversation):
    drafts.draft_save(actor=chatter, conversation=conversation, text="on my way")

    with pytest.raises(RuntimeError), transaction.atomic():
        message_enqueue(fan=conversation.fan, text="on my way", sent_by_id=chatter.pk)
        raise RuntimeError("the caller's transaction fails after the enqueue")

    kept = drafts.draft_get(user=chatter, conversation=conversation)
    assert kept is not None
    assert kept.text == "on my way"


def test_drafts_older_than_the_ttl_expire_and_a_second_run_changes_nothing(
    chatter, colleague, conversation, settings
):
    settings.DRAFT_TTL_DAYS = 30
    drafts.draft_save(actor=chatter, conversation=conversation, text="old")
    drafts.draft_save(actor=colleague, conversation=conversation, text="fresh")
    Draft.objects.filter(user=chatter).update(updated_at=timezone.now() - timedelta(days=31))

    assert drafts.drafts_expire(batch_size=1) == 1
    assert drafts.drafts_expire() == 0
    assert list(Draft.objects.values_list("text", flat=True)) == ["fresh"]


def test_the_expiry_task_runs_the_service(chatter, conversation):
    from crm.tasks import drafts_expire_task

    drafts.draft_save(actor=chatter, conversation=conversation, text="old")
    Draft.objects.update(updated_at=timezone.now() - timedelta(days=400))

    assert drafts_expire_task.apply().get() == 1
    assert not Draft.objects.exists()


# --- API --------------------------------------------------------------------------------------


def _draft_url(conversation) -> str:
    return f"/api/crm/conversations/{conversation.pk}/draft"


def test_api_put_get_delete_a_draft(chatter, conversation):
    api = _bearer(chatter)

    put = api.put(_draft_url(conversation), {"text": "soon", "price_cents": 0}, format="json")
    got = api.get(_draft_url(conversation))
    deleted = api.delete(_draft_url(conversation))
    gone = api.get(_draft_url(conversation))

    assert put.status_code == 200, put.content
    assert put.json()["text"] == "soon" and put.json()["conversation"] == conversation.pk
    assert got.status_code == 200 and got.json()["text"] == "soon"
    assert deleted.status_code == 204
    assert gone.status_code == 404 and gone.json()["code"] == "draft_not_found"


def test_api_blank_text_deletes_and_bad_input_has_codes(chatter, conversation):
    api = _bearer(chatter)
    api.put(_draft_url(conversation), {"text": "soon"}, format="json")

    message_enqueue(fan=conversation.fan, text="sent", sent_by_id=chatter.pk)
    blank = api.put(_draft_url(conversation), {"text": ""}, format="json")
    too_long = api.put(
        _draft_url(conversation), {"text": "x" * (DRAFT_TEXT_MAX_LENGTH + 1)}, format="json"
    )
    bad_price = api.put(_draft_url(conversation), {"text": "x", "price_cents": 1}, format="json")

    assert blank.status_code == 204
    assert not Draft.objects.exists()
    stale = api.put(
        _draft_url(conversation),
        {"text": "x", "composer_since": "2020-01-01T00:00:00Z"},
        format="json",
    )
    assert too_long.status_code == 400 and too_long.json()["code"] == "validation_error"
    assert bad_price.status_code == 400 and bad_price.json()["code"] == "invalid_draft"
    assert stale.status_code == 409 and stale.json()["code"] == "draft_stale"


def test_api_drafts_are_scoped_to_the_member_and_the_account(
    chatter, colleague, other_account, conversation
):
    drafts.draft_save(actor=chatter, conversation=conversation, text="mine only")
    stranger = _bearer(MembershipFactory(account=other_account).user)

    colleague_sees = _bearer(colleague).get(_draft_url(conversation))
    stranger_gets = stranger.get(_draft_url(conversation))
    stranger_puts = stranger.put(_draft_url(conversation), {"text": "x"}, format="json")
    stranger_deletes = stranger.delete(_draft_url(conversation))

    assert colleague_sees.status_code == 404
    assert colleague_sees.json()["code"] == "draft_not_found"
    for response in (stranger_gets, stranger_puts, stranger_deletes):
        assert response.status_code == 404
        assert response.json()["code"] == "conversation_not_found"
    assert Draft.objects.get().text == "mine only"


def test_api_send_removes_the_draft(chatter, conversation, django_capture_on_commit_callbacks):
    api = _bearer(chatter)
    api.put(_draft_url(conversation), {"text": "see you"}, format="json")

    with django_capture_on_commit_callbacks(execute=True):
        sent = api.post(
            f"/api/crm/conversations/{conversation.pk}/messages/",
            {"text": "see you"},
            format="json",
        )

    assert sent.status_code == 202, sent.content
    assert api.get(_draft_url(conversation)).status_code == 404


# --- Inbox pages ------------------------------------------------------------------------------


def test_the_composer_autosave_keeps_the_draft_and_the_thread_renders_it(
    client, chatter, conversation
):
    client.force_login(chatter)
    url = reverse("inbox_draft", args=[conversation.account_id, conversation.pk])

    saved = client.post(url, {"text": "typed <b>so far</b>", "price": "5"}, headers=HX)
    html = client.get(thread_url(conversation)).content.decode()

    assert saved.status_code == 204
    composer = html.split('id="composer"')[1].split("</form>")[0]
    assert "typed &lt;b&gt;so far&lt;/b&gt;</textarea>" in composer
    assert 'value="5.0"' in composer or 'value="5"' in composer
    assert f'data-draft-url="{url}"' in composer


def test_the_autosave_refuses_bad_input_and_other_accounts(client, chatter, other_account):
    foreign = inbound(other_account, fan_id="9", text="x").conversation
    client.force_login(chatter)
    foreign_url = reverse("inbox_draft", args=[other_account.pk, foreign.pk])

    assert client.post(foreign_url, {"text": "x"}).status_code == 404
    assert not Draft.objects.exists()


def test_the_autosave_answers_400_for_a_bad_price(client, chatter, conversation):
    client.force_login(chatter)
    url = reverse("inbox_draft", args=[conversation.account_id, conversation.pk])

    response = client.post(url, {"text": "x", "price": "1"})

    assert response.status_code == 400
    assert not Draft.objects.exists()


def test_the_list_marks_my_drafts_only(client, chatter, colleague, account, conversation):
    other = inbound(account, fan_id="42", text="yo").conversation
    drafts.draft_save(actor=chatter, conversation=conversation, text="mine")
    drafts.draft_save(actor=colleague, conversation=other, text="theirs")
    client.force_login(chatter)

    html = client.get(reverse("inbox", args=[account.pk])).content.decode()

    mine_row = html.split(f'id="conversation-{conversation.pk}"')[1].split("</li>")[0]
    other_row = html.split(f'id="conversation-{other.pk}"')[1].split("</li>")[0]
    assert 'class="draft-marker"' in mine_row
    assert "draft-marker" not in other_row
    assert f'data-draft-ids="{conversation.pk}"' in html
    assert "theirs" not in html


def test_sending_from_the_composer_clears_the_draft(
    client, chatter, conversation, django_capture_on_commit_callbacks
):
    client.force_login(chatter)
    account_id = conversation.account_id
    client.post(reverse("inbox_draft", args=[account_id, conversation.pk]), {"text": "bye"})

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("inbox_messages", args=[account_id, conversation.pk]),
            {"text": "bye"},
            headers=HX,
        )

    assert response.status_code == 200
    assert not Draft.objects.exists()
    html = client.get(thread_url(conversation)).content.decode()
    assert "bye</textarea>" not in html


def test_the_autosave_delete_clears_the_draft(client, chatter, conversation):
    client.force_login(chatter)
    url = reverse("inbox_draft", args=[conversation.account_id, conversation.pk])
    client.post(url, {"text": "bye"})

    assert client.delete(url).status_code == 204
    assert not Draft.objects.exists()


def test_a_save_from_a_composer_older_than_the_members_send_is_refused(
    client, chatter, colleague, conversation
):
    # given: a composer rendered, then the member sends from it
    client.force_login(chatter)
    html = client.get(thread_url(conversation)).content.decode()
    since = html.split('data-draft-since="')[1].split('"')[0]
    message_enqueue(fan=conversation.fan, text="sent already", sent_by_id=chatter.pk)
    url = reverse("inbox_draft", args=[conversation.account_id, conversation.pk])

    # when: a save typed in that composer arrives late
    late = client.post(url, {"text": "sent already", "since": since})
    # ...while the composer that came back after the send saves normally
    fresh_since = client.get(thread_url(conversation)).content.decode()
    fresh_since = fresh_since.split('data-draft-since="')[1].split('"')[0]
    fresh = client.post(url, {"text": "next one", "since": fresh_since})

    # then
    assert late.status_code == 409
    assert fresh.status_code == 204
    assert Draft.objects.get(user=chatter).text == "next one"


def test_another_members_send_does_not_make_my_composer_stale(chatter, colleague, conversation):
    opened = timezone.now()
    message_enqueue(fan=conversation.fan, text="theirs", sent_by_id=colleague.pk)

    draft = drafts.draft_save(
        actor=chatter, conversation=conversation, text="mine", composer_since=opened
    )

    assert draft is not None and draft.text == "mine"
    with pytest.raises(ApplicationError) as stale:
        drafts.draft_save(
            actor=colleague, conversation=conversation, text="x", composer_since=opened
        )
    assert stale.value.code == "draft_stale" and stale.value.status_code == 409
