"""The one rule for every CSV cell the product writes (crm.csv_safe)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm.csv_safe import FORMULA_STARTS, LEADING_BLANKS, cell_neutralise, row_neutralise

HOSTILE = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "\n=1",
    "\uff1d1+1",  # full-width =
    "\uff0b1",  # full-width +
    "\uff0d1",  # full-width -
    "\uff20SUM(A1)",  # full-width @
    "  =1+1",  # spaces before the formula
    "\u3000=1",  # an ideographic space before it
    "-5",  # a string, even if it reads as a number: only the product's numbers are numbers
]


def is_formula_safe(cell: str) -> bool:
    """What a test of any export checks on each written cell: text that a spreadsheet would
    run starts with the apostrophe."""
    first = cell.lstrip(LEADING_BLANKS)[:1]
    return not first or first not in FORMULA_STARTS


@pytest.mark.parametrize("text", HOSTILE)
def test_a_cell_that_would_start_a_formula_gets_an_apostrophe(text):
    assert cell_neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["alice", "", " ", "100%", "a=b", "x-1", "'=already", "€5"])
def test_other_text_is_kept(text):
    assert cell_neutralise(text) == text


def test_numbers_the_product_wrote_stay_numbers():
    assert row_neutralise([-5, -0.25, Decimal("-3.50"), 0, True, False, None]) == [
        -5, -0.25, Decimal("-3.50"), 0, "true", "false", "",
    ]  # fmt: skip


def test_every_start_the_rule_names_is_neutralised():
    for start in FORMULA_STARTS:
        assert cell_neutralise(start + "1") == "'" + start + "1"
        assert is_formula_safe(str(cell_neutralise(start + "1")))
