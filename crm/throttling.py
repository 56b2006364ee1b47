"""API rate limits per user: one Redis round trip per request and scope.

DRF's cache throttles keep a pickled list of request times per user and read and write it
through the cache (two round trips per scope, and a new cache client per ASGI request): a
quarter of the send API's CPU. A fixed-window counter (INCR with an expiry) keeps the same
promise, N requests per period, and answers 429 with how long until the window ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from config.redis import redis_client

if TYPE_CHECKING:  # DRF imports its throttles while rest_framework.views loads
    from rest_framework.views import APIView


class UserRedisThrottle(SimpleRateThrottle):
    """``rate`` requests per period for each authenticated user (by IP for anonymous ones)."""

    scope = "user"

    def get_cache_key(self, request: Request, view: APIView) -> str:
        ident = request.user.pk if request.user.is_authenticated else self.get_ident(request)
        return f"throttle:{self.scope}:{ident}"

    def allow_request(self, request: Request, view: APIView) -> bool:
        limit, period = self.parse_rate(self.rate)
        if limit is None or period is None:
            return True
        now = time.time()
        window = int(now // period)
        key = f"{self.get_cache_key(request, view)}:{window}"
        pipe = redis_client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, period + 1)
        count, _ = pipe.execute()
        self._wait = (window + 1) * period - now
        return bool(count <= limit)

    def wait(self) -> float | None:
        wait: float | None = getattr(self, "_wait", None)
        return wait
