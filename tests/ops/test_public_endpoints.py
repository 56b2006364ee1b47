"""What anonymous callers can reach and what it costs: /metrics needs its token in production,
/readyz answers from a short cache, /api/schema/ is built once per process."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest
from django.test import Client

from onlyfans import ops

pytestmark = pytest.mark.django_db


@pytest.fixture
def clean_caches() -> Iterator[None]:
    ops.readyz_cache_clear()
    ops.SchemaView.cache_clear()
    yield
    ops.readyz_cache_clear()
    ops.SchemaView.cache_clear()


def test_metrics_without_a_configured_token_are_not_served_in_production(settings):
    settings.DEBUG = False
    settings.METRICS_TOKEN = ""

    anonymous = Client().get("/metrics")
    with_any_token = Client().get("/metrics", headers={"Authorization": "Bearer "})

    assert anonymous.status_code == 404
    assert with_any_token.status_code == 404
    assert b"crm_" not in anonymous.content + with_any_token.content


def test_metrics_without_a_token_are_served_while_developing(settings):
    settings.DEBUG = True
    settings.METRICS_TOKEN = ""

    response = Client().get("/metrics")

    assert response.status_code == 200
    assert "crm_messages_sent_total" in response.content.decode()


def test_readyz_probes_once_per_cache_period(settings, clean_caches):
    settings.READYZ_CACHE_SECONDS = 60
    probes = {"n": 0}

    def probe() -> None:
        probes["n"] += 1

    with (
        mock.patch.object(ops, "_database_check", probe),
        mock.patch.object(ops, "_redis_check", probe),
        mock.patch.object(ops, "_sqs_check", probe),
    ):
        answers = [Client().get("/readyz") for _ in range(20)]

    assert {a.status_code for a in answers} == {200}
    assert probes["n"] == 3  # one round of the three checks for twenty requests


def _sqs_check() -> None:
    raise ConnectionError


def probe_ok() -> None:
    return None


def test_readyz_probes_again_after_the_cache_period(settings, clean_caches):
    settings.READYZ_CACHE_SECONDS = 60
    with mock.patch.object(ops, "_sqs_check", _sqs_check):
        assert Client().get("/readyz").status_code == 503
    with mock.patch.object(ops, "_sqs_check", probe_ok):
        assert Client().get("/readyz").status_code == 503  # still the cached answer
        with mock.patch.object(ops.time, "monotonic", return_value=ops.time.monotonic() + 61):
            assert Client().get("/readyz").status_code == 200


def test_schema_is_generated_once_per_process_and_format(clean_caches):
    from drf_spectacular.generators import SchemaGenerator

    real = SchemaGenerator.get_schema
    with mock.patch.object(
        SchemaGenerator, "get_schema", autospec=True, side_effect=real
    ) as generate:
        yaml = [Client().get("/api/schema/") for _ in range(3)]
        json_ = [Client().get("/api/schema/", {"format": "json"}) for _ in range(3)]
        odd = Client().get(
            "/api/schema/", headers={"Accept": "application/vnd.oai.openapi+json; indent=7"}
        )

    assert {r.status_code for r in [*yaml, *json_, odd]} == {200}
    assert len({r.content for r in yaml}) == 1
    assert yaml[0]["Content-Type"].startswith("application/vnd.oai.openapi")
    assert json_[0].json()["paths"]["/api/onlyfans/webhooks"]
    assert odd.content == json_[0].content  # the caller's media type parameters change nothing
    assert generate.call_count == 2  # YAML once, JSON once
