from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.errors import ApplicationError
from crm.services import api_token_create


class Command(BaseCommand):
    help = (
        "Create a new API token for a user and print its key (shown this once: the database "
        "keeps only a hash). Revoke tokens on the settings page."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--name", default="Created by create_api_token", help="What the token is for."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        try:
            _token, key = api_token_create(user=user, name=options["name"])
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(key)
