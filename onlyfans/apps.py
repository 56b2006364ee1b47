from __future__ import annotations

from django.apps import AppConfig


class OnlyfansConfig(AppConfig):
    name = "onlyfans"
    verbose_name = "Platform gateway and send pipeline"
