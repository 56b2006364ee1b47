"""Who a trigger reaches, and whether it still holds.

The event triggers (subscribed, renewed, returned after an expiry) fire from the subscription
webhook (``automations.receivers``, ``automations.runs.automation_runs_on_subscription``).
The others are moments computed from rows, found by a periodic scan over a window of time:

- ``expiring_soon`` (N hours): N hours before the subscription's end, on the account's clock.
- ``expired_days_ago`` (N days): N days after the end, at the same time of day on the
  account's clock (so across a change of the clocks it is 23 or 25 hours a day).
- ``ppv_not_unlocked`` (N hours): N hours after a paid message was sent, when nobody has
  unlocked it (automations' own PPVs excepted, so a follow-up never follows itself up).
- ``no_reply`` (N minutes): N minutes after the fan started waiting for a reply.

``trigger_hits`` is the one function that finds them, for the live scan (``live``: still
true now, not run yet) and for a dry run over a past period (what would have fired). Each hit
carries its event key, the trigger event's stable identity, which is what makes a run unique.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, F, Func, OuterRef, QuerySet, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from automations.models import Automation, AutomationRun
from automations.scheduling import local_shift, utc_key
from campaigns.rules import SegmentRules, segment_rules_parse
from campaigns.selectors import fans_for_segment
from crm.models import Conversation, Fan, Message, Purchase, VaultItem
from crm.zones import account_zone

Trigger = Automation.Trigger

# A moment moved on the account's clock is within this of the same moment moved in real
# hours (a change of the clocks is at most an hour, two for a few zones' history).
CLOCK_SLACK = timedelta(hours=2)


@dataclass(frozen=True)
class TriggerHit:
    fan_id: int
    event_key: str
    triggered_at: datetime
    source_message_id: int | None = None


class UtcKey(Func):
    """A timestamp as event keys write it (``scheduling.utc_key``): UTC, to the microsecond."""

    function = "to_char"
    template = "to_char(timezone('UTC', %(expressions)s), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
    output_field = TextField()


def event_key_sql(prefix: str, outer_field: str) -> Concat:
    """The event key of the outer query's row (``outer_field``: its timestamp), in SQL."""
    return Concat(Value(f"{prefix}:"), UtcKey(OuterRef(outer_field)), output_field=TextField())


def event_key(prefix: str, moment: datetime) -> str:
    return f"{prefix}:{utc_key(moment)}"


def automation_media_platform_ids(automation: Automation, rules: SegmentRules) -> list[str]:
    """The platform ids of the automation's media (its vault items', then its raw ids), for
    the "already bought / received this media" filters; a query only when they are on and
    items were picked."""
    raw = list(automation.media_ids)
    wants = rules.exclude_bought_media or rules.exclude_received_media
    if not wants or not automation.vault_item_ids:
        return raw
    picked = list(
        VaultItem.objects.filter(
            account_id=automation.account_id, pk__in=list(automation.vault_item_ids)
        ).values_list("platform_media_id", flat=True)
    )
    return [*picked, *(m for m in raw if m not in picked)]


def _audience(automation: Automation, now: datetime) -> QuerySet[Fan]:
    """The fans the automation's filters let through now (linked fans only)."""
    rules = segment_rules_parse(automation.rules)
    return fans_for_segment(
        account_id=automation.account_id,
        rules=rules,
        media_ids=automation_media_platform_ids(automation, rules),
        now=now,
    )


def _not_run(automation: Automation, fan_ref: str, key: Concat) -> Exists:
    return Exists(
        AutomationRun.objects.filter(
            automation_id=automation.pk, fan_id=OuterRef(fan_ref), event_key=key
        )
    )


def _expiring_soon(
    automation: Automation, since: datetime, until: datetime, *, live: bool, limit: int
) -> list[TriggerHit]:
    zone = account_zone(automation.account)
    hours = timedelta(hours=automation.trigger_value)
    fans = _audience(automation, until).filter(
        subscription_expires_at__gt=since + hours - CLOCK_SLACK,
        subscription_expires_at__lte=until + hours + CLOCK_SLACK,
    )
    if live:
        key = event_key_sql("expires", "subscription_expires_at")
        fans = fans.filter(
            subscription_state=Fan.SubscriptionState.ACTIVE, subscription_expires_at__gt=until
        ).exclude(_not_run(automation, "pk", key))
    hits = []
    for fan_id, expires in fans.order_by("subscription_expires_at", "pk").values_list(
        "pk", "subscription_expires_at"
    )[:limit]:
        if expires is None:
            continue
        moment = local_shift(expires, zone, hours=-automation.trigger_value)
        if since < moment <= until:
            hits.append(TriggerHit(fan_id, event_key("expires", expires), moment))
    return hits


def _expired_days_ago(
    automation: Automation, since: datetime, until: datetime, *, live: bool, limit: int
) -> list[TriggerHit]:
    zone = account_zone(automation.account)
    days = timedelta(days=automation.trigger_value)
    fans = _audience(automation, until).filter(
        subscription_expires_at__gt=since - days - CLOCK_SLACK,
        subscription_expires_at__lte=until - days + CLOCK_SLACK,
    )
    if live:
        key = event_key_sql("expired", "subscription_expires_at")
        fans = fans.exclude(_not_run(automation, "pk", key))
    hits = []
    for fan_id, expires, state, subscribed_at in fans.order_by(
        "subscription_expires_at", "pk"
    ).values_list("pk", "subscription_expires_at", "subscription_state", "subscribed_at")[:limit]:
        if expires is None:
            continue
        moment = local_shift(expires, zone, days=automation.trigger_value)
        if not since < moment <= until:
            continue
        if live and _resubscribed(state=state, subscribed_at=subscribed_at, expires_at=expires):
            continue
        hits.append(TriggerHit(fan_id, event_key("expired", expires), moment))
    return hits


def _resubscribed(*, state: str, subscribed_at: datetime | None, expires_at: datetime) -> bool:
    # Back after that end (a new subscription whose webhook carried no end date).
    return (
        state == Fan.SubscriptionState.ACTIVE
        and subscribed_at is not None
        and subscribed_at > expires_at
    )


def _ppv_not_unlocked(
    automation: Automation, since: datetime, until: datetime, *, live: bool, limit: int
) -> list[TriggerHit]:
    hours = timedelta(hours=automation.trigger_value)
    unlocked = Purchase.objects.filter(message_id=OuterRef("pk"))
    if not live:
        # Over the past: not unlocked by the time the follow-up would have gone.
        unlocked = unlocked.filter(purchased_at__lte=OuterRef("sent_at") + hours)
    messages = (
        Message.objects.filter(
            account_id=automation.account_id,
            direction=Message.Direction.OUT,
            status=Message.Status.SENT,
            price_cents__gt=0,
            sent_at__gt=since - hours,
            sent_at__lte=until - hours,
            conversation__fan_id__in=_audience(automation, until).values("pk"),
        )
        .exclude(sender_kind=Message.SenderKind.AUTOMATION)
        .exclude(Exists(unlocked))
    )
    if live:
        key = Concat(Value("ppv:"), OuterRef("pk"), output_field=TextField())
        messages = messages.exclude(_not_run(automation, "conversation__fan_id", key))
    rows = messages.order_by("sent_at", "pk").values_list("pk", "conversation__fan_id", "sent_at")
    return [
        TriggerHit(fan_id, f"ppv:{message_id}", sent_at + hours, source_message_id=message_id)
        for message_id, fan_id, sent_at in rows[:limit]
        if sent_at is not None
    ]


def _no_reply(
    automation: Automation, since: datetime, until: datetime, *, live: bool, limit: int
) -> list[TriggerHit]:
    minutes = timedelta(minutes=automation.trigger_value)
    conversations = Conversation.objects.filter(
        account_id=automation.account_id,
        waiting_since__gt=since - minutes,
        waiting_since__lte=until - minutes,
        fan_id__in=_audience(automation, until).values("pk"),
    )
    if live:
        key = event_key_sql("waiting", "waiting_since")
        conversations = conversations.exclude(_not_run(automation, "fan_id", key))
    rows = conversations.order_by("waiting_since", "pk").values_list("fan_id", "waiting_since")
    return [
        TriggerHit(fan_id, event_key("waiting", waiting), waiting + minutes)
        for fan_id, waiting in rows[:limit]
        if waiting is not None
    ]


def _event_history(
    automation: Automation, since: datetime, until: datetime, *, limit: int
) -> list[TriggerHit]:
    """The event triggers over a past period, from the rows that remain (a dry run): fans who
    subscribed in it (``returned_after_expiry``: who had paid a subscription before, more
    than a day earlier), renewals as the subscription payments of fans subscribed earlier."""
    audience = _audience(automation, until)
    if automation.trigger == Trigger.RENEWED:
        purchases = Purchase.objects.filter(
            account_id=automation.account_id,
            kind=Purchase.Kind.SUBSCRIPTION,
            purchased_at__gt=since,
            purchased_at__lte=until,
            fan__in=audience.filter(subscribed_at__isnull=False),
            fan__subscribed_at__lt=F("purchased_at") - timedelta(days=1),
        ).order_by("purchased_at", "pk")
        return [
            TriggerHit(fan_id, f"renewed:{pk}", at)
            for pk, fan_id, at in purchases.values_list("pk", "fan_id", "purchased_at")[:limit]
        ]
    fans = audience.filter(subscribed_at__gt=since, subscribed_at__lte=until)
    earlier = Exists(
        Purchase.objects.filter(
            fan_id=OuterRef("pk"),
            kind=Purchase.Kind.SUBSCRIPTION,
            purchased_at__lt=OuterRef("subscribed_at") - timedelta(days=1),
        )
    )
    fans = fans.filter(earlier) if automation.trigger == Trigger.RETURNED_AFTER_EXPIRY else fans
    prefix = "returned" if automation.trigger == Trigger.RETURNED_AFTER_EXPIRY else "subscribed"
    return [
        TriggerHit(fan_id, event_key(prefix, at), at)
        for fan_id, at in fans.order_by("subscribed_at", "pk").values_list("pk", "subscribed_at")[
            :limit
        ]
        if at is not None
    ]


_SCANS = {
    Trigger.EXPIRING_SOON: _expiring_soon,
    Trigger.EXPIRED_DAYS_AGO: _expired_days_ago,
    Trigger.PPV_NOT_UNLOCKED: _ppv_not_unlocked,
    Trigger.NO_REPLY: _no_reply,
}


def trigger_hits(
    *,
    automation: Automation,
    since: datetime,
    until: datetime,
    live: bool,
    limit: int = 10_000,
) -> list[TriggerHit]:
    """The fans the automation's trigger fires for with a moment in ``(since, until]``, its
    filters applied (as they are at ``until``), soonest first, at most ``limit``.

    ``live`` (the periodic scan): only hits whose trigger still holds and that have no run yet.
    Otherwise (a dry run over a past period) what fired then, as far as the rows still tell:
    a subscription's current end date, a conversation's current wait, and for the event
    triggers the fans' start dates and subscription payments (``_event_history``).
    """
    scan = _SCANS.get(Automation.Trigger(automation.trigger))
    if scan is not None:
        return scan(automation, since, until, live=live, limit=limit)
    if live:
        return []  # the event triggers fire from webhooks, not from scans
    return _event_history(automation, since, until, limit=limit)


def scan_window(automation: Automation, *, now: datetime, lookback: timedelta) -> datetime:
    """Where the live scan of an enabled automation starts looking: not before it was turned
    on, nor more than ``lookback`` ago. An expiring-soon nudge reaches the fans already
    within its hours when it is turned on (their end is still ahead)."""
    enabled_at = automation.enabled_at or now
    if automation.trigger == Trigger.EXPIRING_SOON:
        return enabled_at - timedelta(hours=automation.trigger_value) - CLOCK_SLACK
    return max(enabled_at, now - lookback)


# --- does the trigger still hold? ---------------------------------------------------------


def trigger_holds(
    *,
    run: AutomationRun,
    automation: Automation,
    fan: Fan,
    now: datetime | None = None,
) -> bool:
    """Whether the run's trigger event is still true for the fan (checked when the fan's
    subscription changes and again when the run is due)."""
    now = now or timezone.now()
    trigger = automation.trigger
    active = fan.subscription_state == Fan.SubscriptionState.ACTIVE and (
        fan.subscription_expires_at is None or fan.subscription_expires_at > now
    )
    expires = fan.subscription_expires_at
    if trigger == Trigger.SUBSCRIBED:
        return (
            active
            and fan.subscribed_at is not None
            and run.event_key == event_key("subscribed", fan.subscribed_at)
        )
    if trigger in (Trigger.RENEWED, Trigger.RETURNED_AFTER_EXPIRY):
        return active
    if trigger == Trigger.EXPIRING_SOON:
        return (
            fan.subscription_state == Fan.SubscriptionState.ACTIVE
            and expires is not None
            and expires > now
            and run.event_key == event_key("expires", expires)
        )
    if trigger == Trigger.EXPIRED_DAYS_AGO:
        return (
            expires is not None
            and expires <= now
            and run.event_key == event_key("expired", expires)
            and not _resubscribed(
                state=fan.subscription_state, subscribed_at=fan.subscribed_at, expires_at=expires
            )
        )
    if trigger == Trigger.PPV_NOT_UNLOCKED:
        return (
            run.source_message_id is not None
            and not Purchase.objects.filter(message_id=run.source_message_id).exists()
        )
    if trigger == Trigger.NO_REPLY:
        waiting = (
            Conversation.objects.filter(fan_id=fan.pk)
            .values_list("waiting_since", flat=True)
            .first()
        )
        return waiting is not None and run.event_key == event_key("waiting", waiting)
    return False
