"""Restart safety: a due run handled twice, a worker that dies between queueing the message
and marking the run, a publish lost after commit, two passes at once; every fan gets exactly
one message at the platform."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from automations import due, runs
from automations.models import AutomationRun
from crm.models import Fan, Message
from onlyfans.dispatch import outbox_sweep
from tests.factories import AutomationFactory, FanFactory

State = AutomationRun.State


def drained(send_queue) -> None:
    send_queue.drain(
        until=lambda: not Message.objects.filter(status__in=["queued", "sending"]).exists(),
        timeout=45,
    )


def subscribed(fan: Fan, *, now) -> list[AutomationRun]:
    fan.subscription_state = Fan.SubscriptionState.ACTIVE
    fan.subscribed_at = now
    fan.save()
    return runs.automation_runs_on_subscription(
        account=fan.account,
        fan=fan,
        event="subscriptions.new",
        previous_state=Fan.SubscriptionState.NEVER,
        previous_expires_at=None,
        now=now,
    )


@pytest.mark.django_db
def test_a_due_run_handled_twice_sends_one_message(
    studio, make_automation, sandbox, send_queue, due_pass, django_capture_on_commit_callbacks
):
    make_automation()
    fan = FanFactory(account=studio.account)
    now = timezone.now()
    [run] = subscribed(fan, now=now)
    with django_capture_on_commit_callbacks(execute=True):
        assert due.automation_run_process(run_id=run.pk, now=now) == "enqueued"
        assert due.automation_run_process(run_id=run.pk, now=now) is None
    assert due_pass(now=now + timedelta(seconds=5)).handled == 0
    drained(send_queue)
    assert [s["chat_id"] for s in sandbox.messages()] == [fan.platform_fan_id]


@pytest.mark.django_db
def test_a_worker_killed_between_the_message_and_the_run_sends_one_after_restart(
    studio, make_automation, sandbox, send_queue, due_pass, monkeypatch
):
    make_automation()
    fans = [FanFactory(account=studio.account) for _ in range(3)]
    now = timezone.now()
    for fan in fans:
        subscribed(fan, now=now)
    real_finish = due._finish
    calls = {"n": 0}

    def dies_on_second_send(run, *, state, reason, now):
        if state == State.ENQUEUED:
            calls["n"] += 1
            if calls["n"] == 2:
                # the message row of this run is written, the run not yet marked: the worker
                # process dies here (nothing after this line of its transaction happens)
                assert Message.objects.filter(sender_kind="automation").count() == 2
                raise SystemExit("worker killed")
        real_finish(run, state=state, reason=reason, now=now)

    monkeypatch.setattr(due, "_finish", dies_on_second_send)
    with pytest.raises(SystemExit):
        due_pass(now=now + timedelta(seconds=1))
    # the account's transaction rolled back whole: no message, every run still due
    assert not Message.objects.filter(direction="out").exists()
    assert AutomationRun.objects.filter(state=State.SCHEDULED).count() == 3
    # the worker restarts
    monkeypatch.setattr(due, "_finish", real_finish)
    assert due_pass(now=now + timedelta(seconds=20)).enqueued == 3
    drained(send_queue)
    per_chat = Counter(s["chat_id"] for s in sandbox.messages())
    assert per_chat == Counter({f.platform_fan_id: 1 for f in fans})


@pytest.mark.django_db
def test_a_publish_lost_after_commit_is_sent_by_the_outbox_sweep_once(
    studio, make_automation, sandbox, send_queue, django_capture_on_commit_callbacks
):
    make_automation()
    fan = FanFactory(account=studio.account)
    now = timezone.now()
    subscribed(fan, now=now)
    # committed, then the process died before its after-commit dispatch ran
    with django_capture_on_commit_callbacks(execute=False):
        assert due.automation_runs_due_process(now=now + timedelta(seconds=1)).enqueued == 1
    message = Message.objects.get(sender_kind="automation")
    assert (message.status, message.dispatched_at) == ("queued", None)
    assert send_queue.depth() == 0
    # the periodic sweep finds the backlog
    outbox_sweep()
    drained(send_queue)
    assert [s["chat_id"] for s in sandbox.messages()] == [fan.platform_fan_id]
    assert due.automation_runs_due_process(now=now + timedelta(minutes=5)).handled == 0


@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once_send_each_fan_one_message(sandbox, send_queue):
    """Two workers run the due pass at the same moment over fans with two due automations
    each: the runs are shared out (SKIP LOCKED), each fan's row lock makes the cap see the
    other worker's message, and every fan gets one."""
    from tests.factories import CreatorAccountFactory

    account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
    AutomationFactory(account=account, name="A")
    AutomationFactory(account=account, name="B")
    fans = [FanFactory(account=account) for _ in range(8)]
    now = timezone.now()
    for fan in fans:
        subscribed(fan, now=now)
    assert AutomationRun.objects.filter(state=State.SCHEDULED).count() == 16
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait()
            due.automation_runs_due_process(now=now + timedelta(seconds=1), limit=4)
            due.automation_runs_due_process(now=now + timedelta(seconds=1))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    runs = AutomationRun.objects.all()
    assert runs.filter(state=State.SCHEDULED).count() == 0
    assert runs.filter(state=State.ENQUEUED).count() == 8
    assert set(runs.filter(state=State.SKIPPED).values_list("reason", flat=True)) == {
        "frequency_cap"
    }
    drained(send_queue)
    per_chat = Counter(s["chat_id"] for s in sandbox.messages(account=account.platform_account_id))
    assert per_chat == Counter({f.platform_fan_id: 1 for f in fans})


KILLED_WORKER = """
import os, signal
import django
django.setup()
from automations import due
from automations.models import AutomationRun

real_finish = due._finish
seen = []

def finish(run, *, state, reason, now):
    if state == AutomationRun.State.ENQUEUED:
        seen.append(run.pk)
        if len(seen) == 3:
            # three messages written in the account's transaction, not committed: kill -9
            os.kill(os.getpid(), signal.SIGKILL)
    real_finish(run, state=state, reason=reason, now=now)

due._finish = finish
due.automation_runs_due_process()
"""


@pytest.mark.django_db(transaction=True)
def test_a_worker_process_killed_while_automations_are_due_sends_each_fan_one(sandbox, send_queue):
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from django.conf import settings

    from tests.factories import CreatorAccountFactory

    account = CreatorAccountFactory(send_rate_per_minute=1000, send_min_interval_ms=0)
    AutomationFactory(account=account)
    fans = [FanFactory(account=account) for _ in range(6)]
    now = timezone.now() - timedelta(seconds=5)
    for fan in fans:
        subscribed(fan, now=now)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(
            **{**db, "HOST": db["HOST"] or "127.0.0.1", "PORT": db["PORT"] or 5432}
        ),
        "REDIS_URL": settings.REDIS_URL,
        "ONLYFANS_API_BASE_URL": settings.ONLYFANS_API_BASE_URL,
    }
    worker = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert worker.returncode == -signal.SIGKILL, worker.stderr.decode()[-2000:]
    # killed mid-transaction: nothing of it stayed
    assert not Message.objects.filter(direction="out").exists()
    assert AutomationRun.objects.filter(state=State.SCHEDULED).count() == 6
    # the worker restarts
    assert due.automation_runs_due_process().enqueued == 6
    assert due.automation_runs_due_process().handled == 0
    drained(send_queue)
    per_chat = Counter(s["chat_id"] for s in sandbox.messages(account=account.platform_account_id))
    assert per_chat == Counter({f.platform_fan_id: 1 for f in fans})
