"""Cell values as people type them in spreadsheets, turned into what a fan row stores.

Each converter takes the cell's text (already stripped, never empty) and returns the value or
raises ``CellError`` with a reason a person can act on. Converters of values that repeat a lot
in real files (money, dates, states) memoise their answers, which keeps a million-row import
from parsing the same ``$9.99`` a hundred thousand times.

Cells come from anyone who can upload a file, and a regular expression match holds the
interpreter lock for as long as it runs (every thread of the process waits). So every
converter refuses a cell longer than its kind's cap before any pattern sees it, and no pattern
here can backtrack over a run of one character more than once (no two adjacent repeats that
can match the same text, such as ``\\s*(x)?\\s*``): conversion time grows linearly with the
cell (``tests/imports/test_hostile.py`` measures it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from crm.services import FAN_NOTES_MAX_LENGTH, FAN_TAG_MAX_LENGTH, FAN_TAGS_MAX_COUNT

DAY_FIRST: Final = "day_first"
MONTH_FIRST: Final = "month_first"

USERNAME_MAX_LENGTH = 150
DISPLAY_NAME_MAX_LENGTH = 200
EMAIL_MAX_LENGTH = 254
PLATFORM_FAN_ID_MAX_LENGTH = 64
# The longest cell of each kind a pattern is run on; longer ones are refused as they are.
# Generous: "Wednesday, September 30th, 2025 12:30:45.123456 p.m. +05:30" is 59 characters.
DATE_MAX_LENGTH = 80
MONEY_MAX_LENGTH = 40  # "USD 1,000,000,000,000.00" is 24
STATE_MAX_LENGTH = 40
_CACHE_MAX = 50_000


class CellError(ValueError):
    """A cell that cannot be stored: ``str(error)`` is the reason shown to the user."""


def _memoised(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    cache: dict[str, Any] = {}

    def cached(text: str) -> Any:
        try:
            hit = cache[text]
        except KeyError:
            try:
                hit = convert(text)
            except CellError as exc:
                # The reason only: a kept exception would keep its traceback's frames (and
                # their locals) alive for as long as the cache holds it.
                hit = CellError(*exc.args)
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[text] = hit
        if isinstance(hit, CellError):
            raise CellError(*hit.args)
        return hit

    return cached


# --- Text -----------------------------------------------------------------------------------


def _text(max_length: int, label: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if len(text) > max_length:
            raise CellError(f"{label} can have at most {max_length:,} characters ({len(text):,}).")
        if "\x00" in text:
            raise CellError(f"{label} contains a NUL character.")
        return text

    return convert


display_name_convert = _text(DISPLAY_NAME_MAX_LENGTH, "A display name")
NOTES_MAX_LENGTH = FAN_NOTES_MAX_LENGTH
notes_convert = _text(NOTES_MAX_LENGTH, "Notes")

_PLATFORM_ID = re.compile(r"[A-Za-z0-9_.:-]+")


_SHORTENED_NUMBER = re.compile(r"\d+(\.\d+)?[eE]\+?\d+")


def platform_fan_id_convert(text: str) -> str:
    if text.isascii() and text.isdigit() and len(text) <= PLATFORM_FAN_ID_MAX_LENGTH:
        return text
    if len(text) > PLATFORM_FAN_ID_MAX_LENGTH:
        raise CellError(
            f"A platform fan id can have at most {PLATFORM_FAN_ID_MAX_LENGTH} characters."
        )
    # Spreadsheets turn long numeric ids into 1.23457E+11 or 123456.0; refuse rather than guess.
    if _SHORTENED_NUMBER.fullmatch(text):
        raise CellError(
            f"{text!r} looks like a number a spreadsheet shortened; format the column as text."
        )
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    if not _PLATFORM_ID.fullmatch(text):
        raise CellError(f"{text!r} is not a platform fan id (letters, digits, _ . : - only).")
    return text


USERNAME_PATTERN = re.compile(r"[\w.\-]+")


def username_convert(text: str) -> str:
    name = text[1:].strip() if text.startswith("@") else text
    if not name:
        raise CellError("A username is required.")
    if len(name) > USERNAME_MAX_LENGTH:
        raise CellError(f"A username can have at most {USERNAME_MAX_LENGTH} characters.")
    if not USERNAME_PATTERN.fullmatch(name):
        raise CellError(f"{name[:60]!r} is not a username (letters, digits, _ . - only).")
    return name


# The WHATWG form rule for ASCII addresses: most rows take this path; Django's validator
# (slower, it also takes internationalised domains) decides the rest.
EMAIL_ASCII = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.[A-Za-z]{2,63}"
)


def email_convert(text: str) -> str:
    if len(text) > EMAIL_MAX_LENGTH:
        raise CellError(f"An email address can have at most {EMAIL_MAX_LENGTH} characters.")
    if EMAIL_ASCII.fullmatch(text) and ".." not in text and not text.startswith("."):
        return text
    try:
        validate_email(text)
    except ValidationError as exc:
        # Django's ValidationError is in a reference cycle with itself (its error_list): its
        # traceback would keep this frame and its callers' (a whole batch of cells) alive
        # until the cyclic collector runs, which the import pauses.
        exc.__traceback__ = None
        valid = False
    else:
        valid = True
    if not valid:
        # Raised outside the except block: an exception bound there and raised from is in a
        # cycle with this frame for the same reason.
        raise CellError(f"{text[:80]!r} is not a valid email address.")
    return text


_TAG_SPLIT = re.compile(r"[,;|]")
# Thirty tags of fifty characters with a separator and a space each, and some slack.
TAGS_CELL_MAX_LENGTH = 2 * FAN_TAGS_MAX_COUNT * (FAN_TAG_MAX_LENGTH + 2)


def tags_convert(text: str) -> list[str]:
    if len(text) > TAGS_CELL_MAX_LENGTH:
        raise CellError(
            f"A tags cell can have at most {TAGS_CELL_MAX_LENGTH:,} characters ({len(text):,})."
        )
    tags: list[str] = []
    for raw in _TAG_SPLIT.split(text):
        tag = raw.strip().lower()
        if not tag:
            continue
        if "\x00" in tag:
            raise CellError("A tag contains a NUL character.")
        if len(tag) > FAN_TAG_MAX_LENGTH:
            raise CellError(
                f"A tag can have at most {FAN_TAG_MAX_LENGTH} characters: {tag[:60]!r}."
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > FAN_TAGS_MAX_COUNT:
        raise CellError(f"A fan can have at most {FAN_TAGS_MAX_COUNT} tags ({len(tags)}).")
    return tags


_STATES = {
    "active": "active",
    "subscribed": "active",
    "subscriber": "active",
    "yes": "active",
    "y": "active",
    "true": "active",
    "1": "active",
    "expired": "expired",
    "inactive": "expired",
    "cancelled": "expired",
    "canceled": "expired",
    "unsubscribed": "expired",
    "lapsed": "expired",
    "never": "never",
    "never subscribed": "never",
    "none": "never",
    "no": "never",
    "n": "never",
    "false": "never",
    "0": "never",
}


def subscription_state_convert(text: str) -> str:
    if len(text) > STATE_MAX_LENGTH:
        raise CellError(
            f"A subscription state (active, expired or never) has at most {STATE_MAX_LENGTH} "
            f"characters ({len(text):,})."
        )
    return _state(text)


@_memoised
def _state(text: str) -> str:
    state = _STATES.get(text.strip().lower())
    if state is None:
        raise CellError(f"{text[:40]!r} is not a subscription state (active, expired or never).")
    return state


# --- Money ----------------------------------------------------------------------------------

_CURRENCY = re.compile(r"(?i)\b(usd|eur|gbp|cad|aud|us)\b|[$€£¥]|\s|\u00a0|\u202f")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


# Ten trillion: more is a typo, and the cents must fit the fan's bigint.
MONEY_MAX_CENTS = 10**15
_PLAIN_MONEY = re.compile(r"\$?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?")


def money_convert(text: str) -> int:
    """``$1,234.50``, ``1234.5``, ``1.234,50 €``, ``USD 20`` → cents. Negative amounts,
    more than two decimals and anything that is not an amount are refused."""
    if len(text) > MONEY_MAX_LENGTH:
        # Also what keeps int() from a few thousand digits (a ValueError, not a reason).
        raise CellError(
            f"An amount of money can have at most {MONEY_MAX_LENGTH} characters ({len(text):,})."
        )
    # The common shapes ($1,234.50, 1234.5) without the general parser.
    if match := _PLAIN_MONEY.fullmatch(text):
        whole, fraction = match.groups()
        cents = int(whole.replace(",", "")) * 100 + int((fraction or "0").ljust(2, "0"))
        if cents > MONEY_MAX_CENTS:
            raise CellError(f"{text[:40]!r} is too large.")
        return cents
    return _money_general(text)


@_memoised
def _money_general(text: str) -> int:
    raw = text.strip()
    if any(sign in raw for sign in "-\u2212("):
        raise CellError(f"{raw[:40]!r} is negative; an amount spent cannot be.")
    body = _CURRENCY.sub("", raw)
    if body.startswith("+"):
        body = body[1:]
    if not body or not _NUMBER.fullmatch(body):
        raise CellError(f"{raw[:40]!r} is not an amount of money.")
    comma, dot = body.rfind(","), body.rfind(".")
    if comma >= 0 and dot >= 0:
        decimal_sep = "," if comma > dot else "."
    elif comma >= 0 or dot >= 0:
        sep = "," if comma >= 0 else "."
        parts = body.split(sep)
        # 1,234 / 1.234.567: grouping; 12,5 / 12.50: decimals (money never has three).
        grouped = len(parts) > 2 or len(parts[-1]) == 3
        decimal_sep = "" if grouped else sep
    else:
        decimal_sep = ""
    thousands_sep = {",": ".", ".": ","}.get(decimal_sep, "")
    whole, _, fraction = body.partition(decimal_sep) if decimal_sep else (body, "", "")
    whole = whole.replace(thousands_sep or ",", "").replace(".", "")
    if thousands_sep and thousands_sep in fraction:
        raise CellError(f"{raw[:40]!r} is not an amount of money.")
    if len(fraction) > 2:
        raise CellError(f"{raw[:40]!r} has more than two decimals.")
    try:
        cents = int(Decimal(f"{whole or '0'}.{fraction or '0'}") * 100)
    except InvalidOperation:
        cents = -1  # raised below, outside the except block (see email_convert)
    if cents < 0:
        raise CellError(f"{raw[:40]!r} is not an amount of money.")
    if cents > MONEY_MAX_CENTS:
        raise CellError(f"{raw[:40]!r} is too large.")
    return cents


# --- Dates ----------------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ],
        start=1,
    )
    for name in names
}
# The time after a date: each optional part starts with its own separator run inside its
# group, so a run of spaces is matched by one repeat only (``\s*(ampm)?\s*(tz)?`` let two
# repeats share it: quadratic backtracking on a date followed by thousands of spaces).
_TIME = (
    r"(?:[ T,]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,]\d+)?)?"
    r"(?:\s*(?P<ampm>[AaPp]\.?[Mm]\.?))?(?:\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}:?\d{2}))?)?"
)
_ISO = re.compile(r"(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})" + _TIME)
_NUMERIC = re.compile(r"(?P<a>\d{1,2})[/.\-](?P<b>\d{1,2})[/.\-](?P<y>\d{4}|\d{2})" + _TIME)
_NAMED_MDY = re.compile(
    r"(?:[A-Za-z]{3,9},?\s+)?(?P<mon>[A-Za-z]{3,9})\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<y>\d{4})"
    + _TIME
)
_NAMED_DMY = re.compile(
    r"(?:[A-Za-z]{3,9},?\s+)?(?P<d>\d{1,2})(?:st|nd|rd|th)?[\s\-]+(?P<mon>[A-Za-z]{3,9})\.?[\s\-,]+(?P<y>\d{4})"
    + _TIME
)
_AMBIGUOUS = re.compile(r"\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](?:\d{4}|\d{2})\b")


def date_order_evidence(text: str) -> str | None:
    """Which order a numeric date such as ``31/12/2025`` proves, or None if it proves none."""
    if len(text) > DATE_MAX_LENGTH:
        return None  # refused when converted
    match = _AMBIGUOUS.match(text)
    if match is None:
        return None
    first, second = int(match.group(1)), int(match.group(2))
    if first > 12 >= second:
        return DAY_FIRST
    if second > 12 >= first:
        return MONTH_FIRST
    return None


def date_is_ambiguous(text: str) -> bool:
    if len(text) > DATE_MAX_LENGTH:
        return False
    match = _AMBIGUOUS.match(text)
    return match is not None and int(match.group(1)) <= 12 and int(match.group(2)) <= 12


def _tz(value: str | None) -> timezone:
    if not value or value in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if value[0] == "-" else 1
    digits = value[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _build(year: int, month: int, day: int, match: re.Match[str], raw: str) -> datetime:
    hour = int(match.group("h") or 0)
    minute = int(match.group("mi") or 0)
    second = int(match.group("s") or 0)
    ampm = (match.group("ampm") or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            raise CellError(f"{raw[:40]!r} is not a valid time.")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=_tz(match.group("tz")))
    except ValueError:
        pass
    raise CellError(f"{raw[:40]!r} is not a valid date.")  # outside the except (see email)


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)


def date_converter(order: str | None) -> Callable[[str], datetime]:
    """A converter for one file: ``order`` (day_first or month_first) decides numeric dates
    such as 01/11/2025; None refuses them when they are ambiguous."""

    def convert(text: str) -> datetime:
        if len(text) > DATE_MAX_LENGTH:
            raise CellError(
                f"A date can have at most {DATE_MAX_LENGTH} characters ({len(text):,})."
            )
        return parse(text)

    @_memoised
    def parse(text: str) -> datetime:
        raw = text.strip()
        if raw[:4].isdigit() and raw[4:5] == "-":
            try:
                parsed = datetime.fromisoformat(raw)
            except ValueError:
                pass
            else:
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        if match := _ISO.fullmatch(raw):
            return _build(int(match["y"]), int(match["m"]), int(match["d"]), match, raw)
        if match := _NUMERIC.fullmatch(raw):
            a, b = int(match["a"]), int(match["b"])
            if order == DAY_FIRST or (order is None and a > 12):
                day, month = a, b
            elif order == MONTH_FIRST or (order is None and b > 12):
                day, month = b, a
            else:
                raise CellError(f"{raw[:40]!r} could be day/month or month/day; choose the order.")
            if month > 12:
                expected = "day/month" if order == DAY_FIRST else "month/day"
                raise CellError(f"{raw[:40]!r} is not a valid {expected} date.")
            return _build(_year(match["y"]), month, day, match, raw)
        for pattern in (_NAMED_MDY, _NAMED_DMY):
            if match := pattern.fullmatch(raw):
                month_number = _MONTHS.get(match["mon"].lower())
                if month_number is None:
                    break
                return _build(int(match["y"]), month_number, int(match["d"]), match, raw)
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise CellError(f"{raw[:40]!r} is not a date.") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    return convert
