"""Hostile cells: conversion time grows linearly with a cell, over-long cells are refused with
their reason, and a file of them imports (or is refused) promptly.

A regular expression match holds the interpreter lock: one that backtracks quadratically on a
60 KB cell stops every thread of the worker (and the web server's event loop) for minutes.
These tests time every compiled pattern of the import modules, and every converter, on long
runs of spaces, digits, ``@``, quotes and separators at two sizes 16 times apart: linear work
takes ~16 times longer, a quadratic pattern ~256 times.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from imports import csvfile, engine, values
from imports.csvfile import FileRefused
from imports.values import CellError
from tests.imports.test_api import api_for, nothing_written, post

SMALL = 1_000
FACTOR = 16
# Linear is ~16; quadratic ~256. Below the floor a run is too short to judge (noise).
RATIO_LIMIT = 64.0
FLOOR_SECONDS = 0.005

# Runs that real patterns could share between two repeats, after prefixes that lead the
# patterns into their later parts (a date, a date and time, an address).
UNITS = [" ", "\t", "9", "@", '"', '""', "1,", "1.", "1-", "1 -", "a.", "a@", " ,T", ":0",
         "\n9", "$", "usd "]  # fmt: skip
PREFIXES = ["", "2025-11-01", "01/11/2025 10:00:00.5", "Nov 1, 2025 10:00", "a@b"]
SUFFIXES = ["", "x"]


def _seconds(call: Callable[[str], Any], text: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.suppress(CellError, FileRefused):
            call(text)
        best = min(best, time.perf_counter() - start)
    return best


def _growth(call: Callable[[str], Any], make: Callable[[int], str]) -> tuple[float, float]:
    """(ratio of the times at 16n and n, time at 16n); measured again, more carefully, before
    a suspicious figure is believed (the machine is shared)."""
    small, large = make(SMALL), make(SMALL * FACTOR)
    for repeat in (1, 4):
        big = _seconds(call, large, repeat)
        if big < FLOOR_SECONDS:
            return 0.0, big
        ratio = big / max(_seconds(call, small, repeat), 1e-7)
        if ratio <= RATIO_LIMIT:
            return ratio, big
    return ratio, big


def _slow(cases: dict[str, Callable[[str], Any]]) -> list[str]:
    slow = []
    for name, call in cases.items():
        for prefix in PREFIXES:
            for unit in UNITS:
                for suffix in SUFFIXES:
                    ratio, big = _growth(call, lambda n: prefix + unit * n + suffix)  # noqa: B023
                    if ratio > RATIO_LIMIT:
                        slow.append(
                            f"{name} on {prefix!r} + {unit!r} * n + {suffix!r}: x{ratio:.0f} "
                            f"for x{FACTOR} the size ({big * 1000:.0f} ms)"
                        )
    return slow


def _patterns() -> dict[str, re.Pattern[str]]:
    found = {}
    for module in (values, engine, csvfile):
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_the_import_modules_have_patterns_to_check():
    # The scan below finds the patterns themselves: a rename cannot leave one out unnoticed.
    names = set(_patterns())
    assert {"imports.values._ISO", "imports.values._NAMED_DMY", "imports.values.EMAIL_ASCII",
            "imports.engine._EMAIL_FAST", "imports.engine._PLAIN_MONEY_ALL",
            "imports.csvfile._VALUE_CHARACTERS"} <= names  # fmt: skip


def test_no_pattern_grows_faster_than_linearly():
    # Uncapped on purpose: a pattern must be linear on its own, whatever cap stands before it.
    cases: dict[str, Callable[[str], Any]] = {}
    for name, pattern in _patterns().items():
        cases[f"{name}.fullmatch"] = pattern.fullmatch
        cases[f"{name}.match"] = pattern.match
    assert _slow(cases) == []


def test_the_growth_check_catches_a_quadratic_pattern():
    # The old time part of the date patterns: two \s* around an optional group.
    old_time = re.compile(r"\d{4}-\d\d-\d\d(?: \d\d:\d\d\s*(?:[ap]m)?\s*(?:Z)?)?")

    # Smaller sizes than the other checks' (16,000 spaces would take seconds a match), each
    # the best of three so that a stall of the shared machine cannot hide the growth.
    def make(n: int) -> str:
        return "2025-11-01 10:00" + " " * n + "x"

    small = _seconds(old_time.fullmatch, make(250), 3)
    large = _seconds(old_time.fullmatch, make(250 * FACTOR), 3)
    assert large > FLOOR_SECONDS and large / small > RATIO_LIMIT


def _row_convert(column: str) -> Callable[[str], Any]:
    columns = ["username", column] if column != "username" else ["username"]
    converter = engine.BatchConverter(columns=columns, match_on="username", date_order=None)

    def convert(text: str) -> Any:
        row = ["ann", text] if column != "username" else [text]
        return converter.convert([2], [row], keep_errors=1)

    return convert


def test_no_converter_grows_faster_than_linearly():
    cases: dict[str, Callable[[str], Any]] = {
        "date": values.date_converter(None),
        "date day_first": values.date_converter(values.DAY_FIRST),
        "date_order_evidence": values.date_order_evidence,
        "date_is_ambiguous": values.date_is_ambiguous,
        "money": values.money_convert,
        "email": values.email_convert,
        "username": values.username_convert,
        "tags": values.tags_convert,
        "state": values.subscription_state_convert,
        "platform_fan_id": values.platform_fan_id_convert,
        "header cell": lambda text: csvfile.header_check([text]),
        "header value test": csvfile._looks_like_value,  # uncapped: linear on its own
    }
    for column in ("username", "email", "lifetime_spend", "last_seen_at", "tags", "notes",
                   "platform_fan_id", "subscription_state"):  # fmt: skip
        cases[f"engine {column}"] = _row_convert(column)
    assert _slow(cases) == []


@pytest.mark.parametrize(
    ("convert", "text", "reason"),
    [
        (values.money_convert, "9" * 5_000, "at most 40 characters"),
        (values.money_convert, "$" + " " * 100 + "5", "at most 40 characters"),
        (values.date_converter(None), "2025-11-01" + " " * 60_000 + "x", "at most 80"),
        (values.date_converter(None), "Nov 1, 2025 10:00" + " " * 100 + "pm", "at most 80"),
        (values.email_convert, "@" * 10_000, "at most 254"),
        (values.username_convert, "@" + "a" * 10_000, "at most 150"),
        (values.tags_convert, "a," * 5_000, "at most 3,120"),
        (values.subscription_state_convert, "active" + " " * 100, "at most 40"),
    ],
)
def test_a_cell_over_its_cap_is_refused_with_its_reason(convert, text, reason):
    with pytest.raises(CellError, match=reason):
        convert(text)


def test_values_within_the_caps_still_convert():
    assert values.money_convert("USD 1,000,000,000.00") == 100_000_000_000
    convert = values.date_converter(None)
    parsed = convert("Wednesday, September 30th, 2025 12:30:45 p.m. +05:30")
    assert (parsed.hour, parsed.utcoffset()) == (12, timedelta(hours=5, minutes=30))
    assert convert("2025-11-01 10:00 pm Z").hour == 22
    assert convert("2025-11-01 10:00   +02:00").utcoffset() == timedelta(hours=2)


def test_a_header_cell_over_its_cap_refuses_the_file():
    with pytest.raises(FileRefused) as refused:
        csvfile.header_check(["Username", "x" * 201])
    assert refused.value.code == "header_too_long"
    csvfile.header_check(["Username", "x" * 200])  # at the cap: a (strange) column name


@pytest.mark.parametrize(
    ("cell", "looks"),
    [("a@b.co", True), ("a@b.c", True), ("@b.co", False), ("a@.co", False), ("a@bco.", False),
     ("a@b co", False), ("x@@y.z", True), ("12.50", True), ("Email", False), ("", False)],
)  # fmt: skip
def test_the_header_value_test_is_the_old_pattern(cell, looks):
    assert csvfile._looks_like_value(cell) is looks
    assert bool(re.fullmatch(r"[\d.,:/ $€+-]+|\S+@\S+\.\S+", cell)) is looks


@pytest.mark.django_db
def test_a_megabyte_header_of_at_signs_is_a_prompt_400(owner, account, settings):
    content = b"@" * 1_000_000 + b"\r\nalice\r\n"
    start = time.monotonic()
    response = post(api_for(owner), account, content)
    assert time.monotonic() - start < 8  # it used to take hours (quadratic in 1 MB)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "header_too_long"
    assert nothing_written(settings)


@pytest.mark.django_db
def test_a_file_of_hostile_cells_imports_promptly(run_import, account):
    spaces = " " * 60_000
    content = (
        "Username,Last Seen,Total Spent,Email,Tags\r\n"
        f'ann,"2025-11-01 10:00{spaces}x",5,ann@example.com,vip\r\n'
        f"bob,2025-11-01,{'9' * 5_000},,\r\n"
        f'carl,,,"{"@" * 20_000}",\r\n'
        f'dan,,,,"{"a," * 5_000}"\r\n'
        f"eve,2025-11-01,5,eve@example.com,vip\r\n"
    )
    start = time.monotonic()
    fan_import = run_import(content)
    assert time.monotonic() - start < 10
    assert fan_import.state == "done", fan_import.error_message
    assert (fan_import.created, fan_import.rejected) == (1, 4)
    report = Path(fan_import.errors_path).read_text(encoding="utf-8-sig")
    for reason in (
        "A date can have at most 80",
        "An amount of money can have at most 40",
        "An email address can have at most 254",
        "A tags cell can have at most",
    ):
        assert reason in report
