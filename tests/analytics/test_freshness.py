"""Figures are never a silent zero for rows that exist: with no roll-ups yet (a new account,
a fresh seed, a time zone change) the page and the API count the raw rows and say so, and
ask the worker for a refresh; roll-ups whose refresh is behind say as of when. Money in cents
is an integer in every JSON answer."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import DayRollup, RollupState
from analytics.rollups import (
    ROLLUPS_CURRENT,
    ROLLUPS_MISSING,
    ROLLUPS_STALE,
    STALE_AFTER,
    account_rollup_rebuild,
)
from analytics.selectors import TIMESERIES_METRICS, report_compute
from analytics.services import REFRESH_TASK, purchase_credit_reassign
from crm.models import CreatorAccount, Purchase
from onlyfans.broker import queue_names
from tests.analytics.fixtures import hand_fixture

pytestmark = pytest.mark.django_db

RANGE = {"from": "2025-03-01", "to": "2025-03-07"}
PAGE_RANGE = {"range": "custom", **RANGE}


@pytest.fixture
def hand():
    return hand_fixture()  # no roll-ups built


@pytest.fixture
def api(hand):
    client = APIClient()
    client.force_authenticate(hand.alice)
    return client


def _tasks_published(sqs_queues: dict[str, str]) -> list[str]:
    from onlyfans.broker import sqs_client

    client = sqs_client()
    url = sqs_queues[queue_names().bulk]
    reply = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    return [
        json.loads(base64.b64decode(m["Body"]))["headers"]["task"]
        for m in reply.get("Messages", [])
    ]


def _raw_kpis(hand) -> dict[str, object]:
    report = report_compute(account=hand.account, period=hand.period, interval="day", source="raw")
    return {k.key: (k.value, k.previous) for k in report.kpis}


def test_kpi_api_from_an_empty_rollup_table_gives_the_true_figures(api, hand, sqs_queues):
    # given: the account's rows, and no roll-up at all
    assert not DayRollup.objects.exists() and not RollupState.objects.exists()

    # when
    response = api.get("/api/analytics/kpis", {"account": hand.account.pk, **RANGE})

    # then: the raw rows' figures (the hand fixture's known ones), not zeros
    assert response.status_code == 200
    body = response.json()
    assert body["freshness"] == ROLLUPS_MISSING
    kpis = {k["key"]: k for k in body["kpis"]}
    assert (kpis["revenue_total"]["value"], kpis["revenue_total"]["previous"]) == (3499, 999)
    assert kpis["fans_total"]["value"] == 4
    assert kpis["fans_active"]["value"] == 4
    assert kpis["messages_sent"]["value"] > 0
    assert {key: (k["value"], k["previous"]) for key, k in kpis.items()} == _raw_kpis(hand)
    # and a refresh is asked for at once (once: a second read within the minute adds none)
    api.get("/api/analytics/kpis", {"account": hand.account.pk, **RANGE})
    assert _tasks_published(sqs_queues) == [REFRESH_TASK]

    # when: the roll-ups are built, the same figures come from them
    account_rollup_rebuild(account=hand.account)
    again = api.get("/api/analytics/kpis", {"account": hand.account.pk, **RANGE}).json()
    assert again["freshness"] == ROLLUPS_CURRENT
    built = {k["key"]: (k["value"], k["previous"]) for k in again["kpis"]}
    raw = {key: (k["value"], k["previous"]) for key, k in kpis.items()}
    # medians come from the roll-ups' response-time buckets: within 5 % of the exact ones
    median = "response_median_seconds"
    assert built.pop(median) == pytest.approx(raw.pop(median), rel=0.07)
    assert built == raw


def test_timeseries_from_an_empty_rollup_table_is_not_empty(api, hand):
    body = api.get(
        "/api/analytics/timeseries",
        {"account": hand.account.pk, "metric": "revenue", "interval": "week", **RANGE},
    ).json()
    assert body["freshness"] == ROLLUPS_MISSING
    assert [p["value"] for p in body["points"]] == [1999, 1500]


def test_page_from_an_empty_rollup_table_shows_the_true_figures_and_says_so(client, hand):
    client.force_login(hand.alice)
    response = client.get(f"/accounts/{hand.account.pk}/analytics/", PAGE_RANGE)
    assert response.status_code == 200
    report = response.context["report"]
    assert report.freshness == ROLLUPS_MISSING
    assert report.kpi_map["revenue_total"].value == 3499
    assert report.kpi_map["fans_total"].value == 4
    assert report.series["revenue"].max_total > 0
    assert {k.key: (k.value, k.previous) for k in report.kpis} == _raw_kpis(hand)
    html = response.content.decode()
    assert 'data-freshness="missing"' in html
    assert "being built" in html
    assert re.search(r'<time datetime="[^"]+">\d+ \w+ \d\d:\d\d</time>', html)


def test_stale_rollups_say_as_of_when_and_ask_for_a_refresh(client, hand, sqs_queues):
    # given: roll-ups last refreshed longer ago than a few missed runs
    account_rollup_rebuild(account=hand.account)
    RollupState.objects.update(refreshed_at=timezone.now() - STALE_AFTER - timedelta(minutes=1))
    client.force_login(hand.alice)

    # when
    response = client.get(f"/accounts/{hand.account.pk}/analytics/", PAGE_RANGE)

    # then: their figures, marked as behind, and a refresh asked for
    assert response.context["report"].freshness == ROLLUPS_STALE
    assert response.context["report"].kpi_map["revenue_total"].value == 3499
    html = response.content.decode()
    assert 'data-freshness="stale"' in html and "refresh is behind" in html
    assert _tasks_published(sqs_queues) == [REFRESH_TASK]


def test_rollups_of_another_time_zone_are_not_read(api, hand):
    account_rollup_rebuild(account=hand.account)
    CreatorAccount.objects.filter(pk=hand.account.pk).update(time_zone="Pacific/Auckland")
    body = api.get("/api/analytics/kpis", {"account": hand.account.pk, **RANGE}).json()
    assert body["freshness"] == ROLLUPS_MISSING
    assert body["time_zone"] == "Pacific/Auckland"


def test_a_reassignment_before_the_first_build_makes_no_partial_rollups(api, hand):
    # given: no roll-ups; a manager reassigns one sale (which recomputes its day)
    purchase: Purchase = hand.purchases["tip_late"]
    purchase_credit_reassign(
        actor=hand.owner,
        account_id=hand.account.pk,
        purchase_id=purchase.pk,
        credited_to_id=hand.alice.pk,
        reason="she closed it",
    )
    # then: that one day is no state: readers still count every row, not one day's worth
    assert not RollupState.objects.exists()
    body = api.get("/api/analytics/kpis", {"account": hand.account.pk, **RANGE}).json()
    kpis = {k["key"]: k["value"] for k in body["kpis"]}
    assert body["freshness"] == ROLLUPS_MISSING
    assert kpis["revenue_total"] == 3499


@pytest.mark.parametrize("built", [False, True], ids=["raw", "rollups"])
def test_money_and_counts_are_integers_in_the_json(api, hand, built):
    if built:
        account_rollup_rebuild(account=hand.account)
    body = api.get("/api/analytics/kpis", {"account": hand.account.pk, **RANGE}).json()
    for kpi in body["kpis"]:
        for v in (kpi["value"], kpi["previous"]):
            if kpi["unit"] in ("cents", "count"):
                assert isinstance(v, int), (kpi["key"], v)
            elif v is not None:
                assert isinstance(v, float), (kpi["key"], v)
    for metric in TIMESERIES_METRICS:
        series = api.get(
            "/api/analytics/timeseries", {"account": hand.account.pk, "metric": metric, **RANGE}
        ).json()
        for point in series["points"]:
            assert isinstance(point["value"], int), (metric, point)
            assert all(isinstance(v, int) for v in point["parts"].values()), (metric, point)


def test_seed_demo_builds_the_rollups_so_the_page_is_right_at_once(client, settings):
    settings.DEBUG = True  # the demo seed is a development command
    # when
    call_command("seed_demo", "--fans", "40")

    # then: every seeded account has its roll-ups, and the page reads them with real figures
    accounts = list(CreatorAccount.objects.all())
    assert accounts
    assert RollupState.objects.filter(account__in=accounts).count() == len(accounts)
    from django.contrib.auth.models import User

    client.force_login(User.objects.get(username="owner"))
    for account in accounts:
        response = client.get(f"/accounts/{account.pk}/analytics/", {"range": "90"})
        report = response.context["report"]
        assert report.freshness == ROLLUPS_CURRENT
        assert report.kpi_map["fans_total"].value > 0
        purchases = Purchase.objects.filter(account=account)
        if purchases.exists():
            assert report.kpi_map["revenue_total"].value > 0


def test_a_refresh_with_a_backlog_left_publishes_itself_again(sqs_queues, monkeypatch):
    # given: a refresh that stops with days still to do
    from analytics import tasks

    monkeypatch.setattr(tasks, "rollups_refresh", lambda: {"accounts": 1, "days": 5, "more": 1})

    # when
    tasks.rollups_refresh_task()

    # then: the next one is on the queue (by name, through config.celery.task_publish)
    assert _tasks_published(sqs_queues) == [REFRESH_TASK]
