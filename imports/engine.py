"""The import's set-based core: rows converted in Python and COPYed into a staging table of
their own, duplicates found there, then merged into ``crm_fan`` a batch at a time.

Each import stages into ``imports_staged_fan_<id>`` (UNLOGGED: it is rebuilt from the file
if the server crashes, so it need not be written to the WAL). The merge is keyed (platform fan
id or lower(username)), so running a batch twice updates or skips what the first run wrote
and never adds a second fan.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from django.db import connection
from django.db.backends.utils import CursorWrapper

from imports import values
from imports.fields import FIELDS
from imports.values import CellError

# The staged columns that carry values, in COPY order.
VALUE_COLUMNS = (
    "platform_fan_id",
    "username",
    "username_key",
    "display_name",
    "email",
    "tags",
    "notes",
    "spend_cents",
    "subscription_state",
    "subscribed_at",
    "expires_at",
    "last_seen_at",
)
_SLOT = {
    "platform_fan_id": 0,
    "username": 1,
    "display_name": 3,
    "email": 4,
    "tags": 5,
    "notes": 6,
    "lifetime_spend": 7,
    "subscription_state": 8,
    "subscribed_at": 9,
    "subscription_expires_at": 10,
    "last_seen_at": 11,
}
COPY_COLUMNS = ("row_no", "status", "error", *VALUE_COLUMNS)

STAGING_DDL = """
CREATE {kind} TABLE IF NOT EXISTS {table} (
    row_no integer PRIMARY KEY,
    status text NOT NULL,
    error text,
    platform_fan_id text,
    username text,
    username_key text,
    display_name text,
    email text,
    tags text[],
    notes text,
    spend_cents bigint,
    subscription_state text,
    subscribed_at timestamptz,
    expires_at timestamptz,
    last_seen_at timestamptz,
    fan_id bigint
) {suffix}
"""


def staging_table(import_id: int) -> str:
    return f"imports_staged_fan_{int(import_id)}"


def staging_create(cursor: CursorWrapper, table: str, *, temporary: bool = False) -> None:
    kind, suffix = ("TEMP", "ON COMMIT DROP") if temporary else ("UNLOGGED", "")
    cursor.execute(STAGING_DDL.format(kind=kind, table=table, suffix=suffix))


def staging_drop(cursor: CursorWrapper, table: str) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {table}")


# --- Converting rows ---------------------------------------------------------------------------


@dataclass
class ConvertedRow:
    row_no: int
    cells: list[str]
    values: tuple[Any, ...] | None
    errors: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def error_text(self) -> str:
        return " ".join(message for _, message in self.errors)


def _converter_for(name: str, date_convert: Callable[[str], datetime]) -> Callable[[str], Any]:
    return {
        "platform_fan_id": values.platform_fan_id_convert,
        "username": values.username_convert,
        "display_name": values.display_name_convert,
        "email": values.email_convert,
        "tags": values.tags_convert,
        "notes": values.notes_convert,
        "lifetime_spend": values.money_convert,
        "subscription_state": values.subscription_state_convert,
        "subscribed_at": date_convert,
        "subscription_expires_at": date_convert,
        "last_seen_at": date_convert,
    }[name]


class RowConverter:
    """Cells of one file's rows → the staged values, or the reasons the row is refused."""

    def __init__(self, *, columns: list[str], match_on: str, date_order: str | None) -> None:
        date_convert = values.date_converter(date_order or None)
        self.width = len(columns)
        self.single = [
            (index, _SLOT[name], _converter_for(name, date_convert), FIELDS[name].label)
            for index, name in enumerate(columns)
            if name and name != "tags"
        ]
        self.tag_columns = [index for index, name in enumerate(columns) if name == "tags"]
        self.username_index = columns.index("username") if "username" in columns else None
        self.key_slot = 0 if match_on == "platform_fan_id" else 1
        self.key_label = FIELDS[match_on].label

    def convert(self, row_no: int, cells: list[str]) -> ConvertedRow:
        # The hot loop of an import (once per row): locals and no per-field branching
        # beyond what the value needs.
        width = self.width
        errors: list[tuple[int | None, str]] = []
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        elif len(cells) > width and any(cell.strip() for cell in cells[width:]):
            errors.append(
                (
                    None,
                    f"The row has {len(cells)} cells but the header has {width} columns "
                    "(a delimiter inside an unquoted value?).",
                )
            )
        out: list[Any] = [None] * 12
        for index, slot, convert, label in self.single:
            text = cells[index]
            if text:
                text = text.strip()
                if text:
                    try:
                        out[slot] = convert(text)
                    except CellError as exc:
                        errors.append((index, f"{label}: {exc}"))
        for index in self.tag_columns:
            text = cells[index].strip()
            if text:
                try:
                    tags = values.tags_convert(text)
                except CellError as exc:
                    errors.append((index, f"Tags: {exc}"))
                    continue
                current = out[5]
                out[5] = [*current, *(t for t in tags if t not in current)] if current else tags
        if out[1] is None and not errors:
            errors.append((self.username_index, "Username: a username is required."))
        if self.key_slot == 0 and out[0] is None and not errors:
            errors.append((None, f"{self.key_label}: required, it is the key that finds fans."))
        if errors:
            return ConvertedRow(row_no, cells, None, errors)
        out[2] = out[1].lower()
        return ConvertedRow(row_no, cells, tuple(out))


# --- Staging -----------------------------------------------------------------------------------


def rows_stage(
    cursor: CursorWrapper, table: str, rows: Iterable[ConvertedRow]
) -> tuple[int, int, int]:
    """COPY the rows into the staging table; returns (rows, rejected, last row number)."""
    count = rejected = last = 0
    with cursor.copy(f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            count += 1
            last = row.row_no
            if row.values is None:
                rejected += 1
                write((row.row_no, "rejected", row.error_text[:2000], *([None] * 12)))
            else:
                write((row.row_no, "ok", None, *row.values))
    return count, rejected, last


def duplicates_mark(cursor: CursorWrapper, table: str, *, match_on: str) -> tuple[int, int]:
    """Mark rows whose key a later row repeats (the last row wins) as duplicates, and rows that
    share the other unique value (username or platform id) with a later row as rejected.
    Returns (duplicates, rejected)."""
    key = "platform_fan_id" if match_on == "platform_fan_id" else "username_key"
    other = "username_key" if match_on == "platform_fan_id" else "platform_fan_id"
    other_label = "username" if match_on == "platform_fan_id" else "platform fan id"
    cursor.execute(
        f"""
        UPDATE {table} s SET status = 'duplicate',
            error = 'Skipped: duplicate of row ' || d.last_row || ', which was used instead.'
        FROM (
            SELECT row_no, max(row_no) OVER (PARTITION BY {key}) AS last_row
            FROM {table} WHERE status = 'ok'
        ) d
        WHERE s.row_no = d.row_no AND d.row_no <> d.last_row
        """  # noqa: S608
    )
    duplicates = cursor.rowcount
    cursor.execute(
        f"""
        UPDATE {table} s SET status = 'rejected',
            error = 'The {other_label} ' || s.{other} || ' is also in row ' || d.last_row
                || ' with another {FIELDS[match_on].label.lower()}.'
        FROM (
            SELECT row_no, max(row_no) OVER (PARTITION BY {other}) AS last_row
            FROM {table} WHERE status = 'ok' AND {other} IS NOT NULL
        ) d
        WHERE s.row_no = d.row_no AND d.row_no <> d.last_row
        """  # noqa: S608
    )
    return duplicates, cursor.rowcount


_CLASSIFY_PLATFORM_ID = """
    CASE
      WHEN c.key_fan IS NOT NULL AND c.other_fan IS NOT NULL AND c.other_fan <> c.key_fan
        THEN 'conflict'
      WHEN c.key_fan IS NOT NULL THEN %(matched)s
      WHEN c.other_fan IS NOT NULL AND c.other_fan_pfid IS NULL THEN %(matched)s
      WHEN c.other_fan IS NOT NULL THEN 'conflict'
      ELSE 'created'
    END,
    CASE
      WHEN c.key_fan IS NOT NULL AND c.other_fan IS NOT NULL AND c.other_fan <> c.key_fan
        THEN 'The username ' || s.username || ' belongs to another fan.'
      WHEN c.key_fan IS NOT NULL OR (c.other_fan IS NOT NULL AND c.other_fan_pfid IS NULL)
        THEN %(matched_error)s
      WHEN c.other_fan IS NOT NULL
        THEN 'The username ' || s.username || ' belongs to the fan with platform id '
             || c.other_fan_pfid || '.'
    END,
    COALESCE(c.key_fan, CASE WHEN c.other_fan_pfid IS NULL THEN c.other_fan END)
"""
_CLASSIFY_USERNAME = """
    CASE
      WHEN c.key_fan IS NOT NULL AND c.other_fan IS NOT NULL AND c.other_fan <> c.key_fan
        THEN 'conflict'
      WHEN c.key_fan IS NOT NULL AND s.platform_fan_id IS NOT NULL
        AND c.key_fan_pfid IS NOT NULL AND c.key_fan_pfid <> s.platform_fan_id THEN 'conflict'
      WHEN c.key_fan IS NOT NULL THEN %(matched)s
      WHEN c.other_fan IS NOT NULL THEN 'conflict'
      ELSE 'created'
    END,
    CASE
      WHEN c.other_fan IS NOT NULL AND c.other_fan IS DISTINCT FROM c.key_fan
        THEN 'The platform fan id ' || s.platform_fan_id || ' belongs to another fan.'
      WHEN c.key_fan IS NOT NULL AND s.platform_fan_id IS NOT NULL
        AND c.key_fan_pfid IS NOT NULL AND c.key_fan_pfid <> s.platform_fan_id
        THEN 'The fan ' || s.username || ' is linked to platform id ' || c.key_fan_pfid
             || ', not ' || s.platform_fan_id || '.'
      WHEN c.key_fan IS NOT NULL THEN %(matched_error)s
    END,
    c.key_fan
"""


def rows_classify(
    cursor: CursorWrapper,
    table: str,
    *,
    account_id: int,
    match_on: str,
    on_match: str,
    after_row: int,
    through_row: int,
) -> None:
    """Decide each staged row of (after_row, through_row]: created, updated, skipped or
    conflict (refused: its other unique value belongs to another fan), with the fan it
    matches. Username matches are case-insensitive."""
    # Joins (not correlated subqueries) so a large batch can hash-join the account's fans.
    joins = (
        "LEFT JOIN crm_fan p ON p.account_id = %(account)s"
        " AND p.platform_fan_id = s.platform_fan_id"
        " LEFT JOIN crm_fan n ON n.account_id = %(account)s AND lower(n.username) = s.username_key"
    )
    if match_on == "platform_fan_id":
        select = (
            "p.id AS key_fan, NULL::text AS key_fan_pfid, n.id AS other_fan,"
            " n.platform_fan_id AS other_fan_pfid"
        )
        decide = _CLASSIFY_PLATFORM_ID
    else:
        select = (
            "n.id AS key_fan, n.platform_fan_id AS key_fan_pfid, p.id AS other_fan,"
            " NULL::text AS other_fan_pfid"
        )
        decide = _CLASSIFY_USERNAME
    matched = "updated" if on_match == "update" else "skipped"
    matched_error = (
        "Skipped: the fan exists already (only new fans are added)."
        if on_match == "add_only"
        else None
    )
    cursor.execute(
        f"""
        WITH c AS (
            SELECT s.row_no, {select}
            FROM {table} s {joins}
            WHERE s.row_no > %(after)s AND s.row_no <= %(through)s AND s.status = 'ok'
        )
        UPDATE {table} s SET (status, error, fan_id) = ({decide})
        FROM c WHERE s.row_no = c.row_no
        """,  # noqa: S608
        {
            "account": account_id,
            "after": after_row,
            "through": through_row,
            "matched": matched,
            "matched_error": matched_error,
        },
    )


def rows_merge(
    cursor: CursorWrapper,
    table: str,
    *,
    account_id: int,
    match_on: str,
    columns: list[str],
    after_row: int,
    through_row: int,
) -> dict[str, int]:
    """Write the classified rows of (after_row, through_row] into crm_fan: UPDATE … FROM for
    matches, INSERT … ON CONFLICT for new fans. Empty cells never blank a fan's value.
    Returns the batch's counts by status (a new fan another writer added meanwhile is
    counted as skipped)."""
    mapped = set(columns)
    sets = ["updated_at = now()"]
    if "platform_fan_id" in mapped:
        # Links an unlinked fan; a linked one keeps its id (a conflict was rejected).
        sets.append("platform_fan_id = COALESCE(f.platform_fan_id, s.platform_fan_id)")
    if match_on == "platform_fan_id":
        sets.append("username = s.username")
    simple = {
        "display_name": "display_name",
        "email": "email",
        "notes": "notes",
        "lifetime_spend": ("lifetime_spend_cents", "spend_cents"),
        "subscription_state": "subscription_state",
        "subscribed_at": "subscribed_at",
        "subscription_expires_at": ("subscription_expires_at", "expires_at"),
        "last_seen_at": "last_seen_at",
    }
    for name, target in simple.items():
        if name in mapped:
            fan_column, staged = target if isinstance(target, tuple) else (target, target)
            sets.append(f"{fan_column} = COALESCE(s.{staged}, f.{fan_column})")
    if "tags" in mapped:
        sets.append(
            "tags = CASE WHEN s.tags IS NULL THEN f.tags ELSE (f.tags || ARRAY("
            "SELECT t FROM unnest(s.tags) AS t WHERE NOT t = ANY(f.tags)))[1:30] END"
        )
    params = {"account": account_id, "after": after_row, "through": through_row}
    in_batch = "s.row_no > %(after)s AND s.row_no <= %(through)s"
    cursor.execute(
        f"""
        UPDATE crm_fan f SET {", ".join(sets)}
        FROM {table} s
        WHERE {in_batch} AND s.status = 'updated' AND f.id = s.fan_id
          AND f.account_id = %(account)s
        """,  # noqa: S608
        params,
    )
    conflict = (
        "(account_id, platform_fan_id) WHERE platform_fan_id IS NOT NULL"
        if match_on == "platform_fan_id"
        else "(account_id, username)"
    )
    cursor.execute(
        f"""
        INSERT INTO crm_fan (
            account_id, platform_fan_id, username, display_name, email, tags, notes,
            lifetime_spend_cents, subscription_state, subscribed_at, subscription_expires_at,
            last_seen_at, created_at, updated_at)
        SELECT %(account)s, s.platform_fan_id, s.username, COALESCE(s.display_name, ''),
            COALESCE(s.email, ''), COALESCE(s.tags, '{{}}'), COALESCE(s.notes, ''),
            COALESCE(s.spend_cents, 0), COALESCE(s.subscription_state, 'never'),
            s.subscribed_at, s.expires_at, s.last_seen_at, now(), now()
        FROM {table} s
        WHERE {in_batch} AND s.status = 'created'
        ORDER BY s.row_no
        ON CONFLICT {conflict} DO NOTHING
        """,  # noqa: S608
        params,
    )
    inserted = cursor.rowcount
    by_status = f"SELECT status, count(*) FROM {table} s WHERE {in_batch} GROUP BY status"  # noqa: S608
    cursor.execute(by_status, params)
    counts = {status: int(n) for status, n in cursor.fetchall()}
    planned = counts.get("created", 0)
    counts["created"] = inserted
    counts["skipped"] = counts.get("skipped", 0) + planned - inserted
    return counts


def batch_end(cursor: CursorWrapper, table: str, *, after_row: int, size: int) -> int | None:
    """The row number that ends the next batch of ``size`` staged rows, None when none is left."""
    cursor.execute(
        f"SELECT max(row_no) FROM (SELECT row_no FROM {table} WHERE row_no > %s"  # noqa: S608
        " ORDER BY row_no LIMIT %s) b",
        [after_row, size],
    )
    row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


# --- Reading the file --------------------------------------------------------------------------


def converted_rows(
    handle: IO[str],
    *,
    delimiter: str,
    converter: RowConverter,
    after_row: int = 0,
) -> Iterator[ConvertedRow]:
    """The file's data rows after ``after_row``, converted (the header is skipped)."""
    from imports.csvfile import rows_iter

    rows = rows_iter(handle, delimiter)
    next(rows, None)
    convert = converter.convert
    for row_no, cells in rows:
        if row_no > after_row:
            yield convert(row_no, cells)


# --- The report --------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell_neutralise(value: str) -> str:
    """A cell a spreadsheet will show as text, never run as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def errors_file_write(
    cursor: CursorWrapper,
    table: str,
    *,
    source: Path | str,
    encoding: str,
    delimiter: str,
    header: list[str],
    target: Path,
) -> int:
    """Write the rejected and skipped-with-a-reason rows, as they were in the file, with an
    ``error`` column, to ``target`` (UTF-8 with a BOM so Excel opens it right)."""
    from imports.csvfile import rows_iter, text_open

    def reasons() -> Iterator[tuple[int, str]]:
        after = 0
        while True:
            cursor.execute(
                f"SELECT row_no, error FROM {table} WHERE error IS NOT NULL AND row_no > %s"  # noqa: S608
                " ORDER BY row_no LIMIT 10000",
                [after],
            )
            chunk = cursor.fetchall()
            if not chunk:
                return
            yield from chunk
            after = chunk[-1][0]

    written = 0
    pending = reasons()
    wanted = next(pending, None)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    with (
        text_open(source, encoding) as handle,
        open(tmp, "w", encoding="utf-8-sig", newline="") as out,
    ):
        writer = csv.writer(out)
        writer.writerow([cell_neutralise(cell) for cell in [*header, "error"]])
        rows = rows_iter(handle, delimiter)
        next(rows, None)
        for row_no, cells in rows:
            if wanted is None:
                break
            if row_no < wanted[0]:
                continue
            writer.writerow([cell_neutralise(cell) for cell in [*cells, wanted[1]]])
            written += 1
            wanted = next(pending, None)
    tmp.replace(target)
    return written


def db_cursor() -> CursorWrapper:
    return connection.cursor()
