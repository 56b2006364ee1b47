"""Websocket consumer: a member of an account receives that account's live events as JSON.

A socket lives as long as the page, so access is not only checked on connect: the socket also
listens on its user's group (``crm.broadcasts.user_group_name``), where removing a membership,
deactivating the user or logging out (``crm.signals``) asks it to check again and close, and
it checks again by itself before an event when its last check is older than
``ACCESS_RECHECK_SECONDS`` (the backstop when that message is lost, and session expiry).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from importlib import import_module
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import SESSION_KEY

from crm import presence, selectors, team_presence
from crm.broadcasts import account_group_name, session_ref, user_group_name
from crm.errors import NotFoundError
from crm.models import Membership
from crm.shift_access import shift_access_check
from crm.worktime import work_session_touch

# How stale a socket's last access check may be when an event is about to go out on it.
ACCESS_RECHECK_SECONDS = 30.0
# Closed for lost access (or never allowed): htmx's ws extension does not reconnect on it.
CLOSE_ACCESS_DENIED = 4403
# Closed because a chatter is off shift on a shift-only account (crm.shift_access); no
# reconnect either: the page reloads into the off-shift page on its next request.
CLOSE_OFF_SHIFT = 4409
# What a page may send (presence messages are a few dozen bytes); longer is dropped unread.
RECEIVE_MAX_CHARS = 1000


class AccountEventsConsumer(AsyncJsonWebsocketConsumer):
    account_id: int
    user_id: int
    session_key: str | None = None
    joined: tuple[str, ...] = ()
    access_checked_at = 0.0
    access_lost = False
    # The account is "watched" while this socket is open (crm.presence): events are rendered
    # only then. The inbox socket wants the HTML, this one the JSON.
    presence_kind = presence.EVENTS
    presence_task: asyncio.Task[None] | None = None
    watching = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.account_id = int(self.scope["url_route"]["kwargs"]["account_id"])
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_ACCESS_DENIED)
            return
        self.user_id = user.pk
        self.session_key = self._scope_session_key()
        refusal = await self._access_refusal()
        if refusal is not None:
            await self.close(code=refusal)
            return
        self.access_checked_at = time.monotonic()
        await self._watch()  # before joining, so no event the group hears goes unrendered
        await self._groups_join()
        await self.accept()
        self.presence_task = asyncio.ensure_future(self._watch_while_allowed())

    async def disconnect(self, code: int) -> None:
        await self._unwatch()
        await self._groups_leave()

    async def account_event(self, event: dict[str, Any]) -> None:
        if await self._access_current():
            await self.event_send(event)

    async def event_send(self, event: dict[str, Any]) -> None:
        await self.send_json({"event": event["event"], "payload": event["payload"]})

    async def access_check(self, event: dict[str, Any]) -> None:
        """The user may have lost access (``user_access_check_broadcast``): check now."""
        if self.session_key and event.get("session") == session_ref(self.session_key):
            await self._close_for_lost_access()
            return
        self.access_checked_at = 0.0
        await self._access_current()

    # --- helpers ------------------------------------------------------------------------------

    async def _groups_join(self) -> None:
        self.joined = (account_group_name(self.account_id), user_group_name(self.user_id))
        for group in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)

    async def _groups_leave(self) -> None:
        joined, self.joined = self.joined, ()
        for group in joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def _watch(self) -> None:
        self.watching = True
        await sync_to_async(presence.account_watch, thread_sensitive=False)(
            account_id=self.account_id, kind=self.presence_kind, connection=self.channel_name
        )

    async def _unwatch(self) -> None:
        task, self.presence_task = self.presence_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.watching:
            self.watching = False
            await sync_to_async(presence.account_unwatch, thread_sensitive=False)(
                account_id=self.account_id, kind=self.presence_kind, connection=self.channel_name
            )

    async def _watch_while_allowed(self) -> None:
        """Renew the watch every ``WATCH_REFRESH_SECONDS`` while the socket may still listen
        (checking access when the last check is stale, as an event would)."""
        while True:
            await asyncio.sleep(presence.WATCH_REFRESH_SECONDS)
            if not await self._access_current():
                return
            await self._watch()

    async def _access_current(self) -> bool:
        """True while the socket may still receive the account's events; closes it otherwise.
        Asks the database only when the last check is older than ``ACCESS_RECHECK_SECONDS``."""
        if self.access_lost:
            return False
        if time.monotonic() - self.access_checked_at < ACCESS_RECHECK_SECONDS:
            return True
        refusal = await self._access_refusal()
        if refusal is not None:
            await self._close_for_lost_access(code=refusal)
            return False
        self.access_checked_at = time.monotonic()
        return True

    async def _close_for_lost_access(self, code: int = CLOSE_ACCESS_DENIED) -> None:
        if self.access_lost:
            return
        self.access_lost = True
        await self._unwatch()
        await self._groups_leave()
        await self.close(code=code)

    def _scope_session_key(self) -> str | None:
        session = self.scope.get("session")
        return session.session_key if session is not None else None

    @database_sync_to_async
    def _access_refusal(self) -> int | None:
        """None while the socket may listen: an active user, a member of the account, (for a
        session's socket) a session that has neither ended nor expired and still belongs to
        that user, and (a chatter of a shift-only account) on shift. Else the close code."""
        if self.session_key is not None:
            store = import_module(settings.SESSION_ENGINE).SessionStore(self.session_key)
            if store.get(SESSION_KEY) != str(self.user_id):
                return CLOSE_ACCESS_DENIED
        membership = (
            Membership.objects.filter(
                user_id=self.user_id, account_id=self.account_id, user__is_active=True
            )
            .select_related("account")
            .first()
        )
        if membership is None:
            return CLOSE_ACCESS_DENIED
        access = shift_access_check(
            user=self.scope["user"], account=membership.account, membership=membership
        )
        return None if access.allowed else CLOSE_OFF_SHIFT


class InboxEventsConsumer(AccountEventsConsumer):
    """The inbox page's socket (htmx's ws extension): the account's events as rendered HTML,
    out-of-band swaps the page applies as they come. Events without HTML are not sent.

    The page sends presence (``crm.team_presence.PresenceSocket``): heartbeats, typing."""

    presence_kind = presence.INBOX
    # Who views which thread, who types (crm.team_presence; crm.presence is who listens).
    viewers: team_presence.PresenceSocket | None = None

    async def event_send(self, event: dict[str, Any]) -> None:
        html = event.get("html")
        if html:
            await self.send(text_data=html)

    async def connect(self) -> None:
        await super().connect()
        if self.joined:
            self.viewers = team_presence.PresenceSocket(
                account_id=self.account_id,
                member=team_presence.member_for_user(self.scope["user"]),
                allowed=self._may_see_conversation,
                send_self=self._send_html,
                broadcast=self._presence_broadcast,
            )

    async def disconnect(self, code: int) -> None:
        if self.viewers is not None:
            await self.viewers.close()
        await super().disconnect(code)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > RECEIVE_MAX_CHARS:
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            return  # htmx's ws-send or a stray frame: nothing this socket answers
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if self.viewers is None or not isinstance(content, dict) or "presence" not in content:
            return
        if await self._access_current():
            await self.viewers.receive(content)
            if content.get("presence") == "heartbeat" and content.get("active") is True:
                # The person used the page: activity for the idle clock-out (crm.worktime).
                await sync_to_async(work_session_touch, thread_sensitive=False)(
                    user_id=self.user_id, account_id=self.account_id
                )

    async def _send_html(self, html: str) -> None:
        await self.send(text_data=html)

    async def _presence_broadcast(self, conversation_id: int, html: str) -> None:
        await self.channel_layer.group_send(
            account_group_name(self.account_id),
            {
                "type": "account.event",
                "event": "presence.changed",
                "payload": {"conversation_id": conversation_id},
                "html": html,
            },
        )

    @database_sync_to_async
    def _may_see_conversation(self, conversation_id: int) -> bool:
        try:
            selectors.conversation_get(
                user=self.scope["user"], conversation_id=conversation_id, account_id=self.account_id
            )
        except NotFoundError:
            return False
        return True
