"""Settings for every environment, read from the environment (and an optional .env file).

Defaults work on a developer machine with PostgreSQL and Redis on 127.0.0.1; production
is safe by default: DEBUG is off, the secret key is required, cookies are secure.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from config.logging import logging_dict, structlog_configure

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = (
    env("DJANGO_SECRET_KEY")
    if not DEBUG
    else env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-change-me")
)
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.postgres",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served from static (no CDN)
    "django_htmx",
    "template_partials",
    "axes",  # login lockout
    "csp",  # Content-Security-Policy
    "channels",
    "crm",
    "onlyfans",
    "campaigns",
    "analytics",
    "imports",
    "automations",
    "workday",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "crm.middleware.CurrentAccountMiddleware",
    # Shifts: a page request is a clocked-in member's activity; the off-shift page (403).
    "crm.middleware.WorkActivityMiddleware",
    # While PostgreSQL (or Redis) is down the API answers 503 with a code, not a 500 page.
    "onlyfans.ops.DependencyUnavailableMiddleware",
    # Last, as django-axes asks: turns a lockout raised by the login into its answer.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses logins while locked out; counts failures
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crm.context_processors.accounts",
            ],
        },
    },
    {
        # Only the inbox's hot partials (templates/crm/inbox/*.jinja), always named through
        # engines["jinja2"]: see config/jinja2.py.
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "config.jinja2.environment", "autoescape": True},
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/fancrm"),
}
# A connection pool per process (psycopg_pool): Celery closes Django's connections around
# every task, which without a pool means a new PostgreSQL connection per message.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=20)
if DATABASE_POOL_MAX_SIZE > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": 10,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="fancrm"),
    }
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s timeout by default, exactly channels_redis's blocking
            # read (BRPOP 5 s): idle sockets' consumers then died every 5 s. Read longer.
            "hosts": [
                {
                    "address": env("CHANNELS_REDIS_URL", default=REDIS_URL),
                    "socket_timeout": env.float("CHANNELS_REDIS_SOCKET_TIMEOUT", default=15.0),
                }
            ],
            "prefix": env("CHANNELS_PREFIX", default="fancrm:asgi"),
            # A page's channel holds up to this many events not yet read before new ones are
            # dropped (channels_redis's default, 100, is one campaign batch's live events and a
            # few status changes on a page whose socket is busy).
            "capacity": env.int("CHANNELS_CAPACITY", default=1000),
        },
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
# An invitation link to join an account works this many days, once (crm/invitations.py).
INVITATION_TTL_DAYS = env.int("INVITATION_TTL_DAYS", default=7)
# How long "I'm on it" holds a thread for its chatter (crm/team_presence.py).
CLAIM_MINUTES = env.int("CLAIM_MINUTES", default=5)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Production safety: every one of these is on unless DEBUG.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Ask browsers to preload HSTS (then submit the domain to the preload list) once every
# subdomain is HTTPS-only; .env.example turns it on for production.
SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts only from our own static files (htmx, its ws extension, the pages' small scripts,
# Swagger UI's split start-up script): no inline script, no eval. Styles allow inline style
# attributes (the server-rendered charts and progress bars set widths and positions); they
# cannot run code. Frames are refused (as X-Frame-Options), forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "crm.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["crm.throttling.UserRedisThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("API_THROTTLE_USER", default="600/min"),
        "send": env("API_THROTTLE_SEND", default="120/min"),
    },
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "crm.api_errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}

# The OpenAPI schema (/api/schema/) and its Swagger UI (/api/docs/), public like the API's
# shape; every call still needs a token or a session.
SPECTACULAR_SETTINGS = {
    "TITLE": "FanCRM API",
    "DESCRIPTION": (
        "Creator accounts, fans, the inbox and the send pipeline. Authenticate with "
        "`Authorization: Bearer <token>` (`python manage.py create_api_token USERNAME`, or the "
        "settings page) or the browser session. Every error is JSON "
        "`{code, detail, errors?}` with a stable `code`; each operation lists the codes it "
        "can answer. Cursor pages are `{results, next_cursor, next}`."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "onlyfans.api.schema_add_webhook",
    ],
}

# --- Messaging platform gateway --------------------------------------------------------
ONLYFANS_API_BASE_URL = env("ONLYFANS_API_BASE_URL", default="http://127.0.0.1:8765")
ONLYFANS_API_KEY = env("ONLYFANS_API_KEY", default="sandbox-key")
# The webhooks' signing secret. Required unless DEBUG: a default would be the sandbox's public
# one, with which anyone could sign tips, unlocks, fan messages and session expiries.
ONLYFANS_WEBHOOK_SECRET = env("ONLYFANS_WEBHOOK_SECRET", default="").strip()
if not ONLYFANS_WEBHOOK_SECRET:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set ONLYFANS_WEBHOOK_SECRET (the gateway's webhook signing secret): it is required "
            "when DJANGO_DEBUG is off."
        )
    ONLYFANS_WEBHOOK_SECRET = "sandbox-webhook-secret"
ONLYFANS_API_TIMEOUT_SECONDS = env.float("ONLYFANS_API_TIMEOUT_SECONDS", default=15.0)

# --- Send pipeline ------------------------------------------------------------------------
SEND_RATE_DEFAULT_PER_MINUTE = env.int("SEND_RATE_DEFAULT_PER_MINUTE", default=10)
SEND_MIN_INTERVAL_DEFAULT_MS = env.int("SEND_MIN_INTERVAL_DEFAULT_MS", default=3000)
# Extra ms the limiter keeps on the window and the interval; a send whose call is answered
# later than this after its slot holds back the account's next slot until its answer.
SEND_RATE_GUARD_MS = env.int("SEND_RATE_GUARD_MS", default=200)
# A send's call must start within this long of its limiter slot, or the slot is given back and
# taken again; with the gateway's timeout it bounds how long a held slot (its call unanswered,
# its worker perhaps dead) holds back the account's next one (onlyfans/ratelimit.py).
SEND_SLOT_MAX_AGE_MS = env.int("SEND_SLOT_MAX_AGE_MS", default=2000)
# Tasks are scheduled this many ms after the slot the limiter forecasts for them.
SEND_SCHEDULE_SLACK_MS = env.int("SEND_SCHEDULE_SLACK_MS", default=100)
# The usual time from a task's scheduled moment to its send (receive, lock, queries).
SEND_PIPELINE_LAG_MS = env.int("SEND_PIPELINE_LAG_MS", default=100)
# How far ahead (seconds of an account's sends) may sit on the broker at once.
SEND_DISPATCH_HORIZON_SECONDS = env.int("SEND_DISPATCH_HORIZON_SECONDS", default=60)
SEND_DISPATCH_MAX_PER_ACCOUNT = env.int("SEND_DISPATCH_MAX_PER_ACCOUNT", default=10)
# ...and for all accounts together: SQS (and moto far more) slows as a queue grows.
SEND_DISPATCH_MAX_TOTAL = env.int("SEND_DISPATCH_MAX_TOTAL", default=200)
# Top-ups and backlog dispatches are run by one thread per process, this many ms after the
# first request, for every request that arrived meanwhile (0: in the caller's thread).
SEND_DISPATCH_COALESCE_MS = env.int("SEND_DISPATCH_COALESCE_MS", default=25)
SEND_MAX_ATTEMPTS = env.int("SEND_MAX_ATTEMPTS", default=3)
SEND_RETRY_BASE_SECONDS = env.float("SEND_RETRY_BASE_SECONDS", default=1.0)
# A queued message whose task has not run for this long is published again by beat.
SEND_REDISPATCH_AFTER_SECONDS = env.int("SEND_REDISPATCH_AFTER_SECONDS", default=360)
SEND_LOCK_TTL_SECONDS = env.int("SEND_LOCK_TTL_SECONDS", default=60)
SEND_TASK_TIME_LIMIT_SECONDS = env.int("SEND_TASK_TIME_LIMIT_SECONDS", default=60)
MESSAGE_TEXT_MAX_LENGTH = 5000
# The composer asks before a member sends one text (normalised) to more than this many
# fans within the window (crm.composer_checks); campaigns are exempt.
COMPOSER_REPEATED_TEXT_MAX_FANS = env.int("COMPOSER_REPEATED_TEXT_MAX_FANS", default=5)
COMPOSER_REPEATED_TEXT_WINDOW_MINUTES = env.int("COMPOSER_REPEATED_TEXT_WINDOW_MINUTES", default=60)

# --- Celery on SQS ----------------------------------------------------------------------
SQS_ENDPOINT_URL = env("SQS_ENDPOINT_URL", default="http://127.0.0.1:4566")
SQS_REGION = env("SQS_REGION", default="us-east-1")
SQS_QUEUE_PREFIX = env("SQS_QUEUE_PREFIX", default="fancrm-")
SQS_VISIBILITY_TIMEOUT_SECONDS = env.int("SQS_VISIBILITY_TIMEOUT_SECONDS", default=300)
SQS_MAX_RECEIVE_COUNT = env.int("SQS_MAX_RECEIVE_COUNT", default=5)
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="sqs://test:test@127.0.0.1:4566")
CELERY_TASK_ALWAYS_EAGER = False
# Messages a worker receives per thread ahead of running them: fewer, larger SQS receives
# (bench: 86 sends/s with 4, 75 with 1 or 8).
CELERY_WORKER_PREFETCH_MULTIPLIER = env.int("CELERY_WORKER_PREFETCH_MULTIPLIER", default=4)

DEMO_PASSWORD = env("DEMO_PASSWORD", default="demo12345")

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json")  # "json" or "console"
LOGGING = logging_dict(level=LOG_LEVEL, log_format=LOG_FORMAT)
SQS_ACCOUNT_ID = env("SQS_ACCOUNT_ID", default="123456789012")
SQS_WAIT_TIME_SECONDS = env.int("SQS_WAIT_TIME_SECONDS", default=1)
SQS_POLLING_INTERVAL_SECONDS = env.float("SQS_POLLING_INTERVAL_SECONDS", default=0.0)
SEND_OUTBOX_SWEEP_SECONDS = env.int("SEND_OUTBOX_SWEEP_SECONDS", default=30)
# Bearer token of /metrics. With DEBUG off and none set, /metrics answers 404 (never public).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
# /readyz answers from its last checks for this long in each process (it is unauthenticated).
READYZ_CACHE_SECONDS = env.float("READYZ_CACHE_SECONDS", default=2.0)

# Last, so every process (web, worker, beat, manage.py) configures structlog once.
structlog_configure()
# Threads per web process that serve HTTP requests whole (config/threaded_http.py: the
# middleware chain and the view in one call, instead of a thread hop per middleware hook);
# 0 serves with Django's own ASGI handler.
WEB_HTTP_THREADS = env.int("WEB_HTTP_THREADS", default=8)

# --- CSV import of fans ---------------------------------------------------------------------
# Uploads are streamed here (and kept for the report); var/ is not in git.
IMPORT_STORAGE_DIR = Path(env("IMPORT_STORAGE_DIR", default=str(BASE_DIR / "var" / "imports")))
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)

# --- Request bodies (config/body_limit.py, in front of Django under ASGI) --------------------
# A body over this many bytes is refused with 413 before it is read (by Content-Length, or as
# soon as a chunked one passes it): Django would spool any body to a temporary file first.
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=1024 * 1024)
# The CSV upload routes (page and API) take IMPORT_MAX_UPLOAD_BYTES plus the multipart envelope.
REQUEST_UPLOAD_PATHS = [r"/accounts/\d+/fans/import/", r"/api/onlyfans/import/csv"]
REQUEST_UPLOAD_OVERHEAD_BYTES = env.int("REQUEST_UPLOAD_OVERHEAD_BYTES", default=64 * 1024)
# The largest cell the CSV reader accepts; a longer one is almost always an unclosed quote.
IMPORT_MAX_FIELD_BYTES = env.int("IMPORT_MAX_FIELD_BYTES", default=4 * 1024 * 1024)
IMPORT_READ_BATCH_ROWS = env.int("IMPORT_READ_BATCH_ROWS", default=100_000)
IMPORT_MERGE_BATCH_ROWS = env.int("IMPORT_MERGE_BATCH_ROWS", default=20_000)
# Database connections merging an import's ranges at once (the merge is PostgreSQL's CPU:
# maintaining crm_fan's indexes for each new fan). 1 merges in the task's own connection.
IMPORT_MERGE_WORKERS = env.int("IMPORT_MERGE_WORKERS", default=2)
# A run re-enqueues itself after this long, well inside its hard time limit.
IMPORT_TASK_BUDGET_SECONDS = env.int("IMPORT_TASK_BUDGET_SECONDS", default=40)
IMPORT_TASK_TIME_LIMIT_SECONDS = env.int("IMPORT_TASK_TIME_LIMIT_SECONDS", default=120)
# A draft (uploaded, never started) is removed with its upload after this long: fan data kept
# on disk for an import nobody runs is only a liability. Checked hourly by beat.
IMPORT_DRAFT_TTL_HOURS = env.int("IMPORT_DRAFT_TTL_HOURS", default=24)

# --- Fan sync from the platform ------------------------------------------------------------
# Beat looks this often for accounts due a sync and for runs nobody advanced.
FAN_SYNC_SCHEDULE_SECONDS = env.int("FAN_SYNC_SCHEDULE_SECONDS", default=60)
# A connected account is synced again when its last run began this long ago.
FAN_SYNC_INTERVAL_SECONDS = env.int("FAN_SYNC_INTERVAL_SECONDS", default=6 * 3600)
FAN_SYNC_SCHEDULE_BATCH = env.int("FAN_SYNC_SCHEDULE_BATCH", default=50)
FAN_SYNC_FANS_PAGE_SIZE = env.int("FAN_SYNC_FANS_PAGE_SIZE", default=20)  # platform max 20
FAN_SYNC_CHATS_PAGE_SIZE = env.int("FAN_SYNC_CHATS_PAGE_SIZE", default=20)
# The recent history imported per chat (one request; at most 100).
FAN_SYNC_MESSAGES_PER_CHAT = env.int("FAN_SYNC_MESSAGES_PER_CHAT", default=50)
# Work one task run does before publishing the next (0: one page or one chat per run).
FAN_SYNC_STEP_SECONDS = env.float("FAN_SYNC_STEP_SECONDS", default=5.0)
FAN_SYNC_LEASE_SECONDS = env.int("FAN_SYNC_LEASE_SECONDS", default=120)
# A started run untouched this long (its task lost) is published again by beat.
FAN_SYNC_STALE_SECONDS = env.int("FAN_SYNC_STALE_SECONDS", default=300)
FAN_SYNC_MAX_ATTEMPTS = env.int("FAN_SYNC_MAX_ATTEMPTS", default=5)
FAN_SYNC_RETRY_BASE_SECONDS = env.float("FAN_SYNC_RETRY_BASE_SECONDS", default=5.0)
# Wait after a 429 without Retry-After, or when the minute's quota is down to the reserve.
FAN_SYNC_RATE_LIMIT_WAIT_SECONDS = env.int("FAN_SYNC_RATE_LIMIT_WAIT_SECONDS", default=30)
# Gateway requests per minute the sync leaves to the send pipeline.
FAN_SYNC_RATE_LIMIT_RESERVE = env.int("FAN_SYNC_RATE_LIMIT_RESERVE", default=5)

# --- The vault (crm.vault, onlyfans.vault_sync) ---------------------------------------------
# The sync also uses the fan sync's pacing: FAN_SYNC_STEP_SECONDS, _LEASE_SECONDS,
# _STALE_SECONDS, _MAX_ATTEMPTS, _RETRY_BASE_SECONDS, _RATE_LIMIT_WAIT_SECONDS, _RATE_LIMIT_RESERVE
# and _SCHEDULE_BATCH (one gateway quota, one way to share it).
VAULT_SYNC_SCHEDULE_SECONDS = env.int("VAULT_SYNC_SCHEDULE_SECONDS", default=60)
# A connected account's vault is synced again when its last run began this long ago.
VAULT_SYNC_INTERVAL_SECONDS = env.int("VAULT_SYNC_INTERVAL_SECONDS", default=6 * 3600)
VAULT_SYNC_PAGE_SIZE = env.int("VAULT_SYNC_PAGE_SIZE", default=50)  # the gateway takes 10-100
# Items not listed in a pass are confirmed one request each; this many per task run.
VAULT_SYNC_GONE_BATCH = env.int("VAULT_SYNC_GONE_BATCH", default=25)
# A chat's newest messages with media read for each fan's history (one request; at most 100).
VAULT_SYNC_CHAT_MEDIA_PER_CHAT = env.int("VAULT_SYNC_CHAT_MEDIA_PER_CHAT", default=100)
# Our copies of the thumbnails: a Django storage (class and options). The default keeps them
# on local disk; for an object store install django-storages and set, e.g.,
# VAULT_THUMB_STORAGE_BACKEND=storages.backends.s3.S3Storage and its OPTIONS in the
# environment as JSON (VAULT_THUMB_STORAGE_OPTIONS='{"bucket_name": "…"}'). Files are only
# ever served through the product's own view, to members of the account.
VAULT_THUMB_STORAGE = {
    "BACKEND": env(
        "VAULT_THUMB_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"
    ),
    "OPTIONS": env.json(
        "VAULT_THUMB_STORAGE_OPTIONS",
        default={"location": str(BASE_DIR / "var" / "vault-thumbs")},
    ),
}
VAULT_THUMB_SIZE = env.int("VAULT_THUMB_SIZE", default=240)  # pixels, longest side
VAULT_THUMB_MAX_BYTES = env.int("VAULT_THUMB_MAX_BYTES", default=5 * 1024 * 1024)
# Time a page may spend fetching thumbnails (well inside FAN_SYNC_LEASE_SECONDS); the rest
# are fetched by the next sync.
VAULT_THUMB_PAGE_BUDGET_SECONDS = env.float("VAULT_THUMB_PAGE_BUDGET_SECONDS", default=30.0)
# Browsers may keep a served thumbnail this long (private: never a shared cache).
VAULT_THUMB_CACHE_SECONDS = env.int("VAULT_THUMB_CACHE_SECONDS", default=24 * 3600)
VAULT_PAGE_SIZE = env.int("VAULT_PAGE_SIZE", default=48)  # items a page of the library shows

# --- Inbox: drafts and snooze (crm.drafts, crm.snooze) --------------------------------------
# A member's unsent composer text is kept this long after its last change.
DRAFT_TTL_DAYS = env.int("DRAFT_TTL_DAYS", default=30)
# Beat deletes expired drafts this often.
DRAFT_CLEANUP_SECONDS = env.int("DRAFT_CLEANUP_SECONDS", default=3600)
# Beat wakes snoozed conversations that are due this often (a snooze wakes at most this late).
SNOOZE_WAKE_SECONDS = env.int("SNOOZE_WAKE_SECONDS", default=30)

# --- Analytics ---------------------------------------------------------------------------
# A tip is credited to the last chatter who wrote to the fan within this many hours before it.
ANALYTICS_TIP_ATTRIBUTION_HOURS = env.int("ANALYTICS_TIP_ATTRIBUTION_HOURS", default=24)
# First-response times look this far back for the fan's message a reply answers.
ANALYTICS_RESPONSE_LOOKBACK_DAYS = env.int("ANALYTICS_RESPONSE_LOOKBACK_DAYS", default=7)
# "Big spender" in "fans to talk to today": lifetime spend of at least this many cents.
ANALYTICS_BIG_SPENDER_CENTS = env.int("ANALYTICS_BIG_SPENDER_CENTS", default=10_000)
# Campaign uplift compares what recipients and the control group bought this many days after.
ANALYTICS_CAMPAIGN_WINDOW_DAYS = env.int("ANALYTICS_CAMPAIGN_WINDOW_DAYS", default=7)

# --- Campaigns ---------------------------------------------------------------------------
# Recipients the fan-out turns into queued messages per task run (the task re-enqueues itself).
CAMPAIGN_FAN_OUT_BATCH_SIZE = env.int("CAMPAIGN_FAN_OUT_BATCH_SIZE", default=2000)
# One fan-out task runs batches for up to this long, then publishes itself for the rest.
CAMPAIGN_FAN_OUT_TASK_SECONDS = env.float("CAMPAIGN_FAN_OUT_TASK_SECONDS", default=10.0)
# Fans per call of the platform's mass-messaging endpoint (each call takes one send slot).
CAMPAIGN_MASS_CHUNK_SIZE = env.int("CAMPAIGN_MASS_CHUNK_SIZE", default=1000)
# The campaign lane holds at most this many seconds of an account's sends on the broker (at
# least one message), so a chatter's reply queued meanwhile waits at most about one slot.
CAMPAIGN_LANE_HORIZON_SECONDS = env.int("CAMPAIGN_LANE_HORIZON_SECONDS", default=1)
# Replies and tips count for a campaign within this many hours of its message.
CAMPAIGN_ATTRIBUTION_HOURS = env.int("CAMPAIGN_ATTRIBUTION_HOURS", default=72)
CAMPAIGN_DRAIN_WINDOW_DEFAULT_MINUTES = env.int(
    "CAMPAIGN_DRAIN_WINDOW_DEFAULT_MINUTES", default=120
)
CAMPAIGN_BULK_MAX_FANS = env.int("CAMPAIGN_BULK_MAX_FANS", default=10_000)
CAMPAIGN_PREFLIGHT_SAMPLE_SIZE = env.int("CAMPAIGN_PREFLIGHT_SAMPLE_SIZE", default=8)
# The campaigns sweep (beat): starts due scheduled campaigns, restarts stalled fan-outs and
# mass sends, and marks finished campaigns done.
CAMPAIGN_SWEEP_SECONDS = env.int("CAMPAIGN_SWEEP_SECONDS", default=30)
CAMPAIGN_STALLED_AFTER_SECONDS = env.int("CAMPAIGN_STALLED_AFTER_SECONDS", default=120)
# A mass chunk whose call ended ambiguously (timeout, 5xx) is looked for in the platform's
# list this many times, this many seconds apart, before it is sent again.
CAMPAIGN_MASS_RECONCILE_ATTEMPTS = env.int("CAMPAIGN_MASS_RECONCILE_ATTEMPTS", default=3)
CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS = env.float(
    "CAMPAIGN_MASS_RECONCILE_DELAY_SECONDS", default=2.0
)
# --- Automations (automations app; docs/automations.md) ------------------------------------
# At most one automated message per fan per this many hours, across all automations; a fan a
# campaign reached within the window gets none either.
AUTOMATION_FAN_CAP_HOURS = env.int("AUTOMATION_FAN_CAP_HOURS", default=24)
# Beat hands due runs to the send pipeline this often (a run goes at most this late).
AUTOMATION_DUE_SECONDS = env.int("AUTOMATION_DUE_SECONDS", default=15)
# Beat looks for expiring, expired, unlocked-PPV and no-reply triggers this often.
AUTOMATION_SCAN_SECONDS = env.int("AUTOMATION_SCAN_SECONDS", default=60)
# A scan picks up trigger moments at most this far back (after a pause of beat, say).
AUTOMATION_SCAN_LOOKBACK_HOURS = env.int("AUTOMATION_SCAN_LOOKBACK_HOURS", default=24)
# Due runs handled per task run; the task publishes itself again while more are due.
AUTOMATION_DUE_BATCH_SIZE = env.int("AUTOMATION_DUE_BATCH_SIZE", default=200)
# An account's automated messages waiting in the pipeline's backlog at most; due runs beyond
# wait scheduled (re-checked when their turn comes, so a fan who replies meanwhile is spared).
AUTOMATION_BACKLOG_MAX_PER_ACCOUNT = env.int("AUTOMATION_BACKLOG_MAX_PER_ACCOUNT", default=20)
# A run due longer ago than this (an outage, a paused beat) is not sent late: it is cancelled
# as "expired" when its turn comes (0: never).
AUTOMATION_RUN_EXPIRE_HOURS = env.int("AUTOMATION_RUN_EXPIRE_HOURS", default=6)
# How long a process trusts its look at whether an account has automations at all (a fan's
# message on an account without any then costs no query for cancel-on-reply; 0: look each time).
AUTOMATION_ACCOUNT_CACHE_SECONDS = env.int("AUTOMATION_ACCOUNT_CACHE_SECONDS", default=60)
# --- Deferred webhooks (onlyfans/webhooks.py) ----------------------------------------------
# Subscription webhooks are answered once stored (one statement) and applied by a task on the
# bulk queue this many seconds later, many together (0: applied in the request, as tests do).
ONLYFANS_WEBHOOK_DEFER_SECONDS = env.float("ONLYFANS_WEBHOOK_DEFER_SECONDS", default=1.0)
# Deliveries applied per transaction of that task.
ONLYFANS_WEBHOOK_APPLY_BATCH = env.int("ONLYFANS_WEBHOOK_APPLY_BATCH", default=500)
# Beat applies whatever a lost task left this often (the sweep).
ONLYFANS_WEBHOOK_SWEEP_SECONDS = env.int("ONLYFANS_WEBHOOK_SWEEP_SECONDS", default=15)

# The campaign's states get their own name in the OpenAPI schema (other models have a "state").
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "CampaignStateEnum": "campaigns.models.Campaign.State",
    # automations (autopages): an automated message's states, named apart from the campaign's.
    "AutomationRunStateEnum": "automations.models.AutomationRun.State",
}

# --- Operations: CloudWatch metrics and alarms, monitoring ---------------------------------
# Custom metrics of the send pipeline (onlyfans/cloudwatch.py), published by beat once a
# minute with PutMetricData; docs/operations.md. Locally they go to the moto server of the SQS
# endpoint; CLOUDWATCH_ENABLED=0 turns publishing off.
CLOUDWATCH_ENABLED = env.bool("CLOUDWATCH_ENABLED", default=True)
CLOUDWATCH_NAMESPACE = env("CLOUDWATCH_NAMESPACE", default="FanCRM/OnlyFans")
# The Installation dimension on every data point (one per deployment: production, staging…).
CLOUDWATCH_INSTALLATION = env("CLOUDWATCH_INSTALLATION", default="fancrm")
# Empty: the local SQS endpoint from CELERY_BROKER_URL when it names one (moto), else AWS.
CLOUDWATCH_ENDPOINT_URL = env("CLOUDWATCH_ENDPOINT_URL", default="")
CLOUDWATCH_REGION = env("CLOUDWATCH_REGION", default="")
CLOUDWATCH_PUBLISH_SECONDS = env.int("CLOUDWATCH_PUBLISH_SECONDS", default=60)
CLOUDWATCH_BATCH_SIZE = env.int("CLOUDWATCH_BATCH_SIZE", default=500)
CLOUDWATCH_TIMEOUT_SECONDS = env.float("CLOUDWATCH_TIMEOUT_SECONDS", default=3.0)
CLOUDWATCH_MAX_CATCHUP_MINUTES = env.int("CLOUDWATCH_MAX_CATCHUP_MINUTES", default=15)
# Alarms (python manage.py cloudwatch_ensure_alarms): thresholds and an optional SNS topic.
CLOUDWATCH_ALARM_QUEUE_DEPTH = env.int("CLOUDWATCH_ALARM_QUEUE_DEPTH", default=100)
CLOUDWATCH_ALARM_DEAD_LETTER = env.int("CLOUDWATCH_ALARM_DEAD_LETTER", default=10)
CLOUDWATCH_ALARM_FAILURE_RATE_PERCENT = env.float(
    "CLOUDWATCH_ALARM_FAILURE_RATE_PERCENT", default=5.0
)
CLOUDWATCH_ALARM_WORKER_ERRORS_PER_MINUTE = env.int(
    "CLOUDWATCH_ALARM_WORKER_ERRORS_PER_MINUTE", default=10
)
CLOUDWATCH_ALARM_SNS_TOPIC_ARN = env("CLOUDWATCH_ALARM_SNS_TOPIC_ARN", default="")
# GET /api/monitoring/onlyfans: staff users, or this bearer token when set.
MONITORING_TOKEN = env("MONITORING_TOKEN", default="")

# --- Login lockout (django-axes): failures per username and address, and per address ----------
# After AXES_FAILURE_LIMIT failed logins for one username from one address, that pair is
# locked for AXES_COOLOFF_MINUTES (HTTP 429 with a plain page, event auth.locked_out); after
# AXES_IP_FAILURE_LIMIT failures from one address over any usernames, the address is (one
# client trying many accounts). A success resets the count. Attempts and lockouts are in admin
# (Axes); unlock there or with `python manage.py axes_reset_username USERNAME` / axes_reset_ip.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_IP_FAILURE_LIMIT = env.int("AXES_IP_FAILURE_LIMIT", default=30)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_HANDLER = "config.login_lockout.LockoutHandler"  # a limit per group (above)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "crm.authentication.login_lockout_response"
# Behind a load balancer set AXES_IPWARE_PROXY_COUNT to the number of proxies in front, so
# the client's address comes from X-Forwarded-For instead of the proxy's own: otherwise every
# client has the proxy's address, and one of them failing logins locks the address for all.
# The client is then the N-th X-Forwarded-For address from the right (config/login_lockout.py).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_IPWARE_PROXY_COUNT", default=0) or None
AXES_CLIENT_IP_CALLABLE = "config.login_lockout.client_ip_address"
# The same for the API's throttles of anonymous callers (DRF reads X-Forwarded-For with it);
# defaults to AXES_IPWARE_PROXY_COUNT.
_DRF_NUM_PROXIES = env("DRF_NUM_PROXIES", default="").strip()
REST_FRAMEWORK["NUM_PROXIES"] = (
    int(_DRF_NUM_PROXIES) if _DRF_NUM_PROXIES else AXES_IPWARE_PROXY_COUNT
) or None

# --- Shifts and worked time (crm/worktime.py, docs/shifts.md) ---
# A clocked-in member with no page request, send or socket heartbeat for this many minutes is
# clocked out by the minute's idle sweep, at their last activity.
SHIFT_IDLE_MINUTES = env.int("SHIFT_IDLE_MINUTES", default=20)

# --- Workday: message review, payroll, agency overview (workday app, docs/workday.md) ---
WORKDAY_REVIEW_PAGE_SIZE = env.int("WORKDAY_REVIEW_PAGE_SIZE", default=50)
