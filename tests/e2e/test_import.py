"""The CSV import in a real browser: upload → map → preview → progress (polled while a real
worker picks the task up) → report download, then the fans in the list."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm.models import Fan
from imports.models import FanImport
from tests.e2e.conftest import SHOTS
from tests.factories import CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]

WORKER_TIMEOUT_MS = 60_000
CONTENT = (
    "Username;Display Name;Email;Total Spent;Last Seen;Fan ID\r\n"
    "@Alice;Alice Ä;alice@example.com;1.234,50 €;31/12/2025;9001\r\n"
    "bob;Bob;not-an-email;5;01/11/2025;9002\r\n"
    "carol;Carol 🎉;;0;02/11/2025;9003\r\n"
).encode("utf-8-sig")


@pytest.fixture
def import_worker(sqs_server: str) -> Iterator[Callable[[], None]]:
    """``start()``: a real Celery worker on the queues, started when the test says (so the
    page can be seen waiting for it first), stopped at the end."""
    from django.conf import settings
    from django.db import connection

    from onlyfans.broker import worker_argv

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "WARNING",
    }
    started: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        started.append(
            subprocess.Popen(
                worker_argv(hostname="e2e-import@%h", concurrency=1, loglevel="WARNING"),
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    yield start
    for proc in started:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_upload_map_preview_progress_report(login, member, import_worker, tmp_path: Path):
    account = CreatorAccountFactory()
    FanFactory(account=account, platform_fan_id="9003", username="carol", display_name="Old")
    owner = member(account, "owner")
    page = login(owner)

    # the fans page links to the import
    page.goto(f"/accounts/{account.pk}/fans/")
    page.click("#fans-import-link")
    expect(page.locator("h1")).to_contain_text("Import fans")

    # upload
    page.set_input_files(
        "input[name=file]", {"name": "export.csv", "mimeType": "text/csv", "buffer": CONTENT}
    )
    page.click("#upload-form button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Map columns")
    # suggestions from the header names, first values beside them
    expect(page.locator("select[name=column_0]")).to_have_value("username")
    expect(page.locator("select[name=column_3]")).to_have_value("lifetime_spend")
    expect(page.locator("#map-form")).to_contain_text("@Alice")
    page.click("#map-form button[type=submit]")

    # preview: counts over the file, the date order found, invalid cells with their reason
    expect(page.locator("h1")).to_contain_text("Preview")
    expect(page.locator("[data-count=create]")).to_have_text("1")
    expect(page.locator("[data-count=update]")).to_have_text("1")
    expect(page.locator("[data-count=reject]")).to_have_text("1")
    expect(page.locator("#date-order")).to_contain_text("day first")
    expect(page.locator("#preview-rows td.invalid")).to_contain_text("not a valid email")
    expect(page.locator("#preview-rows")).to_contain_text("$1,234.50")
    assert not Fan.objects.filter(account=account, username="Alice").exists()

    # start: no worker yet, so the progress page waits and polls
    page.click("#start-import")
    progress = page.locator("#import-progress")
    expect(progress).to_have_attribute("data-state", "queued")
    expect(progress).to_contain_text("Waiting for a worker")
    page.evaluate("window.__e2eNoReload = true")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "import-progress.png"))

    # a worker picks the task up; the polled fragment turns into the report, no reload
    import_worker()
    expect(page.locator("#import-done")).to_be_visible(timeout=WORKER_TIMEOUT_MS)
    assert page.evaluate("window.__e2eNoReload === true"), "the page was reloaded"
    expect(page.locator("[data-count=created]")).to_have_text("1")
    expect(page.locator("[data-count=updated]")).to_have_text("1")
    expect(page.locator("[data-count=rejected]")).to_have_text("1")
    page.screenshot(path=str(SHOTS / "import-report.png"))

    # the report: the rejected row as it was, with its reason
    with page.expect_download() as download_info:
        page.click("#download-rejected")
    download = download_info.value
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8-sig"))))
    assert rows[0] == [
        "Username",
        "Display Name",
        "Email",
        "Total Spent",
        "Last Seen",
        "Fan ID",
        "error",
    ]
    assert rows[1][:3] == ["bob", "Bob", "not-an-email"]
    assert "not a valid email address" in rows[1][6]

    # the fans are in the list
    page.click("text=See the fans")
    expect(page.locator("#fan-table")).to_contain_text("Alice Ä")
    expect(page.locator("#fan-table")).to_contain_text("Carol 🎉")
    fan_import = FanImport.objects.get(account=account)
    assert (fan_import.state, fan_import.created, fan_import.updated) == ("done", 1, 1)

    # history on the import page
    page.goto(f"/accounts/{account.pk}/fans/import/")
    expect(page.locator("#import-history")).to_contain_text("export.csv")
