"""Messages API: validation, scoping, status, failures and retry, throttling, bearer auth."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from automations import receivers as automation_receivers
from crm.models import Message
from tests.factories import ConversationFactory, FanFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(chatter) -> APIClient:
    client = APIClient()
    client.force_authenticate(chatter)
    return client


def failed_message(fan, **kwargs) -> Message:
    conversation = ConversationFactory(fan=fan)
    return Message.objects.create(
        account=fan.account,
        conversation=conversation,
        direction="out",
        status="failed",
        sender_kind="user",
        text="t",
        attempts=3,
        last_error="server_error: boom",
        **kwargs,
    )


def test_send_answers_202_with_estimate(api, fan, sqs_queues, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/onlyfans/messages/send", {"fan_id": fan.pk, "text": "hi"}, format="json"
        )
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert set(body) >= {"message_id", "status", "queued_at", "estimated_send_at"}
    message = Message.objects.get(pk=body["message_id"])
    assert message.sent_by_id is not None
    assert message.dispatched_at is not None  # published to SQS on commit


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"text": "hi"}, "fan_id"),
        ({"fan_id": "x", "text": "hi"}, "fan_id"),
        ({"fan_id": 1}, "text"),
        ({"fan_id": 1, "text": "x" * 5001}, "text"),
        ({"fan_id": 1, "text": "hi", "price_cents": 150, "media_ids": ["m1"]}, "price_cents"),
        ({"fan_id": 1, "text": "hi", "price_cents": 500}, "media_ids"),
        ({"fan_id": 1, "text": "hi", "media_ids": "m1"}, "media_ids"),
    ],
)
def test_send_validation_errors_are_400_with_fields(api, fan, payload, field):
    if payload.get("fan_id") == 1:
        payload = {**payload, "fan_id": fan.pk}
    response = api.post("/api/onlyfans/messages/send", payload, format="json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] in ("validation_error", "invalid_message")
    assert field in body["errors"]
    assert Message.objects.count() == 0


def test_send_to_another_accounts_fan_is_404(api, other_fan):
    response = api.post(
        "/api/onlyfans/messages/send", {"fan_id": other_fan.pk, "text": "hi"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "fan_not_found"
    assert Message.objects.count() == 0


def test_malformed_json_is_400(api):
    response = api.post(
        "/api/onlyfans/messages/send", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_message_detail_and_scoping(api, fan, other_fan):
    mine, theirs = failed_message(fan), failed_message(other_fan)
    response = api.get(f"/api/onlyfans/messages/{mine.pk}")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert response.json()["last_error"] == "server_error: boom"
    assert api.get(f"/api/onlyfans/messages/{theirs.pk}").status_code == 404
    assert api.post(f"/api/onlyfans/messages/{theirs.pk}/retry").status_code == 404


def test_failed_list_is_scoped_and_has_constant_queries(
    api, fan, other_fan, account, django_assert_num_queries
):
    for _ in range(3):
        failed_message(FanFactory(account=account))
    failed_message(other_fan)
    # the shift-only accounts closed to the user now (crm.shift_access), count and page
    with django_assert_num_queries(3):
        response = api.get("/api/onlyfans/messages/failed")
    assert response.status_code == 200
    assert response.json()["count"] == 3
    for _ in range(5):
        failed_message(FanFactory(account=account))
    with django_assert_num_queries(3):
        assert api.get("/api/onlyfans/messages/failed").json()["count"] == 8
    assert (
        api.get(f"/api/onlyfans/messages/failed?account={other_fan.account_id}").status_code == 404
    )


def test_retry_puts_failed_message_back_with_same_key(
    api, fan, sqs_queues, django_capture_on_commit_callbacks
):
    message = failed_message(fan)
    key = message.idempotency_key
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/onlyfans/messages/{message.pk}/retry")
    assert response.status_code == 202
    message.refresh_from_db()
    assert message.status == "queued"
    assert message.idempotency_key == key
    assert message.attempts == 0
    again = api.post(f"/api/onlyfans/messages/{message.pk}/retry")
    assert again.status_code == 409
    assert again.json()["code"] == "not_failed"


def test_status_reports_each_visible_account(api, fan, other_fan, sqs_queues):
    failed_message(fan)
    response = api.get("/api/onlyfans/messages/status")
    assert response.status_code == 200
    body = response.json()
    assert [a["account_id"] for a in body["accounts"]] == [fan.account_id]
    row = body["accounts"][0]
    assert row["failed_today"] == 1
    assert row["failure_rate_today"] == 1.0
    assert row["rate_limit"]["tokens_left"] == fan.account.send_rate_per_minute
    assert body["broker"]["queue_depth"] == 0
    assert body["broker"]["dead_letter"] == 0


def test_send_api_is_rate_limited_per_user(chatter, fan, sqs_queues, monkeypatch):
    from onlyfans.api import SendThrottle

    monkeypatch.setattr(SendThrottle, "THROTTLE_RATES", {"send": "2/min"})
    client = APIClient()
    client.force_authenticate(chatter)
    responses = [
        client.post("/api/onlyfans/messages/send", {"fan_id": fan.pk, "text": "hi"}, format="json")
        for _ in range(3)
    ]
    assert [r.status_code for r in responses] == [202, 202, 429]
    assert responses[2].json()["code"] == "throttled"
    assert Message.objects.count() == 2


def test_send_throttle_counts_each_user_apart_and_says_when_to_come_back(
    chatter, owner, fan, sqs_queues, monkeypatch
):
    from onlyfans.api import SendThrottle

    monkeypatch.setattr(SendThrottle, "THROTTLE_RATES", {"send": "1/min"})
    first, second = APIClient(), APIClient()
    first.force_authenticate(chatter)
    second.force_authenticate(owner)
    body = {"fan_id": fan.pk, "text": "hi"}
    assert first.post("/api/onlyfans/messages/send", body, format="json").status_code == 202
    refused = first.post("/api/onlyfans/messages/send", body, format="json")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    assert second.post("/api/onlyfans/messages/send", body, format="json").status_code == 202


def test_bearer_token_authenticates_scripts(chatter, fan):
    token = Token.objects.create(user=chatter)
    client = APIClient()
    assert client.get("/api/onlyfans/messages/failed").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert client.get("/api/onlyfans/messages/failed").status_code == 200


def test_chatter_of_other_account_cannot_see_status_rows(fan, other_account):
    outsider = MembershipFactory(account=other_account).user
    client = APIClient()
    client.force_authenticate(outsider)
    failed = failed_message(fan)
    assert client.get(f"/api/onlyfans/messages/{failed.pk}").status_code == 404
    assert client.get("/api/onlyfans/messages/failed").json()["count"] == 0


def test_send_throttle_also_holds_the_general_api_rate(chatter, fan, sqs_queues, monkeypatch):
    # given: the general rate is the tighter one (both are counted in one Redis round trip)
    from onlyfans.api import SendThrottle

    monkeypatch.setattr(SendThrottle, "THROTTLE_RATES", {"user": "1/min", "send": "100/min"})
    client = APIClient()
    client.force_authenticate(chatter)
    body = {"fan_id": fan.pk, "text": "hi"}
    # when
    first = client.post("/api/onlyfans/messages/send", body, format="json")
    refused = client.post("/api/onlyfans/messages/send", body, format="json")
    # then
    assert first.status_code == 202
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert 0 < int(refused.headers["Retry-After"]) <= 61
    assert Message.objects.count() == 1


def test_send_api_reads_and_writes_with_few_queries(
    chatter,
    fan,
    sqs_queues,
    django_assert_num_queries,
    django_capture_on_commit_callbacks,
    settings,
    monkeypatch,
):
    # given: a token as scripts use it, and the dispatch left to its own thread (production)
    from crm.services import api_token_create

    settings.SEND_DISPATCH_COALESCE_MS = 25
    settings.AUTOMATION_ACCOUNT_CACHE_SECONDS = 60  # production's: looked up once a minute
    monkeypatch.setattr(automation_receivers, "_has_automations", {})  # this test's own
    _token, key = api_token_create(user=chatter, name="script")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    body = {"fan_id": fan.pk, "text": "hi"}
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/api/onlyfans/messages/send", body, format="json")
    # when / then: the token, the fan with its account (membership checked in the same
    # query), the composer's repeated-text count (crm.composer_checks), one statement for the
    # conversation upsert, the message and the sender's draft (no transaction around it: no
    # BEGIN, COMMIT or savepoint), the backlog position; and after the commit nothing more on
    # the database (an account without automations has nothing to withdraw; the dispatch runs
    # in its own thread)
    with (
        django_assert_num_queries(5),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = client.post("/api/onlyfans/messages/send", body, format="json")
    assert callbacks  # the after-commit work ran inside the count
    assert response.status_code == 202
    assert response.json()["account_connected"] is True
