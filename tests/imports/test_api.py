"""The import API: exact shapes, refusals with stable codes (and nothing written), scoping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from crm.models import Fan
from imports.models import FanImport
from tests.factories import FanFactory, MembershipFactory
from tests.imports.conftest import import_run

pytestmark = pytest.mark.django_db

URL = "/api/onlyfans/import/csv"
GOOD = (
    "Username,Display Name,Email,Total Spent,Fan ID\nalice,Alice,a@example.com,$5,1\nbob,Bob,,0,2\n"
)


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(client: APIClient, account, content: bytes | str, name: str = "fans.csv", **fields):
    data = content.encode() if isinstance(content, str) else content
    body = {"account": account.pk, "file": SimpleUploadedFile(name, data), **fields}
    return client.post(URL, body, format="multipart")


def nothing_written(settings) -> bool:
    storage = Path(settings.IMPORT_STORAGE_DIR)
    stored = list(storage.iterdir()) if storage.exists() else []
    return not FanImport.objects.exists() and not stored and not Fan.objects.exists()


def test_import_is_accepted_then_reports_its_counters(owner, account):
    client = api_for(owner)
    response = post(client, account, GOOD)
    assert response.status_code == 202, response.json()
    import_id = response.json()["import_id"]
    assert response.json()["state"] == "queued"

    import_run(FanImport.objects.get(pk=import_id))
    status = client.get(f"/api/onlyfans/import/{import_id}").json()
    assert status["state"] == "done"
    keys = ("rows_total", "rows_done", "created", "updated", "skipped", "rejected")
    assert {k: status[k] for k in keys} == {
        "rows_total": 2, "rows_done": 2, "created": 2, "updated": 0, "skipped": 0, "rejected": 0,
    }  # fmt: skip
    assert status["errors_url"] is None
    assert Fan.objects.filter(account=account).count() == 2


def test_rejected_rows_are_downloadable_with_an_error_column(owner, account):
    client = api_for(owner)
    content = "Username,Email,Fan ID\nalice,not-an-email,1\n=cmd,x@example.com,2\nbob,,3\n"
    import_id = post(client, account, content).json()["import_id"]
    import_run(FanImport.objects.get(pk=import_id))
    status = client.get(f"/api/onlyfans/import/{import_id}").json()
    assert (status["created"], status["rejected"]) == (1, 2)
    response = client.get(status["errors_url"])
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "Username,Email,Fan ID,error"
    assert lines[1].startswith("alice,not-an-email,1,Email:")
    # A formula is neutralised in what the product writes.
    assert lines[2].startswith("'=cmd,")


@pytest.mark.parametrize(
    ("content", "status_code", "code"),
    [
        (b"", 400, "empty_file"),
        (b"\r\n\r\n", 400, "empty_file"),
        (b"Username,Email\r\n", 400, "no_rows"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, 415, "not_csv"),
        (b"PK\x03\x04" + b"\x00" * 100, 415, "not_csv"),
        (b"\x00\x01\x02\x03\xff\xfe\x00\x00garbage" * 50, 415, "not_csv"),
        (b"alice,a@example.com,12\nbob,b@example.com,5\n", 400, "no_header"),
        (b"Colour,Size\nred,10\n", 400, "no_usable_column"),
        (b'Username,Notes\nalice,"never closed\nbob,fine\n', 400, "malformed_csv"),
    ],
)
def test_refused_files_write_nothing(owner, account, settings, content, status_code, code):
    response = post(api_for(owner), account, content)
    assert response.status_code == status_code, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert nothing_written(settings)


def test_a_file_over_the_limit_is_413(owner, account, settings):
    settings.IMPORT_MAX_UPLOAD_BYTES = 10_000
    response = post(api_for(owner), account, "Username\n" + "someone\n" * 5_000)
    assert response.status_code == 413
    assert response.json()["code"] == "file_too_large"
    assert nothing_written(settings)


def test_invalid_mapping_is_400(owner, account, settings):
    client = api_for(owner)
    for mapping in (
        "not json",
        json.dumps({"Nope": "username"}),
        json.dumps({"Username": "shoe_size"}),
    ):
        response = post(client, account, GOOD, mapping=mapping)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_mapping"
    # A mapping without the key column asked for.
    response = post(
        client,
        account,
        GOOD,
        mapping=json.dumps({"Username": "username"}),
        match_on="platform_fan_id",
    )
    assert response.json()["code"] == "invalid_mapping"
    assert nothing_written(settings)


def test_the_common_export_without_fan_ids_matches_by_username(owner, account):
    # given: a spreadsheet export as platforms' tools write it, without a fan id column, and
    # a fan already there under another case
    FanFactory(account=account, username="zoe", platform_fan_id="77", lifetime_spend_cents=0)
    content = (
        "Username,Display Name,Email,Subscription Tier,Total Spent,Last Seen\n"
        '@Zoe,Zoë 🌸,zoe@example.com,VIP,"$1,234.50",2025-11-01\n'
        "newfan,Bob,,,$5,2025-11-02\n"
    )
    # when: it is posted without match_on
    response = post(api_for(owner), account, content)
    assert response.status_code == 202, response.json()
    fan_import = FanImport.objects.get(pk=response.json()["import_id"])
    assert fan_import.match_on == "username"
    import_run(fan_import)
    # then: the known fan is updated (matched case-insensitively), the new one created
    fan_import.refresh_from_db()
    assert (fan_import.created, fan_import.updated, fan_import.rejected) == (1, 1, 0)
    zoe = Fan.objects.get(account=account, platform_fan_id="77")
    assert (zoe.display_name, zoe.lifetime_spend_cents, zoe.tags) == ("Zoë 🌸", 123450, ["vip"])


def test_an_explicit_mapping_is_used(owner, account):
    client = api_for(owner)
    content = "handle,who,money\nalice,Alice A,12\n"
    mapping = {"handle": "username", "who": "display_name", "money": "lifetime_spend"}
    response = post(client, account, content, mapping=json.dumps(mapping), match_on="username")
    assert response.status_code == 202, response.json()
    import_run(FanImport.objects.get(pk=response.json()["import_id"]))
    fan = Fan.objects.get(account=account)
    assert (fan.username, fan.display_name, fan.lifetime_spend_cents) == ("alice", "Alice A", 1200)
    assert fan.platform_fan_id is None


def test_all_ambiguous_dates_need_a_date_order(owner, account, settings):
    client = api_for(owner)
    content = "Username,Fan ID,Last Seen\nalice,1,01/02/2025\nbob,2,03/04/2025\n"
    response = post(client, account, content)
    assert response.status_code == 400
    assert response.json()["code"] == "date_order_required"
    assert nothing_written(settings)
    response = post(client, account, content, date_order="day_first")
    assert response.status_code == 202


def test_chatters_get_403_and_other_accounts_404(account, other_account, owner, chatter):
    response = post(api_for(chatter), account, GOOD)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    response = post(api_for(owner), other_account, GOOD)
    assert response.status_code == 404

    other_owner = MembershipFactory(account=other_account, role="owner").user
    import_id = post(api_for(other_owner), other_account, GOOD).json()["import_id"]
    assert api_for(owner).get(f"/api/onlyfans/import/{import_id}").status_code == 404
    assert api_for(owner).get(f"/api/onlyfans/import/{import_id}/errors").status_code == 404


def test_unauthenticated_is_401(account):
    response = APIClient().post(URL, {"account": account.pk}, format="multipart")
    assert response.status_code in (401, 403)
