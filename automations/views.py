"""Automation pages for owners and managers: the list with each one's figures, the editor
(with a live preview of the message for a real fan and a dry run of who it would have reached
in the last 7 days), on/off; and the fan panel's pending automated messages, which any member
of the account sees and may cancel.

The fan panel is injected into crm's fan page and inbox by an ``hx-get`` to
``/accounts/<id>/automations/fans/<fan_id>/pending/`` written in their templates: a URL path,
not an import, so crm stays below automations in the layers.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from automations import figures, selectors, services
from automations.forms import FORM_FIELD_OF, AutomationForm
from automations.models import Automation
from automations.runs import automation_run_cancel
from campaigns.rules import segment_rules_parse, text_personalise, text_variables_check
from crm import media_send
from crm.errors import ApplicationError, NotFoundError
from crm.forms import VaultItemIdsField
from crm.models import Fan, Membership, VaultItem
from crm.views.pages import AuthenticatedRequest
from crm.zones import account_zone

LIST_LIMIT = 100
PREVIEW_FANS = 25  # fans offered in the preview's picker (the most recently seen)
PREVIEW_TEXT_MAX = 20_000  # the preview reads at most this much of the typed text
REACH_DAYS = 7
REACH_SAMPLE = 8
REACH_LIMIT = 5000


def _forbidden(request: AuthenticatedRequest, exc: ApplicationError) -> HttpResponse:
    return render(
        request,
        "automations/forbidden.html",
        {"message": exc.message},
        status=exc.status_code,
    )


def _membership(request: AuthenticatedRequest, account_id: int) -> Membership:
    """Owners and managers; a 404 for a stranger, an ApplicationError (403) for a chatter."""
    try:
        return selectors.automation_membership_get(user=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def _automation(request: AuthenticatedRequest, account_id: int, automation_id: int) -> Automation:
    try:
        return selectors.automation_get(
            user=request.user, automation_id=automation_id, account_id=account_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
@require_GET
def automation_list(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    try:
        membership = _membership(request, account_id)
    except ApplicationError as exc:
        return _forbidden(request, exc)
    automations = list(
        selectors.automations_for_account(user=request.user, account_id=account_id)[:LIST_LIMIT]
    )
    by_id = figures.automations_figures(automations=automations)
    rows = [{"automation": a, "figures": by_id[a.pk]} for a in automations]
    context = {
        "membership": membership,
        "account": membership.account,
        "rows": rows,
        "attribution_hours": figures.attribution_window().total_seconds() // 3600,
        "min_arm_size": figures.MIN_ARM_SIZE,
    }
    return render(request, "automations/list.html", context)


def _preview_fans(account_id: int) -> list[Fan]:
    # index fan_account_last_seen
    return list(
        Fan.objects.filter(account_id=account_id)
        .order_by("-last_seen_at", "-id")
        .only("id", "username", "display_name", "account_id")[:PREVIEW_FANS]
    )


def _preview_fan(account_id: int, raw: str) -> Fan | None:
    """The fan picked for the preview (one of the account's), else the most recently seen."""
    fans = Fan.objects.filter(account_id=account_id).only(
        "id", "username", "display_name", "account_id"
    )
    if raw.isdigit() and len(raw) < 19:
        fan = fans.filter(pk=int(raw)).first()
        if fan is not None:
            return fan
    return fans.order_by("-last_seen_at", "-id").first()


def _preview_context(account_id: int, data: Any) -> dict[str, Any]:
    text = str(data.get("text", ""))[:PREVIEW_TEXT_MAX]
    fan = _preview_fan(account_id, str(data.get("preview_fan", ""))[:20])
    rendered = (
        text_personalise(text, display_name=fan.display_name, username=fan.username)
        if fan is not None
        else ""
    )
    return {
        "preview_fans": _preview_fans(account_id),
        "preview_fan": fan,
        "preview_text": rendered,
        "preview_unknown": text_variables_check(text),
    }


def _draft_automation(membership: Membership, form: AutomationForm) -> Automation | None:
    """An unsaved automation from what the form holds so far (the dry run needs the trigger
    and the filters only); None when those are not valid yet."""
    data = getattr(form, "cleaned_data", {})
    trigger = data.get("trigger")
    if not trigger:
        return None
    value = data.get("trigger_value") or 0
    if trigger in Automation.SCAN_TRIGGERS and not value:
        return None
    try:
        rules = segment_rules_parse(form.rules())
    except ApplicationError:
        return None
    return Automation(
        account=membership.account,
        trigger=trigger,
        trigger_value=0 if trigger in Automation.EVENT_TRIGGERS else value,
        rules=rules.as_json(),
        media_ids=list(form.media_id_list()),
        vault_item_ids=list(data.get("vault_item_ids") or []),
    )


def _reach_context(
    request: AuthenticatedRequest, membership: Membership, form: AutomationForm
) -> dict[str, Any]:
    draft = _draft_automation(membership, form)
    if draft is None:
        return {"reach": None}
    reach = selectors.automation_reach(
        user=request.user, automation=draft, days=REACH_DAYS, limit=REACH_LIMIT
    )
    sample_ids: list[int] = []
    for hit in reach.hits:
        if hit.fan_id not in sample_ids:
            sample_ids.append(hit.fan_id)
        if len(sample_ids) == REACH_SAMPLE:
            break
    fans = {
        f.pk: f
        for f in Fan.objects.filter(pk__in=sample_ids, account_id=membership.account_id).only(
            "id", "username", "display_name", "account_id"
        )
    }
    return {
        "reach": reach,
        "reach_days": REACH_DAYS,
        "reach_sample": [fans[i] for i in sample_ids if i in fans],
    }


def _form_page(
    request: AuthenticatedRequest,
    membership: Membership,
    form: AutomationForm,
    *,
    automation: Automation | None = None,
    status: int = 200,
) -> HttpResponse:
    source: Any = request.POST if form.is_bound else {**form.initial, **request.GET.dict()}
    if not form.is_bound:
        # The dry run and the preview read the initial values as if typed.
        bound = AutomationForm(
            {
                **{k: v for k, v in form.initial.items() if v is not None},
                "subscription_states": form.initial.get("subscription_states") or [],
            }
        )
        bound.is_valid()
        reach_form = bound
    else:
        reach_form = form
    context: dict[str, Any] = {
        "membership": membership,
        "account": membership.account,
        "form": form,
        "automation": automation,
        "trigger_units": Automation.TRIGGER_UNITS,
        "event_triggers": Automation.EVENT_TRIGGERS,
    }
    context.update(_preview_context(membership.account_id, source))
    context.update(_reach_context(request, membership, reach_form))
    context["chosen_media"] = _chosen_media(membership, form)
    return render(request, "automations/form.html", context, status=status)


def _chosen_media(membership: Membership, form: AutomationForm) -> list[VaultItem]:
    """The picker's chips: the items the form was given, with their thumbnails (one query,
    none without)."""
    raw = form["vault_item_ids"].value() or []
    values = raw if isinstance(raw, list | tuple) else [raw]
    ids = [int(str(i)) for i in values if str(i).isdigit() and len(str(i)) < 19]
    return media_send.vault_items_chosen(
        account_id=membership.account_id, item_ids=list(dict.fromkeys(ids))[: VaultItemIdsField.MAX]
    )


def _errors_to_form(form: AutomationForm, exc: ApplicationError) -> None:
    for key, errors in exc.fields.items():
        name = FORM_FIELD_OF.get(key, key)
        for error in errors:
            form.add_error(name if name in form.fields else None, error)
    if not exc.fields:
        form.add_error(None, exc.message)


def _submit(
    request: AuthenticatedRequest, membership: Membership, automation: Automation | None
) -> HttpResponse:
    form = AutomationForm(request.POST, account_id=membership.account_id)
    if not form.is_valid():
        return _form_page(request, membership, form, automation=automation, status=422)
    data = form.input()
    enabled = bool(form.cleaned_data.get("enabled"))
    try:
        if automation is None:
            automation = services.automation_create(
                actor=request.user, account_id=membership.account_id, data=data, enabled=enabled
            )
        else:
            automation = services.automation_update(
                actor=request.user, automation=automation, data=data
            )
            toggle = services.automation_enable if enabled else services.automation_disable
            automation = toggle(actor=request.user, automation=automation)
    except ApplicationError as exc:
        _errors_to_form(form, exc)
        return _form_page(request, membership, form, automation=automation, status=422)
    state = "on" if automation.enabled else "off"
    flash.success(request, f"“{automation.name}” saved; it is {state}.")
    return redirect("automation_list", account_id=membership.account_id)


@login_required
@require_http_methods(["GET", "POST"])
def automation_new(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    try:
        membership = _membership(request, account_id)
    except ApplicationError as exc:
        return _forbidden(request, exc)
    if request.method == "POST":
        return _submit(request, membership, None)
    trigger = request.GET.get("trigger", "")
    initial: dict[str, Any] = {
        "trigger": trigger if trigger in Automation.Trigger.values else "subscribed",
        "delay_minutes": 2,
        "delay_spread_minutes": 3,
        "exclude_waiting": True,
        "control_percent": 10,
        "text": "Hey {name|babe}, thanks for subscribing! 💕",
    }
    return _form_page(request, membership, AutomationForm(initial=initial))


@login_required
@require_http_methods(["GET", "POST"])
def automation_edit(
    request: AuthenticatedRequest, account_id: int, automation_id: int
) -> HttpResponse:
    try:
        membership = _membership(request, account_id)
    except ApplicationError as exc:
        return _forbidden(request, exc)
    automation = _automation(request, account_id, automation_id)
    if request.method == "POST":
        return _submit(request, membership, automation)
    form = AutomationForm(initial=AutomationForm.initial_from(automation))
    return _form_page(request, membership, form, automation=automation)


@login_required
@require_POST
def automation_preview(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The message as the picked fan would get it (htmx, as the text is typed)."""
    try:
        membership = _membership(request, account_id)
    except ApplicationError as exc:
        return _forbidden(request, exc)
    context = {"account": membership.account, **_preview_context(account_id, request.POST)}
    return render(request, "automations/form.html#preview", context)


@login_required
@require_POST
def automation_reach(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """Who the trigger and filters as they stand would have reached in the last 7 days
    (htmx, on every change of them; nothing is written)."""
    try:
        membership = _membership(request, account_id)
    except ApplicationError as exc:
        return _forbidden(request, exc)
    form = AutomationForm(request.POST)
    form.is_valid()  # partial input is fine: the trigger and the filters are what count
    context = {"account": membership.account, **_reach_context(request, membership, form)}
    return render(request, "automations/form.html#reach", context)


@login_required
@require_POST
def automation_toggle(
    request: AuthenticatedRequest, account_id: int, automation_id: int
) -> HttpResponse:
    """On or off (``on=1`` / ``on=0``)."""
    try:
        _membership(request, account_id)
    except ApplicationError as exc:
        return _forbidden(request, exc)
    automation = _automation(request, account_id, automation_id)
    turn_on = request.POST.get("on") == "1"
    try:
        if turn_on:
            automation = services.automation_enable(actor=request.user, automation=automation)
        else:
            automation = services.automation_disable(actor=request.user, automation=automation)
    except ApplicationError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, f"“{automation.name}” is {'on' if automation.enabled else 'off'}.")
    return redirect("automation_list", account_id=account_id)


@login_required
@require_POST
def automation_delete(
    request: AuthenticatedRequest, account_id: int, automation_id: int
) -> HttpResponse:
    try:
        _membership(request, account_id)
    except ApplicationError as exc:
        return _forbidden(request, exc)
    automation = _automation(request, account_id, automation_id)
    name = automation.name
    services.automation_delete(actor=request.user, automation=automation)
    flash.success(request, f"“{name}” deleted.")
    return redirect("automation_list", account_id=account_id)


# --- the fan panel (any member) ------------------------------------------------------------


def _fan(request: AuthenticatedRequest, account_id: int, fan_id: int) -> Fan:
    fan = Fan.objects.filter(pk=fan_id, account_id=account_id).select_related("account").first()
    if fan is None:
        raise Http404("Fan not found.")
    return fan


def _fan_panel(
    request: AuthenticatedRequest, fan: Fan, *, error: str = "", status: int = 200
) -> HttpResponse:
    try:
        runs = list(selectors.runs_pending_for_fan(user=request.user, fan=fan))
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    context = {
        "fan": fan,
        "account": fan.account,
        "runs": runs,
        "account_tz": account_zone(fan.account),
        "error": error,
    }
    return render(request, "automations/fan_panel.html", context, status=status)


@login_required
@require_GET
def fan_pending(request: AuthenticatedRequest, account_id: int, fan_id: int) -> HttpResponse:
    """The fan's pending automated messages (a fragment for the fan page and the inbox)."""
    return _fan_panel(request, _fan(request, account_id, fan_id))


@login_required
@require_POST
def fan_run_cancel(
    request: AuthenticatedRequest, account_id: int, fan_id: int, run_id: int
) -> HttpResponse:
    """Cancel one pending automated message (reason ``manual``); the panel again."""
    fan = _fan(request, account_id, fan_id)
    error = ""
    try:
        run = selectors.automation_run_get(user=request.user, run_id=run_id)
        if run.fan_id != fan.pk:
            raise NotFoundError("Automated message not found.", code="automation_run_not_found")
        automation_run_cancel(run=run, by_user=request.user)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        error = exc.message
    if not request.htmx:
        if error:
            flash.error(request, error)
        else:
            flash.success(request, "Automated message cancelled.")
        back = request.POST.get("next", "")[:2000]
        if back and url_has_allowed_host_and_scheme(
            back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return redirect(back)
        return redirect("fan_detail", account_id=account_id, fan_id=fan_id)
    return _fan_panel(request, fan, error=error)
