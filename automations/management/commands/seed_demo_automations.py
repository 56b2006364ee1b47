"""The demo's automations: a welcome and a win-back on each demo account (``seed_demo`` calls
this by name, as crm does not import automations). Off, so the demo sends nothing until
someone turns one on. Idempotent: an automation's name is unique per account."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from automations.models import Automation
from automations.services import AutomationInput, automation_create
from crm.models import CreatorAccount, Membership

DEMO_OWNER = "owner"
DEMO_AUTOMATIONS = [
    AutomationInput(
        name="Welcome new subscribers",
        trigger=Automation.Trigger.SUBSCRIBED,
        text="Hey {name|babe}, welcome! So happy you're here 💕 Tell me what you like to see.",
        delay_seconds=120,
        delay_spread_seconds=240,
    ),
    AutomationInput(
        name="Win back after expiry",
        trigger=Automation.Trigger.EXPIRED_DAYS_AGO,
        trigger_value=3,
        text="I miss you {name|babe} 🥺 come back, I've posted a lot since you left.",
        delay_spread_seconds=1800,
    ),
]


class Command(BaseCommand):
    help = "Create the demo accounts' welcome and win-back automations (off; idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--accounts",
            nargs="+",
            required=True,
            help="Platform account ids of the demo accounts.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        owner = User.objects.filter(username=DEMO_OWNER).first()
        if owner is None:
            raise CommandError("Run seed_demo first: it creates the demo owner.")
        created = 0
        accounts = CreatorAccount.objects.filter(
            platform_account_id__in=options["accounts"],
            memberships__user=owner,
            memberships__role=Membership.Role.OWNER,
        ).order_by("id")
        for account in accounts:
            names = set(Automation.objects.filter(account=account).values_list("name", flat=True))
            for data in DEMO_AUTOMATIONS:
                if data.name not in names:
                    automation_create(actor=owner, account_id=account.pk, data=data)
                    created += 1
        self.stdout.write(f"Demo automations ready: {created} new.")
