"""Fans API writes: create, change, delete (with the history rule), who may do which (as the
pages allow: chatters edit tags and notes only), scoping and validation."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.models import Conversation, Fan, Message
from tests.factories import FanFactory, MembershipFactory, MessageFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def _bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


@pytest.fixture
def manager(account):
    return MembershipFactory(account=account, role="manager").user


# --- create -----------------------------------------------------------------------------------


def test_create_fan(manager, account):
    response = _bearer(manager).post(
        "/api/crm/fans/",
        {
            "account": account.pk,
            "platform_fan_id": " 778899 ",
            "username": "newfan",
            "display_name": "New Fan",
            "email": "new@example.test",
            "tags": ["VIP", " vip", "whale"],
            "subscription_state": "active",
            "subscribed_at": "2026-01-02T03:04:05Z",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    fan = Fan.objects.get(pk=body["id"])
    assert fan.account_id == account.pk
    assert fan.platform_fan_id == "778899"
    assert fan.tags == ["vip", "whale"]
    assert body["tags"] == ["vip", "whale"]
    assert body["email"] == "new@example.test"
    assert body["subscription_state"] == "active"
    assert body["subscribed_at"].startswith("2026-01-02T03:04:05")


def test_create_fan_in_another_account_is_404(manager, other_account):
    response = _bearer(manager).post(
        "/api/crm/fans/",
        {"account": other_account.pk, "platform_fan_id": "1", "username": "sneaky"},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == "account_not_found"
    assert not Fan.objects.filter(username="sneaky").exists()


def test_create_duplicate_fan_is_409(manager, account, fan):
    api = _bearer(manager)
    same_username = api.post(
        "/api/crm/fans/",
        {"account": account.pk, "platform_fan_id": "new-id", "username": fan.username},
        format="json",
    )
    assert same_username.status_code == 409
    assert same_username.json()["code"] == "duplicate_fan"
    same_platform_id = api.post(
        "/api/crm/fans/",
        {"account": account.pk, "platform_fan_id": fan.platform_fan_id, "username": "other"},
        format="json",
    )
    assert same_platform_id.status_code == 409


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"account": None}, "validation_error", "account"),
        ({"account": "x"}, "validation_error", "account"),
        ({"platform_fan_id": None}, "validation_error", "platform_fan_id"),
        ({"platform_fan_id": "x" * 65}, "validation_error", "platform_fan_id"),
        ({"platform_fan_id": "   "}, "validation_error", "platform_fan_id"),
        ({"username": None}, "validation_error", "username"),
        ({"username": "  "}, "validation_error", "username"),
        ({"username": "x" * 151}, "validation_error", "username"),
        ({"display_name": "x" * 201}, "validation_error", "display_name"),
        ({"email": "not-an-email"}, "validation_error", "email"),
        ({"tags": "vip"}, "validation_error", "tags"),
        ({"tags": ["a,b"]}, "invalid_tag", "tags"),
        ({"tags": ["x" * 51]}, "invalid_tag", "tags"),
        ({"notes": "x" * 10_001}, "invalid_fan", "notes"),
        ({"subscription_state": "gold"}, "validation_error", "subscription_state"),
        ({"subscribed_at": "yesterday"}, "validation_error", "subscribed_at"),
        ({"username": "nul\x00byte"}, "validation_error", "username"),
    ],
)
def test_create_bad_input_is_400(manager, account, changes, code, field):
    payload = {"account": account.pk, "platform_fan_id": "55", "username": "fresh", **changes}
    payload = {k: v for k, v in payload.items() if v is not None}
    response = _bearer(manager).post("/api/crm/fans/", payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert field in response.json()["errors"]
    assert not Fan.objects.filter(account=account).exists()


def test_create_too_many_tags_is_400(manager, account):
    response = _bearer(manager).post(
        "/api/crm/fans/",
        {
            "account": account.pk,
            "platform_fan_id": "1",
            "username": "tagged",
            "tags": [f"t{i}" for i in range(31)],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "too_many_tags"


# --- change -----------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields(manager, fan):
    fan.notes = "keep me"
    fan.save()
    response = _bearer(manager).patch(
        f"/api/crm/fans/{fan.pk}/",
        {"display_name": "Renamed", "tags": ["New"], "subscription_expires_at": None},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["display_name"] == "Renamed"
    assert response.json()["tags"] == ["new"]
    fan.refresh_from_db()
    assert (fan.display_name, fan.tags, fan.notes) == ("Renamed", ["new"], "keep me")


def test_patch_duplicate_username_is_409(manager, account, fan):
    other = FanFactory(account=account)
    response = _bearer(manager).patch(
        f"/api/crm/fans/{fan.pk}/", {"username": other.username}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_fan"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": ""}, "username"),
        ({"email": "nope"}, "email"),
        ({"subscription_state": "vip"}, "subscription_state"),
        ({"display_name": "x" * 201}, "display_name"),
    ],
)
def test_patch_bad_input_is_400(manager, fan, payload, field):
    response = _bearer(manager).patch(f"/api/crm/fans/{fan.pk}/", payload, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["errors"]


def test_patch_cannot_change_the_account_or_platform_id(owner, fan, other_account):
    response = _bearer(owner).patch(
        f"/api/crm/fans/{fan.pk}/",
        {"account": other_account.pk, "platform_fan_id": "hijack", "lifetime_spend_cents": 1},
        format="json",
    )
    assert response.status_code == 200
    fan.refresh_from_db()
    assert fan.account_id != other_account.pk
    assert fan.platform_fan_id != "hijack"
    assert fan.lifetime_spend_cents == 0


# --- what a chatter may write (as on the pages: tags and notes) --------------------------------


def test_chatter_cannot_create_a_fan(chatter, account):
    response = _bearer(chatter).post(
        "/api/crm/fans/",
        {"account": account.pk, "platform_fan_id": "31337", "username": "planted"},
        format="json",
    )
    assert response.status_code == 403, response.content
    assert response.json()["code"] == "permission_denied"
    assert not Fan.objects.filter(account=account).exists()


def test_chatter_changes_tags_and_notes(chatter, fan):
    response = _bearer(chatter).patch(
        f"/api/crm/fans/{fan.pk}/", {"tags": ["VIP"], "notes": "likes cats"}, format="json"
    )
    assert response.status_code == 200, response.content
    fan.refresh_from_db()
    assert (fan.tags, fan.notes) == (["vip"], "likes cats")


@pytest.mark.parametrize(
    "changes",
    [
        {"username": "renamed"},
        {"display_name": "Renamed"},
        {"email": "someone@example.test"},
        {"subscription_state": "expired"},
        {"subscribed_at": "2026-01-01T00:00:00Z"},
        {"subscription_expires_at": None},
        {"tags": ["ok"], "username": "renamed"},
    ],
)
def test_chatter_cannot_change_a_fans_other_fields(chatter, fan, changes):
    before = Fan.objects.values().get(pk=fan.pk)
    response = _bearer(chatter).patch(f"/api/crm/fans/{fan.pk}/", changes, format="json")
    assert response.status_code == 403, response.content
    body = response.json()
    assert body["code"] == "permission_denied"
    assert set(body["errors"]) == set(changes) - {"tags"}
    assert Fan.objects.values().get(pk=fan.pk) == before  # not even the allowed part


def test_manager_changes_every_field(manager, fan):
    response = _bearer(manager).patch(
        f"/api/crm/fans/{fan.pk}/",
        {"username": "renamed", "email": "r@example.test", "subscription_state": "expired"},
        format="json",
    )
    assert response.status_code == 200, response.content
    fan.refresh_from_db()
    assert (fan.username, fan.email, fan.subscription_state) == (
        "renamed",
        "r@example.test",
        "expired",
    )


# --- delete -----------------------------------------------------------------------------------


def test_manager_deletes_a_fan_without_history(manager, fan):
    response = _bearer(manager).delete(f"/api/crm/fans/{fan.pk}/")
    assert response.status_code == 204
    assert not Fan.objects.filter(pk=fan.pk).exists()


def test_chatter_cannot_delete_a_fan(chatter, fan):
    response = _bearer(chatter).delete(f"/api/crm/fans/{fan.pk}/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Fan.objects.filter(pk=fan.pk).exists()


@pytest.mark.parametrize("history", ["message", "purchase"])
def test_delete_of_a_fan_with_history_is_409_without_force(owner, fan, history):
    if history == "message":
        MessageFactory(conversation__fan=fan)
    else:
        PurchaseFactory(fan=fan)
    response = _bearer(owner).delete(f"/api/crm/fans/{fan.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "fan_has_history"
    assert Fan.objects.filter(pk=fan.pk).exists()


@pytest.mark.parametrize("how", ["query", "body"])
def test_owner_forces_the_delete_of_a_fan_with_history(owner, fan, how):
    MessageFactory(conversation__fan=fan)
    PurchaseFactory(fan=fan)
    api = _bearer(owner)
    if how == "query":
        response = api.delete(f"/api/crm/fans/{fan.pk}/?force=1")
    else:
        response = api.delete(f"/api/crm/fans/{fan.pk}/", {"force": True}, format="json")
    assert response.status_code == 204, response.content
    assert not Fan.objects.filter(pk=fan.pk).exists()
    assert not Conversation.objects.filter(fan_id=fan.pk).exists()
    assert Message.objects.count() == 0


def test_manager_cannot_force(manager, fan):
    MessageFactory(conversation__fan=fan)
    response = _bearer(manager).delete(f"/api/crm/fans/{fan.pk}/?force=1")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert Fan.objects.filter(pk=fan.pk).exists()


def test_bad_force_is_400(owner, fan):
    response = _bearer(owner).delete(f"/api/crm/fans/{fan.pk}/?force=perhaps")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "force" in response.json()["errors"]
    assert Fan.objects.filter(pk=fan.pk).exists()


# --- scoping ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [
        ("get", "", None),
        ("patch", "", {"display_name": "pwned"}),
        ("delete", "", None),
        ("delete", "?force=1", None),
    ],
)
def test_another_accounts_fan_is_404_for_every_method(owner, other_fan, method, suffix, payload):
    response = getattr(_bearer(owner), method)(
        f"/api/crm/fans/{other_fan.pk}/{suffix}", payload, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "fan_not_found"
    other_fan.refresh_from_db()
    assert other_fan.display_name != "pwned"


def test_unknown_fan_is_404(owner):
    response = _bearer(owner).patch(f"/api/crm/fans/{2**63 + 1}/", {}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "fan_not_found"
