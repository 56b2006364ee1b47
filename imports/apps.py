from __future__ import annotations

from django.apps import AppConfig


class ImportsConfig(AppConfig):
    """Getting fans in: CSV imports (upload, mapping, preview, merge, report)."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "imports"
