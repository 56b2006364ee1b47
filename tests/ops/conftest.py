"""Fixtures of the operations tests: the pipeline's hand-driven worker and a CloudWatch client
on the local moto endpoint (the SQS one: moto serves both)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.onlyfans.conftest import send_queue  # noqa: F401  (the fixture, shared)


@pytest.fixture
def installation(settings) -> str:
    """A CloudWatch Installation dimension of this test's own: moto keeps data points for the
    whole session, and other tests publish too."""
    settings.CLOUDWATCH_INSTALLATION = f"test-{uuid.uuid4().hex[:10]}"
    settings.CLOUDWATCH_ENABLED = True
    return settings.CLOUDWATCH_INSTALLATION


@pytest.fixture
def cw(sqs_server: str, installation: str) -> Any:
    from onlyfans.cloudwatch import cloudwatch_client

    return cloudwatch_client()
