from __future__ import annotations

from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    """Lifecycle messages that run themselves (welcome, win-back, follow-up)."""

    name = "automations"
