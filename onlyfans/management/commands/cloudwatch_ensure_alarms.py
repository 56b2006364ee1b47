"""Create or update the send pipeline's CloudWatch alarms (idempotent): docs/operations.md."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from onlyfans.cloudwatch import (
    FAILED,
    PROCESSED,
    QUEUE_DEPTH,
    WORKER_ERRORS,
    cloudwatch_client,
)

# Fields of describe_alarms that put_metric_alarm sets: compared to tell "unchanged".
_COMPARED = (
    "AlarmDescription",
    "ActionsEnabled",
    "AlarmActions",
    "OKActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "Dimensions",
    "Period",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "Metrics",
)


def _installation() -> list[dict[str, str]]:
    return [{"Name": "Installation", "Value": settings.CLOUDWATCH_INSTALLATION}]


def alarm_specs() -> list[dict[str, Any]]:
    """The seed's four alarms, thresholds from settings, as put_metric_alarm arguments."""
    namespace = settings.CLOUDWATCH_NAMESPACE
    prefix = f"{settings.CLOUDWATCH_INSTALLATION}-onlyfans"
    actions = (
        [settings.CLOUDWATCH_ALARM_SNS_TOPIC_ARN] if settings.CLOUDWATCH_ALARM_SNS_TOPIC_ARN else []
    )
    common: dict[str, Any] = {
        "ActionsEnabled": bool(actions),
        "AlarmActions": actions,
        "OKActions": actions,
        "TreatMissingData": "notBreaching",
        "ComparisonOperator": "GreaterThanThreshold",
    }

    def stat(metric: str, statistic: str, period: int, **dims: str) -> dict[str, Any]:
        dimensions = _installation() + [{"Name": k, "Value": v} for k, v in dims.items()]
        return {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": statistic,
        }

    return [
        {
            **common,
            "AlarmName": f"{prefix}-queue-depth",
            "AlarmDescription": (
                "[warning] More than "
                f"{settings.CLOUDWATCH_ALARM_QUEUE_DEPTH} send tasks waiting on SQS for 5 minutes:"
                " workers are not keeping up or are down. See docs/operations.md."
            ),
            "Namespace": namespace,
            "MetricName": QUEUE_DEPTH,
            "Dimensions": [*_installation(), {"Name": "Queue", "Value": "send"}],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 5,
            "DatapointsToAlarm": 5,
            "Threshold": float(settings.CLOUDWATCH_ALARM_QUEUE_DEPTH),
        },
        {
            **common,
            "AlarmName": f"{prefix}-dead-letter",
            "AlarmDescription": (
                f"[critical] More than {settings.CLOUDWATCH_ALARM_DEAD_LETTER} send tasks in the "
                "dead-letter queue: tasks crash workers repeatedly. See docs/operations.md."
            ),
            "Namespace": namespace,
            "MetricName": QUEUE_DEPTH,
            "Dimensions": [*_installation(), {"Name": "Queue", "Value": "dead_letter"}],
            "Statistic": "Maximum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": float(settings.CLOUDWATCH_ALARM_DEAD_LETTER),
        },
        {
            **common,
            "AlarmName": f"{prefix}-failure-rate",
            "AlarmDescription": (
                "[warning] More than "
                f"{settings.CLOUDWATCH_ALARM_FAILURE_RATE_PERCENT:g} % of finished sends failed "
                "over 5 minutes. See docs/operations.md."
            ),
            "Metrics": [
                {"Id": "failed", "MetricStat": stat(FAILED, "Sum", 300), "ReturnData": False},
                {"Id": "sent", "MetricStat": stat(PROCESSED, "Sum", 300), "ReturnData": False},
                {
                    "Id": "rate",
                    "Expression": "IF(failed + sent > 0, 100 * failed / (failed + sent), 0)",
                    "Label": "Failure rate (%)",
                    "ReturnData": True,
                },
            ],
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": float(settings.CLOUDWATCH_ALARM_FAILURE_RATE_PERCENT),
        },
        {
            **common,
            "AlarmName": f"{prefix}-worker-errors",
            "AlarmDescription": (
                "[critical] More than "
                f"{settings.CLOUDWATCH_ALARM_WORKER_ERRORS_PER_MINUTE} task errors in a minute "
                "in the workers. See docs/operations.md."
            ),
            "Namespace": namespace,
            "MetricName": WORKER_ERRORS,
            "Dimensions": _installation(),
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "DatapointsToAlarm": 1,
            "Threshold": float(settings.CLOUDWATCH_ALARM_WORKER_ERRORS_PER_MINUTE),
        },
    ]


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in sorted(value.items()) if v not in (None, [], "")}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def _differs(spec: dict[str, Any], current: dict[str, Any]) -> bool:
    return any(
        _normalise(spec.get(name)) != _normalise(current.get(name))
        for name in _COMPARED
        if spec.get(name) not in (None, [], "") or current.get(name) not in (None, [], "")
    )


def alarms_ensure(*, client: Any = None) -> dict[str, str]:
    """Create or update each alarm; ``{name: "created" | "updated" | "unchanged"}``."""
    client = client or cloudwatch_client()
    specs = alarm_specs()
    existing = {
        alarm["AlarmName"]: alarm
        for page in client.get_paginator("describe_alarms").paginate(
            AlarmNames=[s["AlarmName"] for s in specs]
        )
        for alarm in page.get("MetricAlarms", [])
    }
    result = {}
    for spec in specs:
        name = spec["AlarmName"]
        current = existing.get(name)
        if current is not None and not _differs(spec, current):
            result[name] = "unchanged"
            continue
        client.put_metric_alarm(**spec)
        result[name] = "updated" if current is not None else "created"
    return result


class Command(BaseCommand):
    help = "Create or update the send pipeline's CloudWatch alarms (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Print the alarms without creating them."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"]:
            for spec in alarm_specs():
                self.stdout.write(f"{spec['AlarmName']}: {spec['AlarmDescription']}")
            return
        try:
            result = alarms_ensure()
        except Exception as error:
            raise CommandError(f"CloudWatch refused or did not answer: {error}") from error
        for name, outcome in result.items():
            self.stdout.write(f"{outcome:9} {name}")
