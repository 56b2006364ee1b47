from __future__ import annotations

from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    """Lifecycle messages that run themselves (welcome, win-back, follow-up)."""

    name = "automations"

    def ready(self) -> None:
        from automations import receivers
        from onlyfans import signals

        signals.subscriptions_applied.connect(
            receivers.subscriptions_applied_receiver, dispatch_uid="automations.subscriptions"
        )
        signals.fan_message_received.connect(
            receivers.fan_message_received_receiver, dispatch_uid="automations.fan_message"
        )
        signals.message_queued.connect(
            receivers.message_queued_receiver, dispatch_uid="automations.message_queued"
        )
        signals.purchase_recorded.connect(
            receivers.purchase_recorded_receiver, dispatch_uid="automations.purchase"
        )
