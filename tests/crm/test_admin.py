from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.models import Conversation, CreatorAccount, Fan, Membership, Message, Purchase
from onlyfans.models import WebhookEvent
from tests.factories import (
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    MessageFactory,
    PurchaseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MODELS = [CreatorAccount, Membership, Fan, Conversation, Message, Purchase, WebhookEvent]
BIG_TABLES = [Fan, Conversation, Message, Purchase, WebhookEvent]


def _rows(count: int) -> None:
    """``count`` rows in every admin'd table, each with its own related rows."""
    for i in range(count):
        account = CreatorAccountFactory()
        MembershipFactory(account=account)
        message = MessageFactory(
            conversation__fan__account=account, conversation__assigned_to=UserFactory()
        )
        PurchaseFactory(fan=message.conversation.fan, message=message)
        WebhookEvent.objects.create(
            event="fan.message", event_key=f"evt-{count}-{i}", account=account
        )


@pytest.fixture
def superuser():
    return UserFactory(is_staff=True, is_superuser=True)


def _queries_for_changelist(client, model) -> int:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, model
    return len(queries)


def test_every_model_is_registered():
    for model in MODELS:
        assert admin.site.is_registered(model), model


def test_big_tables_do_not_count_rows():
    for model in BIG_TABLES:
        assert admin.site._registry[model].show_full_result_count is False, model
        assert not admin.site._registry[model].date_hierarchy, model


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_query_count_does_not_grow_with_rows(client, superuser, model):
    client.force_login(superuser)
    _rows(3)
    few = _queries_for_changelist(client, model)
    _rows(12)
    many = _queries_for_changelist(client, model)
    assert many == few, f"{model.__name__}: {few} queries for 3 rows, {many} for 15"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_change_form_loads(client, superuser, model):
    _rows(1)
    client.force_login(superuser)
    obj = model.objects.first()
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])
    assert client.get(url).status_code == 200


def test_admin_search_by_exact_platform_ids(client, superuser):
    fan = FanFactory(platform_fan_id="424242")
    near_miss = FanFactory(platform_fan_id="4242420")
    message = MessageFactory(conversation__fan=fan, platform_message_id="pm-1")
    client.force_login(superuser)

    fans = client.get(reverse("admin:crm_fan_changelist"), {"q": "424242"})
    messages = client.get(reverse("admin:crm_message_changelist"), {"q": "pm-1"})
    not_a_uuid = client.get(reverse("admin:crm_message_changelist"), {"q": "hello"})

    found_fans = [f.pk for f in fans.context["cl"].result_list]
    assert fan.pk in found_fans
    assert near_miss.pk not in found_fans  # exact match, not icontains
    assert message.pk in [m.pk for m in messages.context["cl"].result_list]
    assert not_a_uuid.status_code == 200


def test_platform_ids_are_read_only_on_change(client, superuser):
    PurchaseFactory(platform_event_id="evt-1", purchased_at=datetime(2025, 1, 1, tzinfo=UTC))
    client.force_login(superuser)
    for model, field in [
        (Fan, "platform_fan_id"),
        (Message, "idempotency_key"),
        (Purchase, "platform_event_id"),
        (CreatorAccount, "platform_account_id"),
    ]:
        model_admin = admin.site._registry[model]
        obj = model.objects.first() or MessageFactory()
        assert field in model_admin.get_readonly_fields(None, obj), (model, field)


def test_admin_is_for_superusers_only(client, chatter):
    client.force_login(chatter)
    response = client.get(reverse("admin:crm_fan_changelist"))
    assert response.status_code == 302
