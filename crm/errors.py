"""The one application error: services raise it, views and APIs turn it into a clear answer."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A rule of the product was broken by the caller's input or the object's state.

    ``code`` is stable (clients switch on it); ``message`` is for people; ``fields`` maps
    input fields to their own messages when the error is about specific fields.
    """

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        fields: dict[str, list[str]] | None = None,
        status_code: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}
        self.extra = extra or {}
        if status_code is not None:
            self.status_code = status_code


class NotFoundError(ApplicationError):
    """The object does not exist, or the acting user may not see it (both look the same)."""

    status_code = 404

    def __init__(self, message: str = "Not found.", *, code: str = "not_found") -> None:
        super().__init__(message, code=code)
