"""Dispatch passes asked for by many callers, run together by one thread per process.

Every finished send frees a place on the broker and every enqueue adds to a backlog. A whole
dispatch pass (Redis lock, account and claim queries, forecast, publish) in the caller's thread
would cost a send task as much as the send itself and put an SQS publish on a web request's
path. So the caller records the account and returns; a daemon thread waits
``SEND_DISPATCH_COALESCE_MS`` for more requests to arrive, then runs one pass for all of them:
one look at the line and one pass per account, however many sends finished meanwhile (the
figures are in bench/README.md).

Nothing is lost if the process dies with requests pending: the messages are in the database
and the periodic outbox sweep dispatches every backlog. With the setting at 0 the pass runs
in the caller's thread (tests that hold a transaction open need that).
"""

from __future__ import annotations

import os
import threading
import time

import structlog
from django.conf import settings
from django.db import connection, transaction

from onlyfans.dispatch import (
    account_dispatch,
    after_send_dispatch_many,
    tasks_published_together,
)

log = structlog.get_logger(__name__)

# A failed pass is tried again after 1, 2, 4, 8, 16 and 30 s (about a minute in all), then left
# to the sweep until a pass succeeds again.
RETRY_LIMIT = 6
RETRY_FIRST_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0


class DispatchCoalescer:
    """The requests of one process and the thread that serves them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._finished: set[int] = set()
        self._backlogs: set[int] = set()
        self._pid: int | None = None

    def _ensure_thread(self) -> None:
        # After a fork (prefork pools, autoreload) the thread is not there: start a new one.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._finished, self._backlogs = set(), set()
            threading.Thread(target=self._run, name="dispatch-coalescer", daemon=True).start()

    def request(self, *, account_id: int, finished_send: bool) -> None:
        with self._cond:
            self._ensure_thread()
            (self._finished if finished_send else self._backlogs).add(account_id)
            self._cond.notify()

    def _swap(self) -> tuple[set[int], set[int]]:
        """What is pending (finished sends, then backlogs not among them), emptied."""
        with self._cond:
            finished, backlogs = self._finished, self._backlogs
            self._finished, self._backlogs = set(), set()
        return finished, backlogs - finished

    def _take(self) -> tuple[set[int], set[int]]:
        with self._cond:
            while not (self._finished or self._backlogs):
                self._cond.wait()
        time.sleep(settings.SEND_DISPATCH_COALESCE_MS / 1000)
        return self._swap()

    def _run(self) -> None:
        failures = 0
        while True:
            finished, backlogs = self._take()
            try:
                dispatch_pass(finished=finished, backlogs=backlogs)
                failures = 0
            except Exception:
                # PostgreSQL, Redis or SQS away (a restart): a broken connection is reopened
                # and the same accounts are tried again in seconds, a bounded number of times
                # in a row; after that the sweep dispatches their backlogs.
                failures += 1
                log.exception(
                    "dispatch.coalesced_pass_failed",
                    accounts=len(finished | backlogs),
                    failures=failures,
                )
                connection.close()
                if failures <= RETRY_LIMIT:
                    time.sleep(min(RETRY_FIRST_SECONDS * 2 ** (failures - 1), RETRY_MAX_SECONDS))
                    with self._cond:
                        self._finished |= finished
                        self._backlogs |= backlogs

    def flush(self) -> None:
        """Run what is pending now, in the caller's thread (worker shutdown)."""
        finished, backlogs = self._swap()
        if finished or backlogs:
            try:
                dispatch_pass(finished=finished, backlogs=backlogs)
            except Exception:
                log.exception("dispatch.flush_failed", accounts=len(finished | backlogs))


_coalescer = DispatchCoalescer()


def dispatch_pass(*, finished: set[int], backlogs: set[int]) -> int:
    """One pass for every account asked for; its tasks leave in SQS batches at the end."""
    with tasks_published_together():
        published = after_send_dispatch_many(account_ids=finished) if finished else 0
        for account_id in backlogs:
            published += account_dispatch(account_id=account_id)
    return published


def _dispatch_soon(*, account_id: int, finished_send: bool) -> None:
    if settings.SEND_DISPATCH_COALESCE_MS <= 0:
        account = {account_id}
        dispatch_pass(
            finished=account if finished_send else set(),
            backlogs=set() if finished_send else account,
        )
    else:
        _coalescer.request(account_id=account_id, finished_send=finished_send)


def dispatch_after_send(*, account_id: int) -> None:
    """A send of the account finished: top up the broker (the line first, then the account)."""
    _dispatch_soon(account_id=account_id, finished_send=True)


def dispatch_on_commit(*, account_id: int) -> None:
    """The account's backlog grows when the current transaction commits: dispatch it then."""
    transaction.on_commit(lambda: _dispatch_soon(account_id=account_id, finished_send=False))


def dispatch_flush() -> None:
    _coalescer.flush()
