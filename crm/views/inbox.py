"""The inbox: conversation list, thread, composer, fan panel and saved replies.

One page template (``crm/inbox.html``) with partials; a request from htmx gets the partial it
asked for (by ``HX-Target``), anything else the whole page, so every link and form also works
without JavaScript. Live changes arrive over the inbox socket (``crm.live``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import (
    collision,
    composer_checks,
    drafts,
    media_send,
    notes,
    selectors,
    services,
    snooze,
    team_presence,
)
from crm.broadcasts import account_event_broadcast
from crm.errors import ApplicationError, NotFoundError
from crm.forms import (
    AssignForm,
    ComposerForm,
    InboxFilterForm,
    NotesForm,
    SavedReplyForm,
    TagForm,
)
from crm.live import message_created_html, note_html
from crm.models import Conversation, Fan, Membership, Message, SavedReply
from crm.sending import send_pipeline
from crm.views.pages import AuthenticatedRequest, _membership_or_404
from crm.views.thread_extras import composer_with_draft, snooze_context

TEMPLATE = "crm/inbox.html"
RECENT_PURCHASES = 5


def _conversation_or_404(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> Conversation:
    try:
        return selectors.conversation_get(
            user=request.user, conversation_id=conversation_id, account_id=account_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def _filter_query(request: AuthenticatedRequest) -> str:
    """The list's filters as a query string (no cursor), kept on every inbox link."""
    query = QueryDict(mutable=True)
    for key in InboxFilterForm.base_fields:
        value = request.GET.get(key)
        if value:
            query[key] = value
    return query.urlencode()


def _list_context(
    request: AuthenticatedRequest, membership: Membership, *, cursor: str = ""
) -> dict[str, Any]:
    form = InboxFilterForm(request.GET)
    filters = form.filters()
    try:
        page = selectors.conversations_for_account(
            user=request.user,
            account_id=membership.account_id,
            filters=filters,
            cursor=cursor,
            membership=membership,
        )
    except ApplicationError as exc:
        if exc.code != "invalid_cursor":
            raise
        page = selectors.conversations_for_account(
            user=request.user,
            account_id=membership.account_id,
            filters=filters,
            membership=membership,
        )
    # The member's own drafts among the page's rows (the "Draft" marker; nobody else's).
    draft_ids = drafts.draft_conversation_ids(
        user=request.user,
        account_id=membership.account_id,
        conversation_ids=[c.pk for c in page.conversations],
    )
    fans_without_chat: list[Fan] = []
    if not cursor and not page.conversations and filters.query.strip():
        fans_without_chat = selectors.fans_without_chat_matching(
            user=request.user, account_id=membership.account_id, query=filters.query
        )
    return {
        "filter_form": form,
        "filters": filters,
        "filter_query": _filter_query(request),
        "page": page,
        "presence_rows": team_presence.account_rows(
            account_id=membership.account_id, conversation_ids=[c.pk for c in page.conversations]
        ),
        "draft_ids": draft_ids,
        "fans_without_chat": fans_without_chat,
        "reply_targets": page.reply_targets,
    }


def _thread_context(
    request: AuthenticatedRequest, membership: Membership, conversation: Conversation
) -> dict[str, Any]:
    thread = selectors.conversation_messages(conversation=conversation)
    newest = thread.messages[-1].pk if thread.messages else 0
    return {
        "conversation": conversation,
        "fan": conversation.fan,
        "thread": thread,
        "thread_items": notes.thread_items(conversation=conversation, page=thread),
        "composer": composer_with_draft(request, conversation, after_message_id=newest),
        "presence": team_presence.thread_presence(
            account_id=conversation.account_id, conversation_id=conversation.pk
        ),
        **snooze_context(conversation),
        **_fan_panel_context(request, membership, conversation),
    }


def _fan_panel_context(
    request: AuthenticatedRequest, membership: Membership, conversation: Conversation
) -> dict[str, Any]:
    context: dict[str, Any] = {
        "purchases": selectors.fan_recent_purchases(fan=conversation.fan, limit=RECENT_PURCHASES),
        "can_manage": membership.can_manage_members,
    }
    if membership.can_manage_members:
        context["assignable"] = selectors.members_for_account(
            user=request.user, account_id=membership.account_id, membership=membership
        )
    return context


def _render(
    request: AuthenticatedRequest, partial: str | None, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    template = f"{TEMPLATE}#{partial}" if partial else TEMPLATE
    return render(request, template, context, status=status)


@login_required
def inbox_current(request: AuthenticatedRequest) -> HttpResponse:
    """``/inbox/``: the inbox of the account chosen in the switcher."""
    membership = getattr(request, "current_membership", None)
    if not membership:
        flash.info(request, "You are not a member of any creator account yet.")
        return redirect("home")
    url = reverse("inbox", args=[membership.account_id])
    return redirect(f"{url}?{request.GET.urlencode()}" if request.GET else url)


@login_required
@require_GET
def inbox(
    request: AuthenticatedRequest, account_id: int, conversation_id: int | None = None
) -> HttpResponse:
    """The page; or, for htmx, the list (``conversation-list``), its next page (``cursor``) or
    the thread with its fan panel (``thread-pane``). Opening a thread marks it read."""
    membership = _membership_or_404(request, account_id)
    conversation = None
    if conversation_id is not None:
        conversation = _conversation_or_404(request, account_id, conversation_id)
    context: dict[str, Any] = {"membership": membership, "account": membership.account}
    target = request.htmx.target if request.htmx else None
    cursor = request.GET.get("cursor", "")

    if request.htmx and cursor:
        context.update(_list_context(request, membership, cursor=cursor))
        return _render(request, "conversation-rows", context)
    if target == "conversation-list":
        context.update(_list_context(request, membership))
        return _render(request, "conversation-list", context)

    if conversation is not None and target == f"thread-messages-{conversation.pk}":
        # A page catching up after its socket (re)connected: the newest messages again.
        thread = selectors.conversation_messages(conversation=conversation)
        items = notes.thread_items(conversation=conversation, page=thread)
        context.update({"conversation": conversation, "thread": thread, "thread_items": items})
        return _render(request, "older-messages", context)
    if conversation is not None:
        if conversation.unread_count:  # a thread already read needs no write transaction
            services.conversation_mark_read(actor=request.user, conversation=conversation)
        if conversation.woke_from_snooze_at:  # opened: the "woke" marker has done its job
            snooze.conversation_woke_seen(actor=request.user, conversation=conversation)
        notes.mentions_clear(actor=request.user, conversation=conversation)
        context.update(_thread_context(request, membership, conversation))
    if target == "thread-pane" and conversation is not None:
        context["filter_query"] = _filter_query(request)
        return _render(request, "thread-pane", context)
    context.update(_list_context(request, membership))
    context["mentions_open"] = notes.mentions_open_count(
        user=request.user, account_id=membership.account_id
    )
    return _render(request, None, context)


@login_required
@require_http_methods(["GET", "POST"])
def thread_messages(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    """GET: older messages (``before``). POST: send from the composer through the pipeline."""
    membership = _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    if request.method == "GET":
        before = request.GET.get("before", "")[:64]
        try:
            thread = selectors.conversation_messages(conversation=conversation, before=before)
            items = notes.thread_items(conversation=conversation, page=thread, before=before)
        except ApplicationError as exc:
            return HttpResponse(exc.message, status=400)
        context = {
            "conversation": conversation,
            "thread": thread,
            "thread_items": items,
            "account": membership.account,
        }
        return _render(request, "older-messages", context)

    form = ComposerForm(request.POST)
    error_context = {
        "membership": membership,
        "account": membership.account,
        "conversation": conversation,
        "composer": form,
    }
    if not form.is_valid():
        return _composer_refused(request, membership, conversation, error_context)
    note_text = notes.note_command_strip(form.cleaned_data["text"])
    if form.cleaned_data["note"] or note_text is not None:
        return _note_post(request, membership, conversation, form, note_text, error_context)
    try:
        message = collision.message_send_guarded(
            account_id=conversation.account_id,
            conversation_id=conversation.pk,
            author=request.user,
            after_message_id=form.cleaned_data["after_message_id"],
            force=form.cleaned_data["force"],
            send=lambda: _checked_send(request, conversation, form),
        )
    except collision.ThreadChangedError as exc:
        return _composer_stopped(request, membership, conversation, error_context, unseen=exc)
    except ApplicationError as exc:
        if exc.code == "thread_claimed":
            return _composer_stopped(request, membership, conversation, error_context, claim=exc)
        if exc.code == "media_already_sent":
            # The fan has some of it: the composer asks first, and sends on "Send anyway".
            error_context["resend"] = exc
            error_context["chosen_media"] = _chosen_media(conversation, form)
            status = 409
            if request.htmx:
                return _render(request, "composer", error_context, status=status)
            return _composer_refused(request, membership, conversation, error_context)
        if exc.code in ("banned_words", "repeated_text"):
            # The composer keeps showing what refused it (the words marked in the text).
            verdict = composer_checks.composer_verdict(
                account=conversation.account,
                user_id=request.user.pk,
                fan_id=conversation.fan_id,
                text=form.cleaned_data["text"],
            )
            error_context["refusal"] = exc
            error_context["verdict"] = verdict
            error_context["pieces"] = composer_checks.highlighted(
                form.cleaned_data["text"], verdict
            )
            form.add_error(None, exc.message)
            return _composer_refused(request, membership, conversation, error_context)
        for field, errors in exc.fields.items():
            name = {"price_cents": "price", "media_ids": "vault_item_ids"}.get(field, field)
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
        if not exc.fields:
            form.add_error(None, exc.message)
        return _composer_refused(request, membership, conversation, error_context)
    if not request.htmx:
        return redirect("inbox_thread", account_id=account_id, conversation_id=conversation_id)
    shown = selectors.message_for_display(message_id=message.pk)
    assert shown is not None
    composer = render_to_string(
        f"{TEMPLATE}#composer",
        {
            "conversation": conversation,
            "composer": ComposerForm(initial={"after_message_id": message.pk}),
            "account": membership.account,
        },
        request=request,
    )
    # The same upsert the live event carries, so the bubble shows once whichever comes first.
    return HttpResponse(composer + message_created_html(message=shown))


def _checked_send(
    request: AuthenticatedRequest, conversation: Conversation, form: ComposerForm
) -> Message:
    """Inside the collision guard (which holds the thread's row): the composer checks
    (``crm.composer_checks``), then the queue."""
    composer_checks.check_before_queue(
        account=conversation.account,
        user_id=request.user.pk,
        fan_id=conversation.fan_id,
        text=form.cleaned_data["text"],
        confirm_banned_words=form.cleaned_data["confirm_banned_words"],
        confirm_repeated_text=form.cleaned_data["confirm_repeated_text"],
    )
    return send_pipeline().message_enqueue(
        fan=conversation.fan,
        text=form.cleaned_data["text"],
        price_cents=form.price_cents(),
        media_ids=form.media_id_list(),
        vault_item_ids=form.cleaned_data["vault_item_ids"],
        preview_item_ids=form.cleaned_data["preview_item_ids"],
        allow_resend=form.cleaned_data["allow_resend"],
        sent_by_id=request.user.pk,
    )


def _chosen_media(conversation: Conversation, form: ComposerForm) -> list[dict[str, Any]]:
    """The picker's chips as they were posted, for a composer shown again (one query)."""
    data = getattr(form, "cleaned_data", {})
    ids = data.get("vault_item_ids") or []
    previews = set(data.get("preview_item_ids") or [])
    items = media_send.vault_items_chosen(account_id=conversation.account_id, item_ids=ids)
    return [{"item": item, "preview": item.pk in previews} for item in items]


def _composer_stopped(
    request: AuthenticatedRequest,
    membership: Membership,
    conversation: Conversation,
    context: dict[str, Any],
    *,
    unseen: collision.ThreadChangedError | None = None,
    claim: ApplicationError | None = None,
) -> HttpResponse:
    """The guard stopped the send (409): the composer keeps the text, shows what is new (or
    who took the thread) and offers Send anyway or Edit. What is new is now on screen, so the
    composer's ``after_message_id`` moves up to it."""
    data = request.POST.copy()
    if unseen is not None:
        data["after_message_id"] = str(unseen.messages[-1].pk)
        context["unseen"] = [
            (collision.unseen_summary(message), message) for message in unseen.messages
        ]
    else:
        context["claimed"] = claim
    data.pop("force", None)
    composer = ComposerForm(data)
    composer.is_valid()
    context["composer"] = composer
    context["chosen_media"] = _chosen_media(conversation, composer)
    if request.htmx:
        return _render(request, "composer", context, status=409)
    context.update(_thread_context(request, membership, conversation))
    context["composer"] = composer
    context.update(_list_context(request, membership))
    return _render(request, None, context, status=409)


def _note_post(
    request: AuthenticatedRequest,
    membership: Membership,
    conversation: Conversation,
    form: ComposerForm,
    note_text: str | None,
    error_context: dict[str, Any],
) -> HttpResponse:
    """The composer's "Internal note" (or ``/note …``): a note, never a message."""
    text = note_text if note_text is not None else form.cleaned_data["text"]
    try:
        note = notes.note_create(actor=request.user, conversation=conversation, text=text)
    except ApplicationError as exc:
        form.add_error(None, exc.message)
        return _composer_refused(request, membership, conversation, error_context)
    # The composer's text became the note: its autosaved draft has done its job.
    drafts.draft_delete(actor=request.user, conversation=conversation)
    if not request.htmx:
        return redirect(
            "inbox_thread", account_id=membership.account_id, conversation_id=conversation.pk
        )
    composer = render_to_string(
        f"{TEMPLATE}#composer",
        {
            "conversation": conversation,
            # Still guarding what was on screen: a note is no message (crm.collision).
            "composer": ComposerForm(
                initial={"note": True, "after_message_id": form.cleaned_data["after_message_id"]}
            ),
            "account": membership.account,
        },
        request=request,
    )
    return HttpResponse(composer + note_html(note=note))


@login_required
@require_POST
def composer_check(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    """What the composer shows as the chatter types: banned words highlighted in the text and
    how many fans already got it (``crm.composer_checks``). Nothing for a note."""
    membership = _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    form = ComposerForm(request.POST)
    verdict = None
    if form.is_valid() and not form.cleaned_data["note"]:
        text = form.cleaned_data["text"]
        if text.strip() and notes.note_command_strip(text) is None:
            verdict = composer_checks.composer_verdict(
                account=membership.account,
                user_id=request.user.pk,
                fan_id=conversation.fan_id,
                text=text,
            )
            context = {"verdict": verdict, "pieces": composer_checks.highlighted(text, verdict)}
            return _render(request, "composer-checks", {**context, "conversation": conversation})
    return _render(request, "composer-checks", {"verdict": None, "conversation": conversation})


def _composer_refused(
    request: AuthenticatedRequest,
    membership: Membership,
    conversation: Conversation,
    context: dict[str, Any],
) -> HttpResponse:
    context.setdefault("chosen_media", _chosen_media(conversation, context["composer"]))
    if request.htmx:
        return _render(request, "composer", context, status=422)
    form = context["composer"]
    context.update(_thread_context(request, membership, conversation))
    context["composer"] = form
    context.update(_list_context(request, membership))
    return _render(request, None, context, status=400)


@login_required
@require_POST
def message_retry(
    request: AuthenticatedRequest, account_id: int, conversation_id: int, message_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    try:
        message = selectors.conversation_message_get(
            conversation=conversation, message_id=message_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    try:
        send_pipeline().message_retry(message=message)
    except ApplicationError as exc:
        if not request.htmx:
            flash.error(request, exc.message)
    if not request.htmx:
        return redirect("inbox_thread", account_id=account_id, conversation_id=conversation_id)
    message = selectors.conversation_message_get(conversation=conversation, message_id=message_id)
    context = {"message": message, "account": membership.account, "account_id": account_id}
    return _render(request, "message", context)


@login_required
@require_POST
def conversation_claim(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    """ "I'm on it" (``action=take``) or "Let go" (``release``): the thread's presence strip."""
    _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    member = team_presence.member_for_user(request.user)
    error = ""
    try:
        if request.POST.get("action", "take")[:10] == "release":
            team_presence.claim_release(conversation_id=conversation.pk, member=member)
        else:
            team_presence.claim_take(conversation_id=conversation.pk, member=member)
    except ApplicationError as exc:
        error = exc.message
    account_event_broadcast(
        account_id=account_id,
        event="presence.changed",
        payload={"conversation_id": conversation.pk},
    )
    if not request.htmx:
        if error:
            flash.error(request, error)
        return redirect("inbox_thread", account_id=account_id, conversation_id=conversation_id)
    presence = team_presence.thread_presence(account_id=account_id, conversation_id=conversation.pk)
    # Someone else's claim, if that is the error, is in the strip: "{name} is on it".
    return HttpResponse(team_presence.presence_html(presence=presence, oob=False))


@login_required
@require_POST
def conversation_read(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    """The open thread got a message while the chatter watched it: it is read."""
    _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    services.conversation_mark_read(actor=request.user, conversation=conversation)
    if not request.htmx:
        return redirect("inbox_thread", account_id=account_id, conversation_id=conversation_id)
    return HttpResponse(status=204)


@login_required
@require_POST
def conversation_assign(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    form = AssignForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Choose a member of this account."
    else:
        try:
            services.conversation_assign(
                actor=request.user,
                conversation=conversation,
                assignee_id=form.cleaned_data["assignee"],
            )
        except ApplicationError as exc:
            error = exc.message
    conversation = _conversation_or_404(request, account_id, conversation_id)
    return _fan_panel_part(request, membership, conversation, "fan-assignee", error=error)


def _fan_panel_part(
    request: AuthenticatedRequest,
    membership: Membership,
    conversation: Conversation,
    partial: str,
    *,
    error: str = "",
    saved: bool = False,
) -> HttpResponse:
    if not request.htmx:
        if error:
            flash.error(request, error)
        return redirect(
            "inbox_thread", account_id=membership.account_id, conversation_id=conversation.pk
        )
    context = {
        "membership": membership,
        "account": membership.account,
        "conversation": conversation,
        "fan": conversation.fan,
        "error": error,
        "saved": saved,
        **_fan_panel_context(request, membership, conversation),
    }
    return _render(request, partial, context, status=422 if error else 200)


@login_required
@require_POST
def fan_tag_add(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    form = TagForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Type a tag of at most 50 characters."
    else:
        try:
            conversation.fan = services.fan_tag_add(
                actor=request.user, fan=conversation.fan, tag=form.cleaned_data["tag"]
            )
        except ApplicationError as exc:
            error = exc.message
    return _fan_panel_part(request, membership, conversation, "fan-tags", error=error)


@login_required
@require_POST
def fan_tag_remove(
    request: AuthenticatedRequest, account_id: int, conversation_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    form = TagForm(request.POST)
    if form.is_valid():
        conversation.fan = services.fan_tag_remove(
            actor=request.user, fan=conversation.fan, tag=form.cleaned_data["tag"]
        )
    return _fan_panel_part(request, membership, conversation, "fan-tags")


@login_required
@require_POST
def fan_notes(request: AuthenticatedRequest, account_id: int, conversation_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    conversation = _conversation_or_404(request, account_id, conversation_id)
    form = NotesForm(request.POST)
    error = ""
    if not form.is_valid():
        error = "Notes can have at most 10,000 characters."
    else:
        try:
            conversation.fan = services.fan_notes_set(
                actor=request.user, fan=conversation.fan, notes=form.cleaned_data["notes"]
            )
        except ApplicationError as exc:
            error = exc.message
    return _fan_panel_part(
        request, membership, conversation, "fan-notes", error=error, saved=not error
    )


# --- Saved replies --------------------------------------------------------------------------


@login_required
@require_GET
def saved_reply_picker(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    """The composer's searchable list of saved replies (a fragment)."""
    membership = _membership_or_404(request, account_id)
    replies = list(
        selectors.saved_replies_for_account(
            user=request.user, account_id=account_id, query=request.GET.get("q", "")[:100]
        )[:50]
    )
    _saved_reply_media(account_id, replies)
    context = {"account": membership.account, "replies": replies}
    return _render(request, "saved-reply-options", context)


def _saved_reply_media(account_id: int, replies: list[SavedReply]) -> None:
    """Each reply's ``media_items``, in order (one query for the page, none without media)."""
    wanted = list(dict.fromkeys(i for reply in replies for i in reply.vault_item_ids))
    items = {
        item.pk: item
        for item in media_send.vault_items_chosen(account_id=account_id, item_ids=wanted)
    }
    for reply in replies:
        reply.media_items = [items[i] for i in reply.vault_item_ids if i in items]  # type: ignore[attr-defined]


def _saved_replies_page(
    request: AuthenticatedRequest,
    membership: Membership,
    *,
    form: SavedReplyForm | None = None,
    editing: SavedReply | None = None,
    status: int = 200,
) -> HttpResponse:
    bound = form or SavedReplyForm()
    context = {
        "membership": membership,
        "account": membership.account,
        "replies": selectors.saved_replies_for_account(
            user=request.user, account_id=membership.account_id
        ),
        "form": bound,
        "editing": editing,
    }
    ids = (
        bound.cleaned_data.get("vault_item_ids", [])
        if bound.is_bound and hasattr(bound, "cleaned_data")
        else (editing.vault_item_ids if editing is not None else [])
    )
    context["chosen_media"] = [
        {"item": item, "preview": False}
        for item in media_send.vault_items_chosen(account_id=membership.account_id, item_ids=ids)
    ]
    return render(request, "crm/saved_replies.html", context, status=status)


def _saved_reply_submit(
    request: AuthenticatedRequest, membership: Membership, reply: SavedReply | None
) -> HttpResponse:
    form = SavedReplyForm(request.POST)
    if not form.is_valid():
        return _saved_replies_page(request, membership, form=form, editing=reply, status=400)
    try:
        saved = services.saved_reply_save(
            actor=request.user,
            account_id=membership.account_id,
            title=form.cleaned_data["title"],
            text=form.cleaned_data["text"],
            price_cents=form.price_cents(),
            reply=reply,
            vault_item_ids=form.cleaned_data["vault_item_ids"],
        )
    except ApplicationError as exc:
        for field, errors in exc.fields.items():
            name = {"price_cents": "price", "media_ids": "vault_item_ids"}.get(field, field)
            for error in errors:
                form.add_error(name if name in form.fields else None, error)
        if not exc.fields:
            form.add_error(None, exc.message)
        return _saved_replies_page(
            request, membership, form=form, editing=reply, status=exc.status_code
        )
    flash.success(request, f"Saved reply “{saved.title}” saved.")
    return redirect("saved_reply_list", account_id=membership.account_id)


@login_required
@require_http_methods(["GET", "POST"])
def saved_reply_list(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    if request.method == "GET":
        return _saved_replies_page(request, membership)
    return _saved_reply_submit(request, membership, None)


def _saved_reply_or_404(
    request: AuthenticatedRequest, account_id: int, reply_id: int
) -> SavedReply:
    try:
        return selectors.saved_reply_get(
            user=request.user, account_id=account_id, reply_id=reply_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


@login_required
@require_http_methods(["GET", "POST"])
def saved_reply_edit(request: AuthenticatedRequest, account_id: int, reply_id: int) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    reply = _saved_reply_or_404(request, account_id, reply_id)
    if request.method == "POST":
        return _saved_reply_submit(request, membership, reply)
    form = SavedReplyForm(
        initial={
            "title": reply.title,
            "text": reply.text,
            "price": reply.price_cents / 100 if reply.price_cents else None,
        }
    )
    return _saved_replies_page(request, membership, form=form, editing=reply)


@login_required
@require_POST
def saved_reply_delete(
    request: AuthenticatedRequest, account_id: int, reply_id: int
) -> HttpResponse:
    membership = _membership_or_404(request, account_id)
    reply = _saved_reply_or_404(request, account_id, reply_id)
    try:
        services.saved_reply_delete(actor=request.user, reply=reply)
    except ApplicationError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, f"Saved reply “{reply.title}” deleted.")
    return redirect("saved_reply_list", account_id=membership.account_id)
