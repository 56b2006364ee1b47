"""The thread's draft autosave and snooze menu (HTML/htmx; the API is in crm.api)."""

from __future__ import annotations

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crm import drafts, snooze, zones
from crm.errors import ApplicationError
from crm.forms import DraftForm, SnoozeForm
from crm.models import Conversation
from crm.response_targets import ReplyTargets
from crm.views.inbox import TEMPLATE, _conversation_or_404
from crm.views.pages import AuthenticatedRequest, _membership_or_404
from crm.views.thread_extras import snooze_context


@login_required
@require_http_methods(["POST", "DELETE"])
def conversation_draft(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    """The composer's autosave (static/js/drafts.js): POST keeps the text (an empty one
    deletes the draft), DELETE deletes it. 204, or 400 (409 when the member has sent since
    the composer opened) with the reason as text."""
    _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    if request.method == "DELETE":
        drafts.draft_delete(actor=request.user, conversation=conversation)
        return HttpResponse(status=204)
    form = DraftForm(request.POST)
    if not form.is_valid():
        return HttpResponse("The draft is too long or its price is not valid.", status=400)
    try:
        drafts.draft_save(
            actor=request.user,
            conversation=conversation,
            text=form.cleaned_data["text"],
            price_cents=form.price_cents(),
            composer_since=form.cleaned_data["since"],
        )
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=exc.status_code)
    return HttpResponse(status=204)


def _snooze_answer(
    request: AuthenticatedRequest, conversation: Conversation, *, error: str = ""
) -> HttpResponse:
    if not request.htmx:
        if error:
            flash.error(request, error)
        return redirect(
            "inbox_thread", account_id=conversation.account_id, conversation_id=conversation.pk
        )
    context = {"conversation": conversation, **snooze_context(conversation, error=error)}
    html = render_to_string(f"{TEMPLATE}#thread-snooze", context, request=request)
    if not error:
        # The member's own list hears it at once; everyone else's by the live event.
        html += render_to_string(
            f"{TEMPLATE}#live-conversation-changed",
            {
                "conversation": conversation,
                "account_id": conversation.account_id,
                "reply_targets": ReplyTargets.of(conversation.account),
            },
            request=request,
        )
    return HttpResponse(html, status=422 if error else 200)


@login_required
@require_POST
def conversation_snooze(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    """Snooze from the thread's menu: a preset, a time in the account's zone, or until the
    fan writes."""
    _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    form = SnoozeForm(request.POST)
    if not form.is_valid():
        return _snooze_answer(request, conversation, error="Choose when the snooze ends.")
    data = form.cleaned_data
    zone = zones.account_zone(conversation.account)
    try:
        until = None
        if data["preset"]:
            until = snooze.snooze_preset_until(preset=data["preset"], zone=zone, now=timezone.now())
        elif data["until"]:
            until = snooze.snooze_until_parse(value=data["until"], zone=zone)
        snooze.conversation_snooze(
            actor=request.user,
            conversation=conversation,
            until=until,
            until_reply=data["until_reply"],
        )
    except ApplicationError as exc:
        return _snooze_answer(request, conversation, error=exc.message)
    return _snooze_answer(request, conversation)


@login_required
@require_POST
def conversation_unsnooze(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    snooze.conversation_unsnooze(actor=request.user, conversation=conversation)
    return _snooze_answer(request, conversation)
