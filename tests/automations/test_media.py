"""An automation's media picked from the vault: the editor's picker and chips, the checks at
save (gone, not ready, another account's), the resolution to platform ids when a run's
message is queued (and its refusal when an item went away since), and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from automations import due, runs
from automations.models import Automation, AutomationRun
from crm.models import Fan, FanMediaEvent, Message, MessageMedia
from tests.factories import (
    AutomationFactory,
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    VaultItemFactory,
)

pytestmark = pytest.mark.django_db

State = AutomationRun.State
Reason = AutomationRun.Reason


@pytest.fixture
def shop():
    account = CreatorAccountFactory(time_zone="Europe/Berlin")
    owner = MembershipFactory(account=account, role="owner").user
    return type("Shop", (), {"account": account, "owner": owner})


@pytest.fixture
def owner_client(client, shop):
    client.force_login(shop.owner)
    return client


def _form(**overrides):
    data = {
        "name": "Welcome",
        "trigger": "subscribed",
        "trigger_value": "",
        "text": "Hey {name|babe}, welcome!",
        "price": "",
        "media_ids": "",
        "delay_minutes": "0",
        "delay_spread_minutes": "0",
        "control_percent": "0",
        "block_banned_words": "",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def _pid(item):
    return item.platform_media_id


def _body(response) -> str:
    return response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')


# --- the editor -------------------------------------------------------------------------------


def test_the_editor_offers_the_vault_picker_not_a_text_field(owner_client, shop):
    response = owner_client.get(reverse("automation_new", args=[shop.account.pk]))

    body = _body(response)
    assert response.status_code == 200
    assert 'data-media-picker-open="media-picker-account"' in body
    assert f'data-picker-url="{reverse("media_picker", args=[shop.account.pk])}"' in body
    assert 'data-composer="automation-form"' in body
    assert 'id="media-chip-template"' in body
    # the raw ids only as a hidden input: nobody types ids any more
    assert 'type="hidden" name="media_ids"' in body
    assert 'placeholder="vault ids, comma-separated"' not in body


def test_a_ppv_welcome_with_picked_media_is_saved_as_vault_items(owner_client, shop):
    first = VaultItemFactory(account=shop.account)
    second = VaultItemFactory(account=shop.account, media_type="video")
    url = reverse("automation_new", args=[shop.account.pk])

    response = owner_client.post(url, _form(price="15", vault_item_ids=[second.pk, first.pk]))

    assert response.status_code == 302, _body(response)[:2000]
    automation = Automation.objects.get(account=shop.account)
    assert automation.vault_item_ids == [second.pk, first.pk]
    assert automation.media_ids == []
    assert automation.price_cents == 1500


def test_the_edit_page_shows_the_chosen_items_with_thumbnails(owner_client, shop):
    item = VaultItemFactory(
        account=shop.account, thumb_name="thumbs/a.jpg", thumb_fetched_at=timezone.now()
    )
    automation = AutomationFactory(account=shop.account, vault_item_ids=[item.pk])

    response = owner_client.get(reverse("automation_edit", args=[shop.account.pk, automation.pk]))

    body = _body(response)
    assert f'<li class="media-chip" data-item-id="{item.pk}">' in body
    assert f'name="vault_item_ids" value="{item.pk}"' in body
    assert reverse("vault_item_thumb", args=[shop.account.pk, item.pk]) in body
    assert f"#{item.platform_media_id}" in body


def test_an_older_automations_raw_ids_come_back_as_chips_and_unknown_ones_are_kept(
    owner_client, shop
):
    item = VaultItemFactory(account=shop.account)
    automation = AutomationFactory(
        account=shop.account, price_cents=900, media_ids=[item.platform_media_id, "ofapi_legacy"]
    )
    url = reverse("automation_edit", args=[shop.account.pk, automation.pk])

    body = _body(owner_client.get(url))
    assert f'name="vault_item_ids" value="{item.pk}"' in body
    assert 'name="media_ids" value="ofapi_legacy"' in body

    # saved again as the page posts it back: the item by our id, the unknown id raw
    response = owner_client.post(
        url, _form(price="9", vault_item_ids=[item.pk], media_ids="ofapi_legacy")
    )
    assert response.status_code == 302, _body(response)[:2000]
    automation.refresh_from_db()
    assert (automation.vault_item_ids, automation.media_ids) == ([item.pk], ["ofapi_legacy"])


@pytest.mark.parametrize(
    ("item_fields", "why"),
    [
        ({"gone_at": timezone.now()}, "Removed on the platform"),
        ({"is_ready": False}, "Still processing"),
        ({"has_error": True}, "Error on the platform"),
    ],
)
def test_an_item_that_cannot_be_sent_is_refused_with_its_reason(
    owner_client, shop, item_fields, why
):
    item = VaultItemFactory(account=shop.account, **item_fields)

    response = owner_client.post(
        reverse("automation_new", args=[shop.account.pk]),
        _form(price="10", vault_item_ids=[item.pk]),
    )

    assert response.status_code == 422
    body = _body(response)
    assert f"photo #{item.platform_media_id}: {why}" in body
    # the chip stays on the page so it can be removed
    assert f'name="vault_item_ids" value="{item.pk}"' in body
    assert not Automation.objects.exists()


def test_another_accounts_item_is_refused_and_never_shown(owner_client, shop):
    foreign = VaultItemFactory(account=CreatorAccountFactory())

    response = owner_client.post(
        reverse("automation_new", args=[shop.account.pk]), _form(vault_item_ids=[foreign.pk])
    )

    body = _body(response)
    assert response.status_code == 422
    assert f"Item {foreign.pk}: Not in this account's vault" in body
    assert _pid(foreign) not in body
    assert not Automation.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"price": "10"}, "A paid message needs at least one media file"),
        ({"price": "2"}, "between $3 and $200"),
        ({"price": "250"}, "less than or equal to 200"),
        ({"vault_item_ids": ["abc"]}, "Pick media from the vault."),
    ],
)
def test_price_rules_with_picked_media(owner_client, shop, overrides, error):
    item = VaultItemFactory(account=shop.account)
    data = {"vault_item_ids": [item.pk], **overrides}
    if overrides.get("price") == "10":
        data.pop("vault_item_ids")

    response = owner_client.post(reverse("automation_new", args=[shop.account.pk]), _form(**data))

    assert response.status_code == 422
    assert error in _body(response)
    assert not Automation.objects.exists()


def test_the_preview_and_dry_run_still_answer_with_media_picked(owner_client, shop):
    item = VaultItemFactory(account=shop.account)
    FanFactory(account=shop.account, display_name="Mia")
    data = _form(vault_item_ids=[item.pk], price="12")

    preview = owner_client.post(reverse("automation_preview", args=[shop.account.pk]), data)
    reach = owner_client.post(reverse("automation_reach", args=[shop.account.pk]), data)

    assert preview.status_code == 200 and "Hey Mia, welcome!" in _body(preview)
    assert reach.status_code == 200 and 'id="reach-count"' in _body(reach)


# --- when a run's message is queued -----------------------------------------------------------


def _subscribed(fan: Fan, *, now) -> AutomationRun:
    fan.subscription_state = Fan.SubscriptionState.ACTIVE
    fan.subscribed_at = now
    fan.save()
    [run] = runs.automation_runs_on_subscription(
        account=fan.account,
        fan=fan,
        event="subscriptions.new",
        previous_state=Fan.SubscriptionState.NEVER,
        previous_expires_at=None,
        now=now,
    )
    return run


def test_the_message_carries_the_items_platform_ids_then_the_raw_ones(shop):
    first = VaultItemFactory(account=shop.account)
    second = VaultItemFactory(account=shop.account, media_type="video")
    AutomationFactory(
        account=shop.account,
        price_cents=1500,
        vault_item_ids=[second.pk, first.pk],
        media_ids=[first.platform_media_id, "ofapi_raw"],
    )
    fan = FanFactory(account=shop.account)
    now = timezone.now()
    run = _subscribed(fan, now=now)

    assert due.automation_run_process(run_id=run.pk, now=now + timedelta(seconds=1)) == "enqueued"

    run.refresh_from_db()
    message = Message.objects.get(pk=run.message_id)
    # a raw id that is one of the items is sent once, as the item
    assert message.media_ids == [second.platform_media_id, first.platform_media_id, "ofapi_raw"]
    assert message.price_cents == 1500
    assert message.sender_kind == Message.SenderKind.AUTOMATION
    rows = MessageMedia.objects.filter(message=message).order_by("position")
    assert [r.vault_item_id for r in rows] == [second.pk, first.pk, None]


def test_a_ppv_welcome_reaches_the_sandbox_with_the_items_platform_ids(
    studio, sandbox, send_queue, django_capture_on_commit_callbacks
):
    # given: a $12 welcome with two items picked from the vault
    first = VaultItemFactory(account=studio.account)
    second = VaultItemFactory(account=studio.account, media_type="video")
    AutomationFactory(
        account=studio.account, price_cents=1200, vault_item_ids=[first.pk, second.pk]
    )
    fan = FanFactory(account=studio.account)
    now = timezone.now()
    run = _subscribed(fan, now=now)
    # when: the run is due and the pipeline sends it
    with django_capture_on_commit_callbacks(execute=True):
        assert due.automation_run_process(run_id=run.pk, now=now) == "enqueued"
    send_queue.drain(
        until=lambda: Message.objects.filter(status=Message.Status.SENT).exists(), timeout=45
    )
    # then: the platform got the items' ids in mediaFiles, at the price
    [stored] = sandbox.messages(account=studio.account.platform_account_id)
    assert stored["media_files"] == [int(_pid(first)), int(_pid(second))]
    assert stored["price"] == 12


def test_an_item_removed_since_the_automation_was_saved_skips_the_run_with_its_reason(shop):
    item = VaultItemFactory(account=shop.account)
    AutomationFactory(account=shop.account, price_cents=900, vault_item_ids=[item.pk])
    fan = FanFactory(account=shop.account)
    now = timezone.now()
    run = _subscribed(fan, now=now)
    item.gone_at = now
    item.save(update_fields=["gone_at"])

    assert due.automation_run_process(run_id=run.pk, now=now + timedelta(seconds=1)) == "skipped"

    run.refresh_from_db()
    assert (run.state, run.reason, run.message_id) == (
        State.SKIPPED,
        Reason.MEDIA_UNAVAILABLE,
        None,
    )
    assert not Message.objects.filter(conversation__fan=fan).exists()


def test_an_item_the_fan_already_has_skips_the_run_by_the_resend_guard(shop):
    item = VaultItemFactory(account=shop.account)
    AutomationFactory(account=shop.account, vault_item_ids=[item.pk])
    fan = FanFactory(account=shop.account)
    FanMediaEvent.objects.create(
        account=shop.account,
        fan=fan,
        vault_item=item,
        platform_media_id=item.platform_media_id,
        kind="bought",
        price_cents=2500,
        at=timezone.now() - timedelta(days=3),
        source="platform_history",
    )
    now = timezone.now()
    run = _subscribed(fan, now=now)

    assert due.automation_run_process(run_id=run.pk, now=now + timedelta(seconds=1)) == "skipped"

    run.refresh_from_db()
    assert (run.state, run.reason) == (State.SKIPPED, Reason.MEDIA_ALREADY_SENT)
    assert not Message.objects.filter(conversation__fan=fan).exists()


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
def api(shop) -> APIClient:
    client = APIClient()
    client.force_authenticate(shop.owner)
    return client


WELCOME = {"name": "Welcome", "trigger": "subscribed", "text": "Hey {name|babe}!"}


def test_the_api_takes_vault_item_ids_and_still_raw_media_ids(api, shop):
    item = VaultItemFactory(account=shop.account)
    body = {**WELCOME, "account": shop.account.pk, "price_cents": 1200}

    created = api.post(
        "/api/automations/",
        {**body, "vault_item_ids": [item.pk], "media_ids": ["ofapi_1"]},
        format="json",
    )

    assert created.status_code == 201, created.content
    data = created.json()
    assert (data["vault_item_ids"], data["media_ids"]) == ([item.pk], ["ofapi_1"])
    # a script that only knows platform ids still works
    raw = api.post(
        "/api/automations/", {**body, "name": "Raw", "media_ids": ["ofapi_2"]}, format="json"
    )
    assert raw.status_code == 201, raw.content
    assert raw.json()["vault_item_ids"] == []
    # a partial update leaves the media alone
    patched = api.patch(f"/api/automations/{data['id']}", {"price_cents": 1500}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["vault_item_ids"] == [item.pk]


def test_the_api_refuses_a_gone_or_foreign_item_by_field(api, shop):
    gone = VaultItemFactory(account=shop.account, gone_at=timezone.now())
    foreign = VaultItemFactory(account=CreatorAccountFactory())

    response = api.post(
        "/api/automations/",
        {**WELCOME, "account": shop.account.pk, "vault_item_ids": [gone.pk, foreign.pk]},
        format="json",
    )

    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "invalid_automation"
    [error] = answer["errors"]["vault_item_ids"]
    assert f"photo #{gone.platform_media_id}: Removed on the platform" in error
    assert f"Item {foreign.pk}: Not in this account's vault" in error
    assert foreign.platform_media_id not in error
    assert not Automation.objects.exists()


def test_vault_item_ids_are_in_the_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    for name in (
        "AutomationCreateRequest",
        "PatchedAutomationUpdateRequest",
        "AutomationWithFigures",
    ):
        assert "vault_item_ids" in components[name]["properties"], name
    field = components["AutomationCreateRequest"]["properties"]["vault_item_ids"]
    assert "vault" in field["description"] and field["items"]["type"] == "integer"
