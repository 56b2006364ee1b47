from __future__ import annotations

import pytest
from django.urls import reverse

from crm.errors import ApplicationError, NotFoundError
from crm.models import ApiToken, Membership
from crm.services import (
    api_token_create,
    api_token_revoke,
    fan_update,
    membership_delete,
    membership_update_role,
)
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(account):
    return MembershipFactory(account=account, role="manager").user


def _membership(user, account) -> Membership:
    return Membership.objects.select_related("account").get(user=user, account=account)


# --- fan_update ----------------------------------------------------------------------------


def test_fan_update_normalizes_tags(chatter, fan):
    fan_update(actor=chatter, fan=fan, tags=[" Whale ", "VIP", "whale", "  "], notes="hi")
    fan.refresh_from_db()
    assert fan.tags == ["whale", "vip"]
    assert fan.notes == "hi"


@pytest.mark.parametrize(
    ("tags", "message"),
    [
        (["a,b"], "comma"),
        (["x" * 51], "at most 50 characters"),
        ([f"t{i}" for i in range(31)], "at most 30 tags"),
    ],
)
def test_fan_update_rejects_bad_tags(chatter, fan, tags, message):
    with pytest.raises(ApplicationError, match=message):
        fan_update(actor=chatter, fan=fan, tags=tags, notes="")
    fan.refresh_from_db()
    assert fan.tags == []


def test_fan_update_accepts_thirty_tags_of_fifty_chars(chatter, fan):
    tags = [f"{i:02d}" + "x" * 48 for i in range(30)]
    fan_update(actor=chatter, fan=fan, tags=tags, notes="")
    fan.refresh_from_db()
    assert len(fan.tags) == 30


def test_fan_update_by_a_stranger_is_not_found(other_fan, chatter):
    with pytest.raises(NotFoundError):
        fan_update(actor=chatter, fan=other_fan, tags=["x"], notes="")


# --- membership rules ----------------------------------------------------------------------


def test_chatter_cannot_manage_members(chatter, owner, account):
    # Invitations (adding members) have their own tests: tests/crm/test_invitations.py.
    with pytest.raises(ApplicationError):
        membership_update_role(
            actor=chatter, membership=_membership(owner, account), role="chatter"
        )
    with pytest.raises(ApplicationError):
        membership_delete(actor=chatter, membership=_membership(owner, account))
    assert _membership(owner, account).role == "owner"


def test_manager_cannot_touch_owners(manager, owner, account):
    owner_membership = _membership(owner, account)
    with pytest.raises(ApplicationError, match="Only an owner"):
        membership_update_role(actor=manager, membership=owner_membership, role="chatter")
    with pytest.raises(ApplicationError, match="Only an owner"):
        membership_delete(actor=manager, membership=owner_membership)
    assert _membership(owner, account).role == "owner"


def test_manager_cannot_promote_to_owner(manager, chatter, account):
    with pytest.raises(ApplicationError, match="Only an owner"):
        membership_update_role(
            actor=manager, membership=_membership(chatter, account), role="owner"
        )
    assert _membership(chatter, account).role == "chatter"


def test_manager_can_promote_chatter_to_manager_and_remove_them(manager, chatter, account):
    membership = membership_update_role(
        actor=manager, membership=_membership(chatter, account), role="manager"
    )
    assert membership.role == "manager"
    membership_delete(actor=manager, membership=membership)
    assert not Membership.objects.filter(user=chatter, account=account).exists()


def test_last_owner_cannot_be_demoted_or_removed(owner, account):
    own = _membership(owner, account)
    with pytest.raises(ApplicationError) as error:
        membership_update_role(actor=owner, membership=own, role="manager")
    assert error.value.code == "last_owner"
    with pytest.raises(ApplicationError) as error:
        membership_delete(actor=owner, membership=own)
    assert error.value.code == "last_owner"
    assert _membership(owner, account).role == "owner"


def test_an_owner_can_step_down_when_another_owner_remains(owner, account):
    second_owner = MembershipFactory(account=account, role="owner").user
    membership_update_role(actor=owner, membership=_membership(owner, account), role="manager")
    assert _membership(owner, account).role == "manager"
    with pytest.raises(ApplicationError, match="last owner"):
        membership_delete(actor=second_owner, membership=_membership(second_owner, account))


# --- members page --------------------------------------------------------------------------


def test_members_page_lists_everyone_for_a_chatter_without_forms(
    client, chatter, owner, account, django_assert_num_queries
):
    client.force_login(chatter)
    with django_assert_num_queries(6):
        response = client.get(reverse("member_list", args=[account.pk]))
    html = response.content.decode()
    assert owner.username in html and chatter.username in html
    assert "Invite a member" not in html and "Pending invitations" not in html


def test_members_page_query_count_does_not_grow(client, owner, account, django_assert_num_queries):
    MembershipFactory.create_batch(20, account=account)
    client.force_login(owner)
    with django_assert_num_queries(7):
        response = client.get(reverse("member_list", args=[account.pk]))
    assert len(response.context["members"]) == 21


def test_owner_changes_and_removes_through_the_page(client, owner, account):
    newcomer = UserFactory()
    membership = MembershipFactory(user=newcomer, account=account, role="chatter")
    client.force_login(owner)

    client.post(reverse("member_update", args=[account.pk, membership.pk]), {"role": "manager"})
    assert _membership(newcomer, account).role == "manager"

    client.post(reverse("member_delete", args=[account.pk, membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_page_shows_last_owner_error_instead_of_500(client, owner, account):
    client.force_login(owner)
    membership = _membership(owner, account)
    response = client.post(
        reverse("member_update", args=[account.pk, membership.pk]), {"role": "chatter"}
    )
    assert response.status_code == 400
    assert "last owner" in response.content.decode()


# --- API tokens ----------------------------------------------------------------------------


def test_api_tokens_are_stored_hashed_and_revoked_one_by_one(chatter):
    # Hashed tokens (issue 11): several per user, the key shown once, only its hash stored.
    first, first_key = api_token_create(user=chatter, name="export")
    second, second_key = api_token_create(user=chatter, name="sync")
    assert first_key != second_key and first_key.startswith("fcrm_")
    stored = ApiToken.objects.get(pk=first.pk)
    assert first_key not in (stored.key_hash, stored.key_prefix)
    api_token_revoke(user=chatter, token_id=first.pk)
    assert list(ApiToken.objects.filter(user=chatter, revoked_at__isnull=True)) == [second]
