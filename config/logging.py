"""One logging setup for every process: structlog events and stdlib records, rendered alike.

structlog loggers hand their event dict to the stdlib (``wrap_for_formatter``); the
``ProcessorFormatter`` in ``LOGGING`` renders it. Records from other libraries (Django, daphne,
Celery, kombu) arrive as plain ``%``-style records: the formatter's ``foreign_pre_chain`` gives
them the same keys (level, logger, timestamp) before the same renderer. Log events, not prose:
never put message text or fan data in a log call.
"""

from __future__ import annotations

import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

# Record attributes that are not facts worth a log line: Django's request object, Celery's task
# fields (with the task's arguments), and ``message``, which another formatter may have left.
_DROPPED_EXTRAS = ("request", "data", "message")


def _drop_noisy_extras(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key in _DROPPED_EXTRAS:
        event_dict.pop(key, None)
    return event_dict


def _foreign_pre_chain() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_noisy_extras,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.stdlib.PositionalArgumentsFormatter(),
    ]


def _renderer_processors(log_format: str) -> list[Processor]:
    if log_format == "console":
        return [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ]
    return [
        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(),
    ]


def logging_dict(*, level: str, log_format: str) -> dict[str, Any]:
    """The ``LOGGING`` setting: one stderr handler on the root logger, json or console."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": _renderer_processors(log_format),
                "foreign_pre_chain": _foreign_pre_chain(),
            },
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Configured here so Django's own console handlers (DEBUG only) are dropped and its
            # records reach the root handler once, like everyone else's.
            "django": {"level": level, "propagate": True},
            "django.server": {"level": level, "propagate": True},
            "django.db.backends": {"level": "WARNING"},
            "botocore": {"level": "WARNING"},
            "boto3": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "environ": {"level": "WARNING"},
        },
    }


def structlog_configure() -> None:
    """Route structlog through the stdlib loggers, so ``LOGGING`` decides level and output."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
