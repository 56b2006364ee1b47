"""The dispatch thread: a pass that fails (PostgreSQL, Redis or SQS away) is tried again in
seconds for the same accounts, a bounded number of times, instead of waiting for the sweep."""

from __future__ import annotations

import threading
import time

import pytest

from onlyfans import dispatch_coalescer
from onlyfans.dispatch_coalescer import DispatchCoalescer


@pytest.fixture
def passes(monkeypatch, settings):
    settings.SEND_DISPATCH_COALESCE_MS = 5
    monkeypatch.setattr(dispatch_coalescer, "RETRY_FIRST_SECONDS", 0.05)
    monkeypatch.setattr(dispatch_coalescer, "RETRY_MAX_SECONDS", 0.1)
    monkeypatch.setattr(dispatch_coalescer.connection, "close", lambda: None)
    calls: list[tuple[set[int], set[int]]] = []
    failing = {"left": 0}
    done = threading.Event()

    def dispatch_pass(*, finished: set[int], backlogs: set[int]) -> int:
        calls.append((set(finished), set(backlogs)))
        if failing["left"] > 0:
            failing["left"] -= 1
            raise ConnectionError("the database is restarting")
        done.set()
        return len(finished | backlogs)

    monkeypatch.setattr(dispatch_coalescer, "dispatch_pass", dispatch_pass)
    return calls, failing, done


def test_a_failed_pass_is_tried_again_for_the_same_accounts(passes):
    calls, failing, done = passes
    # given: the next two passes fail
    failing["left"] = 2
    coalescer = DispatchCoalescer()
    # when: a send of account 7 finishes and account 8's backlog grows
    coalescer.request(account_id=7, finished_send=True)
    coalescer.request(account_id=8, finished_send=False)
    # then: the third pass, a moment later, dispatches both
    assert done.wait(5)
    assert len(calls) == 3
    assert calls[-1] == ({7}, {8})


def test_retries_are_bounded_then_the_sweep_takes_over(passes):
    calls, failing, done = passes
    # given: every pass fails for a long while
    failing["left"] = 1_000
    coalescer = DispatchCoalescer()
    coalescer.request(account_id=7, finished_send=False)
    # then: the first pass and RETRY_LIMIT retries, no more
    deadline = time.monotonic() + 5
    while len(calls) < 1 + dispatch_coalescer.RETRY_LIMIT and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert len(calls) == 1 + dispatch_coalescer.RETRY_LIMIT
    # and a later request is served again (the count starts over once a pass succeeds)
    failing["left"] = 0
    coalescer.request(account_id=9, finished_send=False)
    assert done.wait(5)
    assert calls[-1] == (set(), {9})
