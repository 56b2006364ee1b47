"""Bearer tokens for scripts: ``Authorization: Bearer <token>`` (one token per user)."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication


class BearerTokenAuthentication(TokenAuthentication):
    keyword = "Bearer"
