"""Writes for CSV imports, their lifecycle: create one from an upload, configure it, preview
it, start it (and queue a stalled one again), expire the drafts nobody started. The run of a
started import (read, dedupe, merge, report) is ``imports.run``."""

from __future__ import annotations

import functools
import json
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
from imports.run import session_tune, upload_remove_on_commit
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
        session_tune(cursor)
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


# --- Starting --------------------------------------------------------------------------------


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
            upload_remove_on_commit(draft)
        FanImport.objects.filter(pk__in=[d.pk for d in drafts]).delete()
    if drafts:
        log.info("fan_import.drafts_expired", count=len(drafts))
    return len(drafts)
