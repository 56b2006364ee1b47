"""What crosses the gateway facade: plain frozen dataclasses and typed errors, never HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SendRequest:
    account_platform_id: str
    chat_id: str
    text: str
    price_cents: int
    media_ids: tuple[str, ...]
    idempotency_key: str
    block_banned_words: str | None = None  # strict_ban, risky or replace_soften


@dataclass(frozen=True)
class SendResult:
    platform_message_id: str
    created_at: datetime | None
    replayed: bool
    rate_limit_remaining: int | None = None


@dataclass(frozen=True)
class MassSendRequest:
    """One call of the platform's mass messaging: the same message to ``user_ids``."""

    account_platform_id: str
    user_ids: tuple[str, ...]
    text: str
    price_cents: int = 0
    media_ids: tuple[str, ...] = ()
    block_banned_words: str | None = None  # strict_ban, risky or replace_soften


@dataclass(frozen=True)
class MassMessageStatus:
    """A mass message as the platform counts it: ``pending`` of ``total`` copies to go."""

    platform_mass_id: str
    total: int
    pending: int
    is_done: bool
    is_canceled: bool = False
    can_unsend: bool = False
    unsend_seconds: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class PlatformAccount:
    platform_account_id: str
    display_name: str
    is_authenticated: bool


@dataclass(frozen=True)
class PlatformFan:
    """A fan as the platform knows them. Subscription and spend fields are None where the
    endpoint does not say (a chat's fan carries only id, name and username)."""

    platform_fan_id: str
    username: str
    display_name: str
    subscription_state: str | None = None  # "active" or "expired"
    subscribed_at: datetime | None = None
    subscription_expires_at: datetime | None = None
    spend_cents: int | None = None


@dataclass(frozen=True)
class PlatformChat:
    fan: PlatformFan
    unread_count: int
    last_message_at: datetime | None


@dataclass(frozen=True)
class PlatformMessage:
    platform_message_id: str
    text: str
    from_fan: bool
    price_cents: int
    created_at: datetime | None
    media_ids: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class PlatformPage(Generic[T]):
    """One page of a list endpoint. ``has_more`` is the gateway's word, never the page's size
    (the platform sometimes answers fewer items than asked on a page that is not the last).
    ``rate_limit_remaining`` is ``_meta._rate_limits.remaining_minute`` when the reply said."""

    items: tuple[T, ...]
    has_more: bool
    rate_limit_remaining: int | None = None


class GatewayError(Exception):
    """The platform did not do what was asked. ``code`` is stable, ``message`` is the gateway's."""

    def __init__(self, message: str, *, code: str = "gateway_error", status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class GatewayTransientError(GatewayError):
    """408, 5xx, a timeout or a broken connection: retry later with the same idempotency key."""


class GatewayRateLimited(GatewayTransientError):
    """429: wait ``retry_after_seconds`` (when the gateway said) before trying again."""

    def __init__(self, message: str, *, retry_after_seconds: float | None = None) -> None:
        super().__init__(message, code="rate_limited", status=429)
        self.retry_after_seconds = retry_after_seconds


class GatewayConflict(GatewayTransientError):
    """409 IDEMPOTENCY_CONFLICT: the first attempt with this key is still running."""


class GatewayAccountUnavailable(GatewayError):
    """401, ``account_not_found`` or a disconnected account: the creator must reconnect."""


class GatewayRejected(GatewayError):
    """Any other 4xx: the platform refused this message for good."""


# --- the vault ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlatformVaultListRef:
    """A list (category) an item is in, as the item's ``listStates`` name it."""

    platform_list_id: str
    name: str
    list_type: str


@dataclass(frozen=True)
class PlatformVaultItem:
    """One media of a creator's vault.

    ``thumb_url`` is the platform's signed, short-lived address of a small picture (None for
    audio and items not processed yet): fetch it at once with ``gateway.media_file_fetch``
    and never store it, show it or log it.
    """

    platform_media_id: str
    media_type: str  # photo, gif, video or audio
    created_at: datetime | None
    duration_seconds: int | None
    is_ready: bool
    has_error: bool
    has_custom_preview: bool
    likes_count: int
    tips_cents: int
    lists: tuple[PlatformVaultListRef, ...] = ()
    thumb_url: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PlatformVaultList:
    platform_list_id: str
    name: str
    list_type: str
    photo_count: int = 0
    video_count: int = 0
    gif_count: int = 0
    audio_count: int = 0


@dataclass(frozen=True)
class PlatformMessageMedia:
    platform_media_id: str
    media_type: str


@dataclass(frozen=True)
class PlatformMediaMessage:
    """A chat message that carried media (``GET /api/{account}/chats/{chat_id}/media``).

    ``is_opened`` on a paid message from the creator: the fan bought it. ``preview_ids`` are
    the media shown free in a paid message.
    """

    platform_message_id: str
    from_fan: bool
    price_cents: int
    is_opened: bool
    created_at: datetime | None
    media: tuple[PlatformMessageMedia, ...]
    preview_ids: tuple[str, ...] = ()
