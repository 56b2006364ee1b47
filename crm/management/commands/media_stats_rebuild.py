"""Count the media page's roll-up again from the raw rows: one account (``--account ID``) or
every account. For operations: the hooks keep it true, this repairs rows written around them
(a deploy's old code, hand-written SQL)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from crm.media_stats import media_stats_build
from crm.models import CreatorAccount


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--account", type=int, help="the account's id (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = CreatorAccount.objects.only("id", "time_zone").order_by("id")
        if options["account"]:
            accounts = accounts.filter(pk=options["account"])
        for account in accounts:
            media_stats_build(account=account)
            self.stdout.write(f"account {account.pk}: built")
