"""Reads for campaigns: audiences, the pre-flight, progress and results. Scoped to the acting
user's accounts (owners and managers) wherever a user is involved.

Audiences are set-based SQL over the fans table (one statement for the pre-flight's counts,
one for the sample), served by the account's fan indexes, the GIN index on tags and the
partial indexes of messages and conversations the exclusions read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import connection
from django.db.models import Case, Count, IntegerField, Max, Q, QuerySet, Value, When
from django.utils import timezone

from campaigns.models import Campaign, CampaignRecipient, MassChunk, Segment
from campaigns.rules import SegmentRules
from crm.errors import NotFoundError
from crm.models import (
    Conversation,
    CreatorAccount,
    Fan,
    FanMediaEvent,
    Membership,
    Message,
    Purchase,
    VaultItem,
)
from crm.selectors import User, manager_membership_get
from onlyfans.dispatch import account_rate_limit
from onlyfans.ratelimit import rate_limit_forecast

# --- who may --------------------------------------------------------------------------------


def campaign_membership_get(*, user: User, account_id: int) -> Membership:
    """The user's membership of the account if they may run campaigns (owners and managers):
    NotFoundError when not a member, ApplicationError 403 for a chatter."""
    return manager_membership_get(user=user, account_id=account_id, action="run campaigns")


def campaigns_for_user(*, user: User) -> QuerySet[Campaign]:
    if not user.is_authenticated:
        return Campaign.objects.none()
    return Campaign.objects.filter(
        account__memberships__user_id=cast(int, user.pk),
        account__memberships__role__in=Membership.MANAGING_ROLES,
    )


def campaigns_for_account(*, user: User, account_id: int) -> QuerySet[Campaign]:
    campaign_membership_get(user=user, account_id=account_id)
    return Campaign.objects.filter(account_id=account_id).order_by("-created_at", "-id")


def campaign_get(*, user: User, campaign_id: int, account_id: int | None = None) -> Campaign:
    """A campaign of an account the user manages; NotFoundError otherwise (a chatter's too)."""
    qs = campaigns_for_user(user=user).filter(pk=campaign_id).select_related("account")
    if account_id is not None:
        qs = qs.filter(account_id=account_id)
    campaign = qs.first()
    if campaign is None:
        raise NotFoundError("Campaign not found.", code="campaign_not_found")
    return campaign


def segments_for_account(*, user: User, account_id: int) -> QuerySet[Segment]:
    campaign_membership_get(user=user, account_id=account_id)
    return Segment.objects.filter(account_id=account_id).order_by("name", "id")


def segment_get(*, user: User, account_id: int, segment_id: int) -> Segment:
    segment = segments_for_account(user=user, account_id=account_id).filter(pk=segment_id).first()
    if segment is None:
        raise NotFoundError("Segment not found.", code="segment_not_found")
    return segment


# --- audiences ------------------------------------------------------------------------------


def _include_q(rules: SegmentRules, now: datetime) -> Q:
    """The rules that pick fans (everything but the exclusions)."""
    q = Q()
    if rules.fan_ids:
        q &= Q(id__in=list(rules.fan_ids))
    if rules.include_tags:
        tags = list(rules.include_tags)
        q &= Q(tags__contains=tags) if rules.include_tags_mode == "all" else Q(tags__overlap=tags)
    if rules.spend_min_cents is not None:
        q &= Q(lifetime_spend_cents__gte=rules.spend_min_cents)
    if rules.spend_max_cents is not None:
        q &= Q(lifetime_spend_cents__lte=rules.spend_max_cents)
    if rules.subscription_states:
        q &= Q(subscription_state__in=list(rules.subscription_states))
    if rules.last_seen_within_days is not None:
        q &= Q(last_seen_at__gte=now - timedelta(days=rules.last_seen_within_days))
    if rules.last_seen_not_within_days is not None:
        since = now - timedelta(days=rules.last_seen_not_within_days)
        q &= Q(last_seen_at__isnull=True) | Q(last_seen_at__lt=since)
    return q


# (key, label) of each exclusion, in the order the pre-flight counts them.
EXCLUSIONS = (
    ("excluded_tags", "Have an excluded tag"),
    ("messaged_recently", "Messaged recently"),
    ("waiting_for_reply", "Waiting for a reply"),
    ("bought_media", "Already bought this media"),
    ("received_media", "Already received any of this media"),
)


def _exclusion_qs(
    *, account_id: int, rules: SegmentRules, media_ids: Sequence[str], now: datetime
) -> list[tuple[str, Q]]:
    """Each exclusion that is set, as a condition on fans (set-based: ``id IN (subquery)``,
    which PostgreSQL runs once as a hashed subplan)."""
    out: list[tuple[str, Q]] = []
    if rules.exclude_tags:
        out.append(("excluded_tags", Q(tags__overlap=list(rules.exclude_tags))))
    if rules.exclude_messaged_within_hours is not None:
        since = now - timedelta(hours=rules.exclude_messaged_within_hours)
        # Outgoing messages have queued_at (index message_account_queued).
        conversations = Message.objects.filter(
            account_id=account_id, queued_at__gte=since, direction=Message.Direction.OUT
        ).values("conversation_id")
        # Conversations by primary key (a few thousand lookups), not a join with all of them.
        messaged = Conversation.objects.filter(id__in=conversations).values("fan_id")
        out.append(("messaged_recently", Q(id__in=messaged)))
    if rules.exclude_waiting:
        waiting = Conversation.objects.filter(
            account_id=account_id, waiting_since__isnull=False
        ).values("fan_id")
        out.append(("waiting_for_reply", Q(id__in=waiting)))
    if rules.exclude_bought_media and media_ids:
        bought = Purchase.objects.filter(
            account_id=account_id,
            kind=Purchase.Kind.PPV,
            message__media_ids__overlap=list(media_ids),
        ).values("fan_id")
        out.append(("bought_media", Q(id__in=bought)))
    if rules.exclude_received_media and media_ids:
        # What each fan got (crm FanMediaEvent): through the items (index item, fan), and by
        # platform id for history not linked to an item yet (index unlinked).
        items = VaultItem.objects.filter(
            account_id=account_id, platform_media_id__in=list(media_ids)
        ).values("pk")
        received = FanMediaEvent.objects.filter(
            Q(vault_item_id__in=items)
            | Q(
                account_id=account_id,
                vault_item__isnull=True,
                platform_media_id__in=list(media_ids),
            )
        ).values("fan_id")
        out.append(("received_media", Q(id__in=received)))
    return out


def fans_for_segment(
    *,
    account_id: int,
    rules: SegmentRules,
    media_ids: Sequence[str] = (),
    now: datetime | None = None,
) -> QuerySet[Fan]:
    """The fans a campaign with these rules reaches: every rule applied, unlinked fans left out
    (nothing can be sent to them). Unordered; the caller orders or counts."""
    now = now or timezone.now()
    q = _include_q(rules, now)
    for _key, excluded in _exclusion_qs(
        account_id=account_id, rules=rules, media_ids=media_ids, now=now
    ):
        q &= ~excluded
    return Fan.objects.filter(q, account_id=account_id, platform_fan_id__isnull=False).order_by()


def fan_ids_not_in_account(*, account_id: int, fan_ids: Sequence[int]) -> list[int]:
    """The ids in ``fan_ids`` that are not fans of the account (another account's, or none)."""
    if not fan_ids:
        return []
    found = set(
        Fan.objects.filter(account_id=account_id, id__in=list(fan_ids)).values_list("id", flat=True)
    )
    return [fan_id for fan_id in fan_ids if fan_id not in found]


@dataclass(frozen=True)
class ModeEstimate:
    mode: str
    seconds: float
    completes_at: datetime
    calls: int  # individual: messages; mass: chunk calls


@dataclass(frozen=True)
class Preflight:
    matched: int  # fans the including rules pick (before exclusions)
    removed: list[tuple[str, str, int]]  # (key, label, fans) per exclusion that is set
    unlinked: int  # left out: not linked to the platform
    audience: int  # who the campaign can reach
    control: int  # held out at launch (of the audience)
    recipients: int  # audience minus control: who gets the message
    queued_ahead: int  # the account's messages already waiting to be sent
    estimates: dict[str, ModeEstimate]
    auto_mode: str  # what "auto" would choose now
    sample: list[Fan] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "removed": {key: count for key, _label, count in self.removed},
            "unlinked": self.unlinked,
            "audience": self.audience,
            "control": self.control,
            "recipients": self.recipients,
            "queued_ahead": self.queued_ahead,
            "auto_mode": self.auto_mode,
            "estimates": {
                mode: {
                    "seconds": round(e.seconds, 1),
                    "completes_at": e.completes_at.isoformat(),
                    "calls": e.calls,
                }
                for mode, e in self.estimates.items()
            },
        }


def control_size(audience: int, control_percent: int) -> int:
    """How many of the audience the control group holds (rounded down)."""
    return audience * control_percent // 100


def account_queued_ahead(*, account_id: int) -> int:
    """The account's messages the pipeline still owes (index message_account_pending)."""
    return Message.objects.filter(
        account_id=account_id, status__in=Message.PENDING_STATUSES
    ).count()


def mode_estimates(
    *, account: CreatorAccount, recipients: int, queued_ahead: int, now: datetime | None = None
) -> dict[str, ModeEstimate]:
    """How long each mode takes from now at the account's rate, behind what is queued.

    Individual: every message takes a slot, after the ones already queued. Mass: one slot per
    chunk of ``CAMPAIGN_MASS_CHUNK_SIZE`` (the platform then makes the copies itself, which this
    does not count)."""
    now = now or timezone.now()
    limit = account_rate_limit(account)
    chunks = math.ceil(recipients / settings.CAMPAIGN_MASS_CHUNK_SIZE) if recipients else 0
    estimates = {}
    for mode, calls in (("individual", recipients), ("mass", chunks)):
        if calls:
            # The forecast repeats its pattern past two windows, so this is cheap at any size.
            slots = rate_limit_forecast(account_id=account.pk, limit=limit, count=1)
            first = slots[0]
            step = _steady_step_seconds(account)
            ahead = queued_ahead if mode == "individual" else 0
            seconds = first + step * (ahead + calls - 1)
        else:
            seconds = 0.0
        estimates[mode] = ModeEstimate(
            mode=mode, seconds=seconds, completes_at=now + timedelta(seconds=seconds), calls=calls
        )
    return estimates


def _steady_step_seconds(account: CreatorAccount) -> float:
    """Seconds per send at the account's steady rate, as the limiter's forecast paces it."""
    limit = account_rate_limit(account)
    lag = settings.SEND_SCHEDULE_SLACK_MS + settings.SEND_PIPELINE_LAG_MS
    step_ms = max(
        (limit.window_ms + lag) / limit.per_minute,
        limit.spacing_ms + lag if limit.spacing_ms else 0,
    )
    return step_ms / 1000


def auto_mode_choose(*, estimates: dict[str, ModeEstimate], drain_window_minutes: int) -> str:
    """Individual when the audience drains within the window, else the platform's mass message."""
    individual = estimates.get("individual")
    if individual is None or individual.seconds <= drain_window_minutes * 60:
        return Campaign.Mode.INDIVIDUAL
    return Campaign.Mode.MASS


def _preflight_counts(
    *, account_id: int, include: Q, exclusions: list[tuple[str, Q]]
) -> dict[str, int]:
    """The pre-flight's counts in one statement over the fans the including rules pick (so
    their indexes serve it): each fan gets the number of the step that removes it (each
    exclusion in order, then unlinked; last: in the audience), grouped and counted. CASE
    stops at the first step that applies, so each rule runs at most once per fan."""
    keys = [key for key, _q in exclusions]
    steps = [When(excluded, then=Value(i)) for i, (_key, excluded) in enumerate(exclusions)]
    steps.append(When(platform_fan_id__isnull=True, then=Value(len(keys))))
    step = Case(*steps, default=Value(len(keys) + 1), output_field=IntegerField())
    rows = (
        Fan.objects.filter(include, account_id=account_id)
        .order_by()
        .annotate(step=step)
        .values("step")
        .annotate(n=Count("*"))
        .values_list("step", "n")
    )
    by_step = dict(rows)
    names = [*keys, "unlinked", "audience"]
    counts = {name: int(by_step.get(i, 0)) for i, name in enumerate(names)}
    counts["matched"] = sum(counts.values())
    return counts


def campaign_preflight(
    *,
    account: CreatorAccount,
    rules: SegmentRules,
    media_ids: Sequence[str] = (),
    control_percent: int = 0,
    drain_window_minutes: int | None = None,
    sample_size: int | None = None,
    now: datetime | None = None,
) -> Preflight:
    """Who a campaign with these rules reaches, what each exclusion removes, and how long it
    takes. One aggregate statement counts every step (each exclusion counts the fans it removes
    from those the earlier steps left); a second reads the sample."""
    now = now or timezone.now()
    include = _include_q(rules, now)
    exclusions = _exclusion_qs(account_id=account.pk, rules=rules, media_ids=media_ids, now=now)
    counts = _preflight_counts(account_id=account.pk, include=include, exclusions=exclusions)
    audience = counts["audience"]
    control = control_size(audience, control_percent)
    queued_ahead = account_queued_ahead(account_id=account.pk)
    estimates = mode_estimates(
        account=account, recipients=audience - control, queued_ahead=queued_ahead, now=now
    )
    window = drain_window_minutes or settings.CAMPAIGN_DRAIN_WINDOW_DEFAULT_MINUTES
    size = settings.CAMPAIGN_PREFLIGHT_SAMPLE_SIZE if sample_size is None else sample_size
    sample: list[Fan] = []
    if audience and size:
        sample = list(
            fans_for_segment(account_id=account.pk, rules=rules, media_ids=media_ids, now=now)
            .order_by("-lifetime_spend_cents", "id")
            .only("id", "username", "display_name", "lifetime_spend_cents", "tags", "account_id")[
                :size
            ]
        )
    labels = dict(EXCLUSIONS)
    return Preflight(
        matched=counts["matched"],
        removed=[(key, labels[key], counts[key]) for key, _q in exclusions],
        unlinked=counts["unlinked"],
        audience=audience,
        control=control,
        recipients=audience - control,
        queued_ahead=queued_ahead,
        estimates=estimates,
        auto_mode=auto_mode_choose(estimates=estimates, drain_window_minutes=window),
        sample=sample,
    )


# --- progress and results -------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    recipients: int
    control: int
    queued: int  # messages waiting in the pipeline (queued or sending)
    sent: int
    failed: int
    withdrawn: int  # cancelled before they were sent
    remaining: int  # recipients not sent or failed yet (fan-out not done included)
    rate_per_minute: float  # sends in the last five minutes, per minute
    seconds_left: float | None
    failed_reasons: list[tuple[str, int]]
    held: int = 0  # queued messages a paused campaign holds back (they leave on resume)
    mass_total: int = 0
    mass_pending: int = 0
    mass_done: bool = False
    can_unsend: bool = False
    unsend_until: datetime | None = None  # the platform's unsend window, while it lasts
    unsent: int = 0  # fans whose copy was unsent from the platform (counted in withdrawn)
    unsending: bool = False  # an unsend was asked for and chunks are still to be unsent

    @property
    def percent(self) -> int:
        finished = self.sent + self.failed + self.withdrawn
        return 100 if not self.recipients else min(100, round(100 * finished / self.recipients))

    def as_json(self) -> dict[str, Any]:
        return {
            "recipients": self.recipients,
            "control": self.control,
            "queued": self.queued,
            "sent": self.sent,
            "failed": self.failed,
            "withdrawn": self.withdrawn,
            "held": self.held,
            "remaining": self.remaining,
            "percent": self.percent,
            "rate_per_minute": round(self.rate_per_minute, 2),
            "seconds_left": None if self.seconds_left is None else round(self.seconds_left, 1),
            "failed_reasons": [{"error": e, "count": n} for e, n in self.failed_reasons],
            "mass": {
                "total": self.mass_total,
                "pending": self.mass_pending,
                "is_done": self.mass_done,
                "can_unsend": self.can_unsend,
                "unsend_until": self.unsend_until.isoformat() if self.unsend_until else None,
                "unsent": self.unsent,
                "unsending": self.unsending,
            },
        }


# Failed messages that were withdrawn (``campaigns.services.CANCELLED_ERROR``), not refused.
WITHDRAWN_PREFIXES = ("cancelled",)
RATE_WINDOW_MINUTES = 5


def campaign_progress(*, campaign: Campaign, now: datetime | None = None) -> Progress:
    """Where the campaign's sends are, from its messages (index message_campaign_status) or,
    in mass mode, from the platform's counters as last read."""
    now = now or timezone.now()
    if campaign.send_mode == Campaign.Mode.MASS:
        return _mass_progress(campaign)
    by_status = dict(
        Message.objects.filter(campaign_id=campaign.pk)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    failed_rows = list(
        Message.objects.filter(campaign_id=campaign.pk, status=Message.Status.FAILED)
        .order_by()
        .values_list("last_error")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("last_error", "n")[:20]
    )
    withdrawn = sum(n for e, n in failed_rows if e.startswith(WITHDRAWN_PREFIXES))
    failed = by_status.get(Message.Status.FAILED, 0) - withdrawn
    sent = by_status.get(Message.Status.SENT, 0)
    queued = by_status.get(Message.Status.QUEUED, 0) + by_status.get(Message.Status.SENDING, 0)
    recent = Message.objects.filter(
        campaign_id=campaign.pk,
        status=Message.Status.SENT,
        sent_at__gte=now - timedelta(minutes=RATE_WINDOW_MINUTES),
    ).count()
    not_fanned_out = max(0, campaign.recipients_total - campaign.fanned_out)
    remaining = queued + not_fanned_out
    if campaign.state in Campaign.FINAL_STATES:
        remaining = 0
    seconds_left: float | None = None
    if remaining and campaign.state == Campaign.State.RUNNING:
        seconds_left = _steady_step_seconds(campaign.account) * remaining
    elif not remaining:
        seconds_left = 0.0
    return Progress(
        recipients=campaign.recipients_total,
        control=campaign.control_total,
        queued=queued,
        sent=sent,
        failed=failed,
        withdrawn=withdrawn,
        remaining=remaining,
        rate_per_minute=recent / RATE_WINDOW_MINUTES,
        seconds_left=seconds_left,
        failed_reasons=[(e, n) for e, n in failed_rows if not e.startswith(WITHDRAWN_PREFIXES)],
        held=(
            by_status.get(Message.Status.QUEUED, 0)
            if campaign.state == Campaign.State.PAUSED
            else 0
        ),
    )


def _mass_progress(campaign: Campaign) -> Progress:
    chunks = list(MassChunk.objects.filter(campaign_id=campaign.pk).order_by("index"))
    fans = {c.pk: len(c.platform_fan_ids) for c in chunks}
    sent_chunks = [c for c in chunks if c.state == MassChunk.State.SENT]
    failed_chunks = [c for c in chunks if c.state == MassChunk.State.FAILED]
    cancelled = sum(
        fans[c.pk] for c in chunks if c.state in (MassChunk.State.CANCELLED, MassChunk.State.UNSENT)
    )
    total = sum(c.total or fans[c.pk] for c in sent_chunks)
    pending = sum(c.pending for c in sent_chunks)
    failed = sum(fans[c.pk] for c in failed_chunks)
    unsent = sum(
        fans[c.pk]
        for c in chunks
        if c.state in (MassChunk.State.PENDING, MassChunk.State.SENDING, MassChunk.State.AMBIGUOUS)
    )
    sent = total - pending
    reasons: dict[str, int] = {}
    for c in failed_chunks:
        reasons[c.last_error] = reasons.get(c.last_error, 0) + fans[c.pk]
    remaining = 0 if campaign.state in Campaign.FINAL_STATES else unsent + pending
    now = timezone.now()
    windows = [
        c.unsend_until
        for c in sent_chunks
        if c.can_unsend and c.unsend_until is not None and c.unsend_until > now
    ]
    unsend_until = max(windows) if windows and campaign.unsend_requested_at is None else None
    return Progress(
        recipients=campaign.recipients_total,
        control=campaign.control_total,
        queued=unsent + pending,
        sent=sent,
        failed=failed,
        withdrawn=cancelled,
        remaining=remaining,
        rate_per_minute=0.0,
        seconds_left=None if remaining else 0.0,
        failed_reasons=sorted(reasons.items(), key=lambda kv: -kv[1]),
        mass_total=total,
        mass_pending=pending,
        mass_done=bool(chunks) and all(c.is_done for c in sent_chunks) and not unsent,
        can_unsend=unsend_until is not None,
        unsend_until=unsend_until,
        unsent=sum(fans[c.pk] for c in chunks if c.state == MassChunk.State.UNSENT),
        unsending=campaign.unsend_requested_at is not None
        and any(c.can_unsend for c in sent_chunks),
    )


def campaign_unsend_until(*, campaign: Campaign, now: datetime | None = None) -> datetime | None:
    """Until when the campaign's mass message can still be unsent on the platform (the last
    chunk's window, as last read), or None: not a mass campaign, nothing sent, the window
    over, or an unsend asked for already."""
    if campaign.send_mode != Campaign.Mode.MASS or campaign.unsend_requested_at is not None:
        return None
    now = now or timezone.now()
    return (
        MassChunk.objects.filter(
            campaign_id=campaign.pk,
            state=MassChunk.State.SENT,
            can_unsend=True,
            unsend_until__gt=now,
        )
        .order_by()
        .aggregate(until=Max("unsend_until"))["until"]
    )


@dataclass(frozen=True)
class GroupResults:
    fans: int
    replied: int
    purchases: int
    revenue_cents: int

    @property
    def revenue_per_fan_cents(self) -> float:
        return self.revenue_cents / self.fans if self.fans else 0.0

    @property
    def reply_rate(self) -> float:
        return self.replied / self.fans if self.fans else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "fans": self.fans,
            "replied": self.replied,
            "reply_rate": round(self.reply_rate, 4),
            "purchases": self.purchases,
            "revenue_cents": self.revenue_cents,
            "revenue_per_fan_cents": round(self.revenue_per_fan_cents),  # money: whole cents
        }


@dataclass(frozen=True)
class Results:
    recipients: GroupResults  # fans the message reached
    control: GroupResults | None  # the held-out fans, over the same window from launch

    @property
    def uplift_per_fan_cents(self) -> float | None:
        if self.control is None or not self.control.fans:
            return None
        return self.recipients.revenue_per_fan_cents - self.control.revenue_per_fan_cents

    def as_json(self) -> dict[str, Any]:
        uplift = self.uplift_per_fan_cents
        return {
            "recipients": self.recipients.as_json(),
            "control": self.control.as_json() if self.control else None,
            "uplift_per_fan_cents": None if uplift is None else round(uplift),
        }


_R = CampaignRecipient._meta.db_table
_M = Message._meta.db_table
_C = Conversation._meta.db_table
_P = Purchase._meta.db_table
_K = Campaign._meta.db_table
# Per fan, from when the message reached them (the send; for control fans, the launch) for
# CAMPAIGN_ATTRIBUTION_HOURS: did they write back, and what they paid that the campaign can
# claim: unlocks of its own message (in mass mode, where the platform made the copies, any
# unlock at the campaign's price of a message we do not hold) and tips. Control fans are
# measured the same way, so the difference per fan is what the campaign added.
_RESULTS_SQL = f"""
WITH r AS (
  SELECT r.campaign_id, r.fan_id, r.is_control, r.message_id, k.sent_as = 'mass' AS mass,
         k.price_cents,
         CASE WHEN r.is_control THEN k.launched_at ELSE COALESCE(m.sent_at, r.sent_at) END AS t0
  FROM {_R} r JOIN {_K} k ON k.id = r.campaign_id LEFT JOIN {_M} m ON m.id = r.message_id
  WHERE r.campaign_id = ANY(%(campaign_ids)s) AND k.launched_at IS NOT NULL
    AND (r.is_control OR m.status = 'sent' OR r.state = 'mass_sent')
)
SELECT r.campaign_id, r.is_control, count(*),
  count(*) FILTER (WHERE EXISTS (
    SELECT 1 FROM {_C} c JOIN {_M} i ON i.conversation_id = c.id
    WHERE c.fan_id = r.fan_id AND i.direction = 'in'
      AND i.created_at >= r.t0 AND i.created_at < r.t0 + %(window)s)),
  coalesce(sum(p.n), 0), coalesce(sum(p.cents), 0)
FROM r LEFT JOIN LATERAL (
  SELECT count(*) AS n, sum(p.amount_cents) AS cents FROM {_P} p
  WHERE p.fan_id = r.fan_id AND p.purchased_at >= r.t0 AND p.purchased_at < r.t0 + %(window)s
    AND (p.kind = 'tip'
         OR (p.kind = 'ppv' AND r.message_id IS NOT NULL AND p.message_id = r.message_id)
         OR (p.kind = 'ppv' AND r.mass AND NOT r.is_control AND p.message_id IS NULL
             AND p.amount_cents = r.price_cents))
) p ON true
GROUP BY r.campaign_id, r.is_control
"""  # noqa: S608 (table names only)

_EMPTY = GroupResults(fans=0, replied=0, purchases=0, revenue_cents=0)


def campaigns_results(*, campaigns: Sequence[Campaign]) -> dict[int, Results]:
    """Replies, purchases and revenue of the fans each campaign reached, and of its control
    group over the same window (counted from the launch, since they got nothing). One
    statement for any number of campaigns (the list shows them side by side)."""
    groups: dict[tuple[int, bool], GroupResults] = {}
    launched = [c.pk for c in campaigns if c.launched_at is not None]
    if launched:
        params: dict[str, Any] = {
            "campaign_ids": launched,
            "window": timedelta(hours=settings.CAMPAIGN_ATTRIBUTION_HOURS),
        }
        with connection.cursor() as cursor:
            cursor.execute(_RESULTS_SQL, params)
            for campaign_id, is_control, fans, replied, purchases, cents in cursor.fetchall():
                groups[(campaign_id, bool(is_control))] = GroupResults(
                    fans=fans, replied=replied, purchases=int(purchases), revenue_cents=int(cents)
                )
    return {
        c.pk: Results(
            recipients=groups.get((c.pk, False), _EMPTY),
            control=groups.get((c.pk, True), _EMPTY) if c.control_percent else None,
        )
        for c in campaigns
    }


def campaign_results(*, campaign: Campaign) -> Results:
    return campaigns_results(campaigns=[campaign])[campaign.pk]


@dataclass(frozen=True)
class SendCounts:
    sent: int = 0
    failed: int = 0
    pending: int = 0


def campaigns_send_counts(*, campaigns: Sequence[Campaign]) -> dict[int, SendCounts]:
    """Sent, failed (not withdrawn) and pending per campaign, in two statements (messages of
    individual campaigns, the platform's counters of mass ones) for the list."""
    ids = [c.pk for c in campaigns]
    withdrawn = Q()
    for prefix in WITHDRAWN_PREFIXES:
        withdrawn |= Q(last_error__startswith=prefix)
    counts: dict[int, SendCounts] = {}
    rows = (
        Message.objects.filter(campaign_id__in=ids)
        .order_by()
        .values("campaign_id")
        .annotate(
            sent=Count("id", filter=Q(status=Message.Status.SENT)),
            failed=Count("id", filter=Q(status=Message.Status.FAILED) & ~withdrawn),
            pending=Count("id", filter=Q(status__in=Message.PENDING_STATUSES)),
        )
    )
    for row in rows:
        counts[cast(int, row["campaign_id"])] = SendCounts(
            row["sent"], row["failed"], row["pending"]
        )
    mass = [c.pk for c in campaigns if c.send_mode == Campaign.Mode.MASS]
    if mass:
        for chunk in MassChunk.objects.filter(campaign_id__in=mass).only(
            "campaign_id", "state", "total", "pending", "platform_fan_ids"
        ):
            campaign_id = cast(int, chunk.campaign_id)
            before = counts.get(campaign_id, SendCounts())
            size = len(chunk.platform_fan_ids)
            if chunk.state == MassChunk.State.SENT:
                total = chunk.total or size
                before = SendCounts(
                    before.sent + total - chunk.pending,
                    before.failed,
                    before.pending + chunk.pending,
                )
            elif chunk.state == MassChunk.State.FAILED:
                before = SendCounts(before.sent, before.failed + size, before.pending)
            elif chunk.state != MassChunk.State.CANCELLED:
                before = SendCounts(before.sent, before.failed, before.pending + size)
            counts[campaign_id] = before
    return counts


def campaign_failed_messages(*, campaign: Campaign, limit: int = 50) -> QuerySet[Message]:
    """The campaign's failed messages (not the withdrawn ones), newest first, with their fan."""
    qs = Message.objects.filter(campaign_id=campaign.pk, status=Message.Status.FAILED)
    for prefix in WITHDRAWN_PREFIXES:
        qs = qs.exclude(last_error__startswith=prefix)
    return qs.select_related("conversation__fan").order_by("-updated_at", "-id")[:limit]
