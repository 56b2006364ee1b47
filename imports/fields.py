"""The fan fields a CSV column can fill, and the header names that suggest each one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from crm.errors import ApplicationError


@dataclass(frozen=True)
class ImportField:
    name: str
    label: str
    kind: str  # text, money, date, tags, state
    many: bool = False  # several columns may fill it (tags)


FIELDS: dict[str, ImportField] = {
    f.name: f
    for f in (
        ImportField("platform_fan_id", "Platform fan id", "text"),
        ImportField("username", "Username", "text"),
        ImportField("display_name", "Display name", "text"),
        ImportField("email", "Email", "text"),
        ImportField("tags", "Tags", "tags", many=True),
        ImportField("notes", "Notes", "text"),
        ImportField("lifetime_spend", "Total spent", "money"),
        ImportField("subscription_state", "Subscription state", "state"),
        ImportField("subscribed_at", "Subscribed at", "date"),
        ImportField("subscription_expires_at", "Subscription expires at", "date"),
        ImportField("last_seen_at", "Last seen", "date"),
    )
}
DATE_FIELDS = ("subscribed_at", "subscription_expires_at", "last_seen_at")

_SYNONYMS = {
    "platform_fan_id": (
        "platformfanid fanid userid id onlyfansid ofid platformid onlyfansuserid "
        "onlyfansfanid fanplatformid subscriberid memberid"
    ),
    "username": "username user handle login onlyfansusername fanusername screenname ofusername",
    "display_name": "displayname name fullname fanname nickname nick publicname",
    "email": "email emailaddress mail",
    "tags": "tags tag labels label subscriptiontier tier segment segments lists list groups",
    "notes": "notes note comments comment description memo remarks",
    "lifetime_spend": (
        "totalspent spent lifetimespend spend totalspend revenue lifetimevalue ltv "
        "totalrevenue amountspent lifetimespent totalspending spending earnings totalearnings"
    ),
    "subscription_state": (
        "subscriptionstate subscriptionstatus status subscribed state subscriberstatus"
    ),
    "subscribed_at": (
        "subscribedat subscribedon subscriptiondate subscribeddate subscriptionstart "
        "subscribedsince joined joinedat joinedon startdate subscriptionstarted firstsubscribed"
    ),
    "subscription_expires_at": (
        "subscriptionexpiresat subscriptionexpires expiresat expires expiry expirydate "
        "expirationdate renewsat renewaldate subscriptionend subscriptionends enddate expireson"
    ),
    "last_seen_at": "lastseen lastseenat lastactive lastactivity lastonline lastlogin lastvisit",
}
_BY_NAME = {synonym: name for name, words in _SYNONYMS.items() for synonym in words.split()}


def _normalize(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def field_suggest(header: str) -> str:
    """The field a column named ``header`` most likely holds, or ""."""
    return _BY_NAME.get(_normalize(header), "")


def columns_suggest(header: list[str]) -> list[str]:
    """One field (or "") per column; a single-valued field goes to the first column naming it."""
    taken: set[str] = set()
    columns: list[str] = []
    for cell in header:
        name = field_suggest(cell)
        if name and name in taken and not FIELDS[name].many:
            name = ""
        if name:
            taken.add(name)
        columns.append(name)
    return columns


def columns_from_mapping(header: list[str], mapping: dict[str, str]) -> list[str]:
    """A mapping ``{CSV header: field}`` (as the API takes it) as one field per column.
    Headers not in the mapping are ignored; a header or field that does not exist is an error."""
    errors: dict[str, list[str]] = {}
    known = set(header)
    for csv_header, name in mapping.items():
        if csv_header not in known:
            errors.setdefault(csv_header, []).append("The file has no column with this name.")
        if name and name not in FIELDS:
            errors.setdefault(csv_header, []).append(
                f"Unknown field {name!r}; one of: {', '.join(FIELDS)}."
            )
    if errors:
        raise ApplicationError(
            "The mapping does not fit the file.", code="invalid_mapping", fields=errors
        )
    return [mapping.get(cell, "") or "" for cell in header]


def columns_check(columns: list[str], *, match_on: str) -> None:
    """A usable mapping: the key and the username mapped, single fields mapped once."""
    errors: dict[str, list[str]] = {}
    for name in set(columns) - {""}:
        if columns.count(name) > 1 and not FIELDS[name].many:
            errors.setdefault(name, []).append("Only one column can fill this field.")
    if "username" not in columns:
        errors.setdefault("username", []).append("Map a column to Username (every fan has one).")
    if match_on == "platform_fan_id" and "platform_fan_id" not in columns:
        errors.setdefault("platform_fan_id", []).append(
            "Map a column to Platform fan id, or match existing fans by username."
        )
    if errors:
        raise ApplicationError(
            "The column mapping is not usable.", code="invalid_mapping", fields=errors
        )
