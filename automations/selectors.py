"""Reads for automations, scoped to the acting user's accounts: owners and managers manage
automations; any member sees a fan's pending automated messages (the fan panel)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from django.db.models import QuerySet
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.triggers import TriggerHit, automation_media_platform_ids, trigger_hits
from campaigns.rules import segment_rules_parse
from campaigns.selectors import fans_for_segment
from crm.errors import NotFoundError
from crm.models import Fan, Membership
from crm.selectors import User, manager_membership_get, membership_get


def automation_membership_get(*, user: User, account_id: int) -> Membership:
    """The user's membership of the account if they may manage automations (owners and
    managers): NotFoundError when not a member, ApplicationError 403 for a chatter."""
    return manager_membership_get(user=user, account_id=account_id, action="manage automations")


def automations_for_account(*, user: User, account_id: int) -> QuerySet[Automation]:
    automation_membership_get(user=user, account_id=account_id)
    return Automation.objects.filter(account_id=account_id).order_by("name", "id")


def automation_get(*, user: User, automation_id: int, account_id: int | None = None) -> Automation:
    """An automation of an account the user manages; NotFoundError otherwise (a chatter's
    too, and another account's)."""
    if not user.is_authenticated:
        raise NotFoundError("Automation not found.", code="automation_not_found")
    qs = Automation.objects.filter(
        pk=automation_id,
        account__memberships__user_id=cast(int, user.pk),
        account__memberships__role__in=Membership.MANAGING_ROLES,
    ).select_related("account")
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    automation = qs.first()
    if automation is None:
        raise NotFoundError("Automation not found.", code="automation_not_found")
    return automation


def runs_pending_for_fan(*, user: User, fan: Fan) -> QuerySet[AutomationRun]:
    """The fan's scheduled runs, soonest first, with their automation (any member of the
    fan's account; index ``automation_run_fan_pending``)."""
    membership_get(user=user, account_id=fan.account_id)
    return (
        AutomationRun.objects.filter(fan_id=fan.pk, state=AutomationRun.State.SCHEDULED)
        .select_related("automation")
        .order_by("due_at", "id")
    )


def automation_run_get(*, user: User, run_id: int) -> AutomationRun:
    """A run of an account the user is a member of; NotFoundError otherwise."""
    run = AutomationRun.objects.filter(pk=run_id).select_related("automation").first()
    if run is None:
        raise NotFoundError("Automated message not found.", code="automation_run_not_found")
    try:
        membership_get(user=user, account_id=run.account_id)
    except NotFoundError:
        raise NotFoundError(
            "Automated message not found.", code="automation_run_not_found"
        ) from None
    return run


def fan_in_audience(*, automation: Automation, fan_id: int, now: datetime) -> bool:
    """Whether the automation's filters let the fan through now (a linked fan)."""
    return fan_id in fans_in_audience(automation=automation, fan_ids={fan_id}, now=now)


def fans_in_audience(*, automation: Automation, fan_ids: set[int], now: datetime) -> set[int]:
    """Which of the fans the automation's filters let through now (one query)."""
    if not fan_ids:
        return set()
    rules = segment_rules_parse(automation.rules)
    return set(
        fans_for_segment(
            account_id=automation.account_id,
            rules=rules,
            media_ids=automation_media_platform_ids(automation, rules),
            now=now,
        )
        .filter(pk__in=fan_ids)
        .values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class Reach:
    """Who an automation would have reached over a period (a dry run: nothing is written)."""

    since: datetime
    until: datetime
    hits: list[TriggerHit]
    truncated: bool  # more than ``limit`` hits: ``hits`` holds the first ones

    @property
    def fans(self) -> int:
        return len({hit.fan_id for hit in self.hits})


def automation_reach(
    *,
    user: User,
    automation: Automation,
    days: int = 7,
    now: datetime | None = None,
    limit: int = 1000,
) -> Reach:
    """Who the automation (saved or not: its fields are what counts) would have reached in
    the last ``days`` days, with the same trigger code as the live scan, over what the rows
    still tell (``automations.triggers.trigger_hits``). Quiet hours, the cap and the control
    group are not applied: this is who the trigger and the filters pick."""
    automation_membership_get(user=user, account_id=automation.account_id)
    now = now or timezone.now()
    since = now - timedelta(days=days)
    hits = trigger_hits(automation=automation, since=since, until=now, live=False, limit=limit + 1)
    return Reach(since=since, until=now, hits=hits[:limit], truncated=len(hits) > limit)
