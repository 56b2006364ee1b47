"""A member of account A sees nothing of account B: every page, form and API answers 404."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from crm.models import Membership
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def other_member(other_account):
    return MembershipFactory(account=other_account, role="owner")


def _page_urls(other_account, other_fan, other_member):
    return [
        reverse("fan_list", args=[other_account.pk]),
        reverse("fan_list", args=[other_account.pk]) + "?tag=vip",
        reverse("fan_detail", args=[other_account.pk, other_fan.pk]),
        reverse("member_list", args=[other_account.pk]),
    ]


def test_every_page_of_another_account_is_404(
    client, chatter, other_account, other_fan, other_member
):
    client.force_login(chatter)
    for url in _page_urls(other_account, other_fan, other_member):
        assert client.get(url).status_code == 404, url
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 404, url


def test_every_post_to_another_account_is_404_and_changes_nothing(
    client, owner, other_account, other_fan, other_member
):
    # An owner of account A is still a stranger to account B.
    client.force_login(owner)
    account_id, member_id = other_account.pk, other_member.pk
    posts = [
        (reverse("fan_detail", args=[account_id, other_fan.pk]), {"tags": "x", "notes": "x"}),
        (reverse("invitation_create", args=[account_id]), {"role": "owner"}),
        (reverse("member_update", args=[account_id, member_id]), {"role": "chatter"}),
        (reverse("member_delete", args=[account_id, member_id]), {}),
        (reverse("account_switch"), {"account_id": account_id}),
    ]
    for url, data in posts:
        assert client.post(url, data).status_code == 404, url

    other_fan.refresh_from_db()
    assert other_fan.tags == [] and other_fan.notes == ""
    assert not Membership.objects.filter(user=owner, account=other_account).exists()
    other_member.refresh_from_db()
    assert other_member.role == "owner"


def test_a_member_id_of_another_account_under_my_account_is_404(
    client, owner, account, other_member
):
    client.force_login(owner)
    url = reverse("member_update", args=[account.pk, other_member.pk])
    assert client.post(url, {"role": "chatter"}).status_code == 404
    url = reverse("member_delete", args=[account.pk, other_member.pk])
    assert client.post(url).status_code == 404
    assert Membership.objects.filter(pk=other_member.pk).exists()


def test_fan_of_another_account_under_my_account_url_is_404(client, chatter, account, other_fan):
    client.force_login(chatter)
    assert client.get(reverse("fan_detail", args=[account.pk, other_fan.pk])).status_code == 404


def test_every_api_url_of_another_account_is_404(chatter, other_account, other_fan):
    api = APIClient()
    api.force_authenticate(chatter)

    fans = api.get("/api/crm/fans/", {"account": other_account.pk})
    fan = api.get(f"/api/crm/fans/{other_fan.pk}/")

    assert fans.status_code == 404
    assert fans.json()["code"] == "account_not_found"
    assert fan.status_code == 404
    assert fan.json()["code"] == "fan_not_found"
    accounts = api.get("/api/crm/accounts/").json()["results"]
    assert other_account.pk not in [row["id"] for row in accounts]


def test_api_without_credentials_is_refused(other_fan):
    response = APIClient().get(f"/api/crm/fans/{other_fan.pk}/")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_a_user_with_no_memberships_sees_no_accounts(client, account, fan):
    loner = UserFactory()
    client.force_login(loner)
    assert list(client.get(reverse("home")).context["memberships"]) == []
    assert client.get(reverse("fan_list", args=[account.pk])).status_code == 404
