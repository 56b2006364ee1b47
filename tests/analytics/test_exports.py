"""Every analytics CSV export neutralises hostile text cells and keeps its numbers."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from analytics.exports import TABLES
from analytics.rollups import account_rollup_rebuild
from crm.models import CreatorAccount
from tests.analytics.fixtures import fan_make, hand_fixture
from tests.crm.test_csv_safe import HOSTILE, is_formula_safe

pytestmark = pytest.mark.django_db

RANGE = {"range": "custom", "from": "2025-03-01", "to": "2025-03-07"}


@pytest.fixture
def hostile_hand():
    hand = hand_fixture()
    CreatorAccount.objects.filter(pk=hand.account.pk).update(display_name="\uff1dcmd|' /C calc'!A0")
    for i, text in enumerate(HOSTILE):
        # big spenders, so every one of them is in the top-fans table
        fan_make(
            hand.account,
            "2025-03-03T00:00:00",
            username=f"h{i}",
            display_name=text,
            lifetime_spend_cents=1_000_000 - i,
        )
    hand.alice.username = "\uff20alice"
    hand.alice.save()
    hand.bob.username = "-bob"
    hand.bob.save()
    account_rollup_rebuild(account=hand.account)
    return hand


def _export(client, hand, table: str) -> list[list[str]]:
    response = client.get(reverse("analytics_export", args=[hand.account.pk, table]), RANGE)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_export_neutralises_hostile_text(client, hostile_hand, table):
    client.force_login(hostile_hand.owner)
    rows = _export(client, hostile_hand, table)
    cells = [cell for row in rows for cell in row]
    # the account's name heads every table
    assert ["account", "'\uff1dcmd|' /C calc'!A0"] in rows
    unsafe = [c for c in cells if not is_formula_safe(c) and not _is_number(c)]
    assert unsafe == []


def test_top_fans_and_chatters_write_each_hostile_name_as_text(client, hostile_hand):
    client.force_login(hostile_hand.owner)
    top = _export(client, hostile_hand, "top-fans")
    names = [row[2] for row in top if row and row[0].isdigit()]
    shown = HOSTILE[: len(names)]  # the ten biggest spenders: the first ten hostile names
    assert len(names) == 10 and names == ["'" + text for text in shown]
    chatters = {row[0] for row in _export(client, hostile_hand, "chatters") if row}
    assert {"'\uff20alice", "'-bob"} <= chatters


def test_numbers_stay_numbers(client, hostile_hand):
    client.force_login(hostile_hand.owner)
    kpis = {r[0]: r for r in _export(client, hostile_hand, "kpis") if r}
    assert kpis["revenue_total"][3:5] == ["3499", "999"]
    # a negative change is the product's number, written as one
    assert kpis["revenue_per_active_fan"][5].startswith("-")
