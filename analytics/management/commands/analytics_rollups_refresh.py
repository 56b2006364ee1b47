"""Bring the analytics roll-ups up to date now, as beat's every-minute task does, until no
backlog remains: after a bulk load (``seed_demo`` runs it), so the page never waits for beat.

    python manage.py analytics_rollups_refresh
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand

from analytics.rollups import rollups_refresh


class Command(BaseCommand):
    help = "Build the missing analytics roll-ups and refresh the others, until none is behind."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.perf_counter()
        rebuilt = days = 0
        while True:
            result = rollups_refresh()
            rebuilt += result["rebuilt"]
            days += result["days"]
            if not result["more"]:
                break
        self.stdout.write(
            f"Analytics roll-ups ready: {rebuilt} account(s) built, {days} day(s) refreshed "
            f"in {time.perf_counter() - started:.1f} s."
        )
