"""Bearer tokens for scripts (``Authorization: Bearer <token>``) and the login lockout's answer.

Tokens are ``ApiToken`` rows found by the SHA-256 of the key: the database never holds a key.
A key from before hashed tokens (DRF's ``authtoken`` table, 40 hex characters) keeps working:
migration 0009 moved every such row into ``ApiToken``, hashed; a row still in the old table
(created since by an old script) is found by the same single query, and logged so that it can
be replaced. ``last_used_at`` is written at most once a minute per token, not on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

import structlog
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from crm.models import ApiToken

log = structlog.get_logger(__name__)

KEY_PREFIX = "fcrm_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def api_token_key_new() -> str:
    """A new key: recognisable by its prefix (secret scanners, logs), 240 random bits."""
    return KEY_PREFIX + secrets.token_urlsafe(30)


def api_token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _token_query() -> str:
    users = get_user_model()._meta.db_table
    tokens = ApiToken._meta.db_table
    # One statement for both stores; the legacy table is DRF's, kept for old scripts only.
    return f"""
    SELECT u.*, t.token_id, t.token_last_used FROM {users} u JOIN (
      SELECT user_id, id AS token_id, last_used_at AS token_last_used FROM {tokens}
        WHERE key_hash = %s AND revoked_at IS NULL
      UNION ALL
      SELECT user_id, NULL, NULL FROM authtoken_token WHERE key = %s
    ) t ON t.user_id = u.id
    LIMIT 1
    """  # noqa: S608 (table names only)


class BearerTokenAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid token header: give the token after 'Bearer', without spaces."
            )
        try:
            key = parts[1].decode()
        except UnicodeError as error:
            raise exceptions.AuthenticationFailed("Invalid token.") from error
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Any]:
        found = list(get_user_model().objects.raw(_token_query(), [api_token_hash(key), key]))
        if not found:
            raise exceptions.AuthenticationFailed("Invalid token.")
        user = found[0]
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        token_id: int | None = getattr(user, "token_id", None)
        if token_id is None:
            log.warning("auth.legacy_token_used", user_id=user.pk)
            return user, None
        last_used = getattr(user, "token_last_used", None)
        now = timezone.now()
        if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token_id).update(last_used_at=now)
        return user, token_id

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "crm.authentication.BearerTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API token from the settings page or `create_api_token`.",
        }


def login_lockout_response(request: HttpRequest, credentials: Any, *args: Any, **kwargs: Any):
    """django-axes' answer to a locked-out login (AXES_LOCKOUT_CALLABLE): the login page's
    look with a plain explanation, HTTP 429, and a structured log event."""
    from django.conf import settings

    username = (credentials or {}).get("username") or request.POST.get("username", "")
    log.warning(
        "auth.locked_out",
        username=username[:150],
        ip=request.META.get("REMOTE_ADDR", ""),
        path=request.path,
    )
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    response: HttpResponse = render(
        request,
        "registration/locked_out.html",
        {"cooloff_minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=429,
    )
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
