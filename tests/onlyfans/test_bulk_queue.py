"""The bulk queue: heavy or user-fed work (imports, fan syncs, campaign fan-outs, roll-ups)
has a queue of its own, served by its own worker process, so it never delays a send."""

from __future__ import annotations

import pytest

from config.celery import app
from onlyfans.broker import BULK_TASKS, queue_names, sqs_client, worker_argv


@pytest.fixture(autouse=True)
def _tasks_registered() -> None:
    app.loader.import_default_modules()  # as a worker does when it starts


def _routed_queue(task_name: str) -> str:
    return app.amqp.router.route({}, task_name, (), {})["queue"].name


@pytest.mark.parametrize(
    "task_name",
    [
        "imports.tasks.fan_import_task",
        "onlyfans.tasks.fan_sync_task",
        "onlyfans.tasks.fan_sync_schedule_task",
        "onlyfans.tasks.vault_sync_task",
        "onlyfans.tasks.vault_sync_schedule_task",
        "campaigns.tasks.campaign_fan_out_task",
        "analytics.tasks.rollups_refresh_task",
    ],
)
def test_heavy_tasks_go_to_the_bulk_queue(task_name):
    assert task_name in app.tasks  # a route to a task that does not exist routes nothing
    assert _routed_queue(task_name) == queue_names().bulk


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("onlyfans.tasks.message_send_task", "send"),
        ("onlyfans.tasks.outbox_sweep_task", "default"),
        ("campaigns.tasks.campaign_mass_send_task", "default"),
        ("campaigns.tasks.campaigns_sweep_task", "default"),
    ],
)
def test_sends_and_housekeeping_stay_off_it(task_name, queue):
    assert _routed_queue(task_name) == getattr(queue_names(), queue)


def test_every_bulk_task_exists():
    assert set(BULK_TASKS) <= set(app.tasks)


def test_the_bulk_queue_is_created_with_the_others(sqs_queues, settings):
    names = queue_names()
    assert {names.send, names.default, names.bulk, names.dead_letter} <= set(sqs_queues)
    attributes = sqs_client().get_queue_attributes(
        QueueUrl=sqs_queues[names.bulk], AttributeNames=["RedrivePolicy", "VisibilityTimeout"]
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == str(settings.SQS_VISIBILITY_TIMEOUT_SECONDS)
    assert "deadLetterTargetArn" in attributes["RedrivePolicy"]
    predefined = app.conf.broker_transport_options["predefined_queues"]
    assert names.bulk in predefined


def test_worker_command_lines():
    names = queue_names()
    every = worker_argv(hostname="w@%h", concurrency=1)
    assert every[every.index("-Q") + 1] == f"{names.send},{names.default},{names.bulk}"
    bulk = worker_argv(hostname="b@%h", concurrency=1, queues=("bulk",))
    assert bulk[bulk.index("-Q") + 1] == names.bulk
