"""Writes for automations, their lifecycle: create, update, enable, disable, delete (owners
and managers). Their runs are ``automations.runs`` (creation, cancel on change) and
``automations.due`` (the due pass that hands them to the send pipeline)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.runs import automation_runs_cancel
from automations.selectors import automation_membership_get
from campaigns.rules import (
    SegmentRules,
    segment_rules_parse,
    text_max_length,
    text_variables_check,
)
from crm import media_send
from crm.errors import ApplicationError
from crm.models import Membership
from onlyfans.services import message_validate

log = structlog.get_logger(__name__)

Trigger = Automation.Trigger
State = AutomationRun.State
Reason = AutomationRun.Reason

# Upper bounds of what a user sets (a year of hours, days or minutes; a week of delay).
TRIGGER_VALUE_MAX = {"hours": 24 * 365, "days": 365, "minutes": 60 * 24 * 30}
DELAY_MAX_SECONDS = 7 * 24 * 3600
NAME_MAX_LENGTH = 200


# --- automations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AutomationInput:
    """What a user sets on an automation (pages and API parse into this)."""

    name: str
    trigger: str
    text: str
    trigger_value: int = 0
    price_cents: int = 0
    media_ids: tuple[str, ...] = ()
    # Media picked from the vault (our ids), sent before the raw ``media_ids``.
    vault_item_ids: tuple[int, ...] = ()
    delay_seconds: int = 0
    delay_spread_seconds: int = 0
    rules: dict[str, Any] = field(default_factory=dict)
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    control_percent: int = 0
    block_banned_words: str = ""


def _vault_media_check(
    *, account_id: int, item_ids: tuple[int, ...], errors: dict[str, list[str]]
) -> list[str]:
    """The platform ids of the picked items; why any cannot be sent now goes into ``errors``
    (one query, none without items)."""
    if not item_ids:
        return []
    if len(item_ids) > media_send.MAX_MEDIA:
        errors["vault_item_ids"] = [f"At most {media_send.MAX_MEDIA} media files."]
        return []
    items, problems = media_send.vault_items_sendable(
        account_id=account_id, item_ids=list(dict.fromkeys(item_ids))
    )
    if problems:
        errors["vault_item_ids"] = [media_send.vault_items_problems_message(items, problems)]
    return [item.platform_media_id for item in items]


def _validate(data: AutomationInput, *, account_id: int) -> SegmentRules:
    """Check what the user set; media picked from the vault must be the account's and
    sendable now (they are checked again when each message is queued)."""
    errors: dict[str, list[str]] = {}
    name = data.name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        errors["name"] = [f"Required, at most {NAME_MAX_LENGTH} characters."]
    if data.trigger not in Trigger.values:
        errors["trigger"] = [f"Choose from {', '.join(Trigger.values)}."]
    else:
        unit = Automation.TRIGGER_UNITS.get(data.trigger)
        if unit is None:
            if data.trigger_value:
                errors["trigger_value"] = ["This trigger takes no number."]
        elif not 1 <= data.trigger_value <= TRIGGER_VALUE_MAX[unit]:
            errors["trigger_value"] = [f"Between 1 and {TRIGGER_VALUE_MAX[unit]} {unit}."]
    picked = _vault_media_check(
        account_id=account_id, item_ids=tuple(data.vault_item_ids), errors=errors
    )
    try:
        message_validate(
            text=data.text,
            price_cents=data.price_cents,
            media_ids=[*picked, *data.media_ids],
        )
    except ApplicationError as exc:
        fields = dict(exc.fields)
        if "vault_item_ids" in errors:
            fields.pop("media_ids", None)  # the picked items' own error says it already
        errors.update(fields)
    unknown = text_variables_check(data.text) if isinstance(data.text, str) else []
    if unknown:
        errors.setdefault("text", []).append(
            "Unknown variable: "
            + ", ".join("{" + v + "}" for v in unknown)
            + ". Use {name} or {username}, with a fallback like {name|babe}."
        )
    elif (
        isinstance(data.text, str) and text_max_length(data.text) > settings.MESSAGE_TEXT_MAX_LENGTH
    ):
        errors.setdefault("text", []).append(
            "Too long once the fans' names are filled in; shorten the text."
        )
    for key in ("delay_seconds", "delay_spread_seconds"):
        if not 0 <= getattr(data, key) <= DELAY_MAX_SECONDS:
            errors[key] = ["Between 0 seconds and 7 days."]
    start, end = data.quiet_hours_start, data.quiet_hours_end
    if (start is None) != (end is None):
        errors["quiet_hours_end" if end is None else "quiet_hours_start"] = [
            "Set both ends of the quiet hours, or neither."
        ]
    elif start is not None and start == end:
        errors["quiet_hours_end"] = ["The quiet hours must end at another time than they start."]
    if not 0 <= data.control_percent <= 50:
        errors["control_percent"] = ["Between 0 and 50 percent."]
    if data.block_banned_words not in Automation.BannedWords.values:
        errors["block_banned_words"] = [
            f"Choose from {', '.join(v for v in Automation.BannedWords.values if v)}, or empty."
        ]
    try:
        rules = segment_rules_parse(data.rules or {})
    except ApplicationError as exc:
        errors.update(exc.fields)
        rules = SegmentRules()
    if rules.fan_ids:
        errors["fan_ids"] = ["An automation reaches fans by its trigger, not by a list."]
    if errors:
        raise ApplicationError(
            "The automation is not valid.", code="invalid_automation", fields=errors
        )
    return rules


def _apply(automation: Automation, data: AutomationInput, rules: SegmentRules) -> None:
    automation.name = data.name.strip()
    automation.trigger = data.trigger
    automation.trigger_value = data.trigger_value
    automation.text = data.text
    automation.price_cents = data.price_cents
    automation.vault_item_ids = list(dict.fromkeys(data.vault_item_ids))
    automation.media_ids = list(data.media_ids)
    automation.delay_seconds = data.delay_seconds
    automation.delay_spread_seconds = data.delay_spread_seconds
    automation.rules = rules.as_json()
    automation.quiet_hours_start = data.quiet_hours_start
    automation.quiet_hours_end = data.quiet_hours_end
    automation.control_percent = data.control_percent
    automation.block_banned_words = data.block_banned_words


def _name_taken(automation: Automation) -> None:
    clash = Automation.objects.filter(account_id=automation.account_id, name=automation.name)
    if automation.pk is not None:
        clash = clash.exclude(pk=automation.pk)
    if clash.exists():
        raise ApplicationError(
            f"There is already an automation named “{automation.name}”.",
            code="duplicate_automation",
            fields={"name": ["Already used."]},
            status_code=409,
        )


@transaction.atomic
def automation_create(
    *, actor: AbstractBaseUser, account_id: int, data: AutomationInput, enabled: bool = False
) -> Automation:
    """A new automation of the account (owners and managers), off unless ``enabled``."""
    membership = automation_membership_get(user=actor, account_id=account_id)
    rules = _validate(data, account_id=account_id)
    automation = Automation(account=membership.account, created_by_id=actor.pk)
    _apply(automation, data, rules)
    _name_taken(automation)
    if enabled:
        automation.enabled = True
        automation.enabled_at = timezone.now()
    automation.save()
    log.info(
        "automation.created",
        automation_id=automation.pk,
        account_id=account_id,
        trigger=automation.trigger,
        enabled=automation.enabled,
    )
    return automation


def _locked(actor: AbstractBaseUser, automation: Automation) -> tuple[Membership, Automation]:
    membership = automation_membership_get(user=actor, account_id=automation.account_id)
    locked = Automation.objects.select_for_update().select_related("account").get(pk=automation.pk)
    return membership, locked


@transaction.atomic
def automation_update(
    *, actor: AbstractBaseUser, automation: Automation, data: AutomationInput
) -> Automation:
    """Change an automation. Its pending runs keep their times and send the new message when
    due (they are re-checked against the new filters then). The trigger of an automation that
    has runs cannot change (its figures would mix two triggers): make a new one. Locks the
    automation row."""
    _, locked = _locked(actor, automation)
    rules = _validate(data, account_id=locked.account_id)
    if data.trigger != locked.trigger and AutomationRun.objects.filter(automation=locked).exists():
        raise ApplicationError(
            "The trigger of an automation that has run cannot change; create a new one.",
            code="trigger_locked",
            fields={"trigger": ["Fixed once it has run."]},
            status_code=409,
        )
    _apply(locked, data, rules)
    _name_taken(locked)
    locked.save()
    log.info("automation.updated", automation_id=locked.pk, account_id=locked.account_id)
    return locked


@transaction.atomic
def automation_enable(*, actor: AbstractBaseUser, automation: Automation) -> Automation:
    """Turn it on. Scan triggers fire only for moments from now on (an expiring-soon nudge
    also for subscriptions already within its hours). Locks the automation row."""
    _, locked = _locked(actor, automation)
    if not locked.enabled:
        locked.enabled = True
        locked.enabled_at = timezone.now()
        locked.save(update_fields=["enabled", "enabled_at", "updated_at"])
        log.info("automation.enabled", automation_id=locked.pk, account_id=locked.account_id)
    return locked


@transaction.atomic
def automation_disable(*, actor: AbstractBaseUser, automation: Automation) -> Automation:
    """Turn it off: nothing more fires, and its pending runs are cancelled (``disabled``).
    Locks the automation row."""
    automation_membership_get(user=actor, account_id=automation.account_id)
    return automation_turn_off(automation_id=automation.pk)


@transaction.atomic
def automation_turn_off(*, automation_id: int) -> Automation:
    """``automation_disable`` without the actor's check (Django admin's staff action)."""
    locked = Automation.objects.select_for_update().select_related("account").get(pk=automation_id)
    cancelled = 0
    if locked.enabled:
        locked.enabled = False
        locked.save(update_fields=["enabled", "updated_at"])
        cancelled = automation_runs_cancel(
            runs=AutomationRun.objects.filter(automation=locked, state=State.SCHEDULED),
            reason=Reason.DISABLED,
            now=timezone.now(),
        )
        log.info(
            "automation.disabled",
            automation_id=locked.pk,
            account_id=locked.account_id,
            cancelled=cancelled,
        )
    return locked


@transaction.atomic
def automation_delete(*, actor: AbstractBaseUser, automation: Automation) -> None:
    """Delete it with its runs (the messages it sent stay in the inbox)."""
    _, locked = _locked(actor, automation)
    log.info("automation.deleted", automation_id=locked.pk, account_id=locked.account_id)
    locked.delete()
