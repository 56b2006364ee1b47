"""Import pages under an account's fans: upload → map → preview → progress → report, and the
history. Owners and managers only (chatters 403, other accounts 404). Thin: parse, call,
render."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm.errors import ApplicationError, NotFoundError
from crm.models import Membership
from crm.views.pages import AuthenticatedRequest
from imports import run, selectors, services
from imports.api import errors_file_response
from imports.csvfile import DELIMITER_LABELS, ENCODINGS
from imports.fields import FIELDS
from imports.forms import MappingForm, UploadForm
from imports.models import FanImport
from imports.uploads import upload_handlers_install

SAMPLE_ROWS = 3
STEPS = [
    ("upload", "Upload"),
    ("map", "Map columns"),
    ("preview", "Preview"),
    ("import", "Import"),
    ("report", "Report"),
]


def _membership(request: AuthenticatedRequest, account_id: int) -> Membership:
    try:
        return selectors.import_membership_get(user=request.user, account_id=account_id)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
    except ApplicationError as exc:
        raise PermissionDenied(exc.message) from exc


def _import(request: AuthenticatedRequest, account_id: int, import_id: int) -> FanImport:
    _membership(request, account_id)
    try:
        return selectors.fan_import_get(
            user=request.user, import_id=import_id, account_id=account_id
        )
    except NotFoundError as exc:
        raise Http404(exc.message) from exc


def _index_page(
    request: AuthenticatedRequest,
    membership: Membership,
    *,
    form: UploadForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    context = {
        "membership": membership,
        "account": membership.account,
        "form": form or UploadForm(),
        "error": error,
        "imports": selectors.fan_imports_for_account(
            user=request.user, account_id=membership.account_id
        ),
        "max_mb": int(settings.IMPORT_MAX_UPLOAD_BYTES) // (1024 * 1024),
    }
    return render(request, "imports/index.html", context, status=status)


@csrf_exempt
@login_required
def import_index(request: HttpRequest, account_id: int) -> HttpResponseBase:
    # The upload handlers are swapped before anything reads the body (CSRF included).
    if request.method == "POST":
        upload_handlers_install(request)
    return _import_index(cast(AuthenticatedRequest, request), account_id)


@csrf_protect
@require_http_methods(["GET", "POST"])
def _import_index(request: AuthenticatedRequest, account_id: int) -> HttpResponse:
    membership = _membership(request, account_id)
    if request.method == "GET":
        return _index_page(request, membership)
    form = UploadForm(request.POST, request.FILES)
    if getattr(request, "upload_too_large", False):
        limit_mb = int(settings.IMPORT_MAX_UPLOAD_BYTES) // (1024 * 1024)
        return _index_page(
            request, membership, error=f"The file is larger than {limit_mb} MB.", status=413
        )
    if not form.is_valid():
        return _index_page(request, membership, form=form, error="Choose a CSV file.", status=400)
    upload = form.cleaned_data["file"]
    if not isinstance(upload, TemporaryUploadedFile):
        return _index_page(request, membership, error="The file could not be stored.", status=400)
    try:
        fan_import = services.fan_import_create(
            actor=request.user,
            account_id=account_id,
            upload_path=Path(upload.temporary_file_path()),
            file_name=upload.name or "import.csv",
            encoding=form.cleaned_data["encoding"] or None,
            delimiter=form.cleaned_data["delimiter"] or None,
        )
    except ApplicationError as exc:
        return _index_page(request, membership, error=exc.message, status=exc.status_code)
    return redirect("fan_import_map", account_id=account_id, import_id=fan_import.pk)


def _samples(fan_import: FanImport) -> list[list[str]]:
    from imports.csvfile import file_scan

    try:
        shape = (
            file_scan(
                fan_import.file_path,
                encoding=fan_import.encoding,
                delimiter=fan_import.delimiter,
                keep_rows=SAMPLE_ROWS,
            )
            if fan_import.rows_total <= 5_000
            else _head(fan_import)
        )
    except ApplicationError:
        return []
    columns = len(fan_import.header)
    return [[row[i] if i < len(row) else "" for row in shape.first_rows] for i in range(columns)]


def _head(fan_import: FanImport) -> Any:
    from imports.csvfile import FileShape, rows_iter, text_open

    shape = FileShape(encoding=fan_import.encoding, delimiter=fan_import.delimiter, header=[])
    with text_open(fan_import.file_path, fan_import.encoding) as handle:
        rows = rows_iter(handle, fan_import.delimiter)
        next(rows, None)
        for _, cells in rows:
            shape.first_rows.append(cells)
            if len(shape.first_rows) >= SAMPLE_ROWS:
                break
    return shape


@login_required
@require_http_methods(["GET", "POST"])
def import_map(request: AuthenticatedRequest, account_id: int, import_id: int) -> HttpResponse:
    fan_import = _import(request, account_id, import_id)
    if fan_import.state != FanImport.State.DRAFT:
        return redirect("fan_import_detail", account_id=account_id, import_id=import_id)
    error, status = "", 200
    form = MappingForm(request.POST or None, fan_import=fan_import)
    if request.method == "POST" and form.is_valid():
        try:
            services.fan_import_configure(
                actor=request.user,
                fan_import=fan_import,
                columns=form.columns(),
                match_on=form.cleaned_data["match_on"],
                on_match=form.cleaned_data["on_match"],
                date_order=form.cleaned_data["date_order"],
                encoding=form.cleaned_data["encoding"],
                delimiter=form.cleaned_data["delimiter"],
            )
        except ApplicationError as exc:
            error = exc.message
            details = [
                f"{FIELDS[k].label if k in FIELDS else k}: {' '.join(v)}"
                for k, v in exc.fields.items()
            ]
            if details:
                error = f"{error} {' '.join(details)}"
            status = exc.status_code
        else:
            return redirect("fan_import_preview", account_id=account_id, import_id=import_id)
    elif request.method == "POST":
        error, status = "Check the form.", 400
    fan_import.refresh_from_db()
    samples = _samples(fan_import) or [[] for _ in fan_import.header]
    context = {
        "account": fan_import.account,
        "fan_import": fan_import,
        "form": form,
        "columns": list(zip(form.column_fields(), samples, strict=False)),
        "delimiter_label": DELIMITER_LABELS.get(fan_import.delimiter, fan_import.delimiter).lower()
        + "s",
        "encoding_label": ENCODINGS.get(fan_import.encoding, fan_import.encoding),
        "view_steps": STEPS,
        "error": error,
    }
    return render(request, "imports/map.html", context, status=status)


@login_required
@require_GET
def import_preview(request: AuthenticatedRequest, account_id: int, import_id: int) -> HttpResponse:
    fan_import = _import(request, account_id, import_id)
    if fan_import.state != FanImport.State.DRAFT:
        return redirect("fan_import_detail", account_id=account_id, import_id=import_id)
    error = ""
    preview = None
    try:
        preview = services.fan_import_preview(actor=request.user, fan_import=fan_import)
    except ApplicationError as exc:
        error = exc.message
    mapped = [(i, name) for i, name in enumerate(fan_import.columns) if name]
    context = {
        "account": fan_import.account,
        "fan_import": fan_import,
        "preview": preview,
        "counts": preview.counts if preview else None,
        "error": error,
        "mapped": [(i, FIELDS[name].label, name) for i, name in mapped],
        "rows": _preview_rows(preview, mapped) if preview else [],
        "view_steps": STEPS,
    }
    return render(request, "imports/preview.html", context, status=400 if error else 200)


@login_required
@require_GET
def import_preview_counts(
    request: AuthenticatedRequest, account_id: int, import_id: int
) -> HttpResponse:
    """The preview's counts over a large file (the fragment the preview page asks for)."""
    fan_import = _import(request, account_id, import_id)
    if fan_import.state != FanImport.State.DRAFT:
        return redirect("fan_import_detail", account_id=account_id, import_id=import_id)
    counts, error = None, ""
    try:
        counts = services.fan_import_preview_counts(actor=request.user, fan_import=fan_import)
    except ApplicationError as exc:
        error = exc.message
    context = {
        "account": fan_import.account,
        "fan_import": fan_import,
        "counts": counts,
        "counts_error": error,
    }
    if not request.htmx and not error:
        # The placeholder's link, without htmx: the whole page, with the counts just kept.
        return import_preview(request, account_id, import_id)
    return render(request, "imports/preview.html#counts", context, status=400 if error else 200)


_SHOW = {
    "platform_fan_id": "platform_fan_id",
    "username": "username",
    "display_name": "display_name",
    "email": "email",
    "tags": "tags",
    "notes": "notes",
    "lifetime_spend": "spend_cents",
    "subscription_state": "subscription_state",
    "subscribed_at": "subscribed_at",
    "subscription_expires_at": "expires_at",
    "last_seen_at": "last_seen_at",
}


def _preview_rows(preview: services.Preview, mapped: list[tuple[int, str]]) -> list[dict[str, Any]]:
    rows = []
    for row in preview.rows:
        cells = []
        for index, name in mapped:
            raw = row.cells[index] if index < len(row.cells) else ""
            value = row.values.get(_SHOW[name]) if row.values else None
            if name == "lifetime_spend" and value is not None:
                value = f"${value / 100:,.2f}"
            elif name == "tags" and value is not None:
                value = ", ".join(value)
            cells.append({"raw": raw, "value": value, "error": row.errors.get(index, "")})
        rows.append(
            {
                "row_no": row.row_no,
                "cells": cells,
                "error": " ".join(
                    m for i, m in row.errors.items() if i is None or i not in dict(mapped)
                ),
                "invalid": bool(row.errors),
            }
        )
    return rows


@login_required
@require_POST
def import_start(request: AuthenticatedRequest, account_id: int, import_id: int) -> HttpResponse:
    fan_import = _import(request, account_id, import_id)
    try:
        services.fan_import_start(actor=request.user, fan_import=fan_import)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("fan_import_preview", account_id=account_id, import_id=import_id)
    return redirect("fan_import_detail", account_id=account_id, import_id=import_id)


@login_required
@require_GET
def import_detail(request: AuthenticatedRequest, account_id: int, import_id: int) -> HttpResponse:
    """The progress page while it runs (the fragment polls itself), the report when done."""
    fan_import = _import(request, account_id, import_id)
    if fan_import.state == FanImport.State.DRAFT:
        return redirect("fan_import_map", account_id=account_id, import_id=import_id)
    rate, left = run.fan_import_rate(fan_import)
    total_work = 2 * fan_import.rows_total or 1
    context = {
        "account": fan_import.account,
        "fan_import": fan_import,
        "percent": min(100, int(100 * (fan_import.rows_read + fan_import.rows_done) / total_work))
        if not fan_import.is_finished
        else 100,
        "rate": rate,
        "seconds_left": left,
        "stalled": services.fan_import_is_stalled(fan_import),
    }
    template = "imports/detail.html#progress" if request.htmx else "imports/detail.html"
    return render(request, template, context)


@login_required
@require_POST
def import_requeue(request: AuthenticatedRequest, account_id: int, import_id: int) -> HttpResponse:
    fan_import = _import(request, account_id, import_id)
    if services.fan_import_requeue(actor=request.user, fan_import=fan_import):
        messages.success(request, "The import was queued again; it goes on where it stopped.")
    return redirect("fan_import_detail", account_id=account_id, import_id=import_id)


@login_required
@require_GET
def import_errors(
    request: AuthenticatedRequest, account_id: int, import_id: int
) -> HttpResponseBase:
    fan_import = _import(request, account_id, import_id)
    try:
        return errors_file_response(fan_import)
    except NotFoundError as exc:
        raise Http404(exc.message) from exc
