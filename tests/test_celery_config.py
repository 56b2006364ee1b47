"""config.celery: the one helper that publishes a task by name, and the one beat schedule."""

from __future__ import annotations

from typing import Any

import pytest

from config.celery import MAX_SQS_DELAY_SECONDS, app, beat_schedule, task_publish


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: calls.append((name, options)))
    return calls


@pytest.mark.parametrize(
    ("asked", "on_sqs"),
    [(-3.0, 0), (0.0, 0), (2.7, 2), (899.9, 899), (900.0, 900), (3600.0, MAX_SQS_DELAY_SECONDS)],
)
def test_a_delay_is_whole_seconds_within_the_sqs_cap(sent, asked, on_sqs):
    task_publish("campaigns.tasks.campaign_start_task", args=[7], delay_seconds=asked)

    [(name, options)] = sent
    assert name == "campaigns.tasks.campaign_start_task"
    assert options["args"] == (7,)
    assert options["delay_seconds"] == on_sqs
    assert "eta" not in options


def test_the_fraction_rides_as_an_eta_only_when_asked(sent):
    task_publish("onlyfans.tasks.message_send_task", args=[1], delay_seconds=2.5)
    task_publish(
        "onlyfans.tasks.message_send_task", args=[1], delay_seconds=2.5, eta_for_fraction=True
    )

    assert "eta" not in sent[0][1]
    assert sent[1][1]["delay_seconds"] == 2 and "eta" in sent[1][1]


def test_options_reach_celery_as_they_are(sent):
    task_publish("imports.tasks.fan_import_task", args=[3], queue="fancrm-default")

    assert sent[0][1]["queue"] == "fancrm-default"


def test_beat_runs_every_periodic_task_of_every_app_by_a_registered_name():
    app.loader.import_default_modules()  # the tasks modules, as a worker or beat loads them

    schedule = app.conf.beat_schedule

    assert schedule == beat_schedule()
    assert {entry["task"] for entry in schedule.values()} == {
        "onlyfans.cloudwatch.cloudwatch_publish_task",
        "onlyfans.tasks.outbox_sweep_task",
        "onlyfans.tasks.fan_sync_schedule_task",
        "onlyfans.tasks.vault_sync_schedule_task",
        "campaigns.tasks.campaigns_sweep_task",
        "imports.tasks.fan_import_drafts_expire_task",
        "crm.tasks.snoozes_wake_task",
        "crm.tasks.drafts_expire_task",
        "analytics.tasks.rollups_refresh_task",
        "automations.tasks.automation_runs_due_task",
        "automations.tasks.automation_scans_task",
        "crm.tasks.work_sessions_sweep_task",
        "crm.tasks.media_stats_build_due_task",
        "onlyfans.webhooks.webhook_events_apply_task",
    }
    assert all(entry["task"] in app.tasks for entry in schedule.values())


def test_a_starting_beat_runs_the_sweeps_that_resume_lost_work_at_once(sent):
    from celery.signals import beat_init

    beat_init.send(sender=None)

    assert [name for name, _ in sent] == [
        "onlyfans.tasks.outbox_sweep_task",
        "onlyfans.tasks.fan_sync_schedule_task",
        "onlyfans.tasks.vault_sync_schedule_task",
        "campaigns.tasks.campaigns_sweep_task",
        "onlyfans.webhooks.webhook_events_apply_task",
    ]
    assert all(options["delay_seconds"] == 0 for _, options in sent)


def test_a_beat_starting_before_the_broker_still_starts(monkeypatch):
    from celery.signals import beat_init

    tried: list[str] = []

    def unreachable(name, **options):
        tried.append(name)
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", unreachable)

    # when: no exception reaches beat, and each sweep was tried despite the one before
    beat_init.send(sender=None)

    assert len(tried) == 5
