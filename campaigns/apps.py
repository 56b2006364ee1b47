from __future__ import annotations

from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    """Segments and bulk sends (built by the campaigns issue on top of the send pipeline)."""

    name = "campaigns"
