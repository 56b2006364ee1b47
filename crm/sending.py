"""The send pipeline as crm's inbox and API see it: queue a message, retry one, estimate it.

crm sits below the gateway app (imports run one way, ``crm`` <- ``onlyfans``: see
docs/send-pipeline.md), yet the inbox and the conversation API send messages. They call
``send_pipeline()``; ``onlyfans`` registers its services here when Django starts
(``onlyfans.apps.OnlyfansConfig.ready``), so the code that sends is found in one place,
``onlyfans.services.message_enqueue``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from crm.models import Message


@dataclass(frozen=True)
class SendPipeline:
    """``onlyfans.services.message_enqueue`` / ``message_retry`` and
    ``onlyfans.selectors.message_estimated_send_at``: their docstrings hold the rules."""

    message_enqueue: Callable[..., Message]
    message_retry: Callable[..., Message]
    message_estimated_send_at: Callable[..., datetime]


_pipeline: SendPipeline | None = None


def send_pipeline_register(pipeline: SendPipeline) -> None:
    global _pipeline
    _pipeline = pipeline


def send_pipeline() -> SendPipeline:
    if _pipeline is None:  # only when the onlyfans app is not installed
        raise RuntimeError("No send pipeline is registered (is 'onlyfans' in INSTALLED_APPS?)")
    return _pipeline
