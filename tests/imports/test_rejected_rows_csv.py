"""The import's rejected-rows report writes people's cells back: each one a spreadsheet
would run as a formula is neutralised (crm.csv_safe), in every column."""

from __future__ import annotations

import csv
import io

import pytest

from imports.models import FanImport
from tests.crm.test_csv_safe import HOSTILE, is_formula_safe
from tests.imports.conftest import import_run
from tests.imports.test_api import api_for, post

pytestmark = pytest.mark.django_db


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def test_rejected_rows_report_neutralises_every_hostile_cell(owner, account):
    # given: rows refused for their email, each carrying a hostile display name and fan id
    header = "Username,Display Name,Email,Fan ID"
    lines = [
        f"user{i},{_quoted(text)},not-an-email,{_quoted(text)}" for i, text in enumerate(HOSTILE)
    ]
    client = api_for(owner)
    import_id = post(client, account, "\n".join([header, *lines]) + "\n").json()["import_id"]
    import_run(FanImport.objects.get(pk=import_id))
    status = client.get(f"/api/onlyfans/import/{import_id}").json()
    assert status["rejected"] == len(HOSTILE)

    # when
    response = client.get(status["errors_url"])

    # then
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Username", "Display Name", "Email", "Fan ID", "error"]
    assert [row[1] for row in rows[1:]] == ["'" + t for t in HOSTILE]
    for row in rows:
        for cell in row:
            assert is_formula_safe(cell), (row, cell)
