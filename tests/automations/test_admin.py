"""Django admin for automations: read-only lists with a constant number of queries, and the
staff's "turn off" action."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from automations.models import Automation, AutomationRun
from tests.factories import AutomationFactory, FanFactory, UserFactory

pytestmark = pytest.mark.django_db


def _runs(count: int) -> None:
    for _ in range(count):
        automation = AutomationFactory(delay_seconds=600)
        now = timezone.now()
        AutomationRun.objects.create(
            automation=automation,
            account=automation.account,
            fan=FanFactory(account=automation.account),
            event_key=f"subscribed:{now.isoformat()}",
            triggered_at=now,
            due_at=now,
        )


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries)


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.parametrize("model", [Automation, AutomationRun])
def test_the_lists_cost_the_same_however_many_rows(staff_client, model):
    url = reverse(f"admin:automations_{model._meta.model_name}_changelist")
    _runs(2)
    few = _queries(staff_client, url)
    _runs(6)
    assert _queries(staff_client, url) == few


def test_rows_open_read_only_and_turn_off_cancels_the_pending_runs(staff_client):
    _runs(1)
    run = AutomationRun.objects.get()
    page = staff_client.get(reverse("admin:automations_automationrun_change", args=[run.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    response = staff_client.post(
        reverse("admin:automations_automation_changelist"),
        {"action": "turn_off", "_selected_action": [run.automation_id]},
    )
    assert response.status_code == 302
    run.refresh_from_db()
    assert (run.state, run.reason) == ("cancelled", "disabled")
    assert not Automation.objects.get().enabled
