"""Vault sync from the platform, against the sandbox over real HTTP: lists, items, thumbnails,
gone items, fan history from chat media, rate limits and resuming."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta
from unittest import mock

import httpx
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image

from crm.models import (
    Conversation,
    CreatorAccount,
    FanMediaEvent,
    MessageMedia,
    VaultItem,
    VaultList,
    VaultSync,
)
from crm.vault import vault_thumb_storage
from onlyfans import gateway
from onlyfans.contracts import GatewayRateLimited
from onlyfans.inbound import account_connection_set
from onlyfans.tasks import vault_sync_task
from onlyfans.vault_sync import vault_sync_start, vault_sync_step, vault_syncs_schedule
from tests.factories import (
    ConversationFactory,
    CreatorAccountFactory,
    FanFactory,
    MessageFactory,
)

pytestmark = pytest.mark.django_db


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def thumbs(settings, tmp_path):
    """Thumbnails go to a directory of this test."""
    settings.VAULT_THUMB_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "thumbs")},
    }
    return tmp_path / "thumbs"


def control(sandbox, route: str, **body: object) -> object:
    response = httpx.post(f"{sandbox.url}/_sandbox/{route}", json=body, timeout=10)
    response.raise_for_status()
    return response.json()["data"]


def vault_seed(sandbox, account: CreatorAccount, items: list[dict]) -> list[dict]:
    """Replace the generated vault with exactly ``items`` (``POST /_sandbox/vault/items``)."""
    acct = account.platform_account_id
    current = httpx.get(f"{sandbox.url}/_sandbox/vault", params={"account": acct}).json()
    ids = [i["id"] for i in current["data"]["list"]]
    control(sandbox, "vault/remove", account_id=acct, ids=ids)
    added = control(sandbox, "vault/items", account_id=acct, items=items)
    assert isinstance(added, list)
    return added


def sandbox_lists(account: CreatorAccount) -> list[dict]:
    """The account's lists on the platform (the sandbox makes four on first use)."""
    page = gateway.vault_lists_page(
        account_platform_id=account.platform_account_id, offset=0, limit=100
    )
    return [{"id": int(v.platform_list_id), "name": v.name} for v in page.items]


def the_run(account: CreatorAccount) -> VaultSync:
    """The run queued when the account was created (connected accounts sync on creation)."""
    return VaultSync.objects.get(account=account, state__in=VaultSync.ACTIVE_STATES)


def run_to_end(run: VaultSync, *, max_steps: int = 300) -> list[str]:
    results: list[str] = []
    for _ in range(max_steps):
        run.refresh_from_db()
        if not run.is_active:
            return results
        results.append(vault_sync_step(sync_id=run.pk, step=run.step).result)
    raise AssertionError(f"run {run.pk} did not finish: {results[-5:]}")


def sync_again(account: CreatorAccount) -> VaultSync:
    run, created = vault_sync_start(
        account=account, trigger=VaultSync.Trigger.BUTTON, publish=False
    )
    assert created
    run_to_end(run)
    run.refresh_from_db()
    return run


# --- the library ------------------------------------------------------------------------------


def test_sync_mirrors_lists_items_and_small_thumbnails(sandbox, account, settings, thumbs):
    settings.VAULT_SYNC_PAGE_SIZE = 10
    lists = sandbox_lists(account)
    feet, customs = lists[0]["id"], lists[2]["id"]
    platform = vault_seed(
        sandbox,
        account,
        [{"type": "photo", "lists": [feet]} for _ in range(20)]
        + [
            {"type": "video", "duration": 95, "lists": [feet, customs], "likes": 12, "tips": 30},
            {"type": "audio", "duration": 40, "lists": []},
            {"type": "gif", "isReady": False, "lists": []},
        ],
    )
    run = the_run(account)
    results = run_to_end(run)
    run.refresh_from_db()
    assert results[-1] == "done" and run.state == "done"
    assert (run.items_seen, run.items_created, run.items_gone) == (23, 23, 0)
    # then: every item, with what the platform says about it
    items = {i.platform_media_id: i for i in VaultItem.objects.filter(account=account)}
    assert set(items) == {str(p["id"]) for p in platform}
    video = items[str(platform[20]["id"])]
    assert (video.media_type, video.duration_seconds, video.likes_count, video.tips_cents) == (
        "video",
        95,
        12,
        3000,
    )
    assert video.platform_created_at.isoformat().startswith(platform[20]["createdAt"][:19])
    assert sorted(v.name for v in video.lists.all()) == ["Customs", "Feet"]
    assert VaultList.objects.get(account=account, platform_list_id=str(feet)).photo_count == 20
    gif = items[str(platform[22]["id"])]
    assert gif.is_ready is False and not gif.is_sendable
    # thumbnails: fetched for pictures that exist (not audio, not unprocessed), ~240 px
    audio = items[str(platform[21]["id"])]
    assert audio.thumb_name == "" and gif.thumb_name == ""
    assert run.thumbs_fetched == 21 and run.thumbs_failed == 0
    with vault_thumb_storage().open(video.thumb_name) as handle:
        image = Image.open(io.BytesIO(handle.read()))
    assert image.format == "JPEG" and max(image.size) == settings.VAULT_THUMB_SIZE
    assert (thumbs / video.thumb_name).exists()
    # the signed URLs are nowhere in the database
    stored = json.dumps(list(VaultItem.objects.filter(account=account).values()), default=str)
    assert "signature" not in stored and "/files/" not in stored and "http" not in stored


def test_a_second_sync_changes_nothing_and_keeps_our_labels(sandbox, account):
    vault_seed(sandbox, account, [{"type": "photo"} for _ in range(12)])
    run_to_end(the_run(account))
    item = VaultItem.objects.filter(account=account).first()
    assert item is not None
    VaultItem.objects.filter(pk=item.pk).update(
        labels=["feet", "$25 tier"], suggested_price_cents=2500
    )
    names = dict(VaultItem.objects.filter(account=account).values_list("pk", "thumb_name"))
    again = sync_again(account)
    assert (again.items_seen, again.items_created, again.items_updated) == (12, 0, 0)
    assert again.thumbs_fetched == 0  # kept copies are not fetched again
    item.refresh_from_db()
    assert (item.labels, item.suggested_price_cents) == (["feet", "$25 tier"], 2500)
    assert dict(VaultItem.objects.filter(account=account).values_list("pk", "thumb_name")) == names


def test_changed_item_and_list_membership_follow_the_platform(sandbox, account):
    lists = sandbox_lists(account)
    [p] = vault_seed(sandbox, account, [{"type": "photo", "lists": [lists[0]["id"]]}])
    run_to_end(the_run(account))
    control(
        sandbox,
        "vault/update",
        account_id=account.platform_account_id,
        id=p["id"],
        likes=99,
        lists=[lists[1]["id"]],
    )
    again = sync_again(account)
    item = VaultItem.objects.get(account=account, platform_media_id=str(p["id"]))
    assert again.items_updated == 1
    assert item.likes_count == 99
    assert [v.name for v in item.lists.all()] == [lists[1]["name"]]


def test_removed_items_are_marked_gone_never_deleted_and_come_back(sandbox, account):
    platform = vault_seed(sandbox, account, [{"type": "photo"} for _ in range(15)])
    run_to_end(the_run(account))
    sent, other = platform[3], platform[7]
    item = VaultItem.objects.get(account=account, platform_media_id=str(sent["id"]))
    message = MessageFactory(conversation__fan__account=account)
    MessageMedia.objects.create(
        account=account,
        message=message,
        vault_item=item,
        platform_media_id=item.platform_media_id,
        position=0,
    )
    # when: the creator deletes two items on the platform
    control(
        sandbox,
        "vault/remove",
        account_id=account.platform_account_id,
        ids=[sent["id"], other["id"]],
    )
    run = sync_again(account)
    # then: both are gone, still here, and the message still points at its item
    assert run.items_gone == 2
    gone = VaultItem.objects.filter(account=account, gone_at__isnull=False)
    assert {g.platform_media_id for g in gone} == {str(sent["id"]), str(other["id"])}
    assert VaultItem.objects.filter(account=account).count() == 15
    assert MessageMedia.objects.get(message=message).vault_item_id == item.pk
    # an item the platform lists again is present again
    control(
        sandbox, "vault/items", account_id=account.platform_account_id, items=[{"id": sent["id"]}]
    )
    back = sync_again(account)
    item.refresh_from_db()
    assert item.gone_at is None and back.items_gone == 0


def test_an_item_the_listing_skipped_is_asked_for_before_it_is_called_gone(sandbox, account):
    platform = vault_seed(sandbox, account, [{"type": "photo"} for _ in range(12)])
    run_to_end(the_run(account))
    skipped = str(platform[5]["id"])
    real_page = gateway.vault_items_page

    def page_without_one(**kwargs):
        # A list that moved under the pass: the item is on the platform, not on any page.
        page = real_page(**kwargs)
        kept = tuple(i for i in page.items if i.platform_media_id != skipped)
        return type(page)(
            items=kept, has_more=page.has_more, rate_limit_remaining=page.rate_limit_remaining
        )

    with mock.patch("onlyfans.vault_sync.gateway.vault_items_page", side_effect=page_without_one):
        run = sync_again(account)
    item = VaultItem.objects.get(account=account, platform_media_id=skipped)
    assert run.items_gone == 0 and item.gone_at is None
    assert (
        run.pass_started_at is not None and item.synced_at >= run.pass_started_at
    )  # confirmed by id in the gone phase


def test_lists_removed_on_the_platform_are_marked_gone(sandbox, account):
    run_to_end(the_run(account))
    assert VaultList.objects.filter(account=account, gone_at__isnull=True).count() == 4
    added = control(sandbox, "vault/lists", account_id=account.platform_account_id, name="Extra")
    assert isinstance(added, dict)
    sync_again(account)
    assert VaultList.objects.get(account=account, platform_list_id=str(added["id"])).name == "Extra"


def test_sync_is_scoped_to_its_account(sandbox, account, other_account):
    vault_seed(sandbox, account, [{"type": "photo"} for _ in range(3)])
    vault_seed(sandbox, other_account, [{"type": "video"} for _ in range(2)])
    run_to_end(the_run(account))
    assert VaultItem.objects.filter(account=account).count() == 3
    assert not VaultItem.objects.filter(account=other_account).exists()


# --- thumbnails ------------------------------------------------------------------------------


def test_expired_file_urls_leave_the_thumbnail_for_the_next_sync(sandbox, account):
    vault_seed(sandbox, account, [{"type": "photo"} for _ in range(3)])
    sandbox.configure(file_url_ttl_seconds=-1)  # every URL the sandbox gives has expired
    run = the_run(account)
    run_to_end(run)
    run.refresh_from_db()
    assert run.state == "done" and (run.thumbs_fetched, run.thumbs_failed) == (0, 3)
    assert sandbox.stats()["by_status"].get("403") == 3
    assert not VaultItem.objects.filter(account=account).exclude(thumb_name="").exists()
    sandbox.configure(file_url_ttl_seconds=300)
    again = sync_again(account)
    assert again.thumbs_fetched == 3
    assert not VaultItem.objects.filter(account=account, thumb_name="").exists()


# --- fan history -----------------------------------------------------------------------------


def test_chat_media_becomes_each_fans_history(sandbox, account):
    a, b, c = vault_seed(
        sandbox, account, [{"type": "photo"}, {"type": "video"}, {"type": "photo"}]
    )
    fan = FanFactory(account=account)
    ConversationFactory(fan=fan)
    quiet = FanFactory(account=account)  # no conversation: not asked for
    acct, chat = account.platform_account_id, fan.platform_fan_id
    control(
        sandbox, "chats/media", account_id=acct, chat_id=chat, media_ids=[a["id"]], minutes_ago=60
    )
    control(
        sandbox,
        "chats/media",
        account_id=acct,
        chat_id=chat,
        media_ids=[a["id"], b["id"]],
        previews=[a["id"]],
        price=15,
        opened=True,
        minutes_ago=30,
    )
    control(sandbox, "chats/media", account_id=acct, chat_id=chat, media_ids=[c["id"]], price=20)
    control(sandbox, "chats/media", account_id=acct, chat_id=chat, media_ids=[777], from_fan=True)
    run = the_run(account)
    run_to_end(run)
    run.refresh_from_db()
    events = {
        (e.platform_media_id, e.kind): e
        for e in FanMediaEvent.objects.filter(fan=fan).select_related("vault_item")
    }
    assert set(events) == {
        (str(a["id"]), "sent_free"),
        (str(b["id"]), "offered"),
        (str(b["id"]), "bought"),
        (str(c["id"]), "offered"),
    }
    assert events[(str(b["id"]), "bought")].price_cents == 1500
    assert events[(str(c["id"]), "offered")].price_cents == 2000
    assert all(e.source == "platform_history" for e in events.values())
    assert all(
        e.vault_item is not None and e.vault_item.account_id == account.pk for e in events.values()
    )
    assert not FanMediaEvent.objects.filter(fan=quiet).exists()
    assert (run.chats_done, run.events_imported) == (1, 4)
    # a second sync over the same history adds nothing
    Conversation.objects.filter(fan=fan).update(last_message_at=timezone.now())
    again = sync_again(account)
    assert (again.chats_done, again.events_imported) == (1, 0)
    assert FanMediaEvent.objects.filter(fan=fan).count() == 4


def test_later_syncs_read_only_chats_with_news(sandbox, account):
    [a, b] = vault_seed(sandbox, account, [{"type": "photo"}, {"type": "photo"}])
    busy, quiet = FanFactory(account=account), FanFactory(account=account)
    for fan in (busy, quiet):
        ConversationFactory(fan=fan, last_message_at=timezone.now() - timedelta(days=2))
    acct = account.platform_account_id
    control(
        sandbox, "chats/media", account_id=acct, chat_id=busy.platform_fan_id, media_ids=[a["id"]]
    )
    first = the_run(account)
    run_to_end(first)
    first.refresh_from_db()
    assert first.chats_done == 2  # the first run reads every chat
    # when: the busy fan gets something new (the fan sync or a webhook moves the conversation)
    control(
        sandbox,
        "chats/media",
        account_id=acct,
        chat_id=busy.platform_fan_id,
        media_ids=[b["id"]],
        minutes_ago=1,
    )
    Conversation.objects.filter(fan=busy).update(last_message_at=timezone.now())
    again = sync_again(account)
    # then: only that chat is read again
    assert (again.chats_done, again.events_imported) == (1, 1)
    assert FanMediaEvent.objects.filter(fan=busy, platform_media_id=str(b["id"])).exists()


def test_history_leaves_out_what_the_product_sent_itself(sandbox, account):
    [a] = vault_seed(sandbox, account, [{"type": "photo"}])
    fan = FanFactory(account=account)
    conversation = ConversationFactory(fan=fan)
    sent = control(
        sandbox,
        "chats/media",
        account_id=account.platform_account_id,
        chat_id=fan.platform_fan_id,
        media_ids=[a["id"]],
    )
    assert isinstance(sent, dict)
    ours = MessageFactory(
        conversation=conversation,
        direction="out",
        status="sent",
        sender_kind="user",
        sent_at=timezone.now(),
        platform_message_id=str(sent["id"]),
    )
    MessageMedia.objects.create(
        account=account, message=ours, platform_media_id=str(a["id"]), position=0
    )
    run_to_end(the_run(account))
    assert not FanMediaEvent.objects.filter(fan=fan).exists()
    # the message's media row is linked to the item once the item is synced
    assert MessageMedia.objects.get(message=ours).vault_item is not None


# --- rate limits, failures, resuming ----------------------------------------------------------


def test_429_waits_retry_after_on_the_broker_then_finishes(sandbox, account, sqs_queues):
    vault_seed(sandbox, account, [{"type": "photo"} for _ in range(5)])
    sandbox.configure(read_rate_limit_per_minute=1)
    gateway.vault_lists_page(account_platform_id=account.platform_account_id, offset=0, limit=10)
    with pytest.raises(GatewayRateLimited) as raised:
        gateway.vault_items_page(
            account_platform_id=account.platform_account_id, offset=0, limit=10
        )
    assert raised.value.retry_after_seconds is not None
    run = the_run(account)
    with mock.patch("onlyfans.vault_sync._publish") as publish:
        assert vault_sync_task(run.pk, 0) == "rate_limited"
    run.refresh_from_db()
    assert (run.state, run.step, run.phase, run.last_error_code) == (
        "running",
        1,
        "lists",
        "rate_limited",
    )
    assert run.retry_at is not None and 50 < (run.retry_at - timezone.now()).total_seconds() <= 61
    assert publish.call_args.kwargs["step"] == 1 and publish.call_args.kwargs["delay_seconds"] > 50
    # an early delivery waits again without a request
    requests = sandbox.stats()["requests"]
    with mock.patch("onlyfans.vault_sync._publish"):
        assert vault_sync_task(run.pk, 1) == "waiting"
    assert sandbox.stats()["requests"] == requests + 1  # the stats call itself
    sandbox.configure(read_rate_limit_per_minute=0)
    VaultSync.objects.filter(pk=run.pk).update(retry_at=timezone.now())
    with mock.patch("onlyfans.vault_sync._publish"):
        assert vault_sync_task(run.pk, 1) == "done"
    assert VaultItem.objects.filter(account=account).count() == 5


def test_low_quota_pauses_before_a_429(sandbox, account, settings):
    settings.FAN_SYNC_RATE_LIMIT_RESERVE = 5
    settings.VAULT_SYNC_PAGE_SIZE = 10
    vault_seed(sandbox, account, [{"type": "audio"} for _ in range(60)])
    sandbox.configure(read_rate_limit_per_minute=8)
    outcome = vault_sync_step(sync_id=the_run(account).pk, step=0)
    assert outcome.result == "paused"
    run = the_run(account)
    assert (run.phase, run.items_seen) == ("items", 20)  # lists, two pages, then 5 left
    assert sandbox.stats()["rate_limited"] == 0


def test_resumes_from_its_saved_offset_after_a_failure_midway(sandbox, account, settings):
    settings.FAN_SYNC_STEP_SECONDS = 0  # one page per step
    settings.VAULT_SYNC_PAGE_SIZE = 10
    vault_seed(sandbox, account, [{"type": "audio"} for _ in range(25)])
    run = the_run(account)
    assert vault_sync_step(sync_id=run.pk, step=0).result == "advanced"  # lists
    assert vault_sync_step(sync_id=run.pk, step=1).result == "advanced"  # items 0-9
    assert vault_sync_step(sync_id=run.pk, step=1).result == "superseded"  # a redelivery
    sandbox.configure(read_fail_next=1, fail_status=503)
    outcome = vault_sync_step(sync_id=run.pk, step=2)
    assert outcome.result == "retrying"
    run.refresh_from_db()
    assert (run.phase, run.offset, run.items_seen, run.errors_in_row) == ("items", 10, 10, 1)
    results = run_to_end(run)
    run.refresh_from_db()
    assert results[-1] == "done"
    assert (run.items_seen, run.items_created, run.errors_in_row) == (25, 25, 0)
    assert VaultItem.objects.filter(account=account).count() == 25


def test_disconnected_account_fails_the_run(sandbox, account):
    sandbox.configure(disconnected_accounts=[account.platform_account_id])
    run = the_run(account)
    assert vault_sync_step(sync_id=run.pk, step=0).result == "failed"
    run.refresh_from_db()
    account.refresh_from_db()
    assert (
        run.last_error_code == "account_not_authenticated" and account.connection_state == "expired"
    )


def test_task_publishes_its_next_step_on_the_bulk_queue(sandbox, account, sqs_queues, settings):
    from onlyfans.broker import queue_names, sqs_client

    settings.FAN_SYNC_STEP_SECONDS = 0
    run = the_run(account)
    assert vault_sync_task(run.pk, 0) == "advanced"
    [raw] = sqs_client().receive_message(
        QueueUrl=sqs_queues[queue_names().bulk], WaitTimeSeconds=2
    )["Messages"]
    envelope = json.loads(base64.b64decode(raw["Body"]))
    args, _kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    assert envelope["headers"]["task"] == "onlyfans.tasks.vault_sync_task"
    assert args == [run.pk, 1]


# --- starting -------------------------------------------------------------------------------


def test_one_active_run_per_account(account):
    run = the_run(account)
    again, created = vault_sync_start(account=account, trigger=VaultSync.Trigger.BUTTON)
    assert (again.pk, created) == (run.pk, False)
    with pytest.raises(IntegrityError), transaction.atomic():
        VaultSync.objects.create(account=account, trigger=VaultSync.Trigger.BUTTON)


def test_connected_account_queues_a_sync_on_creation_and_on_reconnect(
    django_capture_on_commit_callbacks,
):
    with mock.patch("onlyfans.vault_sync._publish") as publish:
        account = CreatorAccountFactory()
        expired = CreatorAccountFactory(connection_state="expired")
    assert the_run(account).trigger == "connect"
    assert not VaultSync.objects.filter(account=expired).exists()
    publish.assert_not_called()
    VaultSync.objects.filter(account=account).update(state="done", finished_at=timezone.now())
    account_connection_set(account=account, connected=False)
    with (
        mock.patch("onlyfans.vault_sync._publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        account_connection_set(account=account, connected=True)
    run = the_run(account)
    publish.assert_called_once_with(sync_id=run.pk, step=0)


def test_schedule_starts_due_accounts_and_resumes_lost_runs():
    now = timezone.now()
    due, recent, stalled = (CreatorAccountFactory() for _ in range(3))
    VaultSync.objects.update(state="done", finished_at=now)
    VaultSync.objects.filter(account__in=[due, stalled]).update(created_at=now - timedelta(hours=7))
    lost = VaultSync.objects.create(account=stalled, trigger="schedule", step=4, state="running")
    VaultSync.objects.filter(pk=lost.pk).update(
        started_at=now - timedelta(hours=1), updated_at=now - timedelta(hours=1)
    )
    with mock.patch("onlyfans.vault_sync._publish") as publish:
        result = vault_syncs_schedule()
    assert result == {"resumed": 1, "started": 1}
    assert VaultSync.objects.get(account=due, state="queued").trigger == "schedule"
    assert not VaultSync.objects.filter(account=recent, state="queued").exists()
    assert (lost.pk, 4) in {(c.kwargs["sync_id"], c.kwargs["step"]) for c in publish.call_args_list}


# --- the gateway and the sandbox ----------------------------------------------------------------


def test_gateway_vault_filters_and_one_item(sandbox, account):
    lists = sandbox_lists(account)
    platform = vault_seed(
        sandbox,
        account,
        [
            {"type": "photo", "lists": [lists[0]["id"]]},
            {"type": "video", "lists": []},
            {"type": "video", "lists": []},
        ],
    )
    acct = account.platform_account_id
    videos = gateway.vault_items_page(
        account_platform_id=acct, offset=0, limit=10, media_type="video"
    )
    assert [i.media_type for i in videos.items] == ["video", "video"] and not videos.has_more
    assert videos.rate_limit_remaining is not None
    in_list = gateway.vault_items_page(
        account_platform_id=acct, offset=0, limit=3, platform_list_id=str(lists[0]["id"])
    )
    assert [i.platform_media_id for i in in_list.items] == [str(platform[0]["id"])]
    item, _ = gateway.vault_item_get(
        account_platform_id=acct, platform_media_id=str(platform[1]["id"])
    )
    assert item is not None and item.media_type == "video" and item.thumb_url
    assert "thumb_url" not in repr(item)  # signed URLs stay out of logs and reprs
    assert gateway.vault_item_get(account_platform_id=acct, platform_media_id="123")[0] is None


def test_sandbox_send_records_media_files_and_previews(sandbox, account):
    from onlyfans.contracts import SendRequest

    gateway.message_send(
        SendRequest(
            account_platform_id=account.platform_account_id,
            chat_id="123",
            text="hi",
            price_cents=1500,
            media_ids=("3001", "ofapi_media_9"),
            idempotency_key="k-1",
        )
    )
    [sent] = sandbox.messages(account.platform_account_id)
    assert sent["media_files"] == [3001, "ofapi_media_9"] and sent["previews"] == []


def test_thumbnails_past_the_page_budget_wait_for_the_next_sync(sandbox, account, settings):
    vault_seed(sandbox, account, [{"type": "photo"} for _ in range(4)])
    settings.VAULT_THUMB_PAGE_BUDGET_SECONDS = 0  # a file server too slow for this page
    run = the_run(account)
    run_to_end(run)
    run.refresh_from_db()
    assert run.state == "done" and (run.items_created, run.thumbs_fetched) == (4, 0)
    settings.VAULT_THUMB_PAGE_BUDGET_SECONDS = 30
    assert sync_again(account).thumbs_fetched == 4


def test_file_fetch_refuses_bad_urls_expired_signatures_and_big_files(sandbox, account):
    from onlyfans.contracts import GatewayRejected

    [p] = vault_seed(sandbox, account, [{"type": "photo"}])
    item, _ = gateway.vault_item_get(
        account_platform_id=account.platform_account_id, platform_media_id=str(p["id"])
    )
    assert item is not None and item.thumb_url is not None
    assert gateway.media_file_fetch(url=item.thumb_url, max_bytes=1_000_000)[:2] == b"\xff\xd8"
    with pytest.raises(GatewayRejected) as big:
        gateway.media_file_fetch(url=item.thumb_url, max_bytes=100)
    assert big.value.code == "file_too_large"
    with pytest.raises(GatewayRejected) as forged:
        gateway.media_file_fetch(url=item.thumb_url[:-4] + "0000", max_bytes=1_000_000)
    assert forged.value.status == 403
    with pytest.raises(GatewayRejected) as bad:
        gateway.media_file_fetch(url="ftp://example.test/x.jpg", max_bytes=10)
    assert bad.value.code == "invalid_file_url"


def test_an_item_without_a_platform_time_keeps_its_place(account):
    from onlyfans.contracts import PlatformVaultItem
    from onlyfans.vault_sync import vault_items_store

    item = PlatformVaultItem(
        platform_media_id="42",
        media_type="photo",
        created_at=None,
        duration_seconds=None,
        is_ready=True,
        has_error=False,
        has_custom_preview=False,
        likes_count=1,
        tips_cents=0,
    )
    assert vault_items_store(account=account, items=[item]) == (1, 0)
    first = VaultItem.objects.get(account=account, platform_media_id="42").platform_created_at
    # seen again, still without a time, nothing changed: same place in the library
    assert vault_items_store(account=account, items=[item]) == (0, 0)
    again = VaultItem.objects.get(account=account, platform_media_id="42").platform_created_at
    assert again == first
