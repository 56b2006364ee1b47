"""The vault's schema: what the database itself refuses, and that history is never lost."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import RestrictedError
from django.utils import timezone

from crm.models import FanMediaEvent, MessageMedia, VaultItem
from tests.factories import (
    FanFactory,
    MessageFactory,
    VaultItemFactory,
)

pytestmark = pytest.mark.django_db


def test_platform_media_id_unique_per_account(account, other_account):
    VaultItemFactory(account=account, platform_media_id="42")
    VaultItemFactory(account=other_account, platform_media_id="42")
    with pytest.raises(IntegrityError), transaction.atomic():
        VaultItemFactory(account=account, platform_media_id="42")


@pytest.mark.parametrize("price", [0, 299, 20001])
def test_suggested_price_outside_ppv_range_refused(account, price):
    with pytest.raises(IntegrityError), transaction.atomic():
        VaultItemFactory(account=account, suggested_price_cents=price)


def test_history_event_unique_per_fan_media_kind(account):
    fan = FanFactory(account=account)
    item = VaultItemFactory(account=account)
    row = {
        "account": account,
        "fan": fan,
        "vault_item": item,
        "platform_media_id": item.platform_media_id,
        "kind": FanMediaEvent.Kind.OFFERED,
        "price_cents": 1500,
        "at": timezone.now(),
        "source": FanMediaEvent.Source.PLATFORM_HISTORY,
    }
    FanMediaEvent.objects.create(**row)
    with pytest.raises(IntegrityError), transaction.atomic():
        FanMediaEvent.objects.create(**row)
    # The same media bought is another row.
    FanMediaEvent.objects.create(**{**row, "kind": FanMediaEvent.Kind.BOUGHT})
    assert FanMediaEvent.objects.filter(fan=fan).count() == 2


def test_our_event_needs_a_message(account):
    fan = FanFactory(account=account)
    with pytest.raises(IntegrityError), transaction.atomic():
        FanMediaEvent.objects.create(
            account=account,
            fan=fan,
            platform_media_id="1",
            kind=FanMediaEvent.Kind.SENT_FREE,
            at=timezone.now(),
            source=FanMediaEvent.Source.OURS,
        )


def test_item_a_message_carried_cannot_be_deleted_alone(account):
    item = VaultItemFactory(account=account)
    message = MessageFactory(conversation__fan__account=account)
    MessageMedia.objects.create(
        account=account,
        message=message,
        vault_item=item,
        platform_media_id=item.platform_media_id,
        position=0,
    )
    with pytest.raises(RestrictedError):
        item.delete()


def test_deleting_the_account_deletes_its_vault_and_history(account):
    # RESTRICT (not PROTECT): the account's own cascade may take items and their history.
    item = VaultItemFactory(account=account)
    message = MessageFactory(conversation__fan__account=account)
    MessageMedia.objects.create(
        account=account,
        message=message,
        vault_item=item,
        platform_media_id=item.platform_media_id,
        position=0,
    )
    FanMediaEvent.objects.create(
        account=account,
        fan=message.conversation.fan,
        vault_item=item,
        platform_media_id=item.platform_media_id,
        kind=FanMediaEvent.Kind.SENT_FREE,
        at=timezone.now(),
        message=message,
        source=FanMediaEvent.Source.OURS,
    )
    account.delete()
    assert not VaultItem.objects.exists()
    assert not FanMediaEvent.objects.exists()


@pytest.mark.parametrize(
    "model_name", ["vaultitem", "vaultlist", "messagemedia", "fanmediaevent", "vaultsync"]
)
def test_admin_lists_and_opens_vault_rows(client, account, model_name):
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    from crm.models import VaultSync
    from tests.factories import VaultListFactory

    item = VaultItemFactory(account=account)
    message = MessageFactory(conversation__fan__account=account)
    rows = {
        "vaultitem": item,
        "vaultlist": VaultListFactory(account=account),
        "messagemedia": MessageMedia.objects.create(
            account=account, message=message, vault_item=item, platform_media_id="1", position=0
        ),
        "fanmediaevent": FanMediaEvent.objects.create(
            account=account,
            fan=message.conversation.fan,
            platform_media_id="1",
            kind="sent_free",
            at=timezone.now(),
            source="platform_history",
        ),
        "vaultsync": VaultSync.objects.filter(account=account).first(),
    }
    admin_user = get_user_model().objects.create_superuser(
        "root", "root@example.test", "pw-12345678"
    )
    client.force_login(admin_user)
    assert client.get(reverse(f"admin:crm_{model_name}_changelist")).status_code == 200
    obj = rows[model_name]
    assert client.get(reverse(f"admin:crm_{model_name}_change", args=[obj.pk])).status_code == 200
