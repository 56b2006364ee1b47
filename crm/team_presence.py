"""Who else has a thread open, who is typing in it, and who has taken it ("I'm on it").

All of it lives in Redis with an expiry, never in PostgreSQL: a page heartbeats every
``HEARTBEAT_SECONDS`` over the inbox socket and a view that is not renewed within
``VIEW_TTL_SECONDS`` is gone, so a closed tab, a lost connection or a sleeping laptop drops out
within 30 s even when no disconnect ever arrives. Expired entries are pruned when they are
read; the sweep on every heartbeat of the account (``account_sweep``) finds the views that
expired silently and says which threads changed, so exactly one socket broadcasts each drop.

Keys (after the cache's ``KEY_PREFIX``; scores are expiry times in epoch seconds):
- ``presence:thread:<conversation>``: sorted set of ``<user_id>:<name>`` viewing the thread;
- ``presence:account:<account>``: sorted set of ``<conversation>:<user_id>:<name>``, the same
  views by account (the list's markers and the sweep);
- ``presence:typers:<conversation>``: sorted set of ``<user_id>:<name>`` typing now;
- ``presence:typing:<conversation>:<user_id>``: the typing throttle (one notice per 2 s);
- ``presence:claim:<conversation>``: ``<user_id>:<name>`` of the member who took the thread,
  expiring with the claim.

A member is named by ``user_id:name``; Django usernames hold no colon, and the id comes first,
so splitting on the first colon is exact.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from asgiref.sync import sync_to_async
from django.conf import settings
from django.template.loader import render_to_string
from redis.exceptions import RedisError

from config.redis import redis_client, redis_key_prefix
from crm.errors import ApplicationError

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 10
# Two missed heartbeats and the view is gone; the sweep on the next heartbeat of anyone in the
# account shows it, so a silent drop is off every page within 30 s of its last heartbeat.
VIEW_TTL_SECONDS = 20
TYPING_THROTTLE_SECONDS = 2
# How long a typing notice counts; the typist renews it every 2 s while typing, and their page
# says when they stop (``typing_stop``), so this only ends a typist whose page went silent.
TYPING_SHOWN_SECONDS = 6


@dataclass(frozen=True)
class Member:
    user_id: int
    name: str

    @property
    def ref(self) -> str:
        return f"{self.user_id}:{self.name}"

    @property
    def initials(self) -> str:
        parts = [p for p in self.name.replace("_", " ").replace(".", " ").split() if p]
        letters = "".join(p[0] for p in parts[:2]) if parts else "?"
        return letters.upper()

    @classmethod
    def from_ref(cls, ref: bytes | str) -> Member:
        text = ref.decode() if isinstance(ref, bytes) else ref
        user_id, _, name = text.partition(":")
        return cls(user_id=int(user_id), name=name)


@dataclass(frozen=True)
class Claim:
    member: Member
    until: float  # epoch seconds

    @property
    def seconds_left(self) -> int:
        return max(0, int(self.until - time.time()))


@dataclass(frozen=True)
class ThreadPresence:
    account_id: int
    conversation_id: int
    viewers: tuple[Member, ...]
    typing: tuple[Member, ...]
    claim: Claim | None


def member_for_user(user: object) -> Member:
    name = str(getattr(user, "get_username", lambda: "")() or "?")
    return Member(user_id=int(getattr(user, "pk", 0)), name=name)


def _thread_key(conversation_id: int) -> str:
    return f"{redis_key_prefix()}:presence:thread:{conversation_id}"


def _account_key(account_id: int) -> str:
    return f"{redis_key_prefix()}:presence:account:{account_id}"


def _typers_key(conversation_id: int) -> str:
    return f"{redis_key_prefix()}:presence:typers:{conversation_id}"


def _throttle_key(conversation_id: int, user_id: int) -> str:
    return f"{redis_key_prefix()}:presence:typing:{conversation_id}:{user_id}"


def _claim_key(conversation_id: int) -> str:
    return f"{redis_key_prefix()}:presence:claim:{conversation_id}"


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def view_heartbeat(
    *, account_id: int, conversation_id: int, member: Member, now: float | None = None
) -> bool:
    """The member has the thread open (renewed every heartbeat). True when they just joined."""
    until = _now(now) + VIEW_TTL_SECONDS
    pipe = redis_client().pipeline(transaction=False)
    pipe.zadd(_thread_key(conversation_id), {member.ref: until})
    pipe.expire(_thread_key(conversation_id), VIEW_TTL_SECONDS * 3)
    pipe.zadd(_account_key(account_id), {f"{conversation_id}:{member.ref}": until})
    pipe.expire(_account_key(account_id), VIEW_TTL_SECONDS * 3)
    added = pipe.execute()[0]
    return bool(added)


def view_leave(*, account_id: int, conversation_id: int, member: Member) -> bool:
    """The member closed the thread (or its socket): their view, typing and claim end.
    True when anything the others see changed."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.zrem(_thread_key(conversation_id), member.ref)
    pipe.zrem(_account_key(account_id), f"{conversation_id}:{member.ref}")
    pipe.zrem(_typers_key(conversation_id), member.ref)
    removed, _, typing = pipe.execute()
    released = claim_release(conversation_id=conversation_id, member=member)
    return bool(removed or typing or released)


def account_sweep(*, account_id: int, now: float | None = None) -> list[int]:
    """Drop the account's views that were not renewed in time; the threads that changed.

    Several sockets sweep at once: each view is removed by one of them only (``ZREM`` counts),
    so each drop is broadcast once.
    """
    client = redis_client()
    expired: list[bytes] = client.zrangebyscore(_account_key(account_id), "-inf", _now(now))  # type: ignore[assignment]
    changed: set[int] = set()
    for entry in expired:
        if not client.zrem(_account_key(account_id), entry):
            continue  # another socket swept it first
        conversation, _, ref = entry.decode().partition(":")
        member = Member.from_ref(ref)
        client.zrem(_thread_key(int(conversation)), ref)
        client.zrem(_typers_key(int(conversation)), ref)
        claim_release(conversation_id=int(conversation), member=member)
        changed.add(int(conversation))
    return sorted(changed)


def typing_notice(*, conversation_id: int, member: Member, now: float | None = None) -> bool:
    """The member typed in the thread's composer. At most one notice every
    ``TYPING_THROTTLE_SECONDS`` per member and thread counts, whatever the client sends; a
    counted one keeps them "typing" for ``TYPING_SHOWN_SECONDS``. True when the others should
    hear of it: the member was not typing before (a typist's later notices only renew it, so
    ten members typing cost no broadcast after their first keystroke)."""
    client = redis_client()
    throttle = _throttle_key(conversation_id, member.user_id)
    if not client.set(throttle, 1, nx=True, px=TYPING_THROTTLE_SECONDS * 1000):
        return False
    pipe = client.pipeline(transaction=False)
    pipe.zadd(_typers_key(conversation_id), {member.ref: _now(now) + TYPING_SHOWN_SECONDS})
    pipe.expire(_typers_key(conversation_id), TYPING_SHOWN_SECONDS * 4)
    return bool(pipe.execute()[0])


def typing_clear(*, conversation_id: int, member: Member) -> bool:
    """The member stopped typing (paused, sent, or left): True when they were typing."""
    pipe = redis_client().pipeline(transaction=False)
    pipe.zrem(_typers_key(conversation_id), member.ref)
    pipe.delete(_throttle_key(conversation_id, member.user_id))
    return bool(pipe.execute()[0])


def thread_presence(
    *, account_id: int, conversation_id: int, now: float | None = None
) -> ThreadPresence:
    """Who views the thread, who types in it and who has taken it, expired entries pruned."""
    moment = _now(now)
    pipe = redis_client().pipeline(transaction=False)
    pipe.zremrangebyscore(_thread_key(conversation_id), "-inf", moment)
    pipe.zrange(_thread_key(conversation_id), 0, -1)
    pipe.zremrangebyscore(_typers_key(conversation_id), "-inf", moment)
    pipe.zrange(_typers_key(conversation_id), 0, -1)
    pipe.get(_claim_key(conversation_id))
    pipe.pttl(_claim_key(conversation_id))
    try:
        _, viewers, _, typers, holder, ttl_ms = pipe.execute()
    except RedisError:
        # The page renders without the strip's people; the next heartbeat fills it in.
        log.warning("presence.unavailable", conversation_id=conversation_id)
        return ThreadPresence(account_id, conversation_id, viewers=(), typing=(), claim=None)
    claim = None
    if holder is not None and ttl_ms > 0:
        claim = Claim(member=Member.from_ref(holder), until=time.time() + ttl_ms / 1000)
    return ThreadPresence(
        account_id=account_id,
        conversation_id=conversation_id,
        viewers=tuple(sorted((Member.from_ref(v) for v in viewers), key=lambda m: m.name)),
        typing=tuple(sorted((Member.from_ref(t) for t in typers), key=lambda m: m.name)),
        claim=claim,
    )


@dataclass(frozen=True)
class RowPresence:
    """What the conversation list shows on a row: who has it open, who took it."""

    viewers: tuple[Member, ...]
    claim: Member | None


def account_rows(
    *, account_id: int, conversation_ids: list[int], now: float | None = None
) -> dict[int, RowPresence]:
    """The list's markers for these conversations (only those with any); one Redis round
    trip. Redis away: no markers, the list still renders."""
    if not conversation_ids:
        return {}
    pipe = redis_client().pipeline(transaction=False)
    pipe.zrangebyscore(_account_key(account_id), _now(now), "+inf")
    pipe.mget([_claim_key(cid) for cid in conversation_ids])
    try:
        entries, holders = pipe.execute()
    except RedisError:
        log.warning("presence.rows_unavailable", account_id=account_id)
        return {}
    wanted = set(conversation_ids)
    viewers: dict[int, list[Member]] = {}
    for entry in entries:
        conversation, _, ref = entry.decode().partition(":")
        if int(conversation) in wanted:
            viewers.setdefault(int(conversation), []).append(Member.from_ref(ref))
    claims = {
        cid: Member.from_ref(holder)
        for cid, holder in zip(conversation_ids, holders, strict=True)
        if holder is not None
    }
    return {
        cid: RowPresence(
            viewers=tuple(sorted(viewers.get(cid, ()), key=lambda m: m.name)),
            claim=claims.get(cid),
        )
        for cid in wanted
        if cid in viewers or cid in claims
    }


def claim_minutes() -> int:
    return int(settings.CLAIM_MINUTES)


def claim_take(*, conversation_id: int, member: Member) -> Claim:
    """The member takes the thread for ``CLAIM_MINUTES`` ("I'm on it"); taking it again
    renews it. Another member's claim stands: 409 ``thread_claimed``."""
    client = redis_client()
    seconds = claim_minutes() * 60
    key = _claim_key(conversation_id)
    if not client.set(key, member.ref, nx=True, ex=seconds):
        holder = client.get(key)
        if holder is not None and Member.from_ref(holder).user_id != member.user_id:
            raise thread_claimed_error(
                Claim(member=Member.from_ref(holder), until=time.time() + client.ttl(key))
            )
        client.set(key, member.ref, ex=seconds)
    return Claim(member=member, until=time.time() + seconds)


# Delete the claim only when this member holds it: a GET then DEL could drop a claim another
# member took in between.
_RELEASE_SCRIPT = """
local holder = redis.call('GET', KEYS[1])
if holder and string.match(holder, '^(%d+):') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def claim_release(*, conversation_id: int, member: Member) -> bool:
    """The member's claim on the thread ends (they sent, left, or let it go)."""
    released = redis_client().eval(
        _RELEASE_SCRIPT, 1, _claim_key(conversation_id), str(member.user_id)
    )
    return bool(released)


def claim_by_other(*, conversation_id: int, user_id: int) -> Claim | None:
    """The claim on the thread when a member other than ``user_id`` holds it."""
    client = redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.get(_claim_key(conversation_id))
    pipe.pttl(_claim_key(conversation_id))
    try:
        holder, ttl_ms = pipe.execute()
    except RedisError:  # no claims without Redis: the send goes on
        log.warning("presence.unavailable", conversation_id=conversation_id)
        return None
    if holder is None or ttl_ms <= 0:
        return None
    member = Member.from_ref(holder)
    if member.user_id == user_id:
        return None
    return Claim(member=member, until=time.time() + ttl_ms / 1000)


def thread_claimed_error(claim: Claim) -> ApplicationError:
    return ApplicationError(
        f"{claim.member.name} is on this thread for {max(1, claim.seconds_left // 60)} more "
        "minute(s).",
        code="thread_claimed",
        status_code=409,
        extra={"claimed_by": {"id": claim.member.user_id, "username": claim.member.name}},
    )


# --- Rendering and the socket's side -------------------------------------------------------

TEMPLATE = "crm/inbox.html"


ROW_MARKER_TEMPLATE = "crm/inbox/_presence_row.jinja"


def presence_html(*, presence: ThreadPresence, oob: bool = True) -> str:
    """The thread's presence strip (``presence-<conversation_id>``): the same HTML for every
    member watching; each page hides its own avatar and typing line (static/js/presence.js)."""
    return render_to_string(f"{TEMPLATE}#presence", {"presence": presence, "oob": oob})


def presence_changed_html(*, account_id: int, conversation_id: int) -> str:
    """A change of a thread's presence for every page of the account: its strip (where the
    thread is open) and its row's marker in the list (``presence-row-<conversation_id>``)."""
    presence = thread_presence(account_id=account_id, conversation_id=conversation_id)
    row = RowPresence(
        viewers=presence.viewers, claim=presence.claim.member if presence.claim else None
    )
    marker = render_to_string(
        ROW_MARKER_TEMPLATE,
        {"conversation_id": conversation_id, "row": row, "marker_oob": True},
    )
    return presence_html(presence=presence) + marker


Send = Callable[[str], Awaitable[None]]
Allowed = Callable[[int], Awaitable[bool]]


class PresenceSocket:
    """One inbox socket's presence: the thread its page has open, and the page's messages
    (``{"presence": "heartbeat" | "typing" | "typing_stop" | "leave", "conversation_id": n}``).

    ``allowed`` says whether the socket's member may see a conversation (checked once per
    conversation); ``send_self`` answers this socket; ``broadcast`` goes to the account's group,
    which only the account's members ever join.
    """

    def __init__(
        self,
        *,
        account_id: int,
        member: Member,
        allowed: Allowed,
        send_self: Send,
        broadcast: Callable[[int, str], Awaitable[None]],
    ) -> None:
        self.account_id = account_id
        self.member = member
        self.allowed = allowed
        self.send_self = send_self
        self.broadcast = broadcast
        self.viewing: int | None = None
        self.checked: set[int] = set()

    async def receive(self, content: dict[str, Any]) -> None:
        try:
            await self._receive(content)
        except RedisError as exc:
            # Presence is a courtesy: without Redis the socket still carries the inbox.
            log.warning(
                "presence.unavailable", account_id=self.account_id, error=type(exc).__name__
            )

    async def close(self) -> None:
        try:
            await self._view(None)
        except RedisError as exc:  # the view expires by itself
            log.warning(
                "presence.unavailable", account_id=self.account_id, error=type(exc).__name__
            )

    async def _receive(self, content: dict[str, Any]) -> None:
        kind = content.get("presence")
        conversation_id = _conversation_id(content.get("conversation_id"))
        if kind == "heartbeat":
            await self._heartbeat(conversation_id)
        elif kind == "typing" and conversation_id is not None and conversation_id == self.viewing:
            if await _redis(typing_notice, conversation_id=conversation_id, member=self.member):
                await self._changed(conversation_id)
        elif kind == "typing_stop" and conversation_id is not None:
            if conversation_id == self.viewing and await _redis(
                typing_clear, conversation_id=conversation_id, member=self.member
            ):
                await self._changed(conversation_id)
        elif kind == "leave":
            await self._view(None)

    async def _heartbeat(self, conversation_id: int | None) -> None:
        opened = await self._view(conversation_id)
        if self.viewing is not None:
            joined = await _redis(
                view_heartbeat,
                account_id=self.account_id,
                conversation_id=self.viewing,
                member=self.member,
            )
            if joined:
                await self._changed(self.viewing)
            elif opened:
                # A second tab of a member already there changes nothing for the others, yet
                # this page needs the strip: send it here.
                await self.send_self(await self._render(self.viewing))
        for changed in await _redis(account_sweep, account_id=self.account_id):
            await self._changed(changed)

    async def _view(self, conversation_id: int | None) -> bool:
        """Switch to the thread (None: none); True when it is another one than before."""
        if conversation_id is not None and conversation_id not in self.checked:
            if not await self.allowed(conversation_id):
                conversation_id = None
            else:
                self.checked.add(conversation_id)
        if conversation_id == self.viewing:
            return False
        left, self.viewing = self.viewing, conversation_id
        if left is not None and await _redis(
            view_leave, account_id=self.account_id, conversation_id=left, member=self.member
        ):
            await self._changed(left)
        return conversation_id is not None

    async def _changed(self, conversation_id: int) -> None:
        await self.broadcast(conversation_id, await self._render(conversation_id))

    async def _render(self, conversation_id: int) -> str:
        return await sync_to_async(presence_changed_html, thread_sensitive=False)(
            account_id=self.account_id, conversation_id=conversation_id
        )


def _conversation_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and 0 < value < 2**63:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


async def _redis(function: Callable[..., Any], **kwargs: Any) -> Any:
    return await sync_to_async(function, thread_sensitive=False)(**kwargs)
