"""Create the SQS queues (send, default, dead-letter) if missing; wait for SQS to answer."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from onlyfans.broker import queues_ensure


class Command(BaseCommand):
    help = "Create the predefined SQS queues with their dead-letter redrive policy."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--wait", type=float, default=0, help="Seconds to wait for SQS.")

    def handle(self, *args: Any, wait: float, **options: Any) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                urls = queues_ensure()
                break
            except Exception as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(f"SQS does not answer: {exc}") from exc
                time.sleep(0.5)
        for name, url in sorted(urls.items()):
            self.stdout.write(f"{name}: {url}")
