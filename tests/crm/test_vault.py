"""The vault in the product: the library page, inline edits, thumbnails served to members
only, the selector the picker reuses and the API, with pinned query counts."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from crm.errors import ApplicationError
from crm.models import VaultItem, VaultItemList
from crm.vault import (
    VaultFilters,
    labels_parse,
    vault_items_for_account,
    vault_thumb_storage,
)
from tests.factories import MembershipFactory, VaultItemFactory, VaultListFactory

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def thumbs(settings, tmp_path):
    settings.VAULT_THUMB_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "thumbs")},
    }


@pytest.fixture
def manager(account):
    return MembershipFactory(account=account, role="manager").user


def _thumb(item: VaultItem, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    image = Image.new("RGB", (240, 240), colour)
    out = io.BytesIO()
    image.save(out, format="JPEG")
    data = out.getvalue()
    name = vault_thumb_storage().save(
        f"vault/{item.account_id}/{item.platform_media_id}.jpg", io.BytesIO(data)
    )
    VaultItem.objects.filter(pk=item.pk).update(thumb_name=name, thumb_fetched_at=timezone.now())
    return data


def _library(account, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/accounts/{account.pk}/vault/" + (f"?{query}" if query else "")


def _items(account, n: int, **kwargs) -> list[VaultItem]:
    return [VaultItemFactory(account=account, **kwargs) for _ in range(n)]


def _in_list(item: VaultItem, vault_list) -> None:
    VaultItemList.objects.create(item=item, vault_list=vault_list)


# --- the selector (the composer's picker reuses it) ---------------------------------------------


def test_selector_pages_newest_first_without_gaps_or_repeats(account, chatter):
    items = _items(account, 7)
    seen: list[int] = []
    cursor = None
    while True:
        page = vault_items_for_account(user=chatter, account_id=account.pk, cursor=cursor, limit=3)
        seen += [i.pk for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [i.pk for i in reversed(items)]


def test_selector_filters_combine(account, chatter):
    feet = VaultListFactory(account=account, name="Feet pics")
    photo, video, labelled, gone, not_ready = (
        VaultItemFactory(account=account),
        VaultItemFactory(account=account, media_type="video", duration_seconds=65),
        VaultItemFactory(account=account, labels=["custom", "$25 tier"]),
        VaultItemFactory(account=account, gone_at=timezone.now()),
        VaultItemFactory(account=account, is_ready=False),
    )
    _in_list(photo, feet)
    _in_list(video, feet)

    def ids(**kwargs) -> set[int]:
        page = vault_items_for_account(
            user=chatter, account_id=account.pk, filters=VaultFilters(**kwargs)
        )
        return {i.pk for i in page.items}

    assert ids() == {photo.pk, video.pk, labelled.pk, not_ready.pk}
    assert ids(include_gone=True) == {photo.pk, video.pk, labelled.pk, not_ready.pk, gone.pk}
    assert ids(media_type="video") == {video.pk}
    assert ids(list_id=feet.pk) == {photo.pk, video.pk}
    assert ids(list_id=feet.pk, media_type="photo") == {photo.pk}
    assert ids(label="custom") == {labelled.pk}
    assert ids(q="25 ti") == {labelled.pk}  # part of a label
    assert ids(q="FEET") == {photo.pk, video.pk}  # part of a list name, any case
    assert ids(q="100%") == set()  # LIKE wildcards are plain characters
    assert ids(only_sendable=True) == {photo.pk, video.pk, labelled.pk}


def test_selector_is_scoped_and_refuses_foreign_cursors(account, other_account, chatter):
    VaultItemFactory(account=other_account)
    with pytest.raises(ApplicationError) as refused:
        vault_items_for_account(user=chatter, account_id=other_account.pk)
    assert refused.value.status_code == 404
    with pytest.raises(ApplicationError) as bad:
        vault_items_for_account(user=chatter, account_id=account.pk, cursor="bm90IGEgY3Vyc29y")
    assert bad.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Feet,  Custom ,feet,, $25   Tier", ["feet", "custom", "$25 tier"]),
        (["A", " b "], ["a", "b"]),
        ("", []),
    ],
)
def test_labels_are_normalised(raw, expected):
    assert labels_parse(raw) == expected


@pytest.mark.parametrize(
    "raw", ["x" * 41, ",".join(f"l{i}" for i in range(21)), "a" * 2001, [1, 2]]
)
def test_labels_over_the_caps_are_refused(raw):
    with pytest.raises(ApplicationError) as refused:
        labels_parse(raw)
    assert refused.value.code == "invalid_labels"


# --- the library page --------------------------------------------------------------------------


def test_library_shows_cards_with_type_duration_lists_labels_price_and_state(
    client, account, chatter
):
    feet = VaultListFactory(account=account, name="Feet")
    video = VaultItemFactory(
        account=account,
        media_type="video",
        duration_seconds=125,
        labels=["teaser"],
        suggested_price_cents=2500,
    )
    _in_list(video, feet)
    _thumb(video)
    VaultItemFactory(account=account, media_type="audio", is_ready=False)
    client.force_login(chatter)
    response = client.get(_library(account))
    html = response.content.decode()
    assert response.status_code == 200
    card = html[html.index(f'id="vault-item-{video.pk}"') :]
    card = card[: card.index("</article>")]
    assert "Video · 2:05" in card and "$25" in card and "teaser" in card and "Feet" in card
    assert f"/accounts/{account.pk}/vault/{video.pk}/thumb?v=" in card
    assert "Processing" in html  # the audio still being processed on the platform
    assert "Edit" not in card  # chatters do not edit the vault
    assert f'href="/accounts/{account.pk}/vault/"' in html  # the nav link


def test_library_query_count_is_flat(client, account, chatter, django_assert_num_queries):
    lists = [VaultListFactory(account=account) for _ in range(3)]
    for item in _items(account, 5, labels=["a", "b"]):
        _in_list(item, lists[0])
    client.force_login(chatter)
    client.get(_library(account))  # warm the session
    # session, user, membership (context), memberships (switcher), membership, items, their
    # lists, the lists filter, the labels filter
    with django_assert_num_queries(9):
        small = client.get(_library(account))
    for item in _items(account, 40, labels=["c"]):
        _in_list(item, lists[1])
        _in_list(item, lists[2])
    with django_assert_num_queries(9):
        large = client.get(_library(account))
    assert small.status_code == large.status_code == 200
    assert large.content.decode().count('class="vault-item') == 45


def test_more_button_appends_the_next_page(client, account, chatter, settings):
    settings.VAULT_PAGE_SIZE = 4
    items = _items(account, 6)
    client.force_login(chatter)
    first = client.get(_library(account)).content.decode()
    assert first.count('class="vault-item') == 4
    cursor = re.search(r"cursor=([A-Za-z0-9_-]+)", first)
    assert cursor is not None
    more = client.get(_library(account, cursor=cursor[1]), headers=HTMX).content.decode()
    assert "<html" not in more
    assert [int(m) for m in re.findall(r'id="vault-item-(\d+)"', more)] == [
        items[1].pk,
        items[0].pk,
    ]
    assert "cursor=" not in more  # the last page


def test_filters_swap_the_grid_only(client, account, chatter):
    VaultItemFactory(account=account, media_type="video")
    VaultItemFactory(account=account, media_type="photo")
    client.force_login(chatter)
    response = client.get(
        _library(account, type="video"), headers={**HTMX, "HX-Target": "vault-grid"}
    )
    html = response.content.decode()
    assert html.startswith('<div id="vault-grid">') or html.lstrip().startswith(
        '<div id="vault-grid">'
    )
    assert html.count('class="vault-item') == 1 and 'data-media-type="video"' in html


def test_bad_cursor_is_a_clear_400(client, account, chatter):
    client.force_login(chatter)
    response = client.get(_library(account, cursor="%%%"), headers=HTMX)
    assert response.status_code == 400
    assert "not valid" in response.content.decode()


def test_another_accounts_library_is_404_and_anonymous_goes_to_login(
    client, account, other_account, chatter
):
    client.force_login(chatter)
    assert client.get(_library(other_account)).status_code == 404
    client.logout()
    response = client.get(_library(account))
    assert response.status_code == 302 and "/login/" in response["Location"]


# --- inline edits -----------------------------------------------------------------------------


def test_manager_edits_labels_and_price_inline(client, account, manager):
    item = VaultItemFactory(account=account)
    client.force_login(manager)
    form = client.get(f"/accounts/{account.pk}/vault/{item.pk}/", headers=HTMX)
    assert form.status_code == 200 and 'name="labels"' in form.content.decode()
    response = client.post(
        f"/accounts/{account.pk}/vault/{item.pk}/",
        {"labels": "Feet, custom,feet", "price": "$12.50"},
        headers=HTMX,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<article") and "$12.50" in html and "custom" in html
    item.refresh_from_db()
    assert (item.labels, item.suggested_price_cents) == (["feet", "custom"], 1250)
    # clearing the price
    client.post(
        f"/accounts/{account.pk}/vault/{item.pk}/", {"labels": "feet", "price": ""}, headers=HTMX
    )
    item.refresh_from_db()
    assert item.suggested_price_cents is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"labels": "x" * 41, "price": ""}, "longer than 40"),
        ({"labels": ",".join(f"l{i}" for i in range(21)), "price": ""}, "At most 20"),
        ({"labels": "", "price": "2"}, "between $3 and $200"),
        ({"labels": "", "price": "lots"}, "in dollars"),
    ],
)
def test_bad_edits_come_back_with_the_reason_and_save_nothing(
    client, account, manager, data, message
):
    item = VaultItemFactory(account=account, labels=["keep"], suggested_price_cents=1000)
    client.force_login(manager)
    response = client.post(f"/accounts/{account.pk}/vault/{item.pk}/", data, headers=HTMX)
    assert response.status_code == 422
    assert message in response.content.decode()
    item.refresh_from_db()
    assert (item.labels, item.suggested_price_cents) == (["keep"], 1000)


def test_chatters_cannot_edit_and_other_accounts_items_are_404(
    client, account, other_account, chatter, manager
):
    item = VaultItemFactory(account=account)
    foreign = VaultItemFactory(account=other_account)
    client.force_login(chatter)
    assert (
        client.post(f"/accounts/{account.pk}/vault/{item.pk}/", {"labels": "x"}).status_code == 403
    )
    client.force_login(manager)
    # another account's item under this account's URL, and under its own
    assert (
        client.post(f"/accounts/{account.pk}/vault/{foreign.pk}/", {"labels": "x"}).status_code
        == 404
    )
    assert (
        client.post(
            f"/accounts/{other_account.pk}/vault/{foreign.pk}/", {"labels": "x"}
        ).status_code
        == 404
    )
    foreign.refresh_from_db()
    assert foreign.labels == []


def test_edit_without_javascript_is_a_page_and_redirects_back(client, account, manager):
    item = VaultItemFactory(account=account)
    client.force_login(manager)
    page = client.get(f"/accounts/{account.pk}/vault/{item.pk}/")
    assert "<html" in page.content.decode() and "Edit vault item" in page.content.decode()
    response = client.post(
        f"/accounts/{account.pk}/vault/{item.pk}/", {"labels": "a", "price": "5"}
    )
    assert response.status_code == 302 and response["Location"] == f"/accounts/{account.pk}/vault/"


# --- thumbnails ---------------------------------------------------------------------------------


def test_thumbnail_is_served_to_members_with_private_caching(
    client, account, chatter, django_assert_num_queries
):
    item = VaultItemFactory(account=account)
    data = _thumb(item)
    client.force_login(chatter)
    client.get(_library(account))  # warm the session
    with django_assert_num_queries(3):  # session, user, the item joined to the membership
        response = client.get(f"/accounts/{account.pk}/vault/{item.pk}/thumb")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "image/jpeg"
    cache = response["Cache-Control"]
    assert "private" in cache and "public" not in cache and "max-age=" in cache
    again = client.get(
        f"/accounts/{account.pk}/vault/{item.pk}/thumb", headers={"If-None-Match": response["ETag"]}
    )
    assert again.status_code == 304


def test_thumbnail_of_another_account_is_404_and_anonymous_is_refused(
    client, account, other_account, chatter
):
    mine = VaultItemFactory(account=account)
    foreign = VaultItemFactory(account=other_account)
    _thumb(mine)
    _thumb(foreign)
    client.force_login(chatter)
    assert client.get(f"/accounts/{other_account.pk}/vault/{foreign.pk}/thumb").status_code == 404
    assert client.get(f"/accounts/{account.pk}/vault/{foreign.pk}/thumb").status_code == 404
    no_thumb = VaultItemFactory(account=account)
    assert client.get(f"/accounts/{account.pk}/vault/{no_thumb.pk}/thumb").status_code == 404
    client.logout()
    response = client.get(f"/accounts/{account.pk}/vault/{mine.pk}/thumb")
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_removed_member_loses_the_thumbnails(client, account, chatter):
    item = VaultItemFactory(account=account)
    _thumb(item)
    client.force_login(chatter)
    assert client.get(f"/accounts/{account.pk}/vault/{item.pk}/thumb").status_code == 200
    chatter.memberships.all().delete()
    assert client.get(f"/accounts/{account.pk}/vault/{item.pk}/thumb").status_code == 404


# --- the sync's status on the page ---------------------------------------------------------------


def test_refresh_button_queues_a_sync_for_managers_only(
    client, account, manager, chatter, django_capture_on_commit_callbacks
):
    from unittest import mock

    from crm.models import VaultSync

    VaultSync.objects.filter(account=account).update(state="done", finished_at=timezone.now())
    client.force_login(chatter)
    status = client.get(f"/accounts/{account.pk}/vault/sync/", headers=HTMX).content.decode()
    assert "Refresh" not in status and "Synced" in status
    assert client.post(f"/accounts/{account.pk}/vault/sync/", headers=HTMX).status_code == 403
    client.force_login(manager)
    with (
        mock.patch("onlyfans.vault_sync._publish") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(f"/accounts/{account.pk}/vault/sync/?watching=1", headers=HTMX)
    run = VaultSync.objects.get(account=account, state="queued")
    assert (run.trigger, run.requested_by_id) == ("button", manager.pk)
    publish.assert_called_once_with(sync_id=run.pk, step=0)
    html = response.content.decode()
    assert "Refresh queued" in html and 'hx-trigger="every 2s"' in html
    # a finished run the page watched reloads the grid once
    VaultSync.objects.filter(pk=run.pk).update(state="done", finished_at=timezone.now())
    done = client.get(
        f"/accounts/{account.pk}/vault/sync/?watching=1", headers=HTMX
    ).content.decode()
    assert 'hx-target="#vault-grid"' in done and "every 2s" not in done


# --- the API -------------------------------------------------------------------------------------


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_api_lists_items_with_filters_and_cursor_pages(account, chatter, django_assert_num_queries):
    feet = VaultListFactory(account=account, name="Feet")
    items = _items(account, 5, media_type="video", duration_seconds=30)
    for item in items:
        _in_list(item, feet)
    _thumb(items[-1])
    VaultItemFactory(account=account, media_type="photo")
    api = _api(chatter)
    url = f"/api/crm/accounts/{account.pk}/vault/"
    with django_assert_num_queries(3):  # membership, items, their lists
        first = api.get(url, {"type": "video", "limit": 3})
    assert first.status_code == 200
    body = first.json()
    assert [r["id"] for r in body["results"]] == [i.pk for i in reversed(items)][:3]
    top = body["results"][0]
    assert top["lists"] == [
        {
            "id": feet.pk,
            "platform_list_id": feet.platform_list_id,
            "name": "Feet",
            "list_type": "custom",
        }
    ]
    assert top["thumbnail_url"].startswith(f"/accounts/{account.pk}/vault/{items[-1].pk}/thumb?v=")
    assert body["results"][1]["thumbnail_url"] is None
    with django_assert_num_queries(3):
        second = api.get(url, {"type": "video", "limit": 3, "cursor": body["next_cursor"]})
    assert [r["id"] for r in second.json()["results"]] == [items[1].pk, items[0].pk]
    assert second.json()["next_cursor"] is None
    # the count stays flat with more items on the page
    _items(account, 30, media_type="video")
    with django_assert_num_queries(3):
        api.get(url, {"type": "video", "limit": 30})


def test_api_is_scoped_and_validates(account, other_account, chatter):
    VaultItemFactory(account=other_account)
    api = _api(chatter)
    assert (
        api.get(f"/api/crm/accounts/{other_account.pk}/vault/").json()["code"]
        == "account_not_found"
    )
    bad = api.get(f"/api/crm/accounts/{account.pk}/vault/", {"type": "novel"})
    assert bad.status_code == 400 and bad.json()["code"] == "validation_error"
    cursor = api.get(f"/api/crm/accounts/{account.pk}/vault/", {"cursor": "zz"})
    assert cursor.status_code == 400 and cursor.json()["code"] == "invalid_cursor"


def test_api_patch_sets_labels_and_price_for_managers(account, other_account, manager, chatter):
    item = VaultItemFactory(account=account)
    url = f"/api/crm/accounts/{account.pk}/vault/{item.pk}/"
    response = _api(manager).patch(
        url, {"labels": ["Feet", "feet", " Custom "], "suggested_price_cents": 2500}, format="json"
    )
    assert response.status_code == 200
    assert (response.json()["labels"], response.json()["suggested_price_cents"]) == (
        ["feet", "custom"],
        2500,
    )
    # only the price: the labels stay
    _api(manager).patch(url, {"suggested_price_cents": None}, format="json")
    item.refresh_from_db()
    assert (item.labels, item.suggested_price_cents) == (["feet", "custom"], None)
    too_cheap = _api(manager).patch(url, {"suggested_price_cents": 100}, format="json")
    assert too_cheap.status_code == 400 and too_cheap.json()["code"] == "invalid_price"
    too_long = _api(manager).patch(url, {"labels": ["x" * 41]}, format="json")
    assert too_long.status_code == 400 and too_long.json()["code"] == "invalid_labels"
    denied = _api(chatter).patch(url, {"labels": ["x"]}, format="json")
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    foreign = VaultItemFactory(account=other_account)
    missing = _api(manager).patch(
        f"/api/crm/accounts/{account.pk}/vault/{foreign.pk}/", {"labels": ["x"]}, format="json"
    )
    assert missing.status_code == 404 and missing.json()["code"] == "vault_item_not_found"


def test_api_anonymous_is_refused(account):
    response = APIClient().get(f"/api/crm/accounts/{account.pk}/vault/")
    assert response.status_code in (401, 403)


# --- end to end with the sandbox: signed URLs never reach a page ---------------------------------


def test_after_a_real_sync_pages_and_api_carry_no_platform_file_urls(
    sandbox, client, account, chatter
):
    from crm.models import VaultSync
    from onlyfans.vault_sync import vault_sync_step

    run = VaultSync.objects.get(account=account, state="queued")
    for _ in range(50):
        run.refresh_from_db()
        if not run.is_active:
            break
        vault_sync_step(sync_id=run.pk, step=run.step)
    assert run.state == "done" and run.thumbs_fetched > 0
    client.force_login(chatter)
    html = client.get(_library(account)).content.decode()
    api = (
        _api(chatter).get(f"/api/crm/accounts/{account.pk}/vault/", {"limit": 200}).content.decode()
    )
    for text in (html, api):
        assert "signature=" not in text and "/files/vault/" not in text and "expires=" not in text
    # and a card's thumbnail comes from the product
    item = VaultItem.objects.filter(account=account).exclude(thumb_name="").first()
    assert item is not None
    response = client.get(f"/accounts/{account.pk}/vault/{item.pk}/thumb")
    assert response.status_code == 200
    assert Image.open(io.BytesIO(b"".join(response.streaming_content))).size == (240, 240)


def test_selector_handles_items_with_the_same_time(account, chatter):
    moment = datetime(2026, 3, 1, tzinfo=UTC)
    items = [VaultItemFactory(account=account, platform_created_at=moment) for _ in range(5)]
    VaultItemFactory(account=account, platform_created_at=moment - timedelta(days=1))
    first = vault_items_for_account(user=chatter, account_id=account.pk, limit=2)
    second = vault_items_for_account(
        user=chatter, account_id=account.pk, limit=2, cursor=first.next_cursor
    )
    assert [i.pk for i in first.items + second.items] == [i.pk for i in reversed(items)][:4]
