"""A segment's rules: parsed and validated from JSON (forms, the API, saved segments) into one
frozen dataclass, and written back as the same JSON.

Every rule is optional; an empty rule set means every linked fan of the account.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from crm.errors import ApplicationError
from crm.models import Fan

TAG_MAX_LENGTH = 50
MAX_TAGS = 30
MAX_DAYS = 3650
MAX_HOURS = 24 * 365
MAX_FAN_IDS = 10_000


@dataclass(frozen=True)
class SegmentRules:
    include_tags: tuple[str, ...] = ()
    include_tags_mode: str = "any"  # "any" or "all"
    exclude_tags: tuple[str, ...] = ()
    spend_min_cents: int | None = None
    spend_max_cents: int | None = None
    subscription_states: tuple[str, ...] = ()
    last_seen_within_days: int | None = None
    last_seen_not_within_days: int | None = None
    exclude_messaged_within_hours: int | None = None
    exclude_waiting: bool = False
    exclude_bought_media: bool = False
    # Fans who already received any of the campaign's media (sent, offered or bought).
    exclude_received_media: bool = False
    fan_ids: tuple[int, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        """Only the rules that are set, lists as lists."""
        data = asdict(self)
        default = asdict(SegmentRules())
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in data.items()
            if value != default[key] or (key == "include_tags_mode" and self.include_tags)
        }


_KNOWN = frozenset(SegmentRules.__dataclass_fields__)


def _int_or_none(
    data: dict[str, Any], key: str, errors: dict[str, list[str]], *, low: int, high: int
) -> int | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        errors[key] = ["Must be a whole number."]
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors[key] = ["Must be a whole number."]
        return None
    if number != value and not (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        errors[key] = ["Must be a whole number."]
        return None
    if not low <= number <= high:
        errors[key] = [f"Must be between {low} and {high}."]
        return None
    return number


def _tags(data: dict[str, Any], key: str, errors: dict[str, list[str]]) -> tuple[str, ...]:
    value = data.get(key) or []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        errors[key] = ["A list of tags."]
        return ()
    tags: list[str] = []
    for raw in value:
        tag = raw.strip().lower()
        if not tag:
            continue
        if len(tag) > TAG_MAX_LENGTH:
            errors.setdefault(key, []).append(f"Tags have at most {TAG_MAX_LENGTH} characters.")
        elif tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        errors.setdefault(key, []).append(f"At most {MAX_TAGS} tags.")
    return tuple(tags)


def _bool(data: dict[str, Any], key: str, errors: dict[str, list[str]]) -> bool:
    value = data.get(key, False)
    if isinstance(value, bool):
        return value
    if value in ("on", "true", "1", 1):
        return True
    if value in ("", "false", "0", 0, None):
        return False
    errors[key] = ["Must be true or false."]
    return False


def _fan_ids(data: dict[str, Any], errors: dict[str, list[str]]) -> tuple[int, ...]:
    value = data.get("fan_ids") or []
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list | tuple):
        errors["fan_ids"] = ["A list of fan ids."]
        return ()
    ids: list[int] = []
    for raw in value:
        if isinstance(raw, bool):
            errors["fan_ids"] = ["Fan ids are positive whole numbers."]
            return ()
        try:
            number = int(raw)
        except (TypeError, ValueError):
            errors["fan_ids"] = ["Fan ids are positive whole numbers."]
            return ()
        if number <= 0:
            errors["fan_ids"] = ["Fan ids are positive whole numbers."]
            return ()
        ids.append(number)
    unique = tuple(dict.fromkeys(ids))
    if len(unique) > MAX_FAN_IDS:
        errors["fan_ids"] = [f"At most {MAX_FAN_IDS:,} fans."]
        return ()
    return unique


def segment_rules_parse(data: object) -> SegmentRules:
    """The rules in ``data`` (a dict from JSON or a form), or ApplicationError naming each bad
    field (``code="invalid_rules"``). Unknown keys are refused, so a typo is not ignored."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ApplicationError(
            "Rules must be an object.", code="invalid_rules", fields={"rules": ["Not an object."]}
        )
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        errors["rules"] = [f"Unknown rule: {name}." for name in unknown]
    mode = data.get("include_tags_mode") or "any"
    if mode not in ("any", "all"):
        errors["include_tags_mode"] = ["Either any or all."]
    states = data.get("subscription_states") or []
    if isinstance(states, str):
        states = [states]
    if not isinstance(states, list | tuple) or any(
        s not in Fan.SubscriptionState.values for s in states
    ):
        errors["subscription_states"] = [f"Choose from {', '.join(Fan.SubscriptionState.values)}."]
        states = []
    spend_high = 100_000_000_00
    rules = SegmentRules(
        include_tags=_tags(data, "include_tags", errors),
        include_tags_mode=mode if mode in ("any", "all") else "any",
        exclude_tags=_tags(data, "exclude_tags", errors),
        spend_min_cents=_int_or_none(data, "spend_min_cents", errors, low=0, high=spend_high),
        spend_max_cents=_int_or_none(data, "spend_max_cents", errors, low=0, high=spend_high),
        subscription_states=tuple(dict.fromkeys(states)),
        last_seen_within_days=_int_or_none(
            data, "last_seen_within_days", errors, low=1, high=MAX_DAYS
        ),
        last_seen_not_within_days=_int_or_none(
            data, "last_seen_not_within_days", errors, low=1, high=MAX_DAYS
        ),
        exclude_messaged_within_hours=_int_or_none(
            data, "exclude_messaged_within_hours", errors, low=1, high=MAX_HOURS
        ),
        exclude_waiting=_bool(data, "exclude_waiting", errors),
        exclude_bought_media=_bool(data, "exclude_bought_media", errors),
        exclude_received_media=_bool(data, "exclude_received_media", errors),
        fan_ids=_fan_ids(data, errors),
    )
    if (
        rules.spend_min_cents is not None
        and rules.spend_max_cents is not None
        and rules.spend_min_cents > rules.spend_max_cents
    ):
        errors["spend_max_cents"] = ["Must not be below the minimum."]
    if errors:
        raise ApplicationError(
            "The segment's rules are not valid.", code="invalid_rules", fields=errors
        )
    return rules


# --- personalisation --------------------------------------------------------------------------

# {name}, {username}, and a fallback for when the value is empty: {name|babe}.
VARIABLE = re.compile(r"\{(\w+)(?:\|([^{}]{0,50}))?\}")
VARIABLES = ("name", "username")
# The longest a variable's value can be (Fan.display_name), for the text's length check.
VARIABLE_MAX_LENGTH = 200


def text_variables_check(text: str) -> list[str]:
    """The unknown variables in ``text`` (``{nmae}``); empty when every one is known."""
    return sorted({m.group(1) for m in VARIABLE.finditer(text) if m.group(1) not in VARIABLES})


def text_personalise(text: str, *, display_name: str, username: str) -> str:
    """``{name}`` is the fan's display name (else the fallback, else their username);
    ``{username}`` the username (else the fallback)."""

    def value(match: re.Match[str]) -> str:
        variable, fallback = match.group(1), match.group(2)
        if variable == "name":
            return display_name.strip() or (fallback if fallback is not None else username)
        if variable == "username":
            return username or (fallback or "")
        return match.group(0)

    return VARIABLE.sub(value, text)


def text_max_length(text: str) -> int:
    """The text's longest personalised length (each variable at its longest)."""
    return len(VARIABLE.sub("", text)) + VARIABLE_MAX_LENGTH * len(VARIABLE.findall(text))
