"""The one "may this member manage" rule (crm.selectors.manager_membership_get) that the
campaigns, imports, analytics, sync and crm services share."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from crm.errors import ApplicationError, NotFoundError
from crm.selectors import manager_membership_get, membership_get
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("role", ["owner", "manager"])
def test_owners_and_managers_pass(account, role):
    membership = MembershipFactory(account=account, role=role)

    got = manager_membership_get(user=membership.user, account_id=account.pk, action="do it")

    assert got == membership


def test_a_chatter_is_refused_with_403_naming_the_action(account, chatter):
    with pytest.raises(ApplicationError) as refused:
        manager_membership_get(user=chatter, account_id=account.pk, action="run campaigns")

    assert not isinstance(refused.value, NotFoundError)
    assert refused.value.status_code == 403
    assert refused.value.code == "permission_denied"
    assert refused.value.message == "Only owners and managers can run campaigns."


@pytest.mark.parametrize("who", ["stranger", "other_owner", "anonymous"])
def test_anyone_outside_the_account_sees_no_account(account, other_account, who):
    user = {
        "stranger": lambda: UserFactory(),
        "other_owner": lambda: MembershipFactory(account=other_account, role="owner").user,
        "anonymous": AnonymousUser,
    }[who]()

    for check in (
        lambda: manager_membership_get(user=user, account_id=account.pk, action="do it"),
        lambda: membership_get(user=user, account_id=account.pk),
    ):
        with pytest.raises(NotFoundError) as missing:
            check()
        assert missing.value.code == "account_not_found"
        assert missing.value.status_code == 404
