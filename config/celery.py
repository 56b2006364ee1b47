"""The Celery app: SQS broker (kombu's SQS transport) in every environment."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import setup_logging

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("fancrm")
app.config_from_object("onlyfans.broker:celery_config", namespace=None)
app.autodiscover_tasks()


@setup_logging.connect
def _keep_django_logging(**kwargs: object) -> None:
    """With a receiver here Celery leaves logging alone: Django's LOGGING (structured events
    on stderr) applies to workers and beat as to the web server."""
    import logging.config

    from django.conf import settings

    logging.config.dictConfig(settings.LOGGING)
