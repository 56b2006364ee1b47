from __future__ import annotations

from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    """KPI queries and pages (built by the analytics issue over Purchase and Message rows)."""

    name = "analytics"
