"""The import pages: upload → map → preview → start → progress → report, history, scoping."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from crm.models import Fan
from imports.models import FanImport
from tests.factories import FanFactory, MembershipFactory
from tests.imports.conftest import import_run

pytestmark = pytest.mark.django_db

CONTENT = (
    "Username;Display Name;Email;Total Spent;Last Seen;Fan ID\r\n"
    "alice;Alice;a@example.com;1.234,50 €;31/12/2025;1\r\n"
    "bob;Bob;broken;5;01/11/2025;2\r\n"
    "carol;Carol;;0;02/11/2025;3\r\n"
).encode("cp1252")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def base(account) -> str:
    return f"/accounts/{account.pk}/fans/import/"


def upload(client: Client, account, content: bytes = CONTENT, name: str = "fans.csv"):
    return client.post(base(account), {"file": SimpleUploadedFile(name, content)})


def test_the_whole_flow(owner, account, django_capture_on_commit_callbacks):
    client = client_for(owner)
    FanFactory(account=account, platform_fan_id="3", username="carol", display_name="Old")
    # the fans page links to the import
    assert f'href="{base(account)}"' in client.get(f"/accounts/{account.pk}/fans/").content.decode()

    response = upload(client, account)
    assert response.status_code == 302, response.content.decode()[:2000]
    fan_import = FanImport.objects.get()
    assert (fan_import.encoding, fan_import.delimiter) == ("cp1252", ";")
    assert response["Location"].endswith(f"{fan_import.pk}/map/")

    page = client.get(response["Location"]).content.decode()
    assert "alice" in page  # first values under each column
    data = {
        "match_on": "platform_fan_id",
        "on_match": "update",
        "date_order": "auto",
        "encoding": "cp1252",
        "delimiter": ";",
        **{f"column_{i}": name for i, name in enumerate(fan_import.columns)},
    }
    response = client.post(f"{base(account)}{fan_import.pk}/map/", data)
    assert response.status_code == 302
    assert response["Location"].endswith("/preview/")

    page = client.get(response["Location"]).content.decode()
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', page))
    assert counts == {"create": "1", "update": "1", "skip": "0", "reject": "1"}
    assert "day first" in page
    assert "$1,234.50" in page
    assert "is not a valid email address" in page
    assert not Fan.objects.filter(username="alice").exists()  # the preview wrote nothing

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"{base(account)}{fan_import.pk}/start/")
    assert response.status_code == 302
    assert len(callbacks) == 1  # the task is published on commit
    fan_import.refresh_from_db()
    assert fan_import.state == "queued"

    progress = client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in progress and "<html" not in progress

    import_run(fan_import)
    page = client.get(response["Location"]).content.decode()
    assert 'id="import-done"' in page and 'hx-trigger="every' not in page  # no more polling
    report = client.get(f"{base(account)}{fan_import.pk}/rejected.csv")
    text = b"".join(report.streaming_content).decode("utf-8-sig")
    assert text.splitlines()[0] == "Username,Display Name,Email,Total Spent,Last Seen,Fan ID,error"
    assert text.splitlines()[1].startswith("bob,Bob,broken,")
    assert Fan.objects.get(account=account, username="carol").display_name == "Carol"
    assert Fan.objects.get(account=account, username="alice").lifetime_spend_cents == 123450

    history = client.get(base(account)).content.decode()
    assert "fans.csv" in history and "Rejected rows" in history


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "The file is empty."),
        (b"Username\r\n", 400, "no rows"),
        (b"PK\x03\x04" + b"\x00" * 50, 415, "not a CSV file"),
        (b'Username,Notes\nann,"open\n', 400, "never closed"),
    ],
)
def test_bad_files_get_a_clear_message(owner, account, content, status, message):
    response = upload(client_for(owner), account, content)
    assert response.status_code == status
    assert message in response.content.decode()
    assert not FanImport.objects.exists()


def test_too_large_upload(owner, account, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 1000
    response = upload(client_for(owner), account, b"Username\n" + b"someone\n" * 500)
    assert response.status_code == 413
    assert "larger than" in response.content.decode()


def test_all_ambiguous_dates_ask_for_the_order(owner, account):
    client = client_for(owner)
    upload(client, account, b"Username,Fan ID,Last Seen\nann,1,01/02/2025\n")
    fan_import = FanImport.objects.get()
    page = client.get(f"{base(account)}{fan_import.pk}/preview/").content.decode()
    assert "choose the order" in page
    response = client.post(f"{base(account)}{fan_import.pk}/start/")
    assert response.status_code == 302 and response["Location"].endswith("/preview/")
    fan_import.refresh_from_db()
    assert fan_import.state == "draft"


def test_chatters_get_403_and_other_accounts_404(account, other_account, chatter, owner):
    assert client_for(chatter).get(base(account)).status_code == 403
    assert client_for(owner).get(base(other_account)).status_code == 404
    other_owner = MembershipFactory(account=other_account, role="owner").user
    upload(client_for(other_owner), other_account)
    fan_import = FanImport.objects.get()
    assert client_for(owner).get(f"{base(account)}{fan_import.pk}/").status_code == 404
    assert client_for(owner).get(f"{base(other_account)}{fan_import.pk}/").status_code == 404
    # and no link for chatters on the fans page
    page = client_for(chatter).get(f"/accounts/{account.pk}/fans/").content.decode()
    assert "Import fans" not in page


def test_history_query_count(owner, account, django_assert_max_num_queries):
    client = client_for(owner)
    for _ in range(3):
        upload(client, account)
    with django_assert_max_num_queries(12):
        response = client.get(base(account))
    assert response.content.decode().count("fans.csv") == 3


def test_a_stalled_import_can_be_queued_again(
    owner, account, django_capture_on_commit_callbacks, monkeypatch
):
    from datetime import timedelta

    from django.utils import timezone

    from imports import services

    published: list[int] = []

    def publish(*, import_id: int) -> bool:
        published.append(import_id)
        return True

    monkeypatch.setattr(services, "fan_import_task_publish", publish)
    client = client_for(owner)
    upload(client, account)
    fan_import = FanImport.objects.get()
    FanImport.objects.filter(pk=fan_import.pk).update(
        state="queued", updated_at=timezone.now() - timedelta(minutes=5)
    )
    page = client.get(f"{base(account)}{fan_import.pk}/").content.decode()
    assert "Queue it again" in page
    response = client.post(f"{base(account)}{fan_import.pk}/requeue/")
    assert response.status_code == 302
    assert published == [fan_import.pk]
    # freshly queued: no second publish
    client.post(f"{base(account)}{fan_import.pk}/requeue/")
    assert published == [fan_import.pk]


def test_a_broker_that_does_not_answer_leaves_the_import_queued(monkeypatch):
    from config.celery import app
    from imports import services

    def refuse(*args, **kwargs):
        raise ConnectionError("no broker")

    monkeypatch.setattr(app, "send_task", refuse)
    assert services.fan_import_task_publish(import_id=1) is False


def test_a_large_file_gets_its_preview_counts_in_their_own_request(owner, account, monkeypatch):
    from imports import services

    monkeypatch.setattr(services, "PREVIEW_INLINE_ROWS", 2)  # the file's 3 rows are "large"
    client = client_for(owner)
    FanFactory(account=account, platform_fan_id="3", username="carol")
    upload(client, account)
    fan_import = FanImport.objects.get()
    data = {
        "match_on": "platform_fan_id", "on_match": "update", "date_order": "auto",
        "encoding": "cp1252", "delimiter": ";",
        **{f"column_{i}": name for i, name in enumerate(fan_import.columns)},
    }  # fmt: skip
    client.post(f"{base(account)}{fan_import.pk}/map/", data)

    # the page shows the first rows at once and asks for the counts
    page = client.get(f"{base(account)}{fan_import.pk}/preview/").content.decode()
    assert "$1,234.50" in page and "data-count" not in page
    counts_url = f"{base(account)}{fan_import.pk}/preview/counts/"
    assert f'hx-get="{counts_url}"' in page

    fragment = client.get(counts_url, headers={"HX-Request": "true"}).content.decode()
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', fragment))
    assert counts == {"create": "1", "update": "1", "skip": "0", "reject": "1"}
    assert "<html" not in fragment

    # kept for this configuration: the page shows them now (it never counts a large file)
    page = client.get(f"{base(account)}{fan_import.pk}/preview/").content.decode()
    assert 'data-count="create">1<' in page

    # another configuration counts again
    client.post(f"{base(account)}{fan_import.pk}/map/", {**data, "on_match": "skip"})
    page = client.get(f"{base(account)}{fan_import.pk}/preview/").content.decode()
    assert "data-count" not in page
    fragment = client.get(counts_url, headers={"HX-Request": "true"}).content.decode()
    assert dict(re.findall(r'data-count="(\w+)">(\d+)<', fragment))["skip"] == "1"
