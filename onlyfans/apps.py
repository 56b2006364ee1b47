from __future__ import annotations

from django.apps import AppConfig


class OnlyfansConfig(AppConfig):
    name = "onlyfans"
    verbose_name = "Platform gateway and send pipeline"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from crm.models import CreatorAccount
        from crm.sending import SendPipeline, send_pipeline_register
        from onlyfans import selectors, services, webhooks  # noqa: F401 (webhooks: its task)
        from onlyfans.sync import account_created_receiver
        from onlyfans.vault_sync import (
            account_created_receiver as vault_account_created_receiver,
        )

        # crm's inbox and API send through these (crm cannot import onlyfans: crm/sending.py).
        send_pipeline_register(
            SendPipeline(
                message_enqueue=services.message_enqueue,
                message_retry=services.message_retry,
                message_estimated_send_at=selectors.message_estimated_send_at,
            )
        )

        # Accounts are created in admin and scripts (crm owns no service for it): a new
        # connected account queues its first fan sync.
        post_save.connect(
            account_created_receiver, sender=CreatorAccount, dispatch_uid="fan_sync_on_create"
        )
        # ... and its first vault sync (onlyfans.vault_sync).
        post_save.connect(
            vault_account_created_receiver,
            sender=CreatorAccount,
            dispatch_uid="vault_sync_on_create",
        )
