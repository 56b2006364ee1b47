from __future__ import annotations

from pathlib import Path

import pytest
from django.utils import timezone

from crm.models import Fan
from imports.models import FanImport

pytestmark = pytest.mark.django_db


def test_a_simple_file_creates_fans(run_import, account, django_capture_on_commit_callbacks):
    content = (
        "Username,Display Name,Email,Subscription Tier,Total Spent,Last Seen,Fan ID\n"
        '@Alice,Alice A,alice@example.com,VIP;Whale,"$1,234.50",2025-11-01,111\n'
        "bob,Bob 🎉,,gold,12.5,31/12/2025,222\n"
    )
    fan_import = run_import(content)
    assert fan_import.state == "done", fan_import.error_message
    assert (fan_import.created, fan_import.updated, fan_import.rejected) == (2, 0, 0)
    alice = Fan.objects.get(account=account, username="Alice")
    assert alice.tags == ["vip", "whale"]
    assert alice.lifetime_spend_cents == 123450
    assert alice.platform_fan_id == "111"
    bob = Fan.objects.get(account=account, username="bob")
    assert bob.display_name == "Bob 🎉"
    assert bob.last_seen_at is not None and bob.last_seen_at.day == 31


# --- Formats -----------------------------------------------------------------------------------

ROWS = [
    ["Username", "Display Name", "Email", "Total Spent", "Fan ID"],
    ["zoë", "Zoë Müller ✨", "zoe@example.com", "€1.234,50", "1"],
    ["@José", "José\nsecond line", "", "12", "2"],
]


def _lines(delimiter: str, newline: str = "\r\n") -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=newline).writerows(ROWS)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        (_lines("\t").encode("utf-16"), "utf-16", "\t"),  # Excel "Unicode text": BOM, tabs
        (_lines(",").encode("utf-16-le"), "utf-16-le", ","),  # no BOM
        ("\ufeff".encode() + _lines(",").encode(), "utf-8", ","),  # Excel "CSV UTF-8": BOM
        (_lines(";").encode("utf-8"), "utf-8", ";"),
    ],
)
def test_encodings_and_delimiters_are_detected(run_import, account, data, encoding, delimiter):
    fan_import = run_import(data)
    assert (fan_import.encoding, fan_import.delimiter) == (encoding, delimiter)
    assert (fan_import.created, fan_import.rejected) == (2, 0), fan_import.error_message
    zoe = Fan.objects.get(account=account, username="zoë")
    assert zoe.display_name == "Zoë Müller ✨"
    assert zoe.lifetime_spend_cents == 123450
    assert Fan.objects.get(account=account, username="José").display_name == "José\nsecond line"


def test_windows_1252_with_semicolons(run_import, account):
    data = _lines(";").replace("✨", "").encode("cp1252")
    fan_import = run_import(data)
    assert (fan_import.encoding, fan_import.delimiter) == ("cp1252", ";")
    assert Fan.objects.get(account=account, username="zoë").display_name == "Zoë Müller"


def test_mixed_line_endings(run_import, account):
    fan_import = run_import("Username,Fan ID\r\nann,1\nbea,2\rcid,3\r\n")
    assert fan_import.created == 3


def test_a_one_megabyte_field_rejects_its_row_only(run_import, account):
    big = "x" * 1_048_576
    fan_import = run_import(f'Username,Notes,Fan ID\nann,"{big}",1\nbea,short,2\n')
    assert (fan_import.created, fan_import.rejected) == (1, 1)
    report = Path(fan_import.errors_path).read_text(encoding="utf-8-sig")
    assert "Notes can have at most 10,000 characters" in report


def test_formula_cells_are_stored_as_text(run_import, account):
    fan_import = run_import('Username,Display Name,Fan ID\nann,=HYPERLINK("x"),1\n')
    assert fan_import.created == 1
    assert Fan.objects.get(account=account).display_name == '=HYPERLINK("x")'


def test_values_and_reasons(run_import, account):
    content = (
        "Username,Total Spent,Email,Tags,Subscription Status,Fan ID\n"
        "ann,USD 20,ann@example.com,a; B |c,active,1\n"
        "bea,-5,,,,2\n"
        "cid,ten dollars,,,,3\n"
        "dan,,nope@,,,4\n"
        ",5,,,,5\n"
        "eve,5,,,maybe,6\n"
        "fay,5,,,,\n"
    )
    fan_import = run_import(content)
    assert (fan_import.created, fan_import.rejected) == (1, 6)
    ann = Fan.objects.get(account=account)
    assert (ann.lifetime_spend_cents, ann.tags, ann.subscription_state) == (
        2000, ["a", "b", "c"], "active",
    )  # fmt: skip
    report = Path(fan_import.errors_path).read_text(encoding="utf-8-sig")
    for reason in ("is negative", "is not an amount", "not a valid email", "username is required",
                   "not a subscription state", "Platform fan id: required"):  # fmt: skip
        assert reason in report, reason


# --- Dates -------------------------------------------------------------------------------------


def test_date_order_is_inferred_from_an_unambiguous_date(run_import, account):
    content = (
        "Username,Fan ID,Last Seen\nann,1,01/11/2025\nbea,2,31/12/2025 14:30\ncid,3,Nov 1, 2025\n"
    )
    content = content.replace("Nov 1, 2025", '"Nov 1, 2025"')
    fan_import = run_import(content)
    assert fan_import.date_order_inferred == "day_first"
    seen = Fan.objects.get(account=account, username="ann").last_seen_at
    assert seen is not None and (seen.month, seen.day) == (11, 1)


def test_month_first_is_inferred_too(run_import, account):
    fan_import = run_import("Username,Fan ID,Last Seen\nann,1,11/01/2025\nbea,2,12/31/2025\n")
    assert fan_import.date_order_inferred == "month_first"
    seen = Fan.objects.get(account=account, username="ann").last_seen_at
    assert seen is not None and (seen.month, seen.day) == (11, 1)


def test_a_chosen_date_order_wins(run_import, account):
    run_import("Username,Fan ID,Last Seen\nann,1,01/02/2025\n", date_order="month_first")
    seen = Fan.objects.get(account=account).last_seen_at
    assert seen is not None and seen.month == 1


# --- Matching ----------------------------------------------------------------------------------

EXISTING = "Username,Display Name,Tags,Fan ID\nAnn,Ann New,new,1\nbea,Bea,,2\n"


@pytest.fixture
def ann(account):
    from tests.factories import FanFactory

    return FanFactory(account=account, platform_fan_id="1", username="ann", display_name="Old",
                      tags=["old"])  # fmt: skip


def test_update_policy(run_import, account, ann):
    fan_import = run_import(EXISTING, on_match="update")
    assert (fan_import.created, fan_import.updated, fan_import.skipped) == (1, 1, 0)
    ann.refresh_from_db()
    assert (ann.display_name, ann.tags, ann.username) == ("Ann New", ["old", "new"], "Ann")
    assert Fan.objects.filter(account=account).count() == 2


@pytest.mark.parametrize("policy", ["skip", "add_only"])
def test_skip_and_add_only_leave_matches_alone(run_import, account, ann, policy):
    fan_import = run_import(EXISTING, on_match=policy)
    assert (fan_import.created, fan_import.updated, fan_import.skipped) == (1, 0, 1)
    ann.refresh_from_db()
    assert ann.display_name == "Old"


def test_usernames_match_case_insensitively_and_lose_the_at(run_import, account, ann):
    fan_import = run_import("Username,Display Name\n@ANN,Ann Again\n", match_on="username")
    assert (fan_import.created, fan_import.updated) == (0, 1)
    ann.refresh_from_db()
    assert ann.display_name == "Ann Again"


def test_rows_without_platform_id_are_stored_unlinked(run_import, account):
    run_import("Username,Email\nann,ann@example.com\n", match_on="username")
    fan = Fan.objects.get(account=account)
    assert fan.platform_fan_id is None and not fan.is_linked


def test_an_unlinked_fan_is_linked_by_username(run_import, account):
    from tests.factories import FanFactory

    unlinked = FanFactory(account=account, platform_fan_id=None, username="ann")
    fan_import = run_import("Username,Fan ID\nann,77\n")
    assert (fan_import.created, fan_import.updated) == (0, 1)
    unlinked.refresh_from_db()
    assert unlinked.platform_fan_id == "77"


def test_a_username_of_another_fan_is_refused(run_import, account, ann):
    fan_import = run_import("Username,Fan ID\nann,99\n")
    assert (fan_import.created, fan_import.rejected) == (0, 1)
    assert "belongs to the fan with platform id 1" in Path(fan_import.errors_path).read_text()


def test_duplicates_in_the_file_last_row_wins(run_import, account):
    fan_import = run_import("Username,Display Name,Fan ID\nann,First,1\nbea,Bea,2\nann,Last,1\n")
    assert (fan_import.created, fan_import.skipped, fan_import.duplicates) == (2, 1, 1)
    assert Fan.objects.get(account=account, username="ann").display_name == "Last"
    report = Path(fan_import.errors_path).read_text(encoding="utf-8-sig")
    assert "duplicate of row 4" in report


def test_other_accounts_fans_are_never_touched(run_import, account, other_fan):
    run_import(
        f"Username,Display Name,Fan ID\n{other_fan.username},X,{other_fan.platform_fan_id}\n"
    )
    other_fan.refresh_from_db()
    assert other_fan.display_name != "X"
    assert Fan.objects.filter(account=account).count() == 1


# --- Re-runs and crashes -----------------------------------------------------------------------


def test_running_the_same_file_again_creates_no_duplicate(run_import, account):
    content = "Username,Fan ID\nann,1\nbea,2\n"
    first = run_import(content)
    second = run_import(content)
    assert (first.created, second.created, second.updated) == (2, 0, 2)
    assert Fan.objects.filter(account=account).count() == 2


def test_an_import_killed_midway_resumes_without_duplicates(account, queued_import, settings):
    from imports import engine
    from tests.imports.conftest import import_run

    settings.IMPORT_READ_BATCH_ROWS = 10
    settings.IMPORT_MERGE_BATCH_ROWS = 10
    content = "Username,Fan ID\n" + "".join(f"fan{n},{n}\n" for n in range(1, 56))
    fan_import = queued_import(content)

    # The worker dies in the middle of the third merge batch (after its INSERT).
    real_merge = engine.rows_merge
    calls = {"n": 0}

    def dying_merge(*args, **kwargs):
        calls["n"] += 1
        counts = real_merge(*args, **kwargs)
        if calls["n"] == 3:
            raise SystemExit("worker killed")
        return counts

    engine.rows_merge = dying_merge
    try:
        with pytest.raises(SystemExit):
            import_run(fan_import)
    finally:
        engine.rows_merge = real_merge
    fan_import.refresh_from_db()
    assert fan_import.state == "running" and fan_import.phase == "merge"
    assert fan_import.rows_done == 20  # two whole batches committed, the third rolled back
    assert Fan.objects.filter(account=account).count() == 20

    # The redelivered task resumes from the checkpoint.
    fan_import = import_run(fan_import)
    assert fan_import.state == "done"
    assert (fan_import.created, fan_import.updated, fan_import.rows_done) == (55, 0, 55)
    assert Fan.objects.filter(account=account).count() == 55


def test_a_run_out_of_time_continues_in_the_next_run(queued_import, settings):
    from imports import run

    settings.IMPORT_READ_BATCH_ROWS = 5
    settings.IMPORT_MERGE_BATCH_ROWS = 5
    content = "Username,Fan ID\n" + "".join(f"fan{n},{n}\n" for n in range(1, 23))
    fan_import = queued_import(content)
    runs = 1
    while not run.fan_import_advance(import_id=fan_import.pk, budget_seconds=0):
        runs += 1
    fan_import.refresh_from_db()
    assert runs > 5
    assert (fan_import.state, fan_import.created, fan_import.rows_done) == ("done", 22, 22)


def test_the_task_publishes_itself_again_on_the_bulk_queue(
    owner, account, write_file, settings, monkeypatch
):
    from config.celery import app
    from imports import run, tasks
    from onlyfans.broker import queue_names

    published = []
    monkeypatch.setattr(
        app,
        "send_task",
        lambda name, *, args, queue, **options: published.append((name, args, queue)),
    )
    monkeypatch.setattr(run, "fan_import_advance", lambda import_id: False)
    assert tasks.fan_import_task.run(123) == "continued"
    assert published == [("imports.tasks.fan_import_task", (123,), queue_names().bulk)]
    assert queue_names().bulk == f"{settings.SQS_QUEUE_PREFIX}bulk"


# --- After the import --------------------------------------------------------------------------


def test_a_finished_import_syncs_the_account_for_its_chats(run_import, account, owner):
    from onlyfans.models import FanSync

    # given the account's first sync has finished
    FanSync.objects.filter(account=account).update(
        state=FanSync.State.DONE, started_at=timezone.now(), finished_at=timezone.now()
    )
    # when an import adds fans
    run_import("Username,Fan ID\nann,1\n")
    # then one sync is queued, by the import's user, to bring their chats to the inbox
    run = FanSync.objects.get(account=account, state=FanSync.State.QUEUED)
    assert run.requested_by == owner and run.trigger == FanSync.Trigger.IMPORT


def test_no_sync_for_a_disconnected_account_or_a_running_one(run_import, account):
    from onlyfans.models import FanSync

    run_import("Username,Fan ID\nann,1\n")
    assert FanSync.objects.filter(account=account).count() == 1  # the one already queued
    FanSync.objects.filter(account=account).update(
        state=FanSync.State.DONE, started_at=timezone.now(), finished_at=timezone.now()
    )
    account.connection_state = "expired"
    account.save(update_fields=["connection_state"])
    run_import("Username,Fan ID\nbea,2\n")
    assert not FanSync.objects.filter(account=account, state=FanSync.State.QUEUED).exists()


def test_the_upload_is_removed_and_the_report_kept(
    queued_import, django_capture_on_commit_callbacks
):
    from tests.imports.conftest import import_run

    fan_import = queued_import("Username,Fan ID,Total Spent\nann,1,5\nbea,2,-5\n")
    upload = Path(fan_import.file_path)
    assert upload.exists()
    with django_capture_on_commit_callbacks(execute=True):
        fan_import = import_run(fan_import)
    assert fan_import.state == "done" and fan_import.rejected == 1
    assert not upload.exists()
    assert "is negative" in Path(fan_import.errors_path).read_text(encoding="utf-8-sig")


def test_a_failed_import_removes_its_upload(queued_import, django_capture_on_commit_callbacks):
    from imports import run

    fan_import = queued_import("Username,Fan ID\nann,1\n")
    upload = Path(fan_import.file_path)
    # the task's last retry gives up
    with django_capture_on_commit_callbacks(execute=True):
        run.fan_import_mark_failed(import_id=fan_import.pk, code="import_error", message="x")
    fan_import.refresh_from_db()
    assert fan_import.state == "failed"
    assert not upload.exists()


def test_staged_rows_lost_in_a_database_crash_are_read_again(account, queued_import, settings):
    from django.db import connection

    from imports import engine, run
    from tests.imports.conftest import import_run

    settings.IMPORT_READ_BATCH_ROWS = 10
    settings.IMPORT_MERGE_BATCH_ROWS = 10
    content = "Username,Fan ID\n" + "".join(f"fan{n},{n}\n" for n in range(1, 36))
    fan_import = queued_import(content)
    # given a run that merged two batches, then PostgreSQL crashed (it empties UNLOGGED tables)
    run.fan_import_advance(import_id=fan_import.pk, budget_seconds=0)  # read batch 1
    while FanImport.objects.get(pk=fan_import.pk).rows_done < 20:
        run.fan_import_advance(import_id=fan_import.pk, budget_seconds=0)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {engine.staging_table(fan_import.pk)}")
    # when the task runs again
    fan_import = import_run(fan_import)
    # then the file is read again and every fan is there once
    assert fan_import.state == "done"
    assert Fan.objects.filter(account=account).count() == 35
    assert fan_import.rows_done == 35 and fan_import.created + fan_import.updated == 35


def test_staged_rows_lost_while_reading_are_read_again(queued_import, settings):
    from django.db import connection

    from imports import engine, run
    from tests.imports.conftest import import_run

    settings.IMPORT_READ_BATCH_ROWS = 10
    content = "Username,Fan ID\n" + "".join(f"fan{n},{n}\n" for n in range(1, 26))
    fan_import = queued_import(content)
    run.fan_import_advance(import_id=fan_import.pk, budget_seconds=0)  # one read batch
    assert 0 < FanImport.objects.get(pk=fan_import.pk).checkpoint_row < 26
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {engine.staging_table(fan_import.pk)}")
    fan_import = import_run(fan_import)
    assert (fan_import.state, fan_import.created, fan_import.rows_read) == ("done", 25, 25)


def test_a_fan_added_by_another_writer_during_the_merge_is_left_to_it(account):
    from django.db import connection, transaction

    from imports import engine

    # given two staged rows for one new fan: what the merge meets when another writer (a
    # webhook, the sync) adds a fan after the batch's rows were matched
    table = "imports_staged_fan_test"
    with transaction.atomic(), connection.cursor() as cursor:
        engine.staging_create(cursor, table, temporary=True)
        cursor.execute(
            f"INSERT INTO {table} (row_no, status, platform_fan_id, username)"
            " VALUES (2, 'ok', '5', 'ann'), (3, 'ok', '5', 'ann2')"
        )
        # when the batch is merged
        counts = engine.rows_merge(
            cursor, table, account_id=account.pk, match_on="platform_fan_id",
            on_match="update", columns=["platform_fan_id", "username"], after_row=0,
            through_row=3,
        )  # fmt: skip
    # then one fan is added and the other row counts as skipped; the batch is not lost
    assert (counts["created"], counts["skipped"], counts["rows"]) == (1, 1, 2)
    assert Fan.objects.filter(account=account, platform_fan_id="5").count() == 1


def test_drafts_nobody_started_leave_with_their_uploads(
    owner, account, write_file, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from imports import services

    # given: a draft uploaded two days ago, one uploaded now, and an import that ran
    def draft() -> FanImport:
        return services.fan_import_create(
            actor=owner,
            account_id=account.pk,
            upload_path=write_file("Username,Fan ID\nann,1\n"),
            file_name="fans.csv",
        )

    old, recent, ran = draft(), draft(), draft()
    FanImport.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(hours=48))
    FanImport.objects.filter(pk=ran.pk).update(
        state=FanImport.State.DONE, updated_at=timezone.now() - timedelta(hours=48)
    )
    assert Path(old.file_path).exists()
    # when: the hourly clean-up runs
    with django_capture_on_commit_callbacks(execute=True):
        removed = services.fan_import_drafts_expire()
    # then: only the old draft is gone, with its upload
    assert removed == 1
    assert not FanImport.objects.filter(pk=old.pk).exists()
    assert not Path(old.file_path).exists()
    assert Path(recent.file_path).exists()
    assert set(FanImport.objects.values_list("pk", flat=True)) == {recent.pk, ran.pk}
