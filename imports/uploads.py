"""Uploads streamed to disk in chunks, never held whole in memory, and cut off at the limit."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.http import HttpRequest


class LimitedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file handler that stops writing past IMPORT_MAX_UPLOAD_BYTES and
    marks the request (``request.upload_too_large``) so the view can answer 413."""

    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.limit = int(settings.IMPORT_MAX_UPLOAD_BYTES)
        self.received = 0

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, *args: Any, **kwargs: Any
    ) -> None:
        # The body holds the file plus a few hundred bytes of form fields and boundaries.
        if self.request is not None and content_length > self.limit + 64 * 1024:
            self.request.upload_too_large = True  # type: ignore[attr-defined]
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        if self.request is not None and getattr(self.request, "upload_too_large", False):
            raise SkipFile
        self.received = 0
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.request is not None:
                self.request.upload_too_large = True  # type: ignore[attr-defined]
            raise SkipFile
        return super().receive_data_chunk(raw_data, start)


def upload_handlers_install(request: HttpRequest) -> None:
    """Must run before anything reads request.POST or request.FILES."""
    request.upload_handlers = [LimitedTemporaryFileUploadHandler(request)]
