"""Writes for CSV imports: create one from an upload, configure it, preview it, start it, and
advance a running one step by step (the Celery task calls ``fan_import_advance``)."""

from __future__ import annotations

import functools
import json
import math
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import structlog
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.move import file_move_safe
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from config.celery import task_publish
from crm.errors import ApplicationError
from imports import engine
from imports.csvfile import (
    DELIMITERS,
    ENCODINGS,
    FileRefused,
    FileShape,
    file_detect,
    file_scan,
    rows_batches,
    text_open,
)
from imports.fields import DATE_FIELDS, columns_check, columns_from_mapping, columns_suggest
from imports.models import FanImport
from imports.selectors import import_membership_get
from imports.values import DAY_FIRST, MONTH_FIRST

log = structlog.get_logger(__name__)

PREVIEW_ROWS = 20
State = FanImport.State
Phase = FanImport.Phase


def _choice(value: str, choices: Any, name: str) -> str:
    if value not in choices.values:
        raise ApplicationError(
            f"Unknown {name} {value!r}.",
            code="validation_error",
            fields={name: [f"One of: {', '.join(choices.values)}."]},
        )
    return str(value)


def _date_columns(columns: list[str]) -> list[int]:
    return [index for index, name in enumerate(columns) if name in DATE_FIELDS]


def _date_order_apply(fan_import: FanImport, shape: FileShape) -> None:
    if shape.day_first > shape.month_first:
        fan_import.date_order_inferred = DAY_FIRST
    elif shape.month_first > shape.day_first:
        fan_import.date_order_inferred = MONTH_FIRST
    else:
        fan_import.date_order_inferred = ""
    fan_import.dates_ambiguous = shape.ambiguous > 0 and not fan_import.date_order_inferred


def _shape_read(
    path: Path, *, encoding: str | None, delimiter: str | None, columns_for: Any = None
) -> tuple[FileShape, str, str]:
    detected_encoding, detected_delimiter = file_detect(path)
    use_encoding = encoding or detected_encoding
    if use_encoding not in ENCODINGS and use_encoding not in ("utf-16-le", "utf-16-be"):
        raise ApplicationError(
            f"Unknown encoding {use_encoding!r}.",
            code="validation_error",
            fields={"encoding": [f"One of: {', '.join(ENCODINGS)}."]},
        )
    use_delimiter = delimiter or detected_delimiter
    if use_delimiter not in DELIMITERS:
        raise ApplicationError(
            "The delimiter must be a comma, a semicolon or a tab.",
            code="validation_error",
            fields={"delimiter": ["One of , ; or tab."]},
        )
    try:
        shape = file_scan(path, encoding=use_encoding, delimiter=use_delimiter, keep_rows=0)
    except FileRefused as exc:
        if exc.code != "bad_encoding" or encoding or use_encoding != "utf-8":
            raise
        # UTF-8 in the first 64 KB and something else later: an old export; read as 1252.
        use_encoding = "cp1252"
        shape = file_scan(path, encoding=use_encoding, delimiter=use_delimiter)
    return shape, detected_encoding, detected_delimiter


def fan_import_create(
    *,
    actor: User,
    account_id: int,
    upload_path: Path,
    file_name: str,
    encoding: str | None = None,
    delimiter: str | None = None,
    mapping: dict[str, str] | None = None,
    match_on: str | None = None,
    on_match: str = FanImport.OnMatch.UPDATE,
    date_order: str = FanImport.DateOrder.AUTO,
    start: bool = False,
) -> FanImport:
    """Check an uploaded file (moved into storage only if it can be imported) and create the
    import: a draft for the pages, or queued at once for the API (``start=True``).
    Without ``match_on``, fans are matched by platform fan id when a column holds it, and by
    username otherwise (the common spreadsheet export has no fan id).
    Raises FileRefused or ApplicationError, and then nothing is kept."""
    import_membership_get(user=actor, account_id=account_id)
    if match_on is not None:
        _choice(match_on, FanImport.MatchOn, "match_on")
    _choice(on_match, FanImport.OnMatch, "on_match")
    _choice(date_order, FanImport.DateOrder, "date_order")
    try:
        shape, detected_encoding, detected_delimiter = _shape_read(
            upload_path, encoding=encoding, delimiter=delimiter
        )
        columns = (
            columns_from_mapping(shape.header, mapping)
            if mapping is not None
            else columns_suggest(shape.header)
        )
        if not any(columns):
            raise FileRefused(
                "No column of the file matches a fan field (e.g. Username, Display Name, "
                "Email); name the columns or pass a mapping.",
                code="no_usable_column",
            )
        if match_on is None:
            match_on = (
                FanImport.MatchOn.PLATFORM_FAN_ID
                if "platform_fan_id" in columns
                else FanImport.MatchOn.USERNAME
            )
        if start:
            columns_check(columns, match_on=match_on)
        fan_import = FanImport(
            account_id=account_id,
            created_by=actor,
            file_name=Path(file_name).name[:255] or "import.csv",
            file_size=upload_path.stat().st_size,
            encoding=shape.encoding,
            encoding_detected=detected_encoding,
            delimiter=shape.delimiter,
            delimiter_detected=detected_delimiter,
            header=shape.header,
            columns=columns,
            match_on=match_on,
            on_match=on_match,
            date_order=date_order,
            rows_total=shape.rows_total,
        )
        if _date_columns(columns):
            dated = file_scan(
                upload_path,
                encoding=shape.encoding,
                delimiter=shape.delimiter,
                date_columns=_date_columns(columns),
            )
            _date_order_apply(fan_import, dated)
        if start:
            _date_order_required(fan_import)
    except Exception:
        upload_path.unlink(missing_ok=True)
        raise
    storage = Path(settings.IMPORT_STORAGE_DIR)
    storage.mkdir(parents=True, exist_ok=True)
    stored = storage / f"{uuid.uuid4().hex}.csv"
    file_move_safe(str(upload_path), str(stored))
    fan_import.file_path = str(stored)
    with transaction.atomic():
        if start:
            fan_import.state = State.QUEUED
        fan_import.save()
        if start:
            _enqueue_on_commit(fan_import)
    log.info(
        "fan_import.created",
        import_id=fan_import.pk,
        account_id=account_id,
        rows=fan_import.rows_total,
        started=start,
    )
    return fan_import


def _date_order_required(fan_import: FanImport) -> None:
    if fan_import.date_order == FanImport.DateOrder.AUTO and fan_import.dates_ambiguous:
        raise ApplicationError(
            "Every date in the file could be day/month or month/day (e.g. 01/02/2025); "
            "choose the date order.",
            code="date_order_required",
            fields={"date_order": ["Choose day_first or month_first."]},
        )


def _draft_locked(*, actor: User, fan_import: FanImport) -> FanImport:
    import_membership_get(user=actor, account_id=fan_import.account_id)
    locked = FanImport.objects.select_for_update().get(pk=fan_import.pk)
    if locked.state != State.DRAFT:
        raise ApplicationError(
            "This import has started; start a new one to change it.", code="import_started"
        )
    return locked


@transaction.atomic
def fan_import_configure(
    *,
    actor: User,
    fan_import: FanImport,
    columns: list[str],
    match_on: str,
    on_match: str,
    date_order: str,
    encoding: str | None = None,
    delimiter: str | None = None,
) -> FanImport:
    """Set how a draft import reads its file. Locks the import row. A changed encoding or
    delimiter re-reads the header (and resets the mapping to the suggested one)."""
    locked = _draft_locked(actor=actor, fan_import=fan_import)
    _choice(match_on, FanImport.MatchOn, "match_on")
    _choice(on_match, FanImport.OnMatch, "on_match")
    _choice(date_order, FanImport.DateOrder, "date_order")
    path = Path(locked.file_path)
    if (encoding and encoding != locked.encoding) or (delimiter and delimiter != locked.delimiter):
        shape, _, _ = _shape_read(
            path, encoding=encoding or locked.encoding, delimiter=delimiter or locked.delimiter
        )
        header_changed = shape.header != locked.header
        locked.encoding, locked.delimiter = shape.encoding, shape.delimiter
        locked.header, locked.rows_total = shape.header, shape.rows_total
        if header_changed:
            columns = columns_suggest(shape.header)
    if len(columns) != len(locked.header):
        raise ApplicationError("Map each column of the file.", code="invalid_mapping")
    columns_check(columns, match_on=match_on)
    locked.columns = columns
    locked.match_on, locked.on_match, locked.date_order = match_on, on_match, date_order
    dates = _date_columns(columns)
    if dates:
        _date_order_apply(
            locked,
            file_scan(
                path, encoding=locked.encoding, delimiter=locked.delimiter, date_columns=dates
            ),
        )
    else:
        locked.date_order_inferred, locked.dates_ambiguous = "", False
    locked.save()
    return locked


# --- Preview ---------------------------------------------------------------------------------


@dataclass
class PreviewRow:
    row_no: int
    cells: list[str]
    values: dict[str, Any] | None
    errors: dict[int | None, str] = field(default_factory=dict)


@dataclass
class Preview:
    rows: list[PreviewRow]
    # Counts over the whole file; None when the file is large and they come in their own
    # request (``fan_import_preview_counts``).
    counts: dict[str, int] | None
    date_order: str
    dates_ambiguous: bool


# Files up to this many rows get their counts with the page; larger ones in a second request
# (a million rows take seconds), computed once per configuration.
PREVIEW_INLINE_ROWS = 50_000
PREVIEW_COUNTS_MAX_AGE_SECONDS = 600


@contextmanager
def _preview_staging(
    fan_import: FanImport,
) -> Iterator[tuple[Any, IO[str], engine.BatchConverter, str]]:
    """For a preview: a temporary staging table, the file open and its converter, in a
    transaction that is rolled back on leaving (a preview writes nothing)."""
    converter = engine.BatchConverter(
        columns=fan_import.columns,
        match_on=fan_import.match_on,
        date_order=fan_import.effective_date_order or None,
    )
    table = f"imports_preview_{fan_import.pk}"
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
        text_open(fan_import.file_path, fan_import.encoding) as handle,
    ):
        engine.staging_create(cursor, table, temporary=True)
        _session_tune(cursor)
        yield cursor, handle, converter, table
        transaction.set_rollback(True)


def fan_import_preview(*, actor: User, fan_import: FanImport) -> Preview:
    """What the import would do: its first rows as the real engine stores them (staged into a
    temporary table and read back, in a transaction that is rolled back) with their invalid
    cells, and the counts over the file when they are cheap or already known."""
    import_membership_get(user=actor, account_id=fan_import.account_id)
    order = fan_import.effective_date_order
    with _preview_staging(fan_import) as (cursor, handle, converter, table):
        numbers: list[int] = []
        rows: list[list[str]] = []
        for chunk_numbers, chunk_rows in rows_batches(
            handle, fan_import.delimiter, size=PREVIEW_ROWS + 1
        ):
            numbers += chunk_numbers[: PREVIEW_ROWS - len(numbers)]
            rows += chunk_rows[: PREVIEW_ROWS - len(rows)]
            if len(numbers) == PREVIEW_ROWS:
                break
        errors: dict[int, list[tuple[int | None, str]]] = {}
        if numbers:
            staged = converter.convert(numbers, rows, keep_errors=PREVIEW_ROWS)
            errors = staged.errors
            with cursor.copy(engine.copy_sql(table)) as copy:
                copy.write(staged.text)
        first = list(zip(numbers, rows, strict=True))
        stored = engine.rows_values(cursor, table, through_row=numbers[-1] if numbers else 0)
    counts = _preview_counts_cached(fan_import)
    if counts is None and fan_import.rows_total <= PREVIEW_INLINE_ROWS:
        counts = fan_import_preview_counts(actor=actor, fan_import=fan_import)
    return Preview(
        rows=[
            PreviewRow(
                row_no,
                cells,
                stored.get(row_no),
                {index: message for index, message in errors.get(row_no, [])},
            )
            for row_no, cells in first
        ],
        counts=counts,
        date_order=order,
        dates_ambiguous=fan_import.dates_ambiguous and fan_import.date_order == "auto",
    )


def _preview_signature(fan_import: FanImport) -> str:
    return json.dumps(
        [
            fan_import.columns, fan_import.match_on, fan_import.on_match,
            fan_import.effective_date_order, fan_import.encoding, fan_import.delimiter,
        ]
    )  # fmt: skip


def _preview_counts_cached(fan_import: FanImport) -> dict[str, int] | None:
    cached = fan_import.preview_counts or {}
    if cached.get("signature") != _preview_signature(fan_import):
        return None
    age = timezone.now().timestamp() - float(cached.get("at", 0))
    if age > PREVIEW_COUNTS_MAX_AGE_SECONDS:
        return None  # the account's fans may have changed since
    return dict(cached["counts"])


def fan_import_preview_counts(*, actor: User, fan_import: FanImport) -> dict[str, int]:
    """Counts over the whole file of the rows a draft import would create, update, skip and
    reject: the real engine on a temporary table, rolled back. Kept on the import for its
    configuration (a few minutes: the account's fans change), so a reload costs nothing."""
    import_membership_get(user=actor, account_id=fan_import.account_id)
    cached = _preview_counts_cached(fan_import)
    if cached is not None:
        return cached
    with _preview_staging(fan_import) as (cursor, handle, converter, table):
        with engine.gc_paused(), cursor.copy(engine.copy_sql(table)) as copy:
            for chunk in rows_batches(handle, fan_import.delimiter, size=engine.CONVERT_CHUNK_ROWS):
                copy.write(converter.convert(*chunk).text)
        engine.staging_analyze(cursor, table)
        engine.duplicates_mark(cursor, table, match_on=fan_import.match_on)
        by_status = engine.rows_plan_counts(
            cursor,
            table,
            account_id=fan_import.account_id,
            match_on=fan_import.match_on,
            on_match=fan_import.on_match,
        )
    counts = {
        "create": by_status.get("created", 0),
        "update": by_status.get("updated", 0),
        "skip": by_status.get("skipped", 0) + by_status.get("duplicate", 0),
        "duplicate": by_status.get("duplicate", 0),
        "reject": by_status.get("rejected", 0) + by_status.get("conflict", 0),
    }
    FanImport.objects.filter(pk=fan_import.pk, state=State.DRAFT).update(
        preview_counts={
            "signature": _preview_signature(fan_import),
            "at": timezone.now().timestamp(),
            "counts": counts,
        }
    )
    return counts


# --- Running ---------------------------------------------------------------------------------


# The import's task, published by name (config.celery.task_publish): imports.tasks imports
# this module, not the other way round.
IMPORT_TASK = "imports.tasks.fan_import_task"


def import_queue() -> str:
    """The queue of the import's task: the bulk queue, served by a worker process of its own,
    so an import never delays a send."""
    from onlyfans.broker import queue_names

    return queue_names().bulk


def fan_import_task_publish(*, import_id: int) -> bool:
    """Put the import's task on its queue (called on commit). A broker that does not answer
    is logged, not raised: the import stays queued and its page offers to queue it again (the
    task is idempotent, so a second publish is harmless)."""
    try:
        task_publish(IMPORT_TASK, args=[import_id], queue=import_queue())
    except Exception:
        log.warning("fan_import.publish_failed", import_id=import_id, exc_info=True)
        return False
    return True


def _enqueue_on_commit(fan_import: FanImport) -> None:
    transaction.on_commit(functools.partial(fan_import_task_publish, import_id=fan_import.pk))


@transaction.atomic
def fan_import_start(*, actor: User, fan_import: FanImport) -> FanImport:
    """Queue a draft import. Locks the import row so a double click starts it once."""
    locked = _draft_locked(actor=actor, fan_import=fan_import)
    columns_check(locked.columns, match_on=locked.match_on)
    _date_order_required(locked)
    locked.state = State.QUEUED
    locked.save(update_fields=["state", "updated_at"])
    _enqueue_on_commit(locked)
    log.info("fan_import.started", import_id=locked.pk, account_id=locked.account_id)
    return locked


STALLED_QUEUED_SECONDS = 30


def fan_import_is_stalled(fan_import: FanImport) -> bool:
    """Queued with no worker taking it for a while, or running without progress for longer
    than a task may live (its worker died and SQS has not handed the task out again)."""
    if fan_import.state == State.QUEUED:
        limit = STALLED_QUEUED_SECONDS
    elif fan_import.state == State.RUNNING:
        limit = 2 * int(settings.IMPORT_TASK_TIME_LIMIT_SECONDS)
    else:
        return False
    return (timezone.now() - fan_import.updated_at).total_seconds() > limit


def fan_import_requeue(*, actor: User, fan_import: FanImport) -> bool:
    """Publish a stalled import's task again; it resumes from its last checkpoint."""
    import_membership_get(user=actor, account_id=fan_import.account_id)
    if not fan_import_is_stalled(fan_import):
        return False
    FanImport.objects.filter(pk=fan_import.pk).update(updated_at=timezone.now())
    log.info("fan_import.requeued", import_id=fan_import.pk, account_id=fan_import.account_id)
    return fan_import_task_publish(import_id=fan_import.pk)


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


def _session_tune(cursor: Any) -> None:
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
                    _session_tune(cursor)
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
            _session_tune(cursor)
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
                _session_tune(cursor)
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
        _upload_remove_on_commit(fan_import)
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


def _upload_remove_on_commit(fan_import: FanImport) -> None:
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
        _upload_remove_on_commit(fan_import)
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


def fan_import_drafts_expire(*, now: datetime | None = None) -> int:
    """Remove the drafts (uploaded, never started) untouched for ``IMPORT_DRAFT_TTL_HOURS``,
    and their uploads once that is committed; returns how many. A draft being started
    meanwhile is locked (SKIP LOCKED) or no longer a draft, and is left alone."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IMPORT_DRAFT_TTL_HOURS)
    with transaction.atomic():
        drafts = list(
            FanImport.objects.select_for_update(skip_locked=True)
            .filter(state=FanImport.State.DRAFT, updated_at__lt=cutoff)
            .only("id", "account_id", "file_path")
        )
        for draft in drafts:
            _upload_remove_on_commit(draft)
        FanImport.objects.filter(pk__in=[d.pk for d in drafts]).delete()
    if drafts:
        log.info("fan_import.drafts_expired", count=len(drafts))
    return len(drafts)
