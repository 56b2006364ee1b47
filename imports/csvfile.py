"""Reading the uploaded file: its encoding and delimiter, its header, and its rows as a stream.

Files come from Excel (UTF-16 "Unicode text" with tabs, UTF-8 with a BOM, Windows-1252 with
semicolons in European locales), Google Sheets and other tools' exports. Nothing here holds
the whole file in memory.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from django.conf import settings

from crm.errors import ApplicationError

SAMPLE_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t")
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-16": "UTF-16 (Excel “Unicode text”)",
    "cp1252": "Windows-1252 (Western European)",
    "latin-1": "ISO-8859-1 (Latin-1)",
}
DELIMITER_LABELS = {",": "Comma", ";": "Semicolon", "\t": "Tab"}

_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx or .numbers workbook?)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"\x1f\x8b": "a gzip archive",
    b"SQLite format": "an SQLite database",
}


class FileRefused(ApplicationError):
    """The file cannot be imported at all (nothing is written)."""


def _csv_limits() -> None:
    # A cell of a few MB is legal (a long note); the import then refuses that row by its
    # own rules. Beyond this limit the cell is almost certainly a quote never closed.
    csv.field_size_limit(int(settings.IMPORT_MAX_FIELD_BYTES))


def file_sniff_encoding(head: bytes) -> str:
    """utf-8, utf-16(-le/-be) or cp1252, from the first bytes; raises for binary files."""
    if not head.strip():
        raise FileRefused("The file is empty.", code="empty_file")
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            raise FileRefused(
                f"This is {what}, not a CSV file. Save or export it as CSV first.",
                code="not_csv",
                status_code=415,
            )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8"
    sample = head[:4000]
    if len(sample) >= 4 and sample.count(0) > len(sample) // 4:
        odd = sample[1::2].count(0)
        even = sample[0::2].count(0)
        if odd > len(sample) // 4:
            return "utf-16-le"
        if even > len(sample) // 4:
            return "utf-16-be"
    if b"\x00" in head:
        raise FileRefused("This file is binary, not a CSV file.", code="not_csv", status_code=415)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the sample is still UTF-8.
        if exc.start < len(head) - 3:
            return "cp1252"
    return "utf-8"


def _python_encoding(encoding: str) -> str:
    return "utf-8-sig" if encoding == "utf-8" else encoding


def text_open(path: Path | str, encoding: str) -> IO[str]:
    # Windows-1252 leaves five bytes undefined; replacing them beats refusing the file.
    errors = "replace" if encoding in ("cp1252", "latin-1") else "strict"
    return open(path, encoding=_python_encoding(encoding), errors=errors, newline="")


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\r\n\t")
    return controls / len(text)


def file_sniff_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most consistent columns."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the sample may cut the last line
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:
            continue
        if not counts or counts[0] < 2:
            continue
        consistent = sum(1 for count in counts if count == counts[0])
        score = (consistent, counts[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


@dataclass
class FileShape:
    encoding: str
    delimiter: str
    header: list[str]
    rows_total: int = 0
    # For the columns asked about: how many numeric dates prove each order, or neither.
    day_first: int = 0
    month_first: int = 0
    ambiguous: int = 0
    first_rows: list[list[str]] = field(default_factory=list)


def file_detect(path: Path | str) -> tuple[str, str]:
    """The file's encoding and delimiter, detected from its first 64 KB."""
    with open(path, "rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    encoding = file_sniff_encoding(head)
    text = head.decode(_python_encoding(encoding), errors="ignore")
    if _control_ratio(text[:4000]) > 0.05:
        raise FileRefused("This file is binary, not a CSV file.", code="not_csv", status_code=415)
    return encoding, file_sniff_delimiter(text)


# A number, an amount or a date: one character class, so the match is linear.
_VALUE_CHARACTERS = re.compile(r"[\d.,:/ $€+-]+")
# Longer column names are refused: nobody names a column with a paragraph, and nothing is
# matched against more than this.
HEADER_CELL_MAX_LENGTH = 200


def _looks_like_value(cell: str) -> bool:
    """A number, an amount, a date or an email address (``\\S+@\\S+\\.\\S+``, tested without
    a pattern: the regex backtracks quadratically on a run of ``@``)."""
    if _VALUE_CHARACTERS.fullmatch(cell):
        return True
    if cell.split(maxsplit=1) != [cell]:
        return False  # empty, or with whitespace
    at = cell.find("@", 1)
    dot = cell.rfind(".", 0, len(cell) - 1)
    return at >= 1 and dot > at + 1


def rows_iter(handle: IO[str], delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row number, cells) for each record that is not blank; the header is the
    first one. Raises FileRefused for quotes that never close or a cell over the limit."""
    _csv_limits()
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    number = 0
    while True:
        line = reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _malformed(exc, line + 1) from exc
        except UnicodeDecodeError as exc:
            raise FileRefused(
                f"The file is not valid {getattr(handle, 'encoding', 'text')} near line "
                f"{line + 1}; "
                "choose its encoding (e.g. Windows-1252).",
                code="bad_encoding",
            ) from exc
        number += 1
        if not cells or not any(cell.strip() for cell in cells):
            continue
        yield number, cells


def rows_batches(
    handle: IO[str], delimiter: str, *, size: int, after_row: int = 0
) -> Iterator[tuple[list[int], list[list[str]]]]:
    """The data rows after ``after_row`` (the header skipped), ``size`` records at a time as
    (spreadsheet row numbers, cells): ``rows_iter`` for the import's hot path, without a
    Python step per row beyond the blank-record filter. Raises FileRefused as it does."""
    _csv_limits()
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    consumed = 0  # records read so far; the header is record 1
    header_seen = False
    while True:
        records: list[list[str]] = []
        append = records.append
        line = reader.line_num  # where the record being read starts, for the messages
        try:
            for cells in itertools.islice(reader, size):
                append(cells)
                line = reader.line_num
        except csv.Error as exc:
            raise _malformed(exc, line + 1) from exc
        except UnicodeDecodeError as exc:
            raise FileRefused(
                f"The file is not valid {getattr(handle, 'encoding', 'text')} near line "
                f"{line + 1}; choose its encoding (e.g. Windows-1252).",
                code="bad_encoding",
            ) from exc
        if not records:
            return
        start = consumed + 1
        consumed += len(records)
        numbers: list[int] = []
        rows: list[list[str]] = []
        for offset, cells in enumerate(records):
            # Blank records count as rows of the spreadsheet but carry nothing.
            if not cells or (not cells[0].strip() and not any(c.strip() for c in cells)):
                continue
            if not header_seen:
                header_seen = True  # the first non-blank record is the header
                continue
            number = start + offset
            if number > after_row:
                numbers.append(number)
                rows.append(cells)
        if rows:
            yield numbers, rows


def _malformed(exc: csv.Error, line: int) -> FileRefused:
    message = str(exc)
    if "field larger than field limit" in message:
        limit = int(settings.IMPORT_MAX_FIELD_BYTES)
        return FileRefused(
            f"A cell starting on line {line} is longer than {limit:,} characters: most likely "
            'a quote (") that is never closed.',
            code="malformed_csv",
        )
    if "unexpected end of data" in message:
        return FileRefused(
            f"A quoted cell starting on line {line} is never closed (unbalanced quotes).",
            code="malformed_csv",
        )
    return FileRefused(
        f"Line {line} is not valid CSV ({message}): check its quotes.", code="malformed_csv"
    )


def file_scan(
    path: Path | str,
    *,
    encoding: str,
    delimiter: str,
    date_columns: list[int] | None = None,
    keep_rows: int = 0,
) -> FileShape:
    """Read the whole file once: its header, its number of rows, and evidence of the date
    order in ``date_columns``. Raises FileRefused for what cannot be imported."""
    from imports.values import DAY_FIRST, MONTH_FIRST, date_is_ambiguous, date_order_evidence

    shape = FileShape(encoding=encoding, delimiter=delimiter, header=[])
    with text_open(path, encoding) as handle:
        rows = rows_iter(handle, delimiter)
        for _, cells in rows:
            shape.header = [cell.strip().lstrip("\ufeff").strip() for cell in cells]
            break
        else:
            raise FileRefused("The file is empty.", code="empty_file")
        header_check(shape.header)
        columns = date_columns or []
        for _, cells in rows:
            shape.rows_total += 1
            if len(shape.first_rows) < keep_rows:
                shape.first_rows.append(cells)
            for index in columns:
                if index < len(cells):
                    value = cells[index]
                    evidence = date_order_evidence(value)
                    if evidence == DAY_FIRST:
                        shape.day_first += 1
                    elif evidence == MONTH_FIRST:
                        shape.month_first += 1
                    elif date_is_ambiguous(value):
                        shape.ambiguous += 1
    if shape.rows_total == 0:
        raise FileRefused("The file has a header but no rows.", code="no_rows")
    return shape


def header_check(header: list[str]) -> None:
    """Refuses a header that is empty, looks like data, or has a cell over
    ``HEADER_CELL_MAX_LENGTH`` characters; linear in the header's length."""
    named = [cell for cell in header if cell]
    if not named:
        raise FileRefused("The first row is empty: the file needs a header row.", code="no_header")
    for cell in named:
        if len(cell) > HEADER_CELL_MAX_LENGTH:
            raise FileRefused(
                f"A column name in the first row has {len(cell):,} characters (at most "
                f"{HEADER_CELL_MAX_LENGTH}): the first row must be the header.",
                code="header_too_long",
            )
    from imports.fields import field_suggest

    if not any(field_suggest(cell) for cell in named) and (
        sum(_looks_like_value(cell) for cell in named) * 2 >= len(named)
    ):
        raise FileRefused(
            "The first row looks like data, not column names: add a header row "
            "(e.g. Username, Display Name, Email).",
            code="no_header",
        )
