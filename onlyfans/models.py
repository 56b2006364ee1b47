"""Rows the gateway and pipeline keep for themselves (the shared model lives in ``crm``)."""

from __future__ import annotations

from django.db import models

from crm.models import CreatorAccount


class WebhookEvent(models.Model):
    """Every webhook delivery we accepted, keyed by the gateway's idempotency key."""

    event_key = models.CharField(max_length=255, unique=True)
    event = models.CharField(max_length=100)
    account = models.ForeignKey(
        CreatorAccount,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="webhook_events",
    )
    handled = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["event", "-received_at"], name="webhook_event_time")]

    def __str__(self) -> str:
        return f"{self.event} {self.event_key}"
