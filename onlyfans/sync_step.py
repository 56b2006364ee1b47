"""One step of a platform sync run (``onlyfans.sync``, ``onlyfans.vault_sync``): what a
gateway error, a crash or the step's own result makes of the run.

Both syncs claim their row, then hand the step to ``sync_step_drive`` with their own advance,
save and fail functions; the mapping from what happened to a ``StepOutcome`` (and to the
run's saved state) is the same for both and lives only here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import structlog
from django.conf import settings
from django.db import IntegrityError

from onlyfans.contracts import (
    GatewayAccountUnavailable,
    GatewayError,
    GatewayRateLimited,
    GatewayTransientError,
)

log = structlog.get_logger(__name__)


class StepResult(StrEnum):
    """What a delivery of a sync step did (the task's return value, for logs and metrics)."""

    SUPERSEDED = "superseded"  # not the run's next step any more, or the run is over
    WAITING = "waiting"  # woke before the rate limit's wait was over
    BUSY = "busy"  # another worker holds the lease
    ADVANCED = "advanced"
    PAUSED = "paused"  # the gateway's quota ran low
    RATE_LIMITED = "rate_limited"
    RETRYING = "retrying"
    FAILED = "failed"
    DONE = "done"


@dataclass(frozen=True)
class StepOutcome:
    """What a task run did: ``result`` for logs and metrics; ``next_step`` is published again
    after ``delay_seconds`` unless None."""

    result: StepResult
    next_step: int | None = None
    delay_seconds: float = 0.0


class SyncRun(Protocol):
    pk: Any
    account_id: int
    step: int
    errors_in_row: int


class StepProgress(Protocol):
    phase: str
    finished: bool
    pause_seconds: float | None


class ProgressSave(Protocol):
    def __call__(
        self,
        *,
        finished: bool = False,
        retry_in: float | None = None,
        error_code: str = "",
        errors_in_row: int = 0,
    ) -> None: ...


def sync_step_drive(
    *,
    run: SyncRun,
    progress: StepProgress,
    advance: Callable[[], None],
    save: ProgressSave,
    fail: Callable[[str], None],
    log_prefix: str,
    done_counters: Sequence[str],
) -> StepOutcome:
    """Run ``advance`` for a claimed ``run`` and settle the step.

    ``save(finished=, retry_in=, error_code=, errors_in_row=)`` writes the step's progress
    back and releases the lease; ``fail(code)`` ends the run for good. A 429 waits
    ``Retry-After`` (or ``FAN_SYNC_RATE_LIMIT_WAIT_SECONDS``); an account the platform no
    longer serves fails the run and marks the account expired; a transient error, a write
    conflict or a crash retries with backoff until ``FAN_SYNC_MAX_ATTEMPTS``; any other
    gateway error fails the run. Otherwise the run is done, paused (quota low) or advanced.
    ``done_counters`` are the run's totals logged as ``<log_prefix>.done``.
    """
    try:
        advance()
    except GatewayRateLimited as exc:
        wait = exc.retry_after_seconds
        if wait is None:
            wait = float(settings.FAN_SYNC_RATE_LIMIT_WAIT_SECONDS)
        save(retry_in=wait, error_code="rate_limited")
        log.info(f"{log_prefix}.rate_limited", sync_id=run.pk, retry_in=wait, phase=progress.phase)
        return StepOutcome(StepResult.RATE_LIMITED, next_step=run.step, delay_seconds=wait)
    except GatewayAccountUnavailable as exc:
        save()
        fail(exc.code or "account_unavailable")
        from onlyfans.services import account_mark_expired

        account_mark_expired(account_id=run.account_id, reason=exc.code)
        return StepOutcome(StepResult.FAILED)
    except (GatewayTransientError, IntegrityError) as exc:
        # IntegrityError: a webhook stored the same row between our read and our write; the
        # page is retried and finds it.
        code = exc.code if isinstance(exc, GatewayError) else "write_conflict"
        return _retry_or_fail(run, save=save, fail=fail, code=code, log_prefix=log_prefix)
    except GatewayError as exc:  # rejected for good (4xx)
        save()
        fail(exc.code)
        return StepOutcome(StepResult.FAILED)
    except Exception:
        log.exception(f"{log_prefix}.step_crashed", sync_id=run.pk)
        return _retry_or_fail(
            run, save=save, fail=fail, code="internal_error", log_prefix=log_prefix
        )
    if progress.finished:
        save(finished=True)
        totals = {name: getattr(run, name) for name in done_counters}
        log.info(f"{log_prefix}.done", sync_id=run.pk, account_id=run.account_id, **totals)
        return StepOutcome(StepResult.DONE)
    if progress.pause_seconds is not None:
        save(retry_in=progress.pause_seconds)
        return StepOutcome(
            StepResult.PAUSED, next_step=run.step, delay_seconds=progress.pause_seconds
        )
    save()
    return StepOutcome(StepResult.ADVANCED, next_step=run.step)


def _retry_or_fail(
    run: SyncRun,
    *,
    save: ProgressSave,
    fail: Callable[[str], None],
    code: str,
    log_prefix: str,
) -> StepOutcome:
    errors = run.errors_in_row + 1
    if errors >= settings.FAN_SYNC_MAX_ATTEMPTS:
        save()
        fail(code)
        return StepOutcome(StepResult.FAILED)
    delay = settings.FAN_SYNC_RETRY_BASE_SECONDS * 2 ** (errors - 1) * random.uniform(0.8, 1.2)
    save(error_code=code, errors_in_row=errors)
    log.warning(f"{log_prefix}.retrying", sync_id=run.pk, code=code, attempt=errors, retry_in=delay)
    return StepOutcome(StepResult.RETRYING, next_step=run.step, delay_seconds=delay)
