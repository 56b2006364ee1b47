"""campaigns 0004: messages an older pause withdrew as failed are held queued, as now."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from campaigns import services
from campaigns.models import Campaign
from crm.models import Message
from tests.campaigns.conftest import fan_out_all

pytestmark = pytest.mark.django_db

migration = importlib.import_module("campaigns.migrations.0004_paused_messages_held")


def test_old_paused_failures_become_held_messages_of_paused_campaigns_only(
    shop, make_fan, make_campaign
):
    # given: two campaigns whose messages an older pause failed with the pause text
    for _ in range(2):
        make_fan()
    paused, running = (
        services.campaign_launch(actor=shop.owner, campaign=make_campaign(name=name))
        for name in ("paused", "running")
    )
    for campaign in (paused, running):
        fan_out_all(campaign.pk)
    Campaign.objects.filter(pk=paused.pk).update(state=Campaign.State.PAUSED)
    Message.objects.update(status=Message.Status.FAILED, last_error=migration.PAUSED_ERROR)

    # when
    migration.paused_messages_hold(apps, None)

    # then: the paused campaign's are queued again (held until resume), the other's untouched
    rows = Message.objects.values_list("campaign_id", "status", "last_error", "dispatched_at")
    assert set(rows.filter(campaign_id=paused.pk)) == {(paused.pk, "queued", "", None)}
    assert set(rows.filter(campaign_id=running.pk)) == {
        (running.pk, "failed", migration.PAUSED_ERROR, None)
    }
