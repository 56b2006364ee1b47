"""The run of a started import, step by step (the Celery task calls ``fan_import_advance``):
read the file into a staging table, mark its duplicates, merge the staged rows into the fans
(in parallel ranges committed in order) and write the report. Every step commits its work
with its checkpoint, so a run that dies anywhere is resumed by the next one.

Creating, configuring, previewing and starting an import are in ``imports.services``, which
uses this module (never the other way round)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from imports import engine
from imports.csvfile import FileRefused, rows_batches, text_open
from imports.models import FanImport

log = structlog.get_logger(__name__)

State = FanImport.State
Phase = FanImport.Phase


def _locked_for_step(import_id: int) -> FanImport | None:
    """The import, locked for one step (SKIP LOCKED: a second delivery of the task leaves the
    import to the run that holds it); None when it is locked, finished or gone."""
    fan_import = (
        FanImport.objects.select_for_update(skip_locked=True)
        .filter(pk=import_id, state__in=[State.QUEUED, State.RUNNING])
        .first()
    )
    return fan_import


# Advisory lock keys (with the account or the import's id as the second key).
_ACCOUNT_MERGE_LOCK = 0x1F1A
_IMPORT_MERGE_LOCK = 0x1F1B


@contextmanager
def _merge_locks(*, import_id: int, account_id: int) -> Iterator[bool]:
    """Session advisory locks for the merge phase of one run: the import's (a second delivery
    of the task finds it held and leaves the import to this run: yields False) and then the
    account's (imports of one account merge one at a time: two files naming the same new fan
    would otherwise wait on each other's rows). Released when the phase ends, or with the
    connection when the process dies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_IMPORT_MERGE_LOCK, import_id])
        row = cursor.fetchone()
        if not row or not row[0]:
            yield False
            return
        try:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [_ACCOUNT_MERGE_LOCK, account_id])
            try:
                yield True
            finally:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [_ACCOUNT_MERGE_LOCK, account_id]
                )
        finally:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_IMPORT_MERGE_LOCK, import_id])


def session_tune(cursor: Any) -> None:
    # For this transaction only. Not waiting for the commit's WAL flush is safe here: each
    # step commits its rows together with its checkpoint, so a commit lost in a server crash
    # loses both, and the next run does that step again.
    # Staged naive times are UTC. work_mem: room to hash the file's keys (the dedupe) in
    # memory. No JIT: the merge's plan is cheap to run and was costly to compile (1.8 s per
    # 100,000 rows).
    cursor.execute(
        "SET LOCAL synchronous_commit = off; SET LOCAL TimeZone = 'UTC';"
        " SET LOCAL work_mem = '128MB'; SET LOCAL jit = off"
    )


def _read_steps(import_id: int, deadline: float) -> bool:
    """Stage the file's rows, a batch per transaction; True when every row is staged."""
    with transaction.atomic():
        fan_import = _locked_for_step(import_id)
        if fan_import is None or fan_import.phase != Phase.READ:
            return True
        if fan_import.state == State.QUEUED:
            fan_import.state = State.RUNNING
            fan_import.started_at = fan_import.started_at or timezone.now()
        fan_import.attempts = F("attempts") + 1
        after = fan_import.checkpoint_row
        table = engine.staging_table(fan_import.pk)
        with connection.cursor() as cursor:
            engine.staging_create(cursor, table)
            # Rows a crashed run staged after its last checkpoint are staged again.
            cursor.execute(f"DELETE FROM {table} WHERE row_no > %s", [after])  # noqa: S608
            if after and engine.staging_last_row(cursor, table) != after:
                # The staged rows are gone (a database crash empties UNLOGGED tables): read
                # the file again from its start.
                after = fan_import.checkpoint_row = fan_import.rows_read = 0
                fan_import.rejected = 0
        fan_import.save(
            update_fields=[
                "state", "started_at", "attempts", "checkpoint_row", "rows_read", "rejected",
                "updated_at",
            ]
        )  # fmt: skip
    converter = engine.BatchConverter(
        columns=fan_import.columns,
        match_on=fan_import.match_on,
        date_order=fan_import.effective_date_order or None,
    )
    batch_size = int(settings.IMPORT_READ_BATCH_ROWS)
    with text_open(fan_import.file_path, fan_import.encoding) as handle:
        chunks = rows_batches(
            handle,
            fan_import.delimiter,
            size=min(batch_size, engine.CONVERT_CHUNK_ROWS),
            after_row=after,
        )
        while True:
            with transaction.atomic():
                locked = _locked_for_step(import_id)
                if locked is None or locked.checkpoint_row != after:
                    return True  # another run owns it now
                count = rejected = 0
                last = after
                finished = False
                with connection.cursor() as cursor:
                    session_tune(cursor)
                    with engine.gc_paused(), cursor.copy(engine.copy_sql(table)) as copy:
                        while count < batch_size:
                            chunk = next(chunks, None)
                            if chunk is None:
                                finished = True
                                break
                            staged = converter.convert(*chunk)
                            copy.write(staged.text)
                            count += staged.count
                            rejected += staged.rejected
                            last = staged.last_row
                    locked.rows_read = F("rows_read") + count
                    locked.rejected = F("rejected") + rejected
                    locked.checkpoint_row = last
                    fields = ["rows_read", "rejected", "checkpoint_row", "updated_at"]
                    if finished:
                        locked.phase, locked.checkpoint_row = Phase.DEDUPE, 0
                        fields.append("phase")
                        engine.staging_analyze(cursor, table)
                locked.save(update_fields=fields)
                after = last
            if finished:
                return True
            if time.monotonic() > deadline:
                return False


def _staging_lost(cursor: Any, fan_import: FanImport) -> bool:
    """After the read: the staged rows are gone (a database crash empties an UNLOGGED table),
    so the import goes back to reading its file; the merge is keyed, so fans already merged
    are matched, never added twice."""
    if engine.staging_last_row(cursor, engine.staging_table(fan_import.pk)) is not None:
        return False
    if not fan_import.rows_read:
        return False
    log.warning("fan_import.staging_lost", import_id=fan_import.pk)
    fan_import.phase, fan_import.checkpoint_row = Phase.READ, 0
    fan_import.rows_read = fan_import.rows_done = fan_import.duplicates = 0
    fan_import.created = fan_import.updated = fan_import.skipped = fan_import.rejected = 0
    fan_import.save(
        update_fields=[
            "phase", "checkpoint_row", "rows_read", "rows_done", "duplicates", "created",
            "updated", "skipped", "rejected", "updated_at",
        ]
    )  # fmt: skip
    return True


def _dedupe_step(import_id: int) -> bool:
    """Mark the file's duplicates; False when the import has to read its file again."""
    with transaction.atomic():
        fan_import = _locked_for_step(import_id)
        if fan_import is None or fan_import.phase != Phase.DEDUPE:
            return True
        with connection.cursor() as cursor:
            if _staging_lost(cursor, fan_import):
                return False
            session_tune(cursor)
            duplicates, rejected = engine.duplicates_mark(
                cursor, engine.staging_table(fan_import.pk), match_on=fan_import.match_on
            )
        fan_import.duplicates = duplicates
        fan_import.skipped = F("skipped") + duplicates
        fan_import.rejected = F("rejected") + rejected
        fan_import.phase, fan_import.checkpoint_row = Phase.MERGE, 0
        fan_import.save(
            update_fields=[
                "duplicates", "skipped", "rejected", "phase", "checkpoint_row", "updated_at"
            ]
        )  # fmt: skip
    return True


@dataclass(frozen=True)
class _MergeJob:
    import_id: int
    account_id: int
    table: str
    match_on: str
    on_match: str
    columns: list[str]


class _MergeAborted(Exception):
    """A range before this one failed: this one is rolled back, never committed past it."""


class _MergeRanges:
    """The staged rows cut into ranges of row numbers, merged by one or more workers (each
    with its own database connection) and committed in order: a range's transaction moves the
    import's checkpoint from its start to its end, so it waits for the range before it to
    commit. A run that dies leaves the checkpoint at the end of the last range committed in
    order, and the next run merges from there (the merge is keyed: a range merged again
    would update or skip what the first run wrote, never add a fan twice)."""

    def __init__(
        self,
        job: _MergeJob,
        *,
        after: int,
        first: int,
        last: int,
        size: int,
        workers: int,
        deadline: float,
    ):
        self.job = job
        # Cut from the first staged row after the checkpoint (``first - 1``) into ranges of at
        # most ``size`` rows, as many as a multiple of the workers and of equal size, so the
        # workers finish together (a last range merged alone left a connection idle for a
        # fifth of the merge). The first range starts at the checkpoint itself, which its
        # commit moves on.
        start = max(after, first - 1)
        count = math.ceil((last - start) / size)
        count = math.ceil(count / workers) * workers
        step = max(1, math.ceil((last - start) / count)) if count else 1
        self.bounds = [(at, min(at + step, last)) for at in range(start, last, step)]
        if self.bounds:
            self.bounds[0] = (after, self.bounds[0][1])
        self.deadline = deadline
        self.committed = [threading.Event() for _ in self.bounds]
        self.failed = threading.Event()
        self.errors: list[BaseException] = []
        self._next = 0
        self._lock = threading.Lock()

    def _take(self) -> int | None:
        with self._lock:
            if self._next >= len(self.bounds) or self.failed.is_set():
                return None
            if self._next and time.monotonic() > self.deadline:
                return None  # out of time: the next run goes on from the checkpoint
            index, self._next = self._next, self._next + 1
            return index

    def work(self) -> None:
        """One worker: merge ranges until none is left (or one failed, or time is up)."""
        while (index := self._take()) is not None:
            try:
                self._merge(index)
            except BaseException as exc:  # handed to the coordinator
                with self._lock:
                    self.errors.append(exc)
                self.failed.set()
                return

    def _merge(self, index: int) -> None:
        job = self.job
        after, through = self.bounds[index]
        with transaction.atomic():
            with connection.cursor() as cursor:
                session_tune(cursor)
                counts = engine.rows_merge(
                    cursor,
                    job.table,
                    account_id=job.account_id,
                    match_on=job.match_on,
                    on_match=job.on_match,
                    columns=job.columns,
                    after_row=after,
                    through_row=through,
                )
            if index:
                # The range before commits first (its rows' keys are not this range's: the
                # dedupe left each key and username in one row of the file).
                while not self.committed[index - 1].wait(0.05):
                    if self.failed.is_set():
                        raise _MergeAborted
            updated = FanImport.objects.filter(
                pk=job.import_id, phase=Phase.MERGE, checkpoint_row=after
            ).update(
                created=F("created") + counts["created"],
                updated=F("updated") + counts["updated"],
                skipped=F("skipped") + counts["skipped"],
                rejected=F("rejected") + counts["conflict"],
                rows_done=F("rows_done") + counts["rows"],
                checkpoint_row=through,
                updated_at=timezone.now(),
            )
            if not updated:
                raise _MergeAborted  # the import moved on without this run
        self.committed[index].set()

    @property
    def done(self) -> bool:
        return all(event.is_set() for event in self.committed)


def _merge_worker(ranges: _MergeRanges) -> None:
    try:
        ranges.work()
    finally:
        connection.close()  # this thread's own connection


def _merge_steps(import_id: int, deadline: float) -> bool:
    """Merge the staged rows into the fans, a range of rows per transaction with its checkpoint
    (IMPORT_MERGE_WORKERS connections at once); True when the last range is in."""
    with transaction.atomic():
        fan_import = _locked_for_step(import_id)
        if fan_import is None or fan_import.phase != Phase.MERGE:
            return True
        table = engine.staging_table(fan_import.pk)
        with connection.cursor() as cursor:
            if _staging_lost(cursor, fan_import):
                return False
            bounds = engine.staging_bounds(cursor, table, after_row=fan_import.checkpoint_row)
    job = _MergeJob(
        import_id=import_id,
        account_id=fan_import.account_id,
        table=table,
        match_on=fan_import.match_on,
        on_match=fan_import.on_match,
        columns=list(fan_import.columns),
    )
    with _merge_locks(import_id=import_id, account_id=job.account_id) as ours:
        if not ours:
            return True  # another run is merging it
        after = FanImport.objects.values_list("checkpoint_row", flat=True).get(pk=import_id)
        first, last = bounds if bounds and bounds[1] > after else (after, after)
        workers = max(1, int(settings.IMPORT_MERGE_WORKERS))
        ranges = _MergeRanges(
            job,
            after=after,
            first=first,
            last=last,
            size=max(1, int(settings.IMPORT_MERGE_BATCH_ROWS)),
            workers=workers,
            deadline=deadline,
        )
        workers = min(workers, len(ranges.bounds))
        if workers <= 1:
            ranges.work()  # in this thread, on its connection (and its test transaction)
        else:
            threads = [
                threading.Thread(target=_merge_worker, args=(ranges,), name=f"import-merge-{n}")
                for n in range(workers)
            ]
            try:
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            except BaseException:
                # Interrupted (the task's soft time limit): the workers take no new range and
                # a range waiting for its turn rolls back; the locks go only once they stop.
                ranges.failed.set()
                for thread in threads:
                    if thread.is_alive():
                        thread.join()
                raise
        errors = [e for e in ranges.errors if not isinstance(e, _MergeAborted)]
        if errors:
            raise errors[0]
        if ranges.errors or not ranges.done:
            return False
    with transaction.atomic():
        locked = _locked_for_step(import_id)
        if locked is not None and locked.phase == Phase.MERGE and locked.checkpoint_row >= last:
            locked.phase = Phase.REPORT
            locked.save(update_fields=["phase", "updated_at"])
    return True


def _report_step(import_id: int) -> None:
    with transaction.atomic():
        fan_import = _locked_for_step(import_id)
        if fan_import is None or fan_import.phase != Phase.REPORT:
            return
        table = engine.staging_table(fan_import.pk)
        with connection.cursor() as cursor:
            if fan_import.rejected or fan_import.duplicates or fan_import.on_match == "add_only":
                target = (
                    Path(settings.IMPORT_STORAGE_DIR)
                    / f"{Path(fan_import.file_path).stem}-errors.csv"
                )
                engine.errors_file_write(
                    cursor,
                    table,
                    source=fan_import.file_path,
                    encoding=fan_import.encoding,
                    delimiter=fan_import.delimiter,
                    header=fan_import.header,
                    target=target,
                )
                fan_import.errors_path = str(target)
            engine.staging_drop(cursor, table)
        fan_import.phase, fan_import.state = Phase.FINISHED, State.DONE
        fan_import.rows_done = fan_import.rows_total
        fan_import.finished_at = timezone.now()
        fan_import.save()
        upload_remove_on_commit(fan_import)
        if fan_import.created or fan_import.updated:
            _platform_sync_start(fan_import)
    log.info(
        "fan_import.done",
        import_id=fan_import.pk,
        account_id=fan_import.account_id,
        created=fan_import.created,
        updated=fan_import.updated,
        skipped=fan_import.skipped,
        rejected=fan_import.rejected,
    )


def upload_remove_on_commit(fan_import: FanImport) -> None:
    # A finished import needs its upload no more (the rejected rows' report is its own file);
    # removed once the state that says so is committed.
    path = Path(fan_import.file_path)
    transaction.on_commit(lambda: path.unlink(missing_ok=True))


def _platform_sync_start(fan_import: FanImport) -> None:
    """Imported fans reach the inbox with their chats: the inbox lists conversations that have
    messages, which only the platform has. One sync of the account (set-based and paged, the
    same run "Sync now" starts; a run already active is reused) links the imported fans by
    platform id or username and brings in their chats and recent history."""
    from onlyfans.models import FanSync
    from onlyfans.sync import fan_sync_start

    account = fan_import.account
    if not account.is_connected:
        return
    run, created = fan_sync_start(
        account=account, trigger=FanSync.Trigger.IMPORT, requested_by=fan_import.created_by
    )
    log.info(
        "fan_import.sync_started",
        import_id=fan_import.pk,
        account_id=account.pk,
        sync_id=run.pk,
        already_active=not created,
    )


def fan_import_advance(*, import_id: int, budget_seconds: float | None = None) -> bool:
    """Run the import's next steps until it is done or ``budget_seconds`` have passed; True
    when it is finished (or not this run's to do), False when it should be run again.

    Every step commits its work with its checkpoint, so a run that dies anywhere is resumed by
    the next one without writing any row twice. A file that turns out unreadable fails the
    import before anything is merged."""
    budget = settings.IMPORT_TASK_BUDGET_SECONDS if budget_seconds is None else budget_seconds
    deadline = time.monotonic() + float(budget)
    try:
        if not _read_steps(import_id, deadline):
            return False
        if not _dedupe_step(import_id):
            return False
        if not _merge_steps(import_id, deadline):
            return False
        _report_step(import_id)
    except FileRefused as exc:
        fan_import_mark_failed(import_id=import_id, code=exc.code, message=exc.message)
    return True


def fan_import_mark_failed(*, import_id: int, code: str, message: str) -> None:
    """The import stops: state failed with the reason; its staging table is dropped. Fans
    merged by earlier batches stay (each batch is whole)."""
    with transaction.atomic():
        fan_import = FanImport.objects.select_for_update().filter(pk=import_id).first()
        if fan_import is None or fan_import.is_finished:
            return
        with connection.cursor() as cursor:
            engine.staging_drop(cursor, engine.staging_table(import_id))
        fan_import.state = State.FAILED
        fan_import.error_code = code[:40]
        fan_import.error_message = message[:500]
        fan_import.finished_at = timezone.now()
        fan_import.save()
        upload_remove_on_commit(fan_import)
    log.warning("fan_import.failed", import_id=import_id, code=code)


def fan_import_rate(fan_import: FanImport) -> tuple[float, float | None]:
    """(rows per second, seconds left) of a running import, from its counters."""
    if not fan_import.started_at or not fan_import.rows_total:
        return 0.0, None
    elapsed = max((timezone.now() - fan_import.started_at).total_seconds(), 0.001)
    work = fan_import.rows_read + fan_import.rows_done
    rate = work / 2 / elapsed
    if not work:
        return 0.0, None
    left = (2 * fan_import.rows_total - work) / (work / elapsed)
    return rate, max(left, 0.0)
