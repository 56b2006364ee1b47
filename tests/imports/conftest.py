"""Helpers for import tests: files written as the tools people use write them, and a way to
run an import's task to the end in the test's thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from imports import run, services
from imports.models import FanImport
from tests.factories import MembershipFactory


@pytest.fixture(autouse=True)
def _import_storage(settings: Any, tmp_path: Path) -> None:
    settings.IMPORT_STORAGE_DIR = tmp_path / "storage"


@pytest.fixture
def manager(account):
    return MembershipFactory(account=account, role="manager").user


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    counter = iter(range(10_000))

    def write(content: str | bytes, *, encoding: str = "utf-8", name: str = "") -> Path:
        path = tmp_path / (name or f"upload-{next(counter)}.csv")
        data = content if isinstance(content, bytes) else content.encode(encoding)
        path.write_bytes(data)
        return path

    return write


def import_run(fan_import: FanImport, *, budget_seconds: float = 60) -> FanImport:
    """Run the import's steps as the task would, to the end."""
    for _ in range(1000):
        if run.fan_import_advance(import_id=fan_import.pk, budget_seconds=budget_seconds):
            break
    fan_import.refresh_from_db()
    return fan_import


@pytest.fixture
def queued_import(owner, account, write_file) -> Callable[..., FanImport]:
    """``queued_import(csv_text, **options)``: the import created as the API does (queued),
    not run yet."""

    def create(content: str | bytes, *, encoding: str = "utf-8", **options: Any) -> FanImport:
        path = write_file(content, encoding=encoding)
        return services.fan_import_create(
            actor=owner, account_id=account.pk, upload_path=path, file_name="fans.csv",
            start=True, **options,
        )  # fmt: skip

    return create


@pytest.fixture
def run_import(queued_import) -> Callable[..., FanImport]:
    """``run_import(csv_text, **options)``: create the import as the API does and run it."""

    def run(content: str | bytes, **options: Any) -> FanImport:
        return import_run(queued_import(content, **options))

    return run
