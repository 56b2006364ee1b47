"""django-axes' database handler with a limit per lockout parameter group.

Axes compares the largest failure count of its ``AXES_LOCKOUT_PARAMETERS`` groups with one
``AXES_FAILURE_LIMIT``. We lock on two groups with their own limits: a username from one
address after ``AXES_FAILURE_LIMIT`` failures (a guessed password), and an address alone after
``AXES_IP_FAILURE_LIMIT`` failures over any usernames (one address trying many accounts). Each
group's count is scaled to ``AXES_FAILURE_LIMIT`` so the comparison axes makes is "some group
reached its own limit" (floor(f * L / L_g) >= L exactly when f >= L_g).
"""

from __future__ import annotations

from typing import Any

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_lockout_parameters
from django.conf import settings
from django.db.models import Sum


def _group_limit(group: Any) -> int:
    names = [group] if isinstance(group, str) else list(group)
    if names == ["ip_address"]:
        return int(settings.AXES_IP_FAILURE_LIMIT)
    return int(settings.AXES_FAILURE_LIMIT)


class LockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request: Any, credentials: dict[str, Any] | None = None) -> int:
        limit = int(settings.AXES_FAILURE_LIMIT)
        groups = get_lockout_parameters(request, credentials)
        scaled = 0
        attempts_by_group = self.get_user_attempts(request, credentials)
        for group, attempts in zip(groups, attempts_by_group, strict=True):
            failures = attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            scaled = max(scaled, failures * limit // max(_group_limit(group), 1))
        return scaled


def client_ip_address(request: Any) -> str | None:
    """The client's address for the lockout (``AXES_CLIENT_IP_CALLABLE``).

    With ``AXES_IPWARE_PROXY_COUNT`` = N proxies in front (each appending the address it saw to
    ``X-Forwarded-For``), the client is the N-th address from the right, as DRF's
    ``NUM_PROXIES`` reads it; anything left of it was written by the client and is ignored (a
    forged header cannot dodge a lockout). Without proxies: ``REMOTE_ADDR``. (django-ipware,
    which axes would use for this, is not installed: axes then ignored the proxy count.)
    """
    proxies = int(settings.AXES_IPWARE_PROXY_COUNT or 0)
    remote = request.META.get("REMOTE_ADDR")
    if proxies <= 0:
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    addresses = [part.strip() for part in forwarded.split(",") if part.strip()]
    if not addresses:
        return remote
    return addresses[-min(proxies, len(addresses))]
