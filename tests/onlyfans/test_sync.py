"""Fan sync from the platform, against the sandbox over real HTTP."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta
from unittest import mock

import httpx
import pytest
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from crm.models import Conversation, CreatorAccount, Fan, Message
from onlyfans import gateway
from onlyfans.contracts import GatewayRateLimited, SendRequest
from onlyfans.inbound import account_connection_set
from onlyfans.models import FanSync
from onlyfans.sync import fan_sync_start, fan_sync_step, fan_syncs_schedule
from onlyfans.tasks import fan_sync_task
from tests.factories import (
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MessageFactory,
)
from tests.onlyfans.test_webhooks import sign

pytestmark = pytest.mark.django_db


# --- helpers ----------------------------------------------------------------------------------


def seed(sandbox, account: CreatorAccount, **spec: object) -> list[dict]:
    """Give the sandbox account fans (and chats): ``POST /_sandbox/fans/seed``."""
    response = httpx.post(
        f"{sandbox.url}/_sandbox/fans/seed",
        json={"account_id": account.platform_account_id, **spec},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["data"]["fans"]


def the_run(account: CreatorAccount) -> FanSync:
    """The run queued when the account was created (connected accounts sync on creation)."""
    return FanSync.objects.get(account=account, state__in=FanSync.ACTIVE_STATES)


def run_to_end(run: FanSync, *, max_steps: int = 200) -> list[str]:
    """Drive the run step by step in this thread, as the task chain would."""
    results: list[str] = []
    for _ in range(max_steps):
        run.refresh_from_db()
        if not run.is_active:
            return results
        results.append(fan_sync_step(sync_id=run.pk, step=run.step).result)
    raise AssertionError(f"run {run.pk} did not finish: {results[-5:]}")


def sync_again(account: CreatorAccount) -> FanSync:
    run, created = fan_sync_start(account=account, trigger=FanSync.Trigger.BUTTON)
    assert created
    run_to_end(run)
    run.refresh_from_db()
    return run


def post_webhook(event: dict) -> None:
    body = json.dumps(event).encode()
    response = Client().post(
        "/api/onlyfans/webhooks",
        body,
        content_type="application/json",
        headers={"Signature": sign(body), "X-OFAPI-Idempotency-Key": f"evt_{uuid.uuid4().hex}"},
    )
    assert response.status_code == 200, response.content


# --- fans -------------------------------------------------------------------------------------


def test_sync_adds_fans_with_subscription_dates_and_spend(sandbox, account):
    platform = seed(sandbox, account, count=25)  # two pages of 20
    run = the_run(account)
    # when
    run_to_end(run)
    # then
    run.refresh_from_db()
    assert (run.state, run.fans_seen, run.fans_created) == ("done", 25, 25)
    assert run.finished_at is not None and run.lease_until is None
    fans = {f.platform_fan_id: f for f in Fan.objects.filter(account=account)}
    assert len(fans) == 25
    for item in platform:
        fan = fans[str(item["id"])]
        data = item["subscribedOnData"]
        assert fan.username == item["username"] and fan.display_name == item["name"]
        expected = "expired" if item["subscribedOnExpiredNow"] else "active"
        assert fan.subscription_state == expected
        assert fan.subscribed_at is not None and fan.subscription_expires_at is not None
        assert fan.subscribed_at.isoformat() == data["subscribeAt"]
        assert fan.subscription_expires_at.isoformat() == data["expiredAt"]
        assert fan.lifetime_spend_cents == data["totalSumm"] * 100


def test_existing_fan_is_updated_and_spend_never_goes_down(sandbox, account):
    updated = FanFactory(account=account, platform_fan_id="70001", lifetime_spend_cents=100)
    richer = FanFactory(account=account, platform_fan_id="70002", lifetime_spend_cents=99_999)
    seed(
        sandbox,
        account,
        fans=[
            {"id": 70001, "username": updated.username, "name": "New Name",
             "subscribedOn": False, "subscribedOnExpiredNow": True,
             "subscribedOnData": {"totalSumm": 12.5}},
            {"id": 70002, "username": richer.username, "name": richer.display_name,
             "subscribedOnData": {"totalSumm": 3}},
        ],
    )  # fmt: skip
    run = the_run(account)
    run_to_end(run)
    run.refresh_from_db()
    updated.refresh_from_db()
    richer.refresh_from_db()
    assert (updated.display_name, updated.subscription_state) == ("New Name", "expired")
    assert updated.lifetime_spend_cents == 1250
    assert richer.lifetime_spend_cents == 99_999
    assert richer.subscription_state == "active"
    assert (run.fans_created, run.fans_updated, run.fans_linked) == (0, 2, 0)
    assert Fan.objects.filter(account=account).count() == 2


def test_unlinked_fan_is_linked_by_username_case_insensitively(sandbox, account):
    imported = FanFactory(
        account=account, platform_fan_id=None, username="alice", tags=["vip"], notes="from csv"
    )
    seed(sandbox, account, fans=[{"id": 880077, "username": "Alice", "name": "Alice A"}])
    run = the_run(account)
    run_to_end(run)
    run.refresh_from_db()
    imported.refresh_from_db()
    assert imported.platform_fan_id == "880077"
    assert (imported.tags, imported.notes) == (["vip"], "from csv")
    assert imported.subscription_state == "active"
    assert Fan.objects.filter(account=account).count() == 1
    assert (run.fans_created, run.fans_linked) == (0, 1)


def test_usernames_match_in_any_case_and_linked_fans_are_not_relinked(sandbox, account):
    folded = FanFactory(account=account, platform_fan_id=None, username="bob")
    taken = FanFactory(account=account, platform_fan_id="1", username="carol")
    seed(
        sandbox,
        account,
        fans=[
            {"id": 2, "username": "Bob", "name": "Bob"},
            {"id": 3, "username": "carol"},
            {"id": 4, "username": "CAROL"},
        ],
    )
    run_to_end(the_run(account))
    folded.refresh_from_db()
    taken.refresh_from_db()
    assert folded.platform_fan_id == "2"
    assert taken.platform_fan_id == "1"
    # the new fans 3 and 4 get free usernames instead of failing on carol's (in any case)
    assert Fan.objects.get(account=account, platform_fan_id="3").username == "carol-3"
    assert Fan.objects.get(account=account, platform_fan_id="4").username == "CAROL-4"


def test_sync_is_scoped_to_its_account(sandbox, account, other_account):
    theirs = FanFactory(account=other_account, platform_fan_id="4242", username="dora")
    unlinked_elsewhere = FanFactory(account=other_account, platform_fan_id=None, username="eve")
    seed(
        sandbox,
        account,
        fans=[{"id": 4242, "username": "dora2", "name": "Dora"}, {"id": 5, "username": "eve"}],
    )
    run_to_end(the_run(account))
    theirs.refresh_from_db()
    unlinked_elsewhere.refresh_from_db()
    assert theirs.username == "dora" and theirs.display_name != "Dora"
    assert unlinked_elsewhere.platform_fan_id is None
    assert set(Fan.objects.filter(account=account).values_list("platform_fan_id", flat=True)) == {
        "4242",
        "5",
    }


# --- chats and messages -------------------------------------------------------------------------


def test_chats_are_imported_without_duplicating_webhook_and_sent_messages(sandbox, account):
    fan_id = 990001
    seed(
        sandbox,
        account,
        fans=[{"id": fan_id, "username": "frank", "name": "Frank"}],
        messages_per_fan=4,
        minutes_ago=30,
    )
    # the fan writes twice: the platform keeps the messages and the webhooks bring them in
    posted = sandbox.emit_webhooks(
        url="http://127.0.0.1:9/unreachable", count=2, account_id=account.platform_account_id,
        fan_id=fan_id,
    )  # fmt: skip
    for item in posted:
        post_webhook(item["event"])
    # and we answered once through the pipeline (stored with the platform's id)
    sent = gateway.message_send(
        SendRequest(
            account_platform_id=account.platform_account_id,
            chat_id=str(fan_id),
            text="thanks!",
            price_cents=0,
            media_ids=(),
            idempotency_key=str(uuid.uuid4()),
        )
    )
    conversation = Conversation.objects.get(account=account, fan__platform_fan_id=str(fan_id))
    MessageFactory(
        conversation=conversation, direction="out", status="sent", sender_kind="user",
        text="thanks!", platform_message_id=sent.platform_message_id, sent_at=timezone.now(),
    )  # fmt: skip
    before = set(Message.objects.filter(account=account).values_list("pk", flat=True))
    assert len(before) == 3
    run = the_run(account)
    # when
    run_to_end(run)
    # then
    run.refresh_from_db()
    assert (run.chats_done, run.messages_imported) == (1, 4)
    messages = Message.objects.filter(conversation=conversation)
    ids = list(messages.values_list("platform_message_id", flat=True))
    assert len(ids) == len(set(ids)) == 7
    assert before <= set(messages.values_list("pk", flat=True))
    imported = messages.exclude(pk__in=before).order_by("created_at")
    assert [(m.direction, m.status) for m in imported] == [
        ("in", "received"), ("out", "sent"), ("in", "received"), ("out", "sent"),
    ]  # fmt: skip
    # history keeps the platform's times, before what arrived live
    last_imported = imported.last()
    assert last_imported is not None
    assert last_imported.created_at < messages.get(text="thanks!").created_at
    assert all(m.sent_at == m.created_at for m in imported if m.direction == "out")
    conversation.refresh_from_db()
    assert conversation.last_message_preview == "thanks!"
    assert conversation.last_message_direction == "out"
    assert conversation.waiting_since is None
    assert Fan.objects.filter(account=account).count() == 1
    # a second run finds nothing new
    again = sync_again(account)
    assert (again.messages_imported, again.fans_created, again.fans_updated) == (0, 0, 0)
    assert Message.objects.filter(conversation=conversation).count() == 7


def test_webhook_for_a_message_the_sync_imported_is_not_stored_twice(sandbox, account):
    seed(sandbox, account, fans=[{"id": 990002, "username": "gus"}])
    [posted] = sandbox.emit_webhooks(
        url="http://127.0.0.1:9/unreachable", account_id=account.platform_account_id,
        fan_id=990002,
    )  # fmt: skip
    run = the_run(account)
    run_to_end(run)  # the sync imports the fan's message first...
    run.refresh_from_db()
    assert run.messages_imported == 1
    post_webhook(posted["event"])  # ...then its webhook arrives late
    [message] = Message.objects.filter(account=account)
    assert message.platform_message_id == str(posted["event"]["payload"]["id"])


def test_new_chat_gets_summary_and_platform_unread_count(sandbox, account):
    seed(
        sandbox,
        account,
        fans=[{"id": 31, "username": "gina"}],
        messages_per_fan=3,  # fan, creator, fan: the fan is waiting
    )
    run_to_end(the_run(account))
    conversation = Conversation.objects.get(account=account)
    _first_in, last_in = (
        conversation.messages.filter(direction="in")
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    assert conversation.last_message_at == last_in
    assert conversation.last_message_preview == "fan line 3"
    assert conversation.waiting_since == last_in
    assert conversation.unread_count == 0  # the sandbox counts unread from webhooks only
    assert conversation.fan.last_seen_at == last_in


def test_outgoing_history_waits_while_a_send_is_in_flight(sandbox, account):
    fan = FanFactory(account=account, platform_fan_id="61", username="hank")
    conversation = ConversationFactory(fan=fan)
    MessageFactory(conversation=conversation, direction="out", status="sending", sender_kind="user")
    seed(sandbox, account, fans=[{"id": 61, "username": "hank"}], messages_per_fan=2)
    run_to_end(the_run(account))
    imported = conversation.messages.exclude(status="sending")
    # the fan's message comes in; the platform's outgoing one may be ours, not recorded yet
    assert list(imported.values_list("direction", flat=True)) == ["in"]


def test_rerun_over_the_same_data_changes_nothing(sandbox, account):
    FanFactory(account=account, platform_fan_id=None, username="ivy")
    seed(sandbox, account, count=7, messages_per_fan=2)
    seed(sandbox, account, fans=[{"id": 7, "username": "IVY"}])
    run_to_end(the_run(account))
    snapshot = list(
        Fan.objects.filter(account=account)
        .order_by("pk")
        .values("pk", "platform_fan_id", "username", "subscription_state", "updated_at")
    )
    messages = Message.objects.filter(account=account).count()
    assert messages == 14
    # when
    again = sync_again(account)
    # then
    assert (again.fans_seen, again.chats_done) == (8, 7)
    assert (again.fans_created, again.fans_updated, again.fans_linked) == (0, 0, 0)
    assert again.messages_imported == 0
    assert Message.objects.filter(account=account).count() == messages
    assert snapshot == list(
        Fan.objects.filter(account=account)
        .order_by("pk")
        .values("pk", "platform_fan_id", "username", "subscription_state", "updated_at")
    )


# --- runs: resuming, rate limits, failures --------------------------------------------------------


def test_run_resumes_from_its_saved_cursor(sandbox, account, settings):
    settings.FAN_SYNC_STEP_SECONDS = 0  # one page (or one chat) per step
    seed(sandbox, account, count=45, messages_per_fan=1)
    run = the_run(account)
    # when: one step, then the worker "dies"; a redelivery of the old step is ignored
    assert fan_sync_step(sync_id=run.pk, step=0).result == "advanced"
    assert fan_sync_step(sync_id=run.pk, step=0).result == "superseded"
    run.refresh_from_db()
    assert (run.phase, run.offset, run.fans_seen, run.step) == ("fans", 20, 20, 1)
    assert Fan.objects.filter(account=account).count() == 20
    # then: another worker carries on from offset 20
    results = run_to_end(run)
    run.refresh_from_db()
    assert results.count("advanced") == 2 + 44  # two more fan pages, then one chat a step
    assert results[-1] == "done"
    assert (run.fans_seen, run.fans_created, run.chats_done) == (45, 45, 45)
    assert Fan.objects.filter(account=account).count() == 45
    assert Message.objects.filter(account=account).count() == 45


def test_a_claimed_run_is_not_advanced_twice(sandbox, account):
    run = the_run(account)
    FanSync.objects.filter(pk=run.pk).update(lease_until=timezone.now() + timedelta(minutes=1))
    assert fan_sync_step(sync_id=run.pk, step=0).result == "busy"
    FanSync.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert fan_sync_step(sync_id=run.pk, step=0).result == "done"


def _delayed_on_bulk_queue(sqs_queues: dict[str, str]) -> int:
    from onlyfans.broker import queue_names, sqs_client

    attrs = sqs_client().get_queue_attributes(
        QueueUrl=sqs_queues[queue_names().bulk],
        AttributeNames=["ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesDelayed"])


def test_rate_limited_run_publishes_itself_after_retry_after(sandbox, account, sqs_queues):
    sandbox.configure(read_rate_limit_per_minute=1)
    seed(sandbox, account, count=3)
    gateway.chats_page(account_platform_id=account.platform_account_id, offset=0, limit=1)
    with pytest.raises(GatewayRateLimited):  # the minute's one read is gone
        gateway.fans_page(account_platform_id=account.platform_account_id, offset=0, limit=1)
    run = the_run(account)
    # when: the task runs (as a worker would) and meets the 429
    assert fan_sync_task(run.pk, 0) == "rate_limited"
    # then: it waits on the broker, not in the worker, and saved where it was
    run.refresh_from_db()
    assert run.state == "running" and run.step == 1 and run.offset == 0
    assert run.last_error_code == "rate_limited" and run.lease_until is None
    assert run.retry_at is not None
    wait = (run.retry_at - timezone.now()).total_seconds()
    assert 50 < wait <= 61
    assert _delayed_on_bulk_queue(sqs_queues) == 1
    # a delivery that comes early (SQS caps delays at 15 min) waits again, without a request
    requests = sandbox.stats()["requests"]
    with mock.patch("onlyfans.sync._publish") as publish:
        assert fan_sync_task(run.pk, 1) == "waiting"
    assert publish.call_args.kwargs["step"] == 1
    assert 50 < publish.call_args.kwargs["delay_seconds"] <= 61
    assert sandbox.stats()["requests"] == requests + 1  # the stats call itself
    # once the limit is lifted and the time has come, the run finishes
    sandbox.configure(read_rate_limit_per_minute=0)
    FanSync.objects.filter(pk=run.pk).update(retry_at=timezone.now())
    with mock.patch("onlyfans.sync._publish"):
        assert fan_sync_task(run.pk, 1) == "done"
    assert Fan.objects.filter(account=account).count() == 3


def test_task_publishes_to_sqs_with_the_next_step(sandbox, account, sqs_queues, settings):
    from onlyfans.broker import queue_names, sqs_client

    settings.FAN_SYNC_STEP_SECONDS = 0
    seed(sandbox, account, count=21)
    run = the_run(account)
    assert fan_sync_task(run.pk, 0) == "advanced"
    client = sqs_client()
    [raw] = client.receive_message(QueueUrl=sqs_queues[queue_names().bulk], WaitTimeSeconds=2)[
        "Messages"
    ]
    envelope = json.loads(base64.b64decode(raw["Body"]))
    args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    assert envelope["headers"]["task"] == "onlyfans.tasks.fan_sync_task"
    assert args == [run.pk, 1]


def test_low_quota_pauses_the_run_before_a_429(sandbox, account, settings):
    settings.FAN_SYNC_RATE_LIMIT_RESERVE = 5
    sandbox.configure(read_rate_limit_per_minute=7)
    seed(sandbox, account, count=50, messages_per_fan=1)
    run = the_run(account)
    outcome = fan_sync_step(sync_id=run.pk, step=0)
    assert outcome.result == "paused"
    assert outcome.delay_seconds == settings.FAN_SYNC_RATE_LIMIT_WAIT_SECONDS
    run.refresh_from_db()
    assert run.fans_seen == 40 and run.retry_at is not None  # two pages, then 5 left
    assert sandbox.stats()["rate_limited"] == 0


def test_transient_errors_retry_with_backoff_then_fail(sandbox, account, settings):
    settings.FAN_SYNC_MAX_ATTEMPTS = 3
    seed(sandbox, account, count=2)
    sandbox.configure(read_fail_next=1, fail_status=503)
    run = the_run(account)
    outcome = fan_sync_step(sync_id=run.pk, step=0)
    assert outcome.result == "retrying" and outcome.next_step == 1
    assert 0.8 * 5 <= outcome.delay_seconds <= 1.2 * 5
    run.refresh_from_db()
    assert (run.errors_in_row, run.last_error_code) == (1, "internal_error")
    assert fan_sync_step(sync_id=run.pk, step=1).result == "done"
    run.refresh_from_db()
    assert (run.errors_in_row, run.last_error_code) == (0, "")
    # a gateway that keeps failing fails the run, with the reason kept
    failing = sync_start_for_failure(account, sandbox, fails=10)
    assert failing.state == "failed" and failing.last_error_code == "internal_error"
    assert failing.finished_at is not None


def sync_start_for_failure(account: CreatorAccount, sandbox, *, fails: int) -> FanSync:
    sandbox.configure(read_fail_next=fails)
    run, _ = fan_sync_start(account=account, trigger=FanSync.Trigger.BUTTON)
    run_to_end(run)
    run.refresh_from_db()
    return run


def test_disconnected_account_fails_the_run_and_pauses_the_account(sandbox, account):
    sandbox.configure(disconnected_accounts=[account.platform_account_id])
    run = the_run(account)
    assert fan_sync_step(sync_id=run.pk, step=0).result == "failed"
    run.refresh_from_db()
    account.refresh_from_db()
    assert (run.state, run.last_error_code) == ("failed", "account_not_authenticated")
    assert account.connection_state == "expired"


# --- starting -------------------------------------------------------------------------------


def test_one_active_run_per_account(account):
    run = the_run(account)
    again, created = fan_sync_start(account=account, trigger=FanSync.Trigger.BUTTON)
    assert (again.pk, created) == (run.pk, False)
    with pytest.raises(IntegrityError), transaction.atomic():
        FanSync.objects.create(account=account, trigger=FanSync.Trigger.BUTTON)


def test_creating_a_connected_account_queues_a_sync_without_publishing():
    with mock.patch("onlyfans.sync._publish") as publish:
        connected = CreatorAccountFactory()
        expired = CreatorAccountFactory(connection_state="expired")
    run = the_run(connected)
    assert (run.trigger, run.state, run.step) == ("connect", "queued", 0)
    assert not FanSync.objects.filter(account=expired).exists()
    publish.assert_not_called()


def test_reconnect_starts_a_sync_after_commit(account, django_capture_on_commit_callbacks):
    FanSync.objects.filter(account=account).update(state="done", finished_at=timezone.now())
    account_connection_set(account=account, connected=False)
    assert not FanSync.objects.filter(account=account, state="queued").exists()
    with (
        mock.patch("onlyfans.sync._publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        account_connection_set(account=account, connected=True)
    run = the_run(account)
    assert run.trigger == "connect"
    publish.assert_called_once_with(sync_id=run.pk, step=0)


def test_schedule_starts_due_accounts_and_resumes_lost_runs(settings):
    now = timezone.now()
    due, recent, expired, stalled = (CreatorAccountFactory() for _ in range(4))
    CreatorAccount.objects.filter(pk=expired.pk).update(connection_state="expired")
    FanSync.objects.update(state="done", finished_at=now)
    FanSync.objects.filter(account=due).update(created_at=now - timedelta(hours=7))
    FanSync.objects.filter(account=expired).update(created_at=now - timedelta(hours=7))
    lost = FanSync.objects.create(account=stalled, trigger="schedule", step=3, state="running")
    FanSync.objects.filter(pk=lost.pk).update(
        started_at=now - timedelta(hours=1), updated_at=now - timedelta(hours=1)
    )
    waiting = FanSync.objects.create(account=recent, trigger="button", step=2, state="running")
    FanSync.objects.filter(pk=waiting.pk).update(
        started_at=now - timedelta(hours=1),
        updated_at=now - timedelta(hours=1),
        retry_at=now + timedelta(minutes=1),
    )
    FanSync.objects.filter(account=stalled).exclude(pk=lost.pk).update(
        created_at=now - timedelta(hours=7)
    )
    with mock.patch("onlyfans.sync._publish") as publish:
        result = fan_syncs_schedule()
    started = FanSync.objects.get(account=due, state="queued")
    assert started.trigger == "schedule"
    assert result == {"resumed": 1, "started": 1}
    published = {(c.kwargs["sync_id"], c.kwargs["step"]) for c in publish.call_args_list}
    assert (lost.pk, 3) in published and (waiting.pk, 2) not in published
    assert not FanSync.objects.filter(account=expired, state="queued").exists()


# --- the page -------------------------------------------------------------------------------


def _htmx(client, method: str, url: str):
    return getattr(client, method)(url, headers={"HX-Request": "true"})


def test_sync_fragment_polls_while_running(client, account, owner, django_assert_num_queries):
    run = the_run(account)
    FanSync.objects.filter(pk=run.pk).update(state="running", fans_seen=40, messages_imported=12)
    client.force_login(owner)
    url = reverse("fan_sync", args=[account.pk])
    # session, user, membership with account, runs
    with django_assert_num_queries(4):
        response = _htmx(client, "get", url)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'hx-trigger="every 2s"' in html and "40 fans" in html and "12 messages" in html
    assert "Syncing fans" in html and "<h1>" not in html
    FanSync.objects.filter(pk=run.pk).update(state="done", finished_at=timezone.now())
    html = _htmx(client, "get", url).content.decode()
    assert "every 2s" not in html and "Synced" in html


def test_fans_page_loads_the_sync_tools(client, account, owner):
    client.force_login(owner)
    html = client.get(reverse("fan_list", args=[account.pk])).content.decode()
    assert f'hx-get="{reverse("fan_sync", args=[account.pk])}"' in html


def test_sync_now_button(client, account, owner, django_capture_on_commit_callbacks):
    FanSync.objects.filter(account=account).update(state="done", finished_at=timezone.now())
    client.force_login(owner)
    url = reverse("fan_sync", args=[account.pk])
    with (
        mock.patch("onlyfans.sync._publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = _htmx(client, "post", url)
    assert response.status_code == 200
    run = the_run(account)
    assert (run.trigger, run.requested_by_id) == ("button", owner.pk)
    publish.assert_called_once_with(sync_id=run.pk, step=0)
    assert "Sync queued" in response.content.decode()
    # a second press while it runs starts nothing new
    _htmx(client, "post", url)
    assert FanSync.objects.filter(account=account).count() == 2
    # without htmx: post, redirect, get
    response = client.post(url)
    assert response.status_code == 302 and response.url == url
    page = client.get(url).content.decode()
    assert "Recent runs" in page and owner.get_username() in page


def test_chatters_cannot_press_sync_now(client, account, chatter):
    client.force_login(chatter)
    url = reverse("fan_sync", args=[account.pk])
    assert client.post(url).status_code == 403
    html = _htmx(client, "get", url).content.decode()
    assert "Sync now" not in html


def test_other_accounts_sync_is_404(client, account, other_account, owner):
    client.force_login(owner)
    url = reverse("fan_sync", args=[other_account.pk])
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404
    assert FanSync.objects.filter(account=other_account).count() == 1


def test_expired_account_cannot_sync_now(client, account, owner):
    CreatorAccount.objects.filter(pk=account.pk).update(connection_state="expired")
    FanSync.objects.filter(account=account).update(state="done", finished_at=timezone.now())
    client.force_login(owner)
    response = _htmx(client, "post", reverse("fan_sync", args=[account.pk]))
    assert response.status_code == 400
    assert "reconnected" in response.content.decode()


# --- the sandbox's reads --------------------------------------------------------------------


def test_sandbox_fans_pages_and_limits(sandbox, account, settings):
    seed(sandbox, account, count=3)
    base = f"{sandbox.url}/api/{account.platform_account_id}/fans"
    headers = {"Authorization": f"Bearer {settings.ONLYFANS_API_KEY}"}
    page = httpx.get(f"{base}/all?limit=2&offset=0", headers=headers).json()
    assert page["data"]["hasMore"] is True and len(page["data"]["list"]) == 2
    assert page["_pagination"]["next_page"].endswith("offset=2")
    assert httpx.get(f"{base}/all?limit=21", headers=headers).status_code == 422
    expired = httpx.get(f"{base}/expired?limit=20", headers=headers).json()["data"]["list"]
    assert [f["subscribedOnExpiredNow"] for f in expired] == [True]
    sandbox.configure(read_rate_limit_per_minute=1)
    refused = httpx.get(f"{base}/all?limit=2", headers=headers)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
