"""Campaign pages for owners and managers: the list with results side by side, the builder
(segment rules with a live pre-flight) and the campaign page (live progress and results).

One template per page with partials; a request from htmx gets the partial it asked for
(``preflight``, ``progress``), anything else the whole page, so every form works without
JavaScript.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from campaigns import mass, selectors, services
from campaigns.forms import CampaignForm
from campaigns.models import Campaign, Segment
from campaigns.rules import segment_rules_parse
from crm import media_send
from crm.errors import ApplicationError, NotFoundError
from crm.models import Membership
from crm.views.pages import AuthenticatedRequest

LIST_LIMIT = 50
FORM_FIELD_OF_RULE = {"spend_min_cents": "spend_min", "spend_max_cents": "spend_max"}


def _membership(request: AuthenticatedRequest, account_id: int) -> Membership:
    try:
        return selectors.campaign_membership_get(user=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def _forbidden_or(request: AuthenticatedRequest, account_id: int) -> Membership | HttpResponse:
    try:
        return _membership(request, account_id)
    except ApplicationError as exc:
        return HttpResponseForbidden(exc.message)


def _campaign(request: AuthenticatedRequest, account_id: int, campaign_id: int) -> Campaign:
    try:
        return selectors.campaign_get(
            user=request.user, campaign_id=campaign_id, account_id=account_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
@require_GET
def campaign_list(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _forbidden_or(request, account_id)
    if isinstance(membership, HttpResponse):
        return membership
    campaigns = list(
        selectors.campaigns_for_account(user=request.user, account_id=account_id)[:LIST_LIMIT]
    )
    results = selectors.campaigns_results(campaigns=campaigns)
    counts = selectors.campaigns_send_counts(campaigns=campaigns)
    rows = [
        {
            "campaign": c,
            "results": results[c.pk],
            "counts": counts.get(c.pk, selectors.SendCounts()),
        }
        for c in campaigns
    ]
    context = {
        "membership": membership,
        "account": membership.account,
        "rows": rows,
        "segments": selectors.segments_for_account(user=request.user, account_id=account_id),
    }
    return render(request, "campaigns/list.html", context)


def _form_page(
    request: AuthenticatedRequest,
    membership: Membership,
    form: CampaignForm,
    *,
    campaign: Campaign | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {
        "membership": membership,
        "account": membership.account,
        "form": form,
        "campaign": campaign,
        "segments": selectors.segments_for_account(
            user=request.user, account_id=membership.account_id
        ),
    }
    context.update(_preflight_context(membership, form))
    context["chosen_media"] = _chosen_media(membership, form)
    return render(request, "campaigns/form.html", context, status=status)


def _chosen_media(membership: Membership, form: CampaignForm) -> list[dict[str, Any]]:
    """The picker's chips: the items the form was given (one query, none without)."""
    raw = form["vault_item_ids"].value() or []
    ids = [int(i) for i in (raw if isinstance(raw, list | tuple) else [raw]) if str(i).isdigit()]
    items = media_send.vault_items_chosen(account_id=membership.account_id, item_ids=ids[:50])
    return [{"item": item, "preview": False} for item in items]


def _preflight_context(membership: Membership, form: CampaignForm) -> dict[str, Any]:
    """The pre-flight for the form's current rules (or the rules' errors)."""
    if not form.is_bound:
        data: dict[str, Any] = {"exclude_waiting": True}
        rules_source = {k: v for k, v in form.initial.items() if k in data or k in form.fields}
        rules_form = CampaignForm(
            {**data, **rules_source, "name": "x", "text": "x"}, account_id=membership.account_id
        )
        rules_form.is_valid()
        form_for_rules = rules_form
    else:
        form_for_rules = form
    cleaned = getattr(form_for_rules, "cleaned_data", {})
    try:
        rules = segment_rules_parse(form_for_rules.rules() if cleaned else {})
    except ApplicationError as exc:
        return {"preflight": None, "preflight_errors": exc.fields}
    preflight = selectors.campaign_preflight(
        account=membership.account,
        rules=rules,
        media_ids=form_for_rules.media_id_list() if cleaned else (),
        control_percent=cleaned.get("control_percent") or 0,
        drain_window_minutes=cleaned.get("drain_window_minutes"),
    )
    mode = cleaned.get("mode") or Campaign.Mode.AUTO
    chosen = preflight.auto_mode if mode == Campaign.Mode.AUTO else mode
    return {"preflight": preflight, "preflight_errors": {}, "chosen_mode": chosen}


def _input(form: CampaignForm) -> services.CampaignInput:
    data = form.cleaned_data
    return services.CampaignInput(
        name=data["name"],
        text=data["text"],
        price_cents=form.price_cents(),
        media_ids=form.media_id_list(),
        rules=form.rules(),
        segment_id=data.get("segment"),
        mode=data["mode"],
        drain_window_minutes=data.get("drain_window_minutes"),
        control_percent=data.get("control_percent") or 0,
        scheduled_at=form.scheduled_at_local(),
        block_banned_words=data.get("block_banned_words") or "",
    )


def _errors_to_form(form: CampaignForm, exc: ApplicationError) -> None:
    for field, errors in exc.fields.items():
        name = FORM_FIELD_OF_RULE.get(field, field)
        name = {"price_cents": "price", "segment_id": "segment"}.get(name, name)
        for error in errors:
            form.add_error(name if name in form.fields else None, error)
    if not exc.fields:
        form.add_error(None, exc.message)


def _submit(
    request: AuthenticatedRequest, membership: Membership, campaign: Campaign | None
) -> HttpResponse:
    form = CampaignForm(
        request.POST, time_zone=membership.account.time_zone, account_id=membership.account_id
    )
    if not form.is_valid():
        return _form_page(request, membership, form, campaign=campaign, status=400)
    data = _input(form)
    try:
        if campaign is None:
            campaign = services.campaign_create(
                actor=request.user, account_id=membership.account_id, data=data
            )
        else:
            campaign = services.campaign_update(actor=request.user, campaign=campaign, data=data)
        segment_name = form.cleaned_data.get("save_segment_as", "").strip()
        if segment_name:
            services.segment_save(
                actor=request.user,
                account_id=membership.account_id,
                name=segment_name,
                rules=data.rules or {},
            )
        if request.POST.get("action") == "launch":
            campaign = services.campaign_launch(actor=request.user, campaign=campaign)
    except ApplicationError as exc:
        _errors_to_form(form, exc)
        return _form_page(request, membership, form, campaign=campaign, status=exc.status_code)
    if campaign.state == Campaign.State.SCHEDULED:
        flash.success(request, f"“{campaign.name}” is scheduled.")
    elif campaign.state == Campaign.State.RUNNING:
        flash.success(request, f"“{campaign.name}” is sending.")
    else:
        flash.success(request, f"“{campaign.name}” saved as a draft.")
    return redirect("campaign_detail", account_id=membership.account_id, campaign_id=campaign.pk)


@login_required
@require_http_methods(["GET", "POST"])
def campaign_new(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _forbidden_or(request, account_id)
    if isinstance(membership, HttpResponse):
        return membership
    if request.method == "POST":
        return _submit(request, membership, None)
    initial: dict[str, Any] = {"mode": Campaign.Mode.AUTO, "exclude_waiting": True}
    segment_id = request.GET.get("segment", "")
    if segment_id.isdigit():
        segment = Segment.objects.filter(pk=int(segment_id), account_id=account_id).first()
        if segment is not None:
            initial.update(CampaignForm.rules_initial(segment.rules))
            initial["segment"] = segment.pk
    form = CampaignForm(
        initial=initial, time_zone=membership.account.time_zone, account_id=account_id
    )
    return _form_page(request, membership, form)


@login_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request: AuthenticatedRequest, account_id: int, campaign_id: int) -> HttpResponse:
    membership = _forbidden_or(request, account_id)
    if isinstance(membership, HttpResponse):
        return membership
    campaign = _campaign(request, account_id, campaign_id)
    if not campaign.is_editable:
        flash.error(request, "A campaign that has started cannot be changed.")
        return redirect("campaign_detail", account_id=account_id, campaign_id=campaign_id)
    if request.method == "POST":
        return _submit(request, membership, campaign)
    tz = membership.account.time_zone
    form = CampaignForm(
        initial=CampaignForm.initial_from(campaign, tz), time_zone=tz, account_id=account_id
    )
    return _form_page(request, membership, form, campaign=campaign)


@login_required
@require_http_methods(["GET", "POST"])
def campaign_preflight(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The pre-flight fragment for the builder's current fields (htmx, on every change)."""
    membership = _forbidden_or(request, account_id)
    if isinstance(membership, HttpResponse):
        return membership
    data = request.POST if request.method == "POST" else request.GET
    form = CampaignForm(data, time_zone=membership.account.time_zone, account_id=account_id)
    form.is_valid()  # partial input is fine: the rules are what counts here
    context: dict[str, Any] = {"account": membership.account, "form": form}
    context.update(_preflight_context(membership, form))
    return render(request, "campaigns/form.html#preflight", context)


def _detail_context(
    request: AuthenticatedRequest, membership: Membership, campaign: Campaign
) -> dict[str, Any]:
    return {
        "membership": membership,
        "account": membership.account,
        "campaign": campaign,
        "progress": selectors.campaign_progress(campaign=campaign),
        "account_tz": ZoneInfo(membership.account.time_zone),
    }


@login_required
@require_GET
def campaign_detail(
    request: AuthenticatedRequest, account_id: int, campaign_id: int
) -> HttpResponse:
    """The page; for htmx (``HX-Target: campaign-progress``) the live progress only."""
    membership = _forbidden_or(request, account_id)
    if isinstance(membership, HttpResponse):
        return membership
    campaign = _campaign(request, account_id, campaign_id)
    mass.campaign_progress_refresh(campaign=campaign)
    context = _detail_context(request, membership, campaign)
    if request.htmx and request.htmx.target == "campaign-progress":
        return render(request, "campaigns/detail.html#progress", context)
    context["results"] = selectors.campaign_results(campaign=campaign)
    context["failed_messages"] = selectors.campaign_failed_messages(campaign=campaign)
    return render(request, "campaigns/detail.html", context)


ACTIONS = {
    "launch": services.campaign_launch,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "cancel": services.campaign_cancel,
    "unsend": services.campaign_unsend,
}


@login_required
@require_POST
def campaign_action(
    request: AuthenticatedRequest, account_id: int, campaign_id: int, action: str
) -> HttpResponse:
    membership = _forbidden_or(request, account_id)
    if isinstance(membership, HttpResponse):
        return membership
    campaign = _campaign(request, account_id, campaign_id)
    try:
        if action == "resend-failed":
            count = services.campaign_resend_failed(actor=request.user, campaign=campaign)
            flash.success(request, f"{count} failed message(s) put back in the queue.")
        elif action in ACTIONS:
            ACTIONS[action](actor=request.user, campaign=campaign)
        else:
            raise Http404("Unknown action.")
    except ApplicationError as exc:
        flash.error(request, exc.message)
    return redirect("campaign_detail", account_id=account_id, campaign_id=campaign_id)


@login_required
@require_POST
def segment_delete(request: AuthenticatedRequest, account_id: int, segment_id: int) -> HttpResponse:
    membership = _forbidden_or(request, account_id)
    if isinstance(membership, HttpResponse):
        return membership
    try:
        segment = selectors.segment_get(
            user=request.user, account_id=account_id, segment_id=segment_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    services.segment_delete(actor=request.user, segment=segment)
    flash.success(request, f"Segment “{segment.name}” deleted.")
    return redirect("campaign_list", account_id=account_id)
