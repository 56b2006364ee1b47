from __future__ import annotations

from django.apps import AppConfig


class OnlyfansConfig(AppConfig):
    name = "onlyfans"
    verbose_name = "Platform gateway and send pipeline"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from crm.models import CreatorAccount
        from onlyfans.sync import account_created_receiver

        # Accounts are created in admin and scripts (crm owns no service for it): a new
        # connected account queues its first fan sync.
        post_save.connect(
            account_created_receiver, sender=CreatorAccount, dispatch_uid="fan_sync_on_create"
        )
