"""The import's set-based core: rows converted a column at a time into COPY text and COPYed
into a staging table of their own, duplicates found there, then merged into ``crm_fan`` a range
of rows at a time, one statement per range.

Each import stages into ``imports_staged_fan_<id>`` (UNLOGGED: not written to the WAL; a
database crash empties it and the import reads its file again). The merge is keyed (platform
fan id or lower(username)), so running a batch twice updates or skips what the first run wrote
and never adds a second fan.

Where the time goes (100,000 rows of the bench): converting ~0.6 s of Python; the merge is
PostgreSQL's, most of it maintaining crm_fan's seven indexes for each new fan.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import IntegrityError, transaction
from django.db.backends.utils import CursorWrapper

from crm.csv_safe import row_neutralise
from imports import values
from imports.fields import FIELDS
from imports.values import CellError

# The staged columns that carry values, in COPY order (``username_key`` is generated).
VALUE_COLUMNS = (
    "platform_fan_id",
    "username",
    "display_name",
    "email",
    "tags",
    "notes",
    "spend",
    "subscription_state",
    "subscribed_at",
    "expires_at",
    "last_seen_at",
)
_SLOT = {
    "platform_fan_id": 0,
    "username": 1,
    "display_name": 2,
    "email": 3,
    "tags": 4,
    "notes": 5,
    "lifetime_spend": 6,
    "subscription_state": 7,
    "subscribed_at": 8,
    "subscription_expires_at": 9,
    "last_seen_at": 10,
}
COPY_COLUMNS = ("row_no", "status", "error", *VALUE_COLUMNS)

# Money is staged as the decimal amount (numeric): the common "$1,234.50" only loses its "$"
# and commas in Python, and PostgreSQL turns it into cents.
STAGING_DDL = """
CREATE {kind} TABLE IF NOT EXISTS {table} (
    row_no integer PRIMARY KEY,
    status text NOT NULL,
    error text,
    platform_fan_id text,
    username text,
    username_key text GENERATED ALWAYS AS (lower(username)) STORED,
    display_name text,
    email text,
    tags text[],
    notes text,
    spend numeric(20, 2),
    subscription_state text,
    subscribed_at timestamptz,
    expires_at timestamptz,
    last_seen_at timestamptz
) {suffix}
"""


def staging_table(import_id: int) -> str:
    return f"imports_staged_fan_{int(import_id)}"


def staging_create(cursor: CursorWrapper, table: str, *, temporary: bool = False) -> None:
    kind, suffix = ("TEMP", "ON COMMIT DROP") if temporary else ("UNLOGGED", "")
    cursor.execute(STAGING_DDL.format(kind=kind, table=table, suffix=suffix))


def staging_drop(cursor: CursorWrapper, table: str) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {table}")


def staging_analyze(cursor: CursorWrapper, table: str) -> None:
    """Statistics for the planner before the dedupe and the merge, on the columns they filter,
    group and join on (all of the table's took twice as long: 0.25 s for 100,000 rows)."""
    cursor.execute(f"ANALYZE {table} (row_no, status, platform_fan_id, username_key)")


def staging_last_row(cursor: CursorWrapper, table: str) -> int | None:
    """The last staged row number; None when the table is missing or empty (an UNLOGGED table
    is emptied by a database crash)."""
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
    row = cursor.fetchone()
    if not row or not row[0]:
        return None
    cursor.execute(f"SELECT max(row_no) FROM {table}")  # noqa: S608
    last = cursor.fetchone()
    return None if last is None or last[0] is None else int(last[0])


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while rows are read and converted: a chunk's thousands of
    short-lived lists (none of them in a cycle) made the collector run full passes over
    everything alive, more than doubling the conversion's time. Collection resumes after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- Converting rows ---------------------------------------------------------------------------
#
# A batch of rows is converted a column at a time: each column's cells are checked together
# with C-speed tests (one join, one regex per cell through ``map``), and only the cells that
# miss the common shapes go through ``imports.values``, which holds the rules and the reasons.
# Every value leaves here as the text PostgreSQL's COPY (text format) reads, so no Python
# object per value is built for the common cells.

NULL = "\\N"
_COPY_SPECIAL = re.compile(r"[\\\n\r\t]")


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _array_literal(tags: Iterable[str]) -> str:
    # Every element quoted, so no tag text is read as array syntax.
    quoted = (t.replace("\\", "\\\\").replace('"', '\\"') for t in tags)
    return "{" + ",".join(f'"{t}"' for t in quoted) + "}"


_DIGITS_ID_MAX = values.PLATFORM_FAN_ID_MAX_LENGTH
# The shapes of ``values.money_convert``'s fast path, capped so the amount fits (longer ones
# go to the general parser, which refuses what is too large).
_PLAIN_MONEY = re.compile(r"\$?(?:\d{1,3}(?:,\d{3}){1,4}|\d{1,13})(?:\.\d{1,2})?")
# ``values.email_convert``'s ASCII rule, with its two extra conditions as lookaheads.
_EMAIL_FAST = re.compile(r"(?!\.)(?!.*\.\.)" + values.EMAIL_ASCII.pattern)
_USERNAME_FAST = values.USERNAME_PATTERN
# Whole columns at once: the cells joined by a character no valid cell holds (and, checked by
# counting it, no cell of the column holds), matched in one regex pass.
_USERNAMES_ALL = re.compile(r"[\w.\-]*(?: [\w.\-]*)*")
_PLAIN_MONEY_ALL = re.compile(f"(?:{_PLAIN_MONEY.pattern})?(?:\n(?:{_PLAIN_MONEY.pattern})?)*")


def _fullmatch_capped(
    pattern: re.Pattern[str], cells: list[str], longest: int, cap: int
) -> list[re.Match[str] | None]:
    """``pattern.fullmatch`` of each cell (one ``map`` when none is over ``cap``); a longer cell
    is not matched (None: it goes to ``values``, which refuses it for its length)."""
    if longest <= cap:
        return list(map(pattern.fullmatch, cells))
    return [pattern.fullmatch(c) if len(c) <= cap else None for c in cells]


@dataclass
class StagedBatch:
    """A converted batch: COPY text, counters, and (when asked) each row's cell errors."""

    text: str
    count: int
    rejected: int
    last_row: int
    errors: dict[int, list[tuple[int | None, str]]] = field(default_factory=dict)


class BatchConverter:
    """Cells of one file's rows → the staged values as COPY text, or the reasons a row is
    refused. The rules are ``imports.values``'; this only avoids Python work per cell for the
    shapes nearly every cell has."""

    def __init__(self, *, columns: list[str], match_on: str, date_order: str | None) -> None:
        self.width = len(columns)
        self.date_convert = values.date_converter(date_order or None)
        self.single = [
            (index, name) for index, name in enumerate(columns) if name and name != "tags"
        ]
        self.tag_columns = [index for index, name in enumerate(columns) if name == "tags"]
        self.username_index = columns.index("username") if "username" in columns else None
        self.key_required = match_on == "platform_fan_id"
        self.key_label = FIELDS[match_on].label
        self._tags_cache: dict[str, list[str] | CellError] = {}
        self._state_cache: dict[str, str | CellError] = {}
        self._date_cache: dict[str, str | CellError] = {}

    # Each column converter takes the stripped cells ("" for empty) and returns the COPY text
    # of each (NULL for empty) and the reasons of the cells it refuses, by position.

    def _slow(
        self, cells: list[str], out: list[str], positions: Iterable[int], convert: Any, fmt: Any
    ) -> dict[int, str]:
        errors: dict[int, str] = {}
        for i in positions:
            try:
                out[i] = fmt(convert(cells[i]))
            except CellError as exc:
                out[i] = NULL
                errors[i] = str(exc)
        return errors

    def _text_column(self, cells: list[str], convert: Any, max_length: int) -> Any:
        joined = "".join(cells)
        errors: dict[int, str] = {}
        if max(map(len, cells)) > max_length or "\x00" in joined:
            bad = [i for i, c in enumerate(cells) if len(c) > max_length or "\x00" in c]
            errors = self._slow(cells, list(cells), bad, convert, str)
        if _COPY_SPECIAL.search(joined):
            cells = [_copy_escape(c) if _COPY_SPECIAL.search(c) else c for c in cells]
        out = [c or NULL for c in cells]
        for i in errors:
            out[i] = NULL
        return out, errors

    def _platform_id_column(self, cells: list[str]) -> Any:
        joined = "".join(cells)
        out = [c or NULL for c in cells]
        if joined.isascii() and joined.isdigit() and max(map(len, cells)) <= _DIGITS_ID_MAX:
            return out, {}
        bad = [
            i
            for i, c in enumerate(cells)
            if c and not (c.isascii() and c.isdigit() and len(c) <= _DIGITS_ID_MAX)
        ]
        return out, self._slow(cells, out, bad, values.platform_fan_id_convert, str)

    def _username_column(self, cells: list[str]) -> Any:
        names = cells
        joined = " ".join(cells)
        if "@" in joined:
            names = [c[1:].strip() if c.startswith("@") else c for c in cells]
            joined = " ".join(names)
        longest = max(map(len, names))
        if (
            joined.count(" ") == len(names) - 1
            and longest <= values.USERNAME_MAX_LENGTH
            and _USERNAMES_ALL.fullmatch(joined)
            and (names is cells or all(names[i] for i, c in enumerate(cells) if c))
        ):
            # Every cell is a username or empty ("@" alone goes the slow way, above).
            return [c or NULL for c in names], {}
        matched = _fullmatch_capped(_USERNAME_FAST, names, longest, values.USERNAME_MAX_LENGTH)
        out = [c if m else NULL for c, m in zip(names, matched, strict=True)]
        bad = [
            i
            for i, (c, m) in enumerate(zip(names, matched, strict=True))
            if cells[i] and (not m or len(c) > values.USERNAME_MAX_LENGTH)
        ]
        return out, self._slow(cells, out, bad, values.username_convert, str)

    def _email_column(self, cells: list[str]) -> Any:
        matched = _fullmatch_capped(
            _EMAIL_FAST, cells, max(map(len, cells)), values.EMAIL_MAX_LENGTH
        )
        out = [c if m else NULL for c, m in zip(cells, matched, strict=True)]
        bad = [
            i
            for i, (c, m) in enumerate(zip(cells, matched, strict=True))
            if c and (not m or len(c) > values.EMAIL_MAX_LENGTH)
        ]
        errors = self._slow(cells, out, bad, values.email_convert, str)
        for i in bad:
            if i not in errors and _COPY_SPECIAL.search(out[i]):
                out[i] = _copy_escape(out[i])
        return out, errors

    def _money_column(self, cells: list[str]) -> Any:
        joined = "\n".join(cells)
        if joined.count("\n") == len(cells) - 1 and _PLAIN_MONEY_ALL.fullmatch(joined):
            # Every cell is empty or a plain amount: one pass over the column's text.
            plain = joined.replace("$", "").replace(",", "").split("\n")
            return [c or NULL for c in plain], {}
        matched = list(map(_PLAIN_MONEY.fullmatch, cells))
        out = [
            c.replace("$", "").replace(",", "") if m else NULL
            for c, m in zip(cells, matched, strict=True)
        ]
        bad = [i for i, (c, m) in enumerate(zip(cells, matched, strict=True)) if c and not m]
        return out, self._slow(cells, out, bad, values.money_convert, _cents_text)

    def _cached_column(
        self, cells: list[str], cache: dict[str, Any], convert: Any, fmt: Any
    ) -> Any:
        out = [NULL] * len(cells)
        errors: dict[int, str] = {}
        get = cache.get
        for i, c in enumerate(cells):
            if not c:
                continue
            hit = get(c)
            if hit is None:
                try:
                    hit = fmt(convert(c))
                except CellError as exc:
                    hit = CellError(*exc.args)  # no traceback kept (see values)
                if len(cache) >= 50_000:
                    cache.clear()
                cache[c] = hit
            if isinstance(hit, CellError):
                errors[i] = str(hit)
            else:
                out[i] = hit
        return out, errors

    def _state_column(self, cells: list[str]) -> Any:
        return self._cached_column(cells, self._state_cache, values.subscription_state_convert, str)

    def _date_column(self, cells: list[str]) -> Any:
        # Naive times leave as they are: the COPY runs with TimeZone UTC, as values' are UTC.
        out = [NULL] * len(cells)
        errors: dict[int, str] = {}
        iso: list[int] = []
        cache = self._date_cache
        get = cache.get
        for i, c in enumerate(cells):
            if not c:
                continue
            hit = get(c)
            if hit is None:
                if c[4:5] == "-" and c[:4].isdigit():
                    # values.date_converter tries fromisoformat first for these, too.
                    iso.append(i)
                    continue
                try:
                    hit = self.date_convert(c).isoformat()
                except CellError as exc:
                    hit = CellError(*exc.args)  # no traceback kept (see values)
                if len(cache) >= 50_000:
                    cache.clear()
                cache[c] = hit
            if isinstance(hit, CellError):
                errors[i] = str(hit)
            else:
                out[i] = hit
        if iso:
            try:
                parsed = list(map(datetime.fromisoformat, [cells[i] for i in iso]))
            except ValueError:
                for i in iso:
                    try:
                        out[i] = _iso_text(self.date_convert(cells[i]))
                    except CellError as exc:
                        errors[i] = str(exc)
            else:
                for i, text in zip(iso, map(datetime.isoformat, parsed), strict=True):
                    out[i] = text
        return out, errors

    def _convert_column(self, name: str, cells: list[str]) -> Any:
        if name == "platform_fan_id":
            return self._platform_id_column(cells)
        if name == "username":
            return self._username_column(cells)
        if name == "display_name":
            return self._text_column(
                cells, values.display_name_convert, values.DISPLAY_NAME_MAX_LENGTH
            )
        if name == "notes":
            return self._text_column(cells, values.notes_convert, values.NOTES_MAX_LENGTH)
        if name == "email":
            return self._email_column(cells)
        if name == "lifetime_spend":
            return self._money_column(cells)
        if name == "subscription_state":
            return self._state_column(cells)
        return self._date_column(cells)

    def _tags(self, text: str) -> list[str] | CellError:
        hit = self._tags_cache.get(text)
        if hit is None:
            try:
                hit = values.tags_convert(text)
            except CellError as exc:
                hit = CellError(*exc.args)  # no traceback kept (see values)
            if len(self._tags_cache) >= 50_000:
                self._tags_cache.clear()
            self._tags_cache[text] = hit
        return hit

    def _tags_column(
        self, rows: list[list[str]], row_errors: dict[int, list[tuple[tuple[int, int], str]]]
    ) -> list[str]:
        out = [NULL] * len(rows)
        literals: dict[tuple[str, ...], str] = {}
        for i, cells in enumerate(rows):
            tags: list[str] = []
            for index in self.tag_columns:
                text = cells[index].strip()
                if not text:
                    continue
                hit = self._tags(text)
                if isinstance(hit, CellError):
                    row_errors.setdefault(i, []).append(((1, index), f"Tags: {hit}"))
                    continue
                tags = [*tags, *(t for t in hit if t not in tags)] if tags else hit
            if tags:
                key = tuple(tags)
                literal = literals.get(key)
                if literal is None:
                    literal = _array_literal(key)
                    if _COPY_SPECIAL.search(literal):
                        literal = _copy_escape(literal)
                    literals[key] = literal
                out[i] = literal
        return out

    def convert(
        self, numbers: list[int], rows: list[list[str]], *, keep_errors: int = 0
    ) -> StagedBatch:
        """Convert one batch; ``keep_errors`` keeps the cell errors of that many first rows
        (the preview shows them)."""
        width = self.width
        n = len(rows)
        # Reasons by row position, each with a sort key: the row's shape, then its columns.
        row_errors: dict[int, list[tuple[tuple[int, int], str]]] = {}
        for i in [i for i, cells in enumerate(rows) if len(cells) != width]:
            cells = rows[i]
            if len(cells) < width:
                rows[i] = cells + [""] * (width - len(cells))
            elif any(cell.strip() for cell in cells[width:]):
                row_errors.setdefault(i, []).append(
                    (
                        (0, 0),
                        f"The row has {len(cells)} cells but the header has {width} columns "
                        "(a delimiter inside an unquoted value?).",
                    )
                )
        columns: list[list[str]] = [[NULL] * n for _ in VALUE_COLUMNS]
        by_column = list(zip(*rows, strict=False)) if rows else []
        for index, name in self.single:
            cells = list(map(str.strip, by_column[index]))
            out, errors = self._convert_column(name, cells)
            columns[_SLOT[name]] = out
            label = FIELDS[name].label
            for i, message in errors.items():
                row_errors.setdefault(i, []).append(((1, index), f"{label}: {message}"))
        if self.tag_columns:
            columns[_SLOT["tags"]] = self._tags_column(rows, row_errors)
        usernames, platform_ids = columns[_SLOT["username"]], columns[_SLOT["platform_fan_id"]]
        for i in range(n):
            if i in row_errors:
                continue
            if usernames[i] == NULL:
                row_errors[i] = [((1, -1), "Username: a username is required.")]
            elif self.key_required and platform_ids[i] == NULL:
                row_errors[i] = [
                    ((0, 1), f"{self.key_label}: required, it is the key that finds fans.")
                ]
        statuses = ["ok"] * n
        messages = [NULL] * n
        kept: dict[int, list[tuple[int | None, str]]] = {}
        for i, reasons in row_errors.items():
            reasons.sort(key=lambda reason: reason[0])
            statuses[i] = "rejected"
            text = " ".join(message for _, message in reasons)[:2000]
            messages[i] = _copy_escape(text) if _COPY_SPECIAL.search(text) else text
            if i < keep_errors:
                kept[numbers[i]] = [(self._error_index(key), message) for key, message in reasons]
        lines = map("\t".join, zip(map(str, numbers), statuses, messages, *columns, strict=True))
        return StagedBatch(
            text="\n".join(lines) + "\n",
            count=n,
            rejected=len(row_errors),
            last_row=numbers[-1] if numbers else 0,
            errors=kept,
        )

    def _error_index(self, key: tuple[int, int]) -> int | None:
        kind, index = key
        if kind == 0:
            return None
        if index == -1:
            return self.username_index
        return index


def _iso_text(value: datetime) -> str:
    return value.isoformat()


def _cents_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# --- Staging -----------------------------------------------------------------------------------


# Rows converted (and held, as cells and as COPY text) at a time: ~40 MB at 10 columns.
CONVERT_CHUNK_ROWS = 10_000


def copy_sql(table: str) -> str:
    """The COPY that takes ``BatchConverter`` batches (text format) into a staging table."""
    return f"COPY {table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"


def rows_values(cursor: CursorWrapper, table: str, *, through_row: int) -> dict[int, dict]:
    """The staged values of the rows up to ``through_row``, as they will be stored."""
    cursor.execute(
        f"SELECT row_no, platform_fan_id, username, display_name, email, tags, notes,"  # noqa: S608
        f" (spend * 100)::bigint AS spend_cents, subscription_state, subscribed_at, expires_at,"
        f" last_seen_at FROM {table} WHERE row_no <= %s ORDER BY row_no",
        [through_row],
    )
    names = [column.name for column in cursor.description][1:]
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in cursor.fetchall()}


def duplicates_mark(cursor: CursorWrapper, table: str, *, match_on: str) -> tuple[int, int]:
    """Mark rows whose key a later row repeats (the last row wins) as duplicates, and rows that
    share the other unique value (username or platform id) with a later row as rejected.
    Returns (duplicates, rejected)."""
    key = "platform_fan_id" if match_on == "platform_fan_id" else "username_key"
    other = "username_key" if match_on == "platform_fan_id" else "platform_fan_id"
    other_label = "username" if match_on == "platform_fan_id" else "platform fan id"
    # Grouped by hashing (no sort of the whole file); only repeated values are joined back.
    cursor.execute(
        f"""
        UPDATE {table} s SET status = 'duplicate',
            error = 'Skipped: duplicate of row ' || d.last_row || ', which was used instead.'
        FROM (
            SELECT {key} AS value, max(row_no) AS last_row FROM {table}
            WHERE status = 'ok' GROUP BY 1 HAVING count(*) > 1
        ) d
        WHERE s.{key} = d.value AND s.status = 'ok' AND s.row_no <> d.last_row
        """  # noqa: S608
    )
    duplicates = cursor.rowcount
    cursor.execute(
        f"""
        UPDATE {table} s SET status = 'rejected',
            error = 'The {other_label} ' || s.{other} || ' is also in row ' || d.last_row
                || ' with another {FIELDS[match_on].label.lower()}.'
        FROM (
            SELECT {other} AS value, max(row_no) AS last_row FROM {table}
            WHERE status = 'ok' AND {other} IS NOT NULL GROUP BY 1 HAVING count(*) > 1
        ) d
        WHERE s.{other} = d.value AND s.status = 'ok' AND s.row_no <> d.last_row
        """  # noqa: S608
    )
    return duplicates, cursor.rowcount


# How a staged row meets the account's fans: ``k`` holds, per row, the fan its key finds and
# the fan its other unique value (username or platform id) finds; these decide its status
# (created, updated, skipped, or conflict: refused because the other value belongs to another
# fan), the reason shown for it, and the fan it updates.
_DECIDE_PLATFORM_ID = """
    CASE
      WHEN k.key_fan IS NOT NULL AND k.other_fan IS NOT NULL AND k.other_fan <> k.key_fan
        THEN 'conflict'
      WHEN k.key_fan IS NOT NULL THEN %(matched)s
      WHEN k.other_fan IS NOT NULL AND k.other_fan_pfid IS NULL THEN %(matched)s
      WHEN k.other_fan IS NOT NULL THEN 'conflict'
      ELSE 'created'
    END AS status,
    CASE
      WHEN k.key_fan IS NOT NULL AND k.other_fan IS NOT NULL AND k.other_fan <> k.key_fan
        THEN 'The username ' || k.username || ' belongs to another fan.'
      WHEN k.key_fan IS NOT NULL OR (k.other_fan IS NOT NULL AND k.other_fan_pfid IS NULL)
        THEN %(matched_error)s
      WHEN k.other_fan IS NOT NULL
        THEN 'The username ' || k.username || ' belongs to the fan with platform id '
             || k.other_fan_pfid || '.'
    END AS error,
    COALESCE(k.key_fan, CASE WHEN k.other_fan_pfid IS NULL THEN k.other_fan END) AS fan_id
"""
_DECIDE_USERNAME = """
    CASE
      WHEN k.key_fan IS NOT NULL AND k.other_fan IS NOT NULL AND k.other_fan <> k.key_fan
        THEN 'conflict'
      WHEN k.key_fan IS NOT NULL AND k.platform_fan_id IS NOT NULL
        AND k.key_fan_pfid IS NOT NULL AND k.key_fan_pfid <> k.platform_fan_id THEN 'conflict'
      WHEN k.key_fan IS NOT NULL THEN %(matched)s
      WHEN k.other_fan IS NOT NULL THEN 'conflict'
      ELSE 'created'
    END AS status,
    CASE
      WHEN k.other_fan IS NOT NULL AND k.other_fan IS DISTINCT FROM k.key_fan
        THEN 'The platform fan id ' || k.platform_fan_id || ' belongs to another fan.'
      WHEN k.key_fan IS NOT NULL AND k.platform_fan_id IS NOT NULL
        AND k.key_fan_pfid IS NOT NULL AND k.key_fan_pfid <> k.platform_fan_id
        THEN 'The fan ' || k.username || ' is linked to platform id ' || k.key_fan_pfid
             || ', not ' || k.platform_fan_id || '.'
      WHEN k.key_fan IS NOT NULL THEN %(matched_error)s
    END AS error,
    k.key_fan AS fan_id
"""


def _plan_sql(table: str, *, match_on: str) -> str:
    """CTEs ``k`` and ``c``: the decision for each 'ok' row of (after, through]."""
    # Each lookup is an index probe per staged row (LIMIT 1 keeps it a correlated probe): a
    # batch costs what its rows cost, not what the account's fans cost.
    by_id = (
        "(SELECT f.id, f.platform_fan_id FROM crm_fan f WHERE f.account_id = %(account)s"
        " AND f.platform_fan_id = s.platform_fan_id LIMIT 1)"
    )
    by_name = (
        "(SELECT f.id, f.platform_fan_id FROM crm_fan f WHERE f.account_id = %(account)s"
        " AND lower(f.username) = s.username_key LIMIT 1)"
    )
    if match_on == "platform_fan_id":
        key, other, decide = by_id, by_name, _DECIDE_PLATFORM_ID
    else:
        key, other, decide = by_name, by_id, _DECIDE_USERNAME
    return f"""
        k AS (
            SELECT s.row_no, s.username, s.platform_fan_id,
                kf.id AS key_fan, kf.platform_fan_id AS key_fan_pfid,
                of.id AS other_fan, of.platform_fan_id AS other_fan_pfid
            FROM {table} s
            LEFT JOIN LATERAL {key} kf ON true
            LEFT JOIN LATERAL {other} of ON true
            WHERE s.row_no > %(after)s AND s.row_no <= %(through)s AND s.status = 'ok'
        ),
        c AS MATERIALIZED (SELECT k.row_no, {decide} FROM k)
    """  # noqa: S608


def _plan_params(*, account_id: int, on_match: str, after_row: int, through_row: int) -> dict:
    return {
        "account": account_id,
        "after": after_row,
        "through": through_row,
        "matched": "updated" if on_match == "update" else "skipped",
        "matched_error": (
            "Skipped: the fan exists already (only new fans are added)."
            if on_match == "add_only"
            else None
        ),
    }


def rows_plan_counts(
    cursor: CursorWrapper, table: str, *, account_id: int, match_on: str, on_match: str
) -> dict[str, int]:
    """What merging every staged row would do, by status, without writing anything."""
    params = _plan_params(
        account_id=account_id, on_match=on_match, after_row=0, through_row=2**31 - 1
    )
    sql = (
        f"WITH {_plan_sql(table, match_on=match_on)} SELECT status, count(*) FROM c GROUP BY 1"  # noqa: S608
        f" UNION ALL SELECT status, count(*) FROM {table} WHERE status <> 'ok' GROUP BY 1"
    )
    cursor.execute(sql, params)
    counts: dict[str, int] = {}
    for status, n in cursor.fetchall():
        counts[status] = counts.get(status, 0) + int(n)
    return counts


_SIMPLE_UPDATES = {
    "display_name": ("display_name", "s.display_name"),
    "email": ("email", "s.email"),
    "notes": ("notes", "s.notes"),
    "lifetime_spend": ("lifetime_spend_cents", "(s.spend * 100)::bigint"),
    "subscription_state": ("subscription_state", "s.subscription_state"),
    "subscribed_at": ("subscribed_at", "s.subscribed_at"),
    "subscription_expires_at": ("subscription_expires_at", "s.expires_at"),
    "last_seen_at": ("last_seen_at", "s.last_seen_at"),
}


def rows_merge(
    cursor: CursorWrapper,
    table: str,
    *,
    account_id: int,
    match_on: str,
    on_match: str,
    columns: list[str],
    after_row: int,
    through_row: int,
) -> dict[str, int]:
    """Merge the staged rows of (after_row, through_row] into crm_fan in one statement: each
    row's decision is taken once (against the fans as they were when it started), matches are
    updated (UPDATE … FROM), new fans inserted (INSERT … ON CONFLICT DO NOTHING), and only the
    rows refused or skipped with a reason are marked in the staging table for the report.
    Empty cells never blank a fan's value. Returns the batch's counts by status: a new fan
    another writer added meanwhile, or a matched fan deleted meanwhile, counts as skipped."""
    mapped = set(columns)
    sets = ["updated_at = now()"]
    if "platform_fan_id" in mapped:
        # Links an unlinked fan; a linked one keeps its id (a conflict was refused).
        sets.append("platform_fan_id = COALESCE(f.platform_fan_id, s.platform_fan_id)")
    if match_on == "platform_fan_id":
        sets.append("username = s.username")
    for name, (fan_column, staged) in _SIMPLE_UPDATES.items():
        if name in mapped:
            sets.append(f"{fan_column} = COALESCE({staged}, f.{fan_column})")
    if "tags" in mapped:
        sets.append(
            "tags = CASE WHEN s.tags IS NULL THEN f.tags ELSE (f.tags || ARRAY("
            "SELECT t FROM unnest(s.tags) AS t WHERE NOT t = ANY(f.tags)))[1:30] END"
        )
    conflict = (
        "(account_id, platform_fan_id) WHERE platform_fan_id IS NOT NULL"
        if match_on == "platform_fan_id"
        else "(account_id, lower(username))"
    )
    params = _plan_params(
        account_id=account_id, on_match=on_match, after_row=after_row, through_row=through_row
    )
    sql = f"""
        WITH {_plan_sql(table, match_on=match_on)},
        updated AS (
            UPDATE crm_fan f SET {", ".join(sets)}
            FROM c JOIN {table} s ON s.row_no = c.row_no
            WHERE c.status = 'updated' AND f.id = c.fan_id AND f.account_id = %(account)s
            RETURNING 1
        ),
        inserted AS (
            INSERT INTO crm_fan (
                account_id, platform_fan_id, username, display_name, email, tags, notes,
                lifetime_spend_cents, subscription_state, subscribed_at,
                subscription_expires_at, last_seen_at, created_at, updated_at)
            SELECT %(account)s, s.platform_fan_id, s.username, COALESCE(s.display_name, ''),
                COALESCE(s.email, ''), COALESCE(s.tags, '{{}}'), COALESCE(s.notes, ''),
                COALESCE((s.spend * 100)::bigint, 0), COALESCE(s.subscription_state, 'never'),
                s.subscribed_at, s.expires_at, s.last_seen_at, now(), now()
            FROM c JOIN {table} s ON s.row_no = c.row_no
            WHERE c.status = 'created'
            {{on_conflict}}
            RETURNING 1
        ),
        marked AS (
            UPDATE {table} s SET status = c.status, error = c.error
            FROM c WHERE s.row_no = c.row_no AND c.error IS NOT NULL
            RETURNING 1
        )
        SELECT
            (SELECT count(*) FROM inserted),
            (SELECT count(*) FROM updated),
            (SELECT count(*) FROM marked),
            (SELECT count(*) FILTER (WHERE status = 'created') FROM c),
            (SELECT count(*) FILTER (WHERE status = 'updated') FROM c),
            (SELECT count(*) FILTER (WHERE status = 'skipped') FROM c),
            (SELECT count(*) FILTER (WHERE status = 'conflict') FROM c),
            (SELECT count(*) FROM {table} s
             WHERE s.row_no > %(after)s AND s.row_no <= %(through)s)
        """  # noqa: S608
    try:
        # Plain INSERT (ON CONFLICT's speculative insertion costs ~13 % more CPU a row) in a
        # savepoint: a fan another writer added since this statement's snapshot (a webhook,
        # the platform sync) fails it, and it runs again leaving such fans to their writer.
        with transaction.atomic():
            cursor.execute(sql.replace("{on_conflict}", ""), params)
            row = cursor.fetchone()
    except IntegrityError:
        on_conflict = f"ON CONFLICT {conflict} DO NOTHING"
        cursor.execute(sql.replace("{on_conflict}", on_conflict), params)
        row = cursor.fetchone()
    assert row is not None
    inserted, updated, _, planned_created, planned_updated, skipped, conflicts, rows = row
    return {
        "created": int(inserted),
        "updated": int(updated),
        "skipped": int(skipped) + int(planned_created - inserted) + int(planned_updated - updated),
        "conflict": int(conflicts),
        "rows": int(rows),
    }


def staging_bounds(cursor: CursorWrapper, table: str, *, after_row: int) -> tuple[int, int] | None:
    """The first and the last staged row number after ``after_row``, None when none is left."""
    cursor.execute(
        f"SELECT min(row_no), max(row_no) FROM {table} WHERE row_no > %s",  # noqa: S608
        [after_row],
    )
    row = cursor.fetchone()
    return None if row is None or row[0] is None else (int(row[0]), int(row[1]))


# --- The report --------------------------------------------------------------------------------


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
    from imports.csvfile import rows_batches, text_open

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
        gc_paused(),
        text_open(source, encoding) as handle,
        open(tmp, "w", encoding="utf-8-sig", newline="") as out,
    ):
        writer = csv.writer(out)
        writer.writerow(row_neutralise([*header, "error"]))
        for numbers, rows in rows_batches(handle, delimiter, size=CONVERT_CHUNK_ROWS):
            if wanted is None:
                break
            if numbers[-1] < wanted[0]:
                continue  # no reported row in this chunk
            for row_no, cells in zip(numbers, rows, strict=True):
                if wanted is None:
                    break
                if row_no < wanted[0]:
                    continue
                writer.writerow(row_neutralise([*cells, wanted[1]]))
                written += 1
                wanted = next(pending, None)
    tmp.replace(target)
    return written
