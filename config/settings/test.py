"""Test settings: the real PostgreSQL, Redis and local SQS, with isolated names."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# A development .env (make run writes one) must not turn DEBUG on under the tests.
os.environ.setdefault("DJANGO_DEBUG", "0")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-secret-key")
os.environ.setdefault("SQS_QUEUE_PREFIX", "fancrm-test-")
os.environ.setdefault("CACHE_KEY_PREFIX", "fancrm-test")
os.environ.setdefault("CHANNELS_PREFIX", "fancrm-test:asgi")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/5")
os.environ.setdefault("ONLYFANS_API_BASE_URL", "http://127.0.0.1:8766")
# DEBUG is off, so the webhook secret is required (the test sandbox signs with this one).
os.environ.setdefault("ONLYFANS_WEBHOOK_SECRET", "test-webhook-secret")
os.environ.setdefault("LOG_FORMAT", "console")
# Dispatch in the caller's thread: a test's open transaction is invisible to another one.
os.environ.setdefault("SEND_DISPATCH_COALESCE_MS", "0")
# Subscription webhooks applied in the request (tests of the deferred path turn it on).
os.environ.setdefault("ONLYFANS_WEBHOOK_DEFER_SECONDS", "0")
# Whether an account has automations is looked up each time (tests make them as they go).
os.environ.setdefault("AUTOMATION_ACCOUNT_CACHE_SECONDS", "0")
# Imports merge in the task's own connection, for the same reason (tests that run the merge's
# worker connections use a transactional database).
os.environ.setdefault("IMPORT_MERGE_WORKERS", "1")

from .base import *  # noqa: F403
from .base import REST_FRAMEWORK

DEBUG = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"user": "100000/min", "send": "100000/min"},
}
# Render live inbox HTML in the caller's thread: a test's transaction is invisible to others.
LIVE_RENDER_INLINE = True
# /metrics needs its token with DEBUG off; tests send this one.
METRICS_TOKEN = "test-metrics-token"
# Every /readyz in a test probes (tests take dependencies down between calls).
READYZ_CACHE_SECONDS = 0.0

# Vault thumbnails of tests go to the temporary directory (tests that look at them set their own).
VAULT_THUMB_STORAGE = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {"location": str(Path(tempfile.gettempdir()) / "fancrm-test-vault-thumbs")},
}
