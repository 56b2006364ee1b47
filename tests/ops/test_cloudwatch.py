"""CloudWatch: the metrics' names, units and dimensions against moto's CloudWatch, the alarms,
and that publishing failures never touch a send."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command

from crm.models import Message
from onlyfans import cloudwatch, services
from onlyfans.management.commands.cloudwatch_ensure_alarms import alarms_ensure
from onlyfans.ratelimit import RateLimit, rate_limit_acquire
from tests.factories import ConversationFactory, CreatorAccountFactory, FanFactory

pytestmark = pytest.mark.django_db

NAMES = {
    "OnlyFansMessagesQueued",
    "OnlyFansMessagesProcessed",
    "OnlyFansMessagesFailed",
    "OnlyFansQueueDepth",
    "OnlyFansProcessingTime",
    "OnlyFansRateLimitDeferrals",
    "OnlyFansWorkerErrors",
}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _minute_with_room() -> int:
    """The current minute, at least 4 s into it and with 10 s of it left (so the test's
    events, a few seconds after its start, are in it and in the past)."""
    second = time.time() % 60
    if second > 48:
        time.sleep(64 - second)
    elif second < 4:
        time.sleep(4 - second)
    return int(time.time() // 60)


def _outgoing(conversation, *, status: str, queued_at: datetime, sent_at=None) -> Message:
    return Message.objects.create(
        account=conversation.account,
        conversation=conversation,
        direction=Message.Direction.OUT,
        status=status,
        sender_kind=Message.SenderKind.USER,
        text="x",
        queued_at=queued_at,
        sent_at=sent_at,
    )


def _series(cw, installation: str) -> dict[tuple[str, tuple], None]:
    found: dict[tuple[str, tuple], None] = {}
    for page in cw.get_paginator("list_metrics").paginate(Namespace="FanCRM/OnlyFans"):
        for metric in page["Metrics"]:
            dims = tuple(sorted((d["Name"], d["Value"]) for d in metric["Dimensions"]))
            if ("Installation", installation) in dims:
                found[(metric["MetricName"], dims)] = None
    return found


def _stat(cw, name: str, dims: dict[str, str], minute: int, stat: str) -> float:
    reply = cw.get_metric_statistics(
        Namespace="FanCRM/OnlyFans",
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
        StartTime=datetime.fromtimestamp(minute * 60 - 60, tz=UTC),
        EndTime=datetime.fromtimestamp(minute * 60 + 120, tz=UTC),
        Period=60,
        Statistics=[stat],
    )
    return sum(point[stat] for point in reply["Datapoints"])


def test_metrics_reach_cloudwatch_with_names_units_and_dimensions(
    cw, installation, redis_client, sqs_queues
):
    # given: in one minute, an account queued 3 messages, 2 were sent (1.5 s and 2.5 s after
    # being queued), 1 failed, and the limiter refused it twice
    minute = _minute_with_room()
    start = datetime.fromtimestamp(minute * 60, tz=UTC)
    conversation = ConversationFactory()
    account = conversation.account
    _outgoing(conversation, status="sent", queued_at=start, sent_at=start + timedelta(seconds=1.5))
    _outgoing(conversation, status="sent", queued_at=start, sent_at=start + timedelta(seconds=2.5))
    failed = _outgoing(conversation, status="failed", queued_at=start)
    Message.objects.filter(pk=failed.pk).update(updated_at=start + timedelta(seconds=3))
    ConversationFactory()  # an idle account: no per-account series
    # (the limiter rebuilds its window from the two sends above, plus one "now" as after a
    # Redis loss: one slot is left)
    limit = RateLimit(per_minute=4, min_interval_ms=0)
    assert [rate_limit_acquire(account_id=account.pk, limit=limit).granted for _ in range(3)] == [
        True,
        False,
        False,
    ]

    # when: beat publishes after the minute ended
    result = cloudwatch.cloudwatch_publish(now=(minute + 1) * 60 + cloudwatch.SETTLE_SECONDS)

    # then
    assert result["ok"] and result["minutes"] == 1
    series = _series(cw, installation)
    names = {name for name, _ in series}
    assert names == NAMES
    acc = (("Account", str(account.pk)), ("Installation", installation))
    for name in (
        "OnlyFansMessagesQueued",
        "OnlyFansMessagesProcessed",
        "OnlyFansMessagesFailed",
        "OnlyFansProcessingTime",
        "OnlyFansRateLimitDeferrals",
    ):
        assert (name, acc) in series
        assert (name, (("Installation", installation),)) in series
    for queue in ("send", "in_flight", "dead_letter", "backlog", "held"):
        assert (
            "OnlyFansQueueDepth",
            (("Installation", installation), ("Queue", queue)),
        ) in series
    # Never a fan or a message id: only these dimension names exist.
    assert {d for _, dims in series for d, _ in dims} == {"Installation", "Account", "Queue"}
    per_account = {"Installation": installation, "Account": str(account.pk)}
    assert _stat(cw, "OnlyFansMessagesQueued", per_account, minute, "Sum") == 3
    assert _stat(cw, "OnlyFansMessagesProcessed", per_account, minute, "Sum") == 2
    assert _stat(cw, "OnlyFansMessagesFailed", per_account, minute, "Sum") == 1
    assert _stat(cw, "OnlyFansRateLimitDeferrals", per_account, minute, "Sum") == 2
    assert _stat(cw, "OnlyFansProcessingTime", per_account, minute, "Maximum") == (
        pytest.approx(2500)
    )
    assert _stat(cw, "OnlyFansProcessingTime", per_account, minute, "Minimum") == (
        pytest.approx(1500)
    )
    # Units as CloudWatch stored them.
    points = cloudwatch.minute_data_points(cloudwatch.minute_collect(minute=minute))
    units = {p["MetricName"]: p["Unit"] for p in points}
    assert units["OnlyFansProcessingTime"] == "Milliseconds"
    assert units["OnlyFansMessagesProcessed"] == "Count"
    times = next(p for p in points if p["MetricName"] == "OnlyFansProcessingTime")
    assert times["StatisticValues"] == {
        "SampleCount": 2,
        "Sum": pytest.approx(4000),
        "Minimum": pytest.approx(1500),
        "Maximum": pytest.approx(2500),
    }


def test_a_minute_is_published_once_and_in_batches(
    cw, installation, redis_client, sqs_queues, settings
):
    settings.CLOUDWATCH_BATCH_SIZE = 3
    calls: list[int] = []
    client = cw

    class Counting:
        def put_metric_data(self, **kwargs):
            calls.append(len(kwargs["MetricData"]))
            return client.put_metric_data(**kwargs)

    from unittest import mock

    minute = int(time.time() // 60) - 1
    now = (minute + 1) * 60 + cloudwatch.SETTLE_SECONDS
    with mock.patch.object(cloudwatch, "cloudwatch_client", lambda **_: Counting()):
        first = cloudwatch.cloudwatch_publish(now=now)
        again = cloudwatch.cloudwatch_publish(now=now)
    assert first["minutes"] == 1 and again["minutes"] == 0
    # The minute's 5 installation counts, then the 5 queue depths, three at a time; the second
    # run publishes the depths (a gauge, every run) but not the minute again.
    assert calls == [3, 2, 3, 2, 3, 2]


def test_publishing_failures_never_fail_a_send(
    settings, send_queue, sandbox, installation, django_capture_on_commit_callbacks, caplog
):
    # given: CloudWatch does not answer
    settings.CLOUDWATCH_ENDPOINT_URL = f"http://127.0.0.1:{_closed_port()}"
    settings.CLOUDWATCH_TIMEOUT_SECONDS = 0.5
    before = cloudwatch.PUBLISH_FAILURES.labels("EndpointConnectionError")._value.get()
    fan = FanFactory(account=CreatorAccountFactory(send_rate_per_minute=1000))
    with django_capture_on_commit_callbacks(execute=True):
        message = services.message_enqueue(fan=fan, text="hello")

    # when: the message is sent and beat tries to publish
    send_queue.drain(until=lambda: Message.objects.get(pk=message.pk).status == Message.Status.SENT)
    result = cloudwatch.cloudwatch_publish()

    # then: the send went through, the publish failure was counted, and the minute waits
    assert len(sandbox.messages(account=fan.account.platform_account_id)) == 1
    assert result["ok"] is False and result["minutes"] == 0
    after = cloudwatch.PUBLISH_FAILURES.labels("EndpointConnectionError")._value.get()
    assert after == before + 1


def test_publishing_can_be_switched_off(settings, cw, installation, redis_client):
    settings.CLOUDWATCH_ENABLED = False
    assert cloudwatch.cloudwatch_publish() == {"enabled": False}


def test_alarms_are_created_once_then_updated_when_a_threshold_changes(settings, cw, installation):
    first = alarms_ensure()
    again = alarms_ensure()
    settings.CLOUDWATCH_ALARM_QUEUE_DEPTH = 250
    settings.CLOUDWATCH_ALARM_SNS_TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:oncall"
    changed = alarms_ensure()

    assert set(first.values()) == {"created"} and len(first) == 4
    assert set(again.values()) == {"unchanged"}
    assert set(changed.values()) == {"updated"}
    alarms = {
        a["AlarmName"]: a
        for a in cw.describe_alarms(AlarmNamePrefix=f"{installation}-onlyfans")["MetricAlarms"]
    }
    assert len(alarms) == 4
    depth = alarms[f"{installation}-onlyfans-queue-depth"]
    assert depth["Threshold"] == 250
    assert depth["MetricName"] == "OnlyFansQueueDepth"
    assert {"Name": "Queue", "Value": "send"} in depth["Dimensions"]
    assert depth["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:oncall"]
    assert alarms[f"{installation}-onlyfans-dead-letter"]["Threshold"] == 10
    assert alarms[f"{installation}-onlyfans-worker-errors"]["Threshold"] == 10
    rate = alarms[f"{installation}-onlyfans-failure-rate"]
    assert rate["Threshold"] == 5
    assert any("Expression" in m for m in rate["Metrics"])
    assert "[critical]" in alarms[f"{installation}-onlyfans-dead-letter"]["AlarmDescription"]
    assert "[warning]" in depth["AlarmDescription"]


def test_ensure_alarms_command_prints_what_it_did(capsys, cw, installation):
    call_command("cloudwatch_ensure_alarms")
    call_command("cloudwatch_ensure_alarms")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["created"] * 4 + ["unchanged"] * 4


def test_a_paused_campaigns_messages_are_held_not_backlog(sqs_queues):
    # A long pause must not look like a stuck pipeline: its queued messages are their own
    # series (Queue=held), the backlog is only what the dispatcher will claim.
    from campaigns.models import Campaign

    account = CreatorAccountFactory()

    def conversation():
        return ConversationFactory(fan=FanFactory(account=account), account=account)

    paused = Campaign.objects.create(account=account, name="p", text="x", state="paused")
    running = Campaign.objects.create(account=account, name="r", text="x", state="running")
    now = datetime.now(UTC)
    _outgoing(conversation(), status="queued", queued_at=now)  # a chatter's
    for campaign, count in ((paused, 3), (running, 2)):
        for _ in range(count):
            message = _outgoing(conversation(), status="queued", queued_at=now)
            Message.objects.filter(pk=message.pk).update(
                sender_kind=Message.SenderKind.CAMPAIGN, campaign_id=campaign.pk
            )

    depths = cloudwatch.queue_depths()

    assert (depths.backlog, depths.held) == (3, 3)
    points = {
        dict((d["Name"], d["Value"]) for d in p["Dimensions"])["Queue"]: p["Value"]
        for p in cloudwatch.depth_data_points(depths, now)
    }
    assert points["backlog"] == 3 and points["held"] == 3
