"""The Celery app: SQS broker (kombu's SQS transport) in every environment."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("fancrm")
app.config_from_object("onlyfans.broker:celery_config", namespace=None)
app.autodiscover_tasks()
