"""The column-at-a-time conversion stores what ``imports.values`` says, cell by cell.

The engine converts a batch a column at a time and only sends the cells that miss the common
shapes through ``imports.values``; these tests import files of awkward cells and compare every
stored fan, and every refused row's reasons, with the rules applied one cell at a time.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crm.models import Fan
from imports import values
from imports.fields import FIELDS

pytestmark = pytest.mark.django_db

HEADER = [
    "Fan ID", "Username", "Display Name", "Email", "Tags", "Total Spent", "Last Seen",
    "Subscribed At", "Status", "Notes",
]  # fmt: skip
NAMES = [
    "platform_fan_id", "username", "display_name", "email", "tags", "lifetime_spend",
    "last_seen_at", "subscribed_at", "subscription_state", "notes",
]  # fmt: skip

# Cells of each column, valid and not, in the shapes real exports have.
CELLS: dict[str, list[str]] = {
    # {n}: the row's number, so valid keys and usernames are not repeated (no duplicates).
    "platform_fan_id": ["", "{n}", " {n} ", "1.23457E+11", "{n}.0", "ab_c:{n}-2.x", "x y",
                        "9" * 65],
    "username": ["", "@Ann{n}", "bob{n}", "Zoë{n}", "@", "bad name", "x" * 151, "  carl{n}  ",
                 "@ dan{n}", "a.b-c_d{n}"],
    "display_name": ["", "Alex 🎉", "tab\there", "new\nline", "back\\slash", "\\N", "x" * 201,
                     "=SUM(A1)", "  padded  "],
    "email": ["", "a@example.com", "a..b@example.com", ".a@example.com", "user@exämple.com",
              "nope@", "x" * 250 + "@e.com", "tab\t@example.com"],
    "tags": ["", "VIP; whale|Gold", "a\\b", 'q"uote', "{brace}", "a\tb", "dup,DUP",
             ",".join(f"t{i}" for i in range(31)), "x" * 51],
    "lifetime_spend": ["", "$1,234.50", "1.234,50 €", "USD 20", "-5", "12,5", "1,234", "0.5",
                       "$0", "ten", "99999999999999999", "1234567890123", "12.345"],
    "last_seen_at": ["", "2025-11-01", "2025-11-01T10:00:00+02:00", "11/01/2025",
                     "Nov 1, 2025", "2025-02-30", "13/31/2025", "2025-11-01 10:00",
                     "31 December 2025 8:15 pm", "someday"],
    "subscribed_at": ["", "2024-01-05", "01/05/2024", "Jan 5, 2024", "2024-13-01"],
    "subscription_state": ["", "Active", "no", "maybe", "CANCELLED"],
    "notes": ["", "\\N", "line1\r\nline2", "back\\slash", "tab\there", "x" * 10_001],
}  # fmt: skip


def _rows(count: int) -> list[list[str]]:
    """``count`` rows cycling through each column's cells at different strides, so that
    every cell meets many others."""
    rows = []
    for n in range(count):
        row = []
        for column, name in enumerate(NAMES):
            cells = CELLS[name]
            cell = cells[(n * (column + 1) + n // 7 + 1) % len(cells)]
            row.append(cell.replace("{n}", str(n)))
        rows.append(row)
    return rows


def _expected(row: list[str], date_order: str) -> tuple[dict[str, Any] | None, list[str]]:
    """One row by the rules, a cell at a time: the fan's values, or the reasons."""
    date = values.date_converter(date_order)
    convert = {
        "platform_fan_id": values.platform_fan_id_convert,
        "username": values.username_convert,
        "display_name": values.display_name_convert,
        "email": values.email_convert,
        "tags": values.tags_convert,
        "notes": values.notes_convert,
        "lifetime_spend": values.money_convert,
        "subscription_state": values.subscription_state_convert,
        "subscribed_at": date,
        "last_seen_at": date,
    }
    out: dict[str, Any] = {}
    reasons: list[str] = []
    for name, cell in zip(NAMES, row, strict=True):
        text = cell.strip()
        if not text:
            continue
        try:
            out[name] = convert[name](text)
        except values.CellError as exc:
            reasons.append(f"{FIELDS[name].label}: {exc}")
    if not reasons and "username" not in out:
        reasons.append("Username: a username is required.")
    if not reasons and "platform_fan_id" not in out:
        reasons.append("Platform fan id: required, it is the key that finds fans.")
    return (None, reasons) if reasons else (out, [])


def _stored(fan: Fan) -> dict[str, Any]:
    return {
        "platform_fan_id": fan.platform_fan_id,
        "username": fan.username,
        "display_name": fan.display_name,
        "email": fan.email,
        "tags": fan.tags,
        "notes": fan.notes,
        "lifetime_spend": fan.lifetime_spend_cents,
        "subscription_state": fan.subscription_state,
        "subscribed_at": fan.subscribed_at,
        "last_seen_at": fan.last_seen_at,
    }


def _as_stored(expected: dict[str, Any]) -> dict[str, Any]:
    defaults = {
        "display_name": "", "email": "", "tags": [], "notes": "", "lifetime_spend": 0,
        "subscription_state": "never", "subscribed_at": None, "last_seen_at": None,
    }  # fmt: skip
    return {**defaults, **expected}


@pytest.mark.parametrize("batch_rows", [7, 1000])
def test_every_cell_is_stored_as_the_rules_say(run_import, account, settings, batch_rows):
    # given awkward cells in every column, over several read batches or one
    settings.IMPORT_READ_BATCH_ROWS = batch_rows
    rows = _rows(400)
    out = io.StringIO()
    csv.writer(out).writerows([HEADER, *rows])

    # when the file is imported (day first, as 31 December tells)
    fan_import = run_import(out.getvalue(), date_order="day_first")

    # then each row is stored or refused exactly as the rules applied cell by cell say
    assert fan_import.state == "done", fan_import.error_message
    expected = {n + 2: _expected(row, values.DAY_FIRST) for n, row in enumerate(rows)}
    stored = {fan.platform_fan_id: _stored(fan) for fan in Fan.objects.filter(account=account)}
    refused = {row_no for row_no, (fan, _) in expected.items() if fan is None}
    assert refused and len(refused) < len(rows)
    for row_no, (fan, _) in expected.items():
        if fan is not None:
            assert stored.pop(fan["platform_fan_id"]) == _as_stored(fan), row_no
    assert stored == {}
    with open(fan_import.errors_path, encoding="utf-8-sig", newline="") as handle:
        reported = sorted(line["error"] for line in csv.DictReader(handle))
    assert reported == sorted(" ".join(expected[row_no][1]) for row_no in refused)
    assert fan_import.rejected == len(refused)


def test_times_without_a_zone_are_utc(run_import, account):
    run_import("Username,Fan ID,Last Seen\nann,1,2025-11-01 10:00\nbea,2,2025-11-01T10:00+02:00\n")
    seen = dict(Fan.objects.filter(account=account).values_list("username", "last_seen_at"))
    assert seen["ann"] == datetime(2025, 11, 1, 10, 0, tzinfo=UTC)
    assert seen["bea"] == datetime(2025, 11, 1, 8, 0, tzinfo=UTC)


def test_empty_cells_are_empty_not_the_text_null(run_import, account):
    run_import("Username,Fan ID,Notes,Display Name\nann,1,,\nbea,2,\\N,\\N\n")
    fans = dict(Fan.objects.filter(account=account).values_list("username", "notes"))
    assert fans == {"ann": "", "bea": "\\N"}


def test_the_preview_shows_the_values_the_import_stores(owner, account, write_file):
    from imports import services

    content = 'Username,Fan ID,Total Spent,Tags,Last Seen\n@Ann,1,"$1,234.50",VIP;x,31/12/2025\n'
    fan_import = services.fan_import_create(
        actor=owner, account_id=account.pk, upload_path=write_file(content), file_name="f.csv"
    )
    preview = services.fan_import_preview(actor=owner, fan_import=fan_import)
    assert preview.counts is not None and preview.counts["create"] == 1
    values_shown = preview.rows[0].values
    assert values_shown is not None
    assert (values_shown["username"], values_shown["spend_cents"], values_shown["tags"]) == (
        "Ann", 123450, ["vip", "x"],
    )  # fmt: skip
    assert values_shown["last_seen_at"] == datetime(2025, 12, 31, tzinfo=UTC)
    assert Path(fan_import.file_path).exists()


def test_the_preview_shows_the_first_twenty_rows(owner, account, write_file):
    from imports import services

    content = "Username,Fan ID\n\n" + "".join(f"fan{n},{n}\n" for n in range(1, 31))
    fan_import = services.fan_import_create(
        actor=owner, account_id=account.pk, upload_path=write_file(content), file_name="f.csv"
    )
    preview = services.fan_import_preview(actor=owner, fan_import=fan_import)
    assert [row.row_no for row in preview.rows] == list(range(3, 23))  # a blank line at 2
    assert preview.counts is not None and preview.counts["create"] == 30
