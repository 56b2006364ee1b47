from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import CreatorAccountFactory, FanFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def _bearer(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    return api


def test_accounts_lists_my_accounts_with_my_role(chatter, account, other_account):
    response = _bearer(chatter).get("/api/crm/accounts/")
    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "id": account.pk,
            "display_name": account.display_name,
            "platform_account_id": account.platform_account_id,
            "connection_state": "connected",
            "role": "chatter",
            "send_rate_per_minute": account.send_rate_per_minute,
            "send_min_interval_ms": account.send_min_interval_ms,
        }
    ]


def test_accounts_query_count_is_constant(django_assert_num_queries):
    user = UserFactory()
    for _ in range(5):
        MembershipFactory(user=user, account=CreatorAccountFactory())
    api = _bearer(user)
    # token+user, count, page
    with django_assert_num_queries(3):
        response = api.get("/api/crm/accounts/")
    assert response.json()["count"] == 5


def test_bad_bearer_token_is_401():
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    response = api.get("/api/crm/accounts/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"


def test_session_auth_works_for_the_api(client, chatter, account):
    client.force_login(chatter)
    response = client.get("/api/crm/accounts/")
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [account.pk]


def test_fans_api_filters_and_paginates(chatter, account, django_assert_num_queries):
    FanFactory(account=account, username="whaley", tags=["whale"], lifetime_spend_cents=100)
    FanFactory.create_batch(30, account=account, tags=["new"])
    api = _bearer(chatter)

    # token+user, membership check, count, page
    with django_assert_num_queries(4):
        response = api.get("/api/crm/fans/", {"account": account.pk, "limit": 10})
    body = response.json()
    assert body["count"] == 31
    assert len(body["results"]) == 10
    assert body["results"][0]["username"] == "whaley"

    tagged = api.get("/api/crm/fans/", {"account": account.pk, "tag": "whale"}).json()
    assert [row["username"] for row in tagged["results"]] == ["whaley"]
    searched = api.get("/api/crm/fans/", {"account": account.pk, "q": "WHAL"}).json()
    assert searched["count"] == 1


def test_fans_api_needs_an_account(chatter):
    response = _bearer(chatter).get("/api/crm/fans/")
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "account" in response.json()["errors"]


def test_fan_detail_api(chatter, fan):
    response = _bearer(chatter).get(f"/api/crm/fans/{fan.pk}/")
    assert response.status_code == 200
    assert response.json()["username"] == fan.username
    assert response.json()["account"] == fan.account_id


def test_create_api_token_prints_a_token_that_authenticates(capsys, chatter, account):
    call_command("create_api_token", chatter.username)
    key = capsys.readouterr().out.strip()
    # Hashed tokens (issue 11): each run makes a new named token; only its hash is stored.
    from crm.models import ApiToken

    assert ApiToken.objects.get(user=chatter).key_prefix == key[:12]
    call_command("create_api_token", chatter.username, "--name", "second")
    assert capsys.readouterr().out.strip() != key
    assert ApiToken.objects.filter(user=chatter).count() == 2

    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/crm/accounts/").json()["results"][0]["id"] == account.pk


def test_create_api_token_for_unknown_user_fails():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


def test_create_api_token_exits_nonzero_for_unknown_user(capsys):
    from django.core.management import execute_from_command_line

    with pytest.raises(SystemExit) as exit_info:
        execute_from_command_line(["manage.py", "create_api_token", "ghost"])

    assert exit_info.value.code != 0
    assert "No user named 'ghost'" in capsys.readouterr().err
