"""Websocket consumer: a member of an account receives that account's live events as JSON."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from crm.broadcasts import account_group_name
from crm.models import Membership


class AccountEventsConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        account_id = int(self.scope["url_route"]["kwargs"]["account_id"])
        if (
            user is None
            or not user.is_authenticated
            or not await self._is_member(user.pk, account_id)
        ):
            await self.close(code=4403)
            return
        self.group = account_group_name(account_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def account_event(self, event: dict[str, Any]) -> None:
        await self.send_json({"event": event["event"], "payload": event["payload"]})

    @database_sync_to_async
    def _is_member(self, user_id: int, account_id: int) -> bool:
        return Membership.objects.filter(user_id=user_id, account_id=account_id).exists()


class InboxEventsConsumer(AccountEventsConsumer):
    """The inbox page's socket (htmx's ws extension): the account's events as rendered HTML,
    out-of-band swaps the page applies as they come. Events without HTML are not sent."""

    async def account_event(self, event: dict[str, Any]) -> None:
        html = event.get("html")
        if html:
            await self.send(text_data=html)
