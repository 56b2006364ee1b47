"""The merge with several worker connections (IMPORT_MERGE_WORKERS > 1), as production runs it.

These tests commit (a transactional database): each worker has its own connection, which a
test's open transaction would hide the staged rows from.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from crm.models import Fan
from imports import engine, run
from imports.models import FanImport
from tests.factories import FanFactory
from tests.imports.conftest import import_run

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _parallel(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.IMPORT_MERGE_WORKERS = 2
    settings.IMPORT_MERGE_BATCH_ROWS = 7
    # The tests run the task's work themselves (no broker here).
    monkeypatch.setattr("imports.services.fan_import_task_publish", lambda import_id: None)


def test_two_workers_merge_every_range_once_with_exact_counts(account, queued_import):
    # given fans 1..10 on the account already, and a file of fans 1..60 with fan 5 twice
    for n in range(1, 11):
        FanFactory(account=account, platform_fan_id=str(n), username=f"fan{n}")
    rows = [f"fan{n},{n},Name {n}\n" for n in range(1, 61)] + ["fan5,5,Last five\n"]
    fan_import = import_run(queued_import("Username,Fan ID,Display Name\n" + "".join(rows)))
    # then every fan is there once, the existing ones updated, and the counts add up
    assert fan_import.state == "done"
    assert Fan.objects.filter(account=account).count() == 60
    assert (fan_import.created, fan_import.updated) == (50, 10)
    assert (fan_import.skipped, fan_import.rejected, fan_import.rows_done) == (1, 0, 61)
    assert Fan.objects.get(account=account, platform_fan_id="5").display_name == "Last five"
    assert Fan.objects.get(account=account, platform_fan_id="60").display_name == "Name 60"


def test_a_worker_dying_in_a_range_leaves_the_checkpoint_at_the_ranges_before(
    account, queued_import
):
    content = "Username,Fan ID\n" + "".join(f"fan{n},{n}\n" for n in range(1, 51))
    fan_import = queued_import(content)
    real_merge = engine.rows_merge
    lock = threading.Lock()
    calls = {"n": 0}

    def dying_merge(*args: Any, **kwargs: Any) -> dict[str, int]:
        counts = real_merge(*args, **kwargs)
        with lock:
            calls["n"] += 1
            # the third range to finish its statement dies before committing
            if calls["n"] == 3:
                raise RuntimeError("worker killed")
        return counts

    engine.rows_merge = dying_merge
    try:
        with pytest.raises(RuntimeError, match="worker killed"):
            import_run(fan_import)
    finally:
        engine.rows_merge = real_merge
    fan_import.refresh_from_db()
    merged = Fan.objects.filter(account=account).count()
    # the ranges committed are the ones before the failed one, in order, and the checkpoint is
    # at their end. Which range fails depends on how the two workers' statements interleave
    # (usually the third or fourth range; on a loaded machine an earlier one): whole ranges
    # of 7 rows, never all of them.
    assert fan_import.phase == "merge" and fan_import.rows_done == merged
    assert merged in (0, 7, 14, 21) and fan_import.checkpoint_row == merged + 1
    assert fan_import.created == merged

    fan_import = import_run(fan_import)
    assert fan_import.state == "done"
    assert (fan_import.created, fan_import.updated, fan_import.rows_done) == (50, 0, 50)
    assert Fan.objects.filter(account=account).count() == 50


def test_a_second_run_of_the_task_leaves_the_merge_to_the_first(account, queued_import):
    from django.db import connection

    content = "Username,Fan ID\n" + "".join(f"fan{n},{n}\n" for n in range(1, 21))
    fan_import = queued_import(content)
    # another run holds the import's merge
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [0x1F1B, fan_import.pk])
    try:
        results: list[bool] = []

        def second_run() -> None:
            try:
                results.append(run.fan_import_advance(import_id=fan_import.pk))
            finally:
                connection.close()

        thread = threading.Thread(target=second_run)
        thread.start()
        thread.join(10)
        # it reads and dedupes, then leaves the merge to the run that holds it
        assert results == [True]
        assert FanImport.objects.get(pk=fan_import.pk).phase == "merge"
        assert Fan.objects.filter(account=account).count() == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [0x1F1B, fan_import.pk])
    fan_import = import_run(fan_import)
    assert (fan_import.state, fan_import.created) == ("done", 20)


def test_an_interrupted_run_stops_its_workers_before_letting_the_import_go(
    account, queued_import, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    content = "Username,Fan ID\n" + "".join(f"fan{n},{n}\n" for n in range(1, 51))
    fan_import = queued_import(content)
    real_join = threading.Thread.join
    interrupted: list[str] = []

    def join(self: threading.Thread, timeout: float | None = None) -> None:
        # the task's soft time limit strikes while the run waits for its workers
        if self.name.startswith("import-merge-") and not interrupted:
            interrupted.append(self.name)
            raise SoftTimeLimitExceeded()
        real_join(self, timeout)

    real_merge = engine.rows_merge

    def slow_merge(*args: Any, **kwargs: Any) -> dict[str, int]:
        time.sleep(0.05)  # the workers are still at it when the limit strikes
        return real_merge(*args, **kwargs)

    monkeypatch.setattr(threading.Thread, "join", join)
    monkeypatch.setattr(engine, "rows_merge", slow_merge)
    with pytest.raises(SoftTimeLimitExceeded):
        import_run(fan_import)
    monkeypatch.undo()
    # no worker is left merging, and what they committed is counted
    assert not [t for t in threading.enumerate() if t.name.startswith("import-merge-")]
    fan_import.refresh_from_db()
    assert fan_import.rows_done == fan_import.created == Fan.objects.filter(account=account).count()

    fan_import = import_run(fan_import)
    assert (fan_import.state, fan_import.created, fan_import.rows_done) == ("done", 50, 50)
    assert Fan.objects.filter(account=account).count() == 50
