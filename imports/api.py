"""The import API for scripts: ``POST /api/onlyfans/import/csv`` and
``GET /api/onlyfans/import/{import_id}`` (errors as in crm/api_errors.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

from django.contrib.auth.models import User
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import FileResponse, HttpRequest
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.errors import ApplicationError
from crm.serializers import error_responses
from imports import selectors, services
from imports.csvfile import DELIMITERS, ENCODINGS
from imports.fields import FIELDS
from imports.models import FanImport
from imports.uploads import upload_handlers_install

REFUSED_400 = (
    "empty_file, no_rows, no_header, no_usable_column, invalid_mapping, malformed_csv, "
    "bad_encoding, date_order_required, validation_error"
)


class ImportCreateSerializer(serializers.Serializer):
    account = serializers.IntegerField(help_text="The creator account's id.")
    file = serializers.FileField(
        allow_empty_file=True, help_text="The CSV (UTF-8, UTF-16 or Windows-1252; , ; or tab)."
    )
    mapping = serializers.CharField(
        required=False,
        help_text=(
            "JSON object: CSV header → fan field (" + ", ".join(FIELDS) + "); headers left "
            "out are ignored. Without it the mapping suggested from the header names is used."
        ),
    )
    match_on = serializers.ChoiceField(
        choices=FanImport.MatchOn.choices,
        required=False,
        help_text="Left out: platform_fan_id when a column holds it, username otherwise.",
    )
    on_match = serializers.ChoiceField(
        choices=FanImport.OnMatch.choices, default=FanImport.OnMatch.UPDATE
    )
    date_order = serializers.ChoiceField(
        choices=FanImport.DateOrder.choices, default=FanImport.DateOrder.AUTO
    )
    encoding = serializers.ChoiceField(
        choices=list(ENCODINGS), required=False, help_text="Detected when left out."
    )
    delimiter = serializers.ChoiceField(
        choices=list(DELIMITERS), required=False, help_text="Detected when left out."
    )


class ImportQueuedSerializer(serializers.Serializer):
    import_id = serializers.IntegerField()
    state = serializers.CharField()
    rows_total = serializers.IntegerField()
    url = serializers.CharField(help_text="Where to follow the import.")


class ImportStatusSerializer(serializers.Serializer):
    import_id = serializers.IntegerField(source="pk")
    account = serializers.IntegerField(source="account_id")
    state = serializers.ChoiceField(choices=["draft", "queued", "running", "done", "failed"])
    phase = serializers.CharField(help_text="read, dedupe, merge, report or finished.")
    file_name = serializers.CharField()
    rows_total = serializers.IntegerField()
    rows_read = serializers.IntegerField(help_text="Rows read and checked so far.")
    rows_done = serializers.IntegerField(help_text="Rows merged (or refused) so far.")
    created = serializers.IntegerField()
    updated = serializers.IntegerField()
    skipped = serializers.IntegerField(help_text="Matches left alone and duplicates.")
    duplicates = serializers.IntegerField(help_text="Rows whose key a later row repeats.")
    rejected = serializers.IntegerField()
    errors_url = serializers.SerializerMethodField(
        help_text="The rejected and skipped rows as CSV with an error column, once done."
    )
    error = serializers.SerializerMethodField(help_text="{code, detail} of a failed import.")
    match_on = serializers.CharField()
    on_match = serializers.CharField()
    date_order = serializers.CharField()
    date_order_used = serializers.CharField(source="effective_date_order")
    encoding = serializers.CharField()
    delimiter = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_errors_url(self, obj: FanImport) -> str | None:
        if not obj.errors_path:
            return None
        path = reverse("api_fan_import_errors", args=[obj.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_error(self, obj: FanImport) -> dict[str, str] | None:
        if obj.state != FanImport.State.FAILED:
            return None
        return {"code": obj.error_code, "detail": obj.error_message}


def _actor(request: Request) -> User:
    return cast(User, request.user)


class ImportCreateApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        upload_handlers_install(request)
        return super().dispatch(request, *args, **kwargs)

    @extend_schema(
        summary="Import fans from a CSV file (owners and managers)",
        description=(
            "Checks the file (encoding, delimiter, header, quotes, every row's shape) before "
            "answering; a refused file writes nothing. The import then runs as a task: follow "
            "it with `GET /api/onlyfans/import/{import_id}`."
        ),
        request={"multipart/form-data": ImportCreateSerializer},
        responses={
            202: ImportQueuedSerializer,
            **error_responses(
                {
                    400: REFUSED_400,
                    403: "permission_denied (chatters cannot import)",
                    404: "account_not_found",
                    413: "file_too_large",
                    415: "not_csv",
                }
            ),
        },
    )
    def post(self, request: Request) -> Response:
        django_request = request._request
        try:
            data = request.data
        finally:
            if getattr(django_request, "upload_too_large", False):
                self._too_large()
        params = ImportCreateSerializer(data=data)
        params.is_valid(raise_exception=True)
        values = params.validated_data
        upload = values["file"]
        mapping = _mapping_parse(values.get("mapping"))
        fan_import = services.fan_import_create(
            actor=_actor(request),
            account_id=values["account"],
            upload_path=_upload_path(upload),
            file_name=upload.name or "import.csv",
            encoding=values.get("encoding"),
            delimiter=values.get("delimiter"),
            mapping=mapping,
            match_on=values.get("match_on"),
            on_match=values["on_match"],
            date_order=values["date_order"],
            start=True,
        )
        body = {
            "import_id": fan_import.pk,
            "state": fan_import.state,
            "rows_total": fan_import.rows_total,
            "url": request.build_absolute_uri(reverse("api_fan_import", args=[fan_import.pk])),
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @staticmethod
    def _too_large() -> None:
        from django.conf import settings

        limit_mb = int(settings.IMPORT_MAX_UPLOAD_BYTES) // (1024 * 1024)
        raise ApplicationError(
            f"The file is larger than {limit_mb} MB.", code="file_too_large", status_code=413
        )


def _upload_path(upload: Any) -> Path:
    """The upload on disk (the streaming handler always writes a temporary file)."""
    if isinstance(upload, TemporaryUploadedFile):
        return Path(upload.temporary_file_path())
    raise ApplicationError("The file could not be stored.", code="upload_failed")


def _mapping_parse(raw: str | None) -> dict[str, str] | None:
    if raw is None or not raw.strip():
        return None
    try:
        mapping = json.loads(raw)
    except ValueError as exc:
        raise ApplicationError(
            "mapping must be a JSON object {CSV header: field}.", code="invalid_mapping"
        ) from exc
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in mapping.items()
    ):
        raise ApplicationError(
            "mapping must be a JSON object {CSV header: field}.", code="invalid_mapping"
        )
    return {key: value or "" for key, value in mapping.items()}


class ImportDetailApi(APIView):
    @extend_schema(
        summary="An import's state and counters",
        responses={
            200: ImportStatusSerializer,
            **error_responses({403: "permission_denied", 404: "import_not_found"}),
        },
    )
    def get(self, request: Request, import_id: int) -> Response:
        fan_import = selectors.fan_import_get(user=_actor(request), import_id=import_id)
        return Response(ImportStatusSerializer(fan_import, context={"request": request}).data)


class ImportErrorsApi(APIView):
    @extend_schema(
        summary="An import's rejected and skipped rows as CSV, with an error column",
        responses={
            (200, "text/csv"): OpenApiResponse(description="The rows, formulas neutralised."),
            **error_responses({403: "permission_denied", 404: "import_not_found"}),
        },
    )
    def get(self, request: Request, import_id: int) -> Any:
        fan_import = selectors.fan_import_get(user=_actor(request), import_id=import_id)
        return errors_file_response(fan_import)


def errors_file_response(fan_import: FanImport) -> FileResponse:
    from crm.errors import NotFoundError

    if not fan_import.errors_path or not Path(fan_import.errors_path).exists():
        raise NotFoundError("This import has no rejected rows.", code="no_errors_file")
    name = f"{Path(fan_import.file_name).stem or 'import'}-rejected.csv"
    return FileResponse(
        open(fan_import.errors_path, "rb"),
        as_attachment=True,
        filename=name,
        content_type="text/csv; charset=utf-8",
    )
