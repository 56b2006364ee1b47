"""CSV cells a spreadsheet shows as text and never runs as a formula: the one rule every CSV
the product writes follows (analytics exports, the import's rejected-rows report).

A text cell whose first character (after spaces) would start a formula in Excel, LibreOffice
or Google Sheets (``=``, ``+``, ``-``, ``@``, a tab, CR or LF, or the full-width forms
U+FF1D, U+FF0B, U+FF0D, U+FF20 that some of them read alike) gets a leading apostrophe,
which they show as nothing. Numbers the product computed stay numbers: only strings come
from people.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

FORMULA_STARTS = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")
# Spreadsheets skip these before looking for a formula's first character.
LEADING_BLANKS = " \u3000"

Cell = str | int | float | Decimal | bool | None


def cell_neutralise(value: Cell) -> str | int | float | Decimal:
    """``value`` as a safe CSV cell: None is empty, booleans are ``true``/``false``, numbers
    are kept, and text that would start a formula is prefixed with ``'``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    text = str(value)
    first = text.lstrip(LEADING_BLANKS)[:1]
    return "'" + text if first and first in FORMULA_STARTS else text


def row_neutralise(row: Iterable[Cell]) -> list[str | int | float | Decimal]:
    return [cell_neutralise(value) for value in row]
