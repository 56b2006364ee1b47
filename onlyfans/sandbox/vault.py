"""The sandbox's vault: each account's media library, its lists, a chat's media and the files.

``GET /api/{account}/media/vault`` (``limit`` 10-100, ``offset``, ``list``, ``type``, ``field``,
``sort``; ``{"list", "hasMore"}``), ``GET …/media/vault/{id}``, ``GET …/media/vault/lists`` and
``GET /api/{account}/chats/{chat_id}/media`` (the chat's messages that carry media, newest
first, both directions). They count against the read limit like every read.

An account's vault is generated on first use (``vault_items_per_account`` items in four lists,
deterministic from the account id), and ``/_sandbox/vault/…`` adds and removes items so tests
can make items gone. File URLs point at the sandbox itself (``/files/vault/…``), signed with a
secret of this run and valid ``file_url_ttl_seconds``: an expired or forged one is a 403, as
the platform's CDN answers. Images are coloured squares with the item's number, generated with
Pillow the same way every time.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import hmac
import io
import secrets
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from onlyfans.sandbox.state import Reply, SandboxState

VAULT_PAGE_MIN = 10
VAULT_PAGE_MAX = 100
MEDIA_TYPES = ("photo", "gif", "video", "audio")
# Pixel sizes of each file variant (square images keep the generator simple).
VARIANTS = {"thumb": 300, "squarePreview": 480, "preview": 640, "full": 1280}
# Generated items: mostly photos, some videos, a gif and an audio in every ten.
_TYPE_CYCLE = (
    "photo",
    "photo",
    "photo",
    "video",
    "photo",
    "gif",
    "video",
    "photo",
    "audio",
    "photo",
)
_LIST_NAMES = ("Feet", "Lingerie", "Customs", "Teasers")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": message, "message": message, "code": code, **extra})


@dataclass
class VaultItem:
    id: int
    number: int  # what the image shows
    type: str
    created_at: datetime
    duration: int = 0
    is_ready: bool = True
    has_error: bool = False
    likes: int = 0
    tips: int = 0  # dollars
    list_ids: set[int] = field(default_factory=set)


@dataclass
class VaultList:
    id: int
    name: str
    type: str = "custom"


@dataclass
class _AccountVault:
    items: dict[int, VaultItem] = field(default_factory=dict)
    lists: dict[int, VaultList] = field(default_factory=dict)
    next_number: int = 1


@functools.lru_cache(maxsize=256)
def image_bytes(number: int, media_type: str, size: int) -> bytes:
    """A JPEG square in a colour of its own with the item's number on it: the same bytes for
    the same arguments, so tests can compare what the product stored."""
    from PIL import Image, ImageDraw, ImageFont

    hue = zlib.crc32(f"{number}".encode())
    colour = (64 + hue % 160, 64 + (hue >> 8) % 160, 64 + (hue >> 16) % 160)
    image = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(size // 5, 10))
    label = f"{number}"
    draw.text((size // 2, size // 2), label, fill=(255, 255, 255), font=font, anchor="mm")
    small = ImageFont.load_default(size=max(size // 14, 8))
    draw.text((size // 12, size // 12), media_type, fill=(255, 255, 255), font=small, anchor="lt")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


class Vault:
    """Every account's vault, beside the sandbox's state (its own lock)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._stats = state.stats
        self._vaults: dict[str, _AccountVault] = {}
        self._secret = secrets.token_bytes(32)

    def _reset_if_needed(self) -> None:
        # ``/_sandbox/reset`` gives the state a new stats counter: forget the vaults too.
        if self.state.stats is not self._stats:
            self._stats = self.state.stats
            self._vaults = {}
            self._secret = secrets.token_bytes(32)

    # --- generation ------------------------------------------------------------------------
    @staticmethod
    def _base(account_id: str) -> int:
        return 3_000_000_000 + (zlib.crc32(account_id.encode()) % 100_000) * 100_000

    def _vault(self, account_id: str) -> _AccountVault:
        """The account's vault, generated on first use (under the lock)."""
        self._reset_if_needed()
        vault = self._vaults.get(account_id)
        if vault is not None:
            return vault
        vault = _AccountVault()
        base = self._base(account_id)
        for k, name in enumerate(_LIST_NAMES, start=1):
            vault.lists[base // 1000 + k] = VaultList(id=base // 1000 + k, name=name)
        for _ in range(max(self.state.config.vault_items_per_account, 0)):
            self._item_add(account_id, vault, {}, generated=True)
        self._vaults[account_id] = vault
        return vault

    def _item_add(
        self,
        account_id: str,
        vault: _AccountVault,
        spec: dict[str, Any],
        *,
        generated: bool = False,
    ) -> VaultItem:
        """Add an item (under the lock). Generated ones vary (one in 23 still processing);
        a test's are ready unless it says otherwise."""
        n = vault.next_number
        vault.next_number += 1
        kind = spec.get("type") or _TYPE_CYCLE[n % len(_TYPE_CYCLE)]
        if kind not in MEDIA_TYPES:
            raise ValueError(f"type must be one of {', '.join(MEDIA_TYPES)}")
        list_ids = spec.get("lists")
        if list_ids is None:
            ordered = sorted(vault.lists)
            list_ids = [lid for k, lid in enumerate(ordered) if (n + k) % (k + 2) == 0]
        unknown = [lid for lid in list_ids if int(lid) not in vault.lists]
        if unknown:
            raise ValueError(f"unknown list ids: {unknown}")
        default_duration = {"video": 15 + (n * 37) % 600, "audio": 10 + (n * 13) % 120}
        item = VaultItem(
            id=int(spec.get("id") or self._base(account_id) + n),
            number=n,
            type=kind,
            created_at=_EPOCH + timedelta(hours=n),
            duration=int(spec.get("duration", default_duration.get(kind, 0))),
            is_ready=bool(spec.get("isReady", n % 23 != 0 if generated else True)),
            has_error=bool(spec.get("hasError", False)),
            likes=int(spec.get("likes", (n * 7) % 50)),
            tips=int(spec.get("tips", (n * 3) % 40)),
            list_ids={int(lid) for lid in list_ids},
        )
        if item.id in vault.items:
            raise ValueError(f"item {item.id} exists")
        vault.items[item.id] = item
        return item

    # --- files ------------------------------------------------------------------------------
    def _signature(self, path: str, expires: int) -> str:
        return hmac.new(self._secret, f"{path}|{expires}".encode(), hashlib.sha256).hexdigest()

    def _file_url(self, origin: str, account_id: str, item: VaultItem, variant: str) -> str:
        path = f"/files/vault/{quote(account_id)}/{item.id}/{variant}.jpg"
        expires = int(time.time()) + self.state.config.file_url_ttl_seconds
        return f"{origin}{path}?expires={expires}&signature={self._signature(path, expires)}"

    def file(self, path: str, query: dict[str, str]) -> tuple[int, bytes, str]:
        """``GET /files/vault/{account}/{id}/{variant}.jpg?expires=&signature=``:
        (status, body, content type). 403 unless the signature is ours and not expired."""
        try:
            expires = int(query.get("expires") or "")
        except ValueError:
            return 403, b"Forbidden", "text/plain"
        given = query.get("signature") or ""
        with self._lock:
            self._reset_if_needed()
            expected = self._signature(path, expires)
        if not hmac.compare_digest(expected, given) or expires < time.time():
            self.state.count("files_refused")
            return 403, b"Forbidden", "text/plain"
        parts = path.removeprefix("/files/vault/").split("/")
        if len(parts) != 3 or not parts[2].endswith(".jpg"):
            return 404, b"Not found", "text/plain"
        account_id, media_id, variant = parts[0], parts[1], parts[2].removesuffix(".jpg")
        with self._lock:
            vault = self._vault(account_id)
            item = vault.items.get(int(media_id)) if media_id.isdigit() else None
            number, kind = (item.number, item.type) if item else (0, "")
        if item is None or variant not in VARIANTS:
            return 404, b"Not found", "text/plain"
        self.state.count("files_served")
        return 200, image_bytes(number, kind, VARIANTS[variant]), "image/jpeg"

    # --- the contract's shapes -------------------------------------------------------------
    def _item_json(
        self, origin: str, account_id: str, vault: _AccountVault, item: VaultItem
    ) -> dict[str, Any]:
        files: dict[str, Any] = {name: None for name in VARIANTS}
        # Audio has no picture; an item still being processed has no files yet.
        if item.is_ready and not item.has_error and item.type != "audio":
            for variant, size in VARIANTS.items():
                files[variant] = {
                    "url": self._file_url(origin, account_id, item, variant),
                    "width": size,
                    "height": size,
                    "size": len(image_bytes(item.number, item.type, size))
                    if variant == "thumb"
                    else None,
                }
        return {
            "id": item.id,
            "type": item.type,
            "convertedToVideo": False,
            "canView": True,
            "hasError": item.has_error,
            "createdAt": item.created_at.isoformat(timespec="seconds"),
            "isReady": item.is_ready,
            "duration": item.duration,
            "hasCustomPreview": False,
            "files": files,
            "counters": {"likesCount": item.likes, "tipsSumm": item.tips},
            "listStates": [
                {
                    "id": lid,
                    "type": vault.lists[lid].type,
                    "name": vault.lists[lid].name,
                    "hasMedia": True,
                    "canAddMedia": True,
                }
                for lid in sorted(item.list_ids)
                if lid in vault.lists
            ],
        }

    def list_json(self, origin: str, account_id: str, query: dict[str, str]) -> Reply:
        limit = int(query.get("limit") or 24)
        if not VAULT_PAGE_MIN <= limit <= VAULT_PAGE_MAX:
            return _error(
                422,
                "validation_error",
                f"The limit must be between {VAULT_PAGE_MIN} and {VAULT_PAGE_MAX}.",
            )
        offset = int(query.get("offset") or 0)
        kind = query.get("type") or ""
        if kind and kind not in MEDIA_TYPES:
            return _error(422, "validation_error", "The selected type is invalid.")
        list_id = int(query["list"]) if query.get("list") else None
        order_field = query.get("field") or "recent"
        keys = {
            "recent": lambda i: (i.created_at, i.id),
            "most-liked": lambda i: (i.likes, i.id),
            "highest-tips": lambda i: (i.tips, i.id),
        }
        if order_field not in keys:
            return _error(422, "validation_error", "The selected field is invalid.")
        descending = (query.get("sort") or "desc") != "asc"
        text = (query.get("query") or "").strip()
        with self._lock:
            vault = self._vault(account_id)
            items = [
                i
                for i in vault.items.values()
                if (not kind or i.type == kind)
                and (list_id is None or list_id in i.list_ids)
                and (not text or text in str(i.id))
            ]
            items.sort(key=keys[order_field], reverse=descending)
            page = [
                self._item_json(origin, account_id, vault, i)
                for i in items[offset : offset + limit]
            ]
            has_more = offset + limit < len(items)
        return Reply(
            200,
            {
                "data": {"list": page, "hasMore": has_more},
                "_meta": self.state.read_meta(account_id),
            },
        )

    def item_json(self, origin: str, account_id: str, media_id: int) -> Reply:
        with self._lock:
            vault = self._vault(account_id)
            item = vault.items.get(media_id)
            data = self._item_json(origin, account_id, vault, item) if item else None
        if data is None:
            return _error(404, "not_found", f"Media {media_id} not found in the vault.")
        return Reply(200, {"data": data, "_meta": self.state.read_meta(account_id)})

    def lists_json(self, account_id: str, query: dict[str, str]) -> Reply:
        limit = min(max(int(query.get("limit") or 24), 1), 100)
        offset = int(query.get("offset") or 0)
        with self._lock:
            vault = self._vault(account_id)
            rows = []
            for vlist in sorted(vault.lists.values(), key=lambda v: v.id):
                members = [i for i in vault.items.values() if vlist.id in i.list_ids]
                counts = {t: sum(1 for i in members if i.type == t) for t in MEDIA_TYPES}
                rows.append(
                    {
                        "id": vlist.id,
                        "type": vlist.type,
                        "name": vlist.name,
                        "hasMedia": bool(members),
                        "canUpdate": True,
                        "canDelete": True,
                        "photosCount": counts["photo"],
                        "videosCount": counts["video"],
                        "gifsCount": counts["gif"],
                        "audiosCount": counts["audio"],
                        "medias": [],
                    }
                )
            everything = {
                t: sum(1 for i in vault.items.values() if i.type == t) for t in MEDIA_TYPES
            }
        page = rows[offset : offset + limit]
        return Reply(
            200,
            {
                "data": {
                    "list": page,
                    "all": {
                        "photosCount": everything["photo"],
                        "videosCount": everything["video"],
                        "gifsCount": everything["gif"],
                        "audiosCount": everything["audio"],
                        "medias": [],
                    },
                    "hasMore": offset + limit < len(rows),
                    "canCreateVaultLists": True,
                },
                "_meta": self.state.read_meta(account_id),
            },
        )

    def chat_media_json(
        self, origin: str, account_id: str, chat_id: str, query: dict[str, str]
    ) -> Reply:
        """A chat's messages that carry media, newest first, each media described as the vault
        does (an id the vault does not hold, e.g. a fan's upload, is a bare photo)."""
        limit = min(max(int(query.get("limit") or 20), 1), 100)
        offset = int(query.get("offset") or 0)
        messages = [
            m for m in reversed(self.state.chat_messages(account_id, chat_id)) if m.get("media")
        ]
        page = messages[offset : offset + limit]
        with self._lock:
            vault = self._vault(account_id)
            rows = []
            for message in page:
                media = []
                for entry in message.get("media") or []:
                    raw = entry.get("id") if isinstance(entry, dict) else entry
                    media_id = int(str(raw)) if str(raw).isdigit() else None
                    item = vault.items.get(media_id) if media_id is not None else None
                    if item is not None:
                        media.append(self._item_json(origin, account_id, vault, item))
                    else:
                        media.append({"id": raw, "type": "photo", "canView": True, "isReady": True})
                rows.append({**copy.deepcopy(message), "media": media, "mediaCount": len(media)})
        return Reply(
            200,
            {
                "data": {"list": rows, "hasMore": offset + limit < len(messages)},
                "_meta": self.state.read_meta(account_id),
            },
        )

    # --- control ----------------------------------------------------------------------------
    def control(self, route: str, data: dict[str, Any], query: dict[str, str]) -> Reply | None:
        """``/_sandbox/vault…`` and ``/_sandbox/chats/media``; None for another route.

        - ``POST vault/items`` ``{account_id, items: [{type?, lists?, isReady?, hasError?,
          duration?, likes?, tips?, id?}], count?}``: add items (``count`` generated ones)
        - ``POST vault/remove`` ``{account_id, ids}``: remove items (the platform forgets them)
        - ``POST vault/update`` ``{account_id, id, isReady?, hasError?, lists?, likes?, tips?}``
        - ``POST vault/lists`` ``{account_id, name, type?}``: add a list
        - ``GET vault?account=``: the account's items as ``/media/vault`` describes them
        - ``POST chats/media`` ``{account_id, chat_id, media_ids, price?, previews?, opened?,
          from_fan?, minutes_ago?}``: a message with media in the chat's history
        """
        if route == "vault" and query.get("account"):
            return self.list_json(
                "", query["account"], {"limit": "100", "offset": query.get("offset") or "0"}
            )
        if route == "chats/media":
            return Reply(200, {"data": self._chat_media_add(data)})
        if not route.startswith("vault/"):
            return None
        account_id = str(data["account_id"])
        with self._lock:
            vault = self._vault(account_id)
            if route == "vault/items":
                specs = [dict(s) for s in data.get("items") or []]
                specs += [{} for _ in range(int(data.get("count", 0)))]
                added = [self._item_add(account_id, vault, s) for s in specs]
                return Reply(
                    200, {"data": [self._item_json("", account_id, vault, i) for i in added]}
                )
            if route == "vault/remove":
                ids = [int(i) for i in data.get("ids") or []]
                removed = [i for i in ids if vault.items.pop(i, None) is not None]
                return Reply(200, {"data": {"removed": removed}})
            if route == "vault/update":
                item = vault.items[int(data["id"])]
                for key, attr in (
                    ("isReady", "is_ready"),
                    ("hasError", "has_error"),
                    ("likes", "likes"),
                    ("tips", "tips"),
                ):
                    if key in data:
                        setattr(item, attr, type(getattr(item, attr))(data[key]))
                if "lists" in data:
                    item.list_ids = {int(lid) for lid in data["lists"]}
                return Reply(200, {"data": self._item_json("", account_id, vault, item)})
            if route == "vault/lists":
                list_id = max(vault.lists, default=self._base(account_id) // 1000) + 1
                vault.lists[list_id] = VaultList(
                    id=list_id, name=str(data["name"]), type=str(data.get("type") or "custom")
                )
                return Reply(200, {"data": {"id": list_id}})
        return _error(404, "not_found", f"Unknown control endpoint {route}.")

    def _chat_media_add(self, data: dict[str, Any]) -> dict[str, Any]:
        account_id, chat_id = str(data["account_id"]), str(data["chat_id"])
        media_ids = [int(m) if str(m).isdigit() else m for m in data.get("media_ids") or []]
        if not media_ids:
            raise ValueError("media_ids is required")
        previews = [int(m) if str(m).isdigit() else m for m in data.get("previews") or []]
        price = data.get("price", 0) or 0
        from_fan = bool(data.get("from_fan", False))
        at = time.time() - float(data.get("minutes_ago", 10)) * 60
        message = {
            "id": self.state.next_id(),
            "text": "",
            "price": price,
            "isFree": price == 0,
            "isOpened": bool(data.get("opened", False)),
            "media": [{"id": m} for m in media_ids],
            "previews": previews,
            "createdAt": datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="seconds"),
        }
        return self.state.chat_message_add(account_id, chat_id, message, from_fan=from_fan)
