"""People join an account through a one-time invitation link, never by a username typed in."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.errors import ApplicationError, NotFoundError
from crm.invitations import (
    invitation_accept,
    invitation_accept_new_user,
    invitation_create,
    invitation_revoke,
)
from crm.models import Invitation, Membership
from crm.selectors import invitations_pending_for_account
from tests.factories import CreatorAccountFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

STRONG_PASSWORD = "correct-horse-battery-9"


@pytest.fixture
def manager(account):
    return MembershipFactory(account=account, role="manager").user


def _invite(actor, account, role="chatter", email=""):
    return invitation_create(actor=actor, account=account, role=role, email=email)


def _accept_url(token: str) -> str:
    return reverse("invitation_accept", args=[token])


def _page_text(response) -> str:
    # The masked CSRF token differs on every answer; nothing else may.
    html = response.content.decode()
    return re.sub(r'(csrfmiddlewaretoken" value=|X-CSRFToken": )"[^"]*"', r"\1-", html)


# --- services ------------------------------------------------------------------------------


def test_create_stores_only_the_hash_and_expires_after_the_setting(owner, account, settings):
    settings.INVITATION_TTL_DAYS = 3
    invitation, token = _invite(owner, account, role="manager", email=" kim@example.test ")
    stored = Invitation.objects.get(pk=invitation.pk)
    assert len(token) >= 40
    assert token not in stored.token_hash and stored.token_hash == Invitation.token_hash_of(token)
    assert stored.email == "kim@example.test" and stored.role == "manager"
    assert stored.created_by == owner
    assert timedelta(days=3) - (stored.expires_at - stored.created_at) < timedelta(seconds=5)


def test_accept_joins_once_with_the_invited_role(owner, account):
    _invitation, token = _invite(owner, account, role="manager")
    newcomer, latecomer = UserFactory(), UserFactory()

    membership = invitation_accept(token=token, user=newcomer)

    assert (membership.user, membership.account, membership.role) == (newcomer, account, "manager")
    invitation = Invitation.objects.get()
    assert invitation.accepted_by == newcomer and invitation.accepted_at is not None
    with pytest.raises(NotFoundError) as error:
        invitation_accept(token=token, user=latecomer)
    assert error.value.code == "invitation_invalid"
    assert not Membership.objects.filter(user=latecomer).exists()


def test_expired_and_revoked_links_do_not_join(owner, account):
    _expired, expired_token = _invite(owner, account)
    Invitation.objects.filter(pk=_expired.pk).update(expires_at=timezone.now())
    revoked, revoked_token = _invite(owner, account)
    invitation_revoke(actor=owner, account=account, invitation_id=revoked.pk)
    newcomer = UserFactory()
    for token in (expired_token, revoked_token, "nope", "x" * 500, ""):
        with pytest.raises(NotFoundError) as error:
            invitation_accept(token=token, user=newcomer)
        assert error.value.code == "invitation_invalid"
    assert not Membership.objects.filter(user=newcomer).exists()


def test_a_member_already_is_refused_and_the_link_stays_open(owner, chatter, account):
    _invitation, token = _invite(owner, account, role="manager")
    with pytest.raises(ApplicationError) as error:
        invitation_accept(token=token, user=chatter)
    assert error.value.code == "already_member"
    assert Membership.objects.filter(user=chatter, account=account).count() == 1
    assert Membership.objects.get(user=chatter, account=account).role == "chatter"
    assert Invitation.objects.get().accepted_at is None


@pytest.mark.parametrize(
    ("actor_role", "role", "allowed"),
    [
        ("owner", "owner", True),
        ("owner", "manager", True),
        ("manager", "manager", True),
        ("manager", "chatter", True),
        ("manager", "owner", False),
        ("chatter", "chatter", False),
    ],
)
def test_who_may_invite_whom(account, actor_role, role, allowed):
    actor = MembershipFactory(account=account, role=actor_role).user
    if allowed:
        invitation, _token = _invite(actor, account, role=role)
        assert invitation.role == role
    else:
        with pytest.raises(ApplicationError) as error:
            _invite(actor, account, role=role)
        assert error.value.code == "permission_denied" and error.value.status_code == 403
        assert not Invitation.objects.exists()


@pytest.mark.parametrize(
    ("role", "email", "code"),
    [("boss", "", "invalid_role"), ("chatter", "not-an-email", "invalid_email")],
)
def test_create_refuses_bad_input(owner, account, role, email, code):
    with pytest.raises(ApplicationError) as error:
        _invite(owner, account, role=role, email=email)
    assert error.value.code == code
    assert not Invitation.objects.exists()


def test_a_manager_cannot_revoke_an_owner_invitation(owner, manager, account):
    invitation, _token = _invite(owner, account, role="owner")
    with pytest.raises(ApplicationError) as error:
        invitation_revoke(actor=manager, account=account, invitation_id=invitation.pk)
    assert error.value.status_code == 403
    assert Invitation.objects.get().revoked_at is None


def test_another_accounts_manager_neither_sees_nor_revokes(owner, account):
    invitation, token = _invite(owner, account)
    other_account = CreatorAccountFactory()
    stranger = MembershipFactory(account=other_account, role="owner").user
    with pytest.raises(NotFoundError):
        invitations_pending_for_account(user=stranger, account_id=account.pk)
    with pytest.raises(NotFoundError):
        invitation_revoke(actor=stranger, account=account, invitation_id=invitation.pk)
    with pytest.raises(NotFoundError):  # nor through an account of their own
        invitation_revoke(actor=stranger, account=other_account, invitation_id=invitation.pk)
    assert invitations_pending_for_account(user=stranger, account_id=other_account.pk) == []
    assert Invitation.objects.get().revoked_at is None
    assert invitation_accept(token=token, user=UserFactory()).account == account


def test_chatter_sees_no_invitations(owner, chatter, account):
    _invite(owner, account)
    assert invitations_pending_for_account(user=chatter, account_id=account.pk) == []
    assert len(invitations_pending_for_account(user=owner, account_id=account.pk)) == 1


def test_new_user_joins_or_nothing_is_written(owner, account):
    _invitation, token = _invite(owner, account)
    with pytest.raises(ApplicationError) as error:
        invitation_accept_new_user(token=token, username="kim", password="12345678")
    assert "password1" in error.value.fields
    assert not get_user_model().objects.filter(username="kim").exists()

    membership = invitation_accept_new_user(
        token=token, username="kim", password=STRONG_PASSWORD, email="kim@example.test"
    )
    assert membership.user.username == "kim" and membership.user.check_password(STRONG_PASSWORD)
    assert membership.account == account and membership.role == "chatter"


def test_one_link_joins_one_person_when_two_open_it_at_once(owner, account, transactional_db):
    # Both requests pass the page's check; the row lock lets only the first one join.
    _invitation, token = _invite(owner, account)
    people = [UserFactory(), UserFactory()]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def join(user) -> None:
        try:
            barrier.wait(timeout=5)
            invitation_accept(token=token, user=user)
            outcomes.append("joined")
        except ApplicationError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=join, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(outcomes) == ["invitation_invalid", "joined"]
    assert Membership.objects.filter(user__in=people).count() == 1


# --- members page --------------------------------------------------------------------------


def test_owner_invites_through_the_page_and_sees_the_link_once(client, owner, account):
    client.force_login(owner)
    response = client.post(
        reverse("invitation_create", args=[account.pk]), {"role": "manager", "email": ""}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    link = response.context["invite_link"]
    assert link.startswith("http://testserver/invite/")
    assert f'value="{link}"' in response.content.decode()
    invitation = Invitation.objects.get()
    assert invitation.token_hash == Invitation.token_hash_of(link.rstrip("/").rsplit("/", 1)[1])

    again = client.get(reverse("member_list", args=[account.pk])).content.decode()
    assert link not in again
    assert f'id="invitation-{invitation.pk}"' in again


def test_chatter_cannot_invite_through_the_page(client, chatter, account):
    client.force_login(chatter)
    response = client.post(reverse("invitation_create", args=[account.pk]), {"role": "chatter"})
    assert response.status_code == 403
    assert "Only owners and managers" in response.content.decode()
    assert not Invitation.objects.exists()


def test_bad_email_is_shown_on_the_form(client, owner, account):
    client.force_login(owner)
    response = client.post(
        reverse("invitation_create", args=[account.pk]), {"role": "chatter", "email": "nope"}
    )
    assert response.status_code == 400
    assert "Enter a valid email address" in response.content.decode()


def test_revoke_through_the_page(client, owner, account):
    invitation, token = _invite(owner, account)
    client.force_login(owner)
    response = client.post(reverse("invitation_revoke", args=[account.pk, invitation.pk]))
    assert response.status_code == 302
    assert Invitation.objects.get().revoked_at is not None
    page = client.get(reverse("member_list", args=[account.pk])).content.decode()
    assert f'id="invitation-{invitation.pk}"' not in page
    assert client.get(_accept_url(token)).status_code == 404


def test_another_accounts_manager_gets_404_on_revoke(client, owner, account):
    invitation, _token = _invite(owner, account)
    other_account = CreatorAccountFactory()
    stranger = MembershipFactory(account=other_account, role="manager").user
    client.force_login(stranger)
    for account_id in (account.pk, other_account.pk):
        url = reverse("invitation_revoke", args=[account_id, invitation.pk])
        assert client.post(url).status_code == 404
    assert client.get(reverse("member_list", args=[account.pk])).status_code == 404
    assert Invitation.objects.get().revoked_at is None


def test_members_page_query_count_does_not_grow_with_invitations(
    client, owner, account, django_assert_num_queries
):
    client.force_login(owner)
    _invite(owner, account)
    url = reverse("member_list", args=[account.pk])
    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for _ in range(20):
        _invite(owner, account)
    with django_assert_num_queries(len(one)):
        response = client.get(url)
    assert len(response.context["invitations"]) == 21


# --- no page tells whether a username exists ----------------------------------------------


def test_the_add_by_username_path_is_gone(client, owner, account):
    someone = UserFactory()
    client.force_login(owner)
    url = reverse("member_list", args=[account.pk])
    page = client.get(url).content.decode()
    assert 'name="username"' not in page
    assert client.post(url, {"username": someone.username, "role": "chatter"}).status_code == 405
    create = reverse("invitation_create", args=[account.pk])
    client.post(create, {"username": someone.username, "role": "chatter"})
    assert not Membership.objects.filter(user=someone).exists()


def test_a_dead_link_says_nothing_about_usernames(client, owner, account):
    taken = UserFactory(username="taken-name")
    _invitation, token = _invite(owner, account)
    invitation_accept(token=token, user=UserFactory())
    answers = [
        client.post(_accept_url(token), {"username": name, **_passwords()})
        for name in (taken.username, "free-name")
    ]
    assert {a.status_code for a in answers} == {404}
    assert _page_text(answers[0]) == _page_text(answers[1])
    assert not get_user_model().objects.filter(username="free-name").exists()


def _passwords() -> dict[str, str]:
    return {"password1": STRONG_PASSWORD, "password2": STRONG_PASSWORD}


# --- the link's page -----------------------------------------------------------------------


def test_signed_in_person_sees_account_and_role_then_joins(client, owner, account):
    _invitation, token = _invite(owner, account, role="manager")
    newcomer = UserFactory()
    client.force_login(newcomer)

    page = client.get(_accept_url(token))
    html = page.content.decode()
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    # Not "no-referrer": browsers would then post the Join form with "Origin: null" (CSRF 403).
    assert page["Referrer-Policy"] == "same-origin"
    assert account.display_name in html and "Manager" in html and "Join " in html
    assert 'name="password1"' not in html

    response = client.post(_accept_url(token))
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox", args=[account.pk])
    assert Membership.objects.get(user=newcomer, account=account).role == "manager"
    assert client.session["current_account_id"] == account.pk


def test_signed_out_person_logs_in_and_comes_back(client, owner, account):
    _invitation, token = _invite(owner, account)
    newcomer = UserFactory()
    page = client.get(_accept_url(token))
    html = page.content.decode()
    assert account.display_name in html and "Chatter" in html
    login_url = page.context["login_url"]
    assert login_url == reverse("login") + "?next=" + _accept_url(token).replace("/", "%2F")
    assert f'href="{login_url}"' in html

    response = client.post(
        login_url,
        {"username": newcomer.username, "password": "pw-for-tests-123", "next": _accept_url(token)},
    )
    assert response.status_code == 302 and response["Location"] == _accept_url(token)
    client.post(_accept_url(token))
    assert Membership.objects.filter(user=newcomer, account=account).exists()


def test_signed_out_person_creates_an_account_and_joins(client, owner, account):
    _invitation, token = _invite(owner, account, email="kim@example.test")
    page = client.get(_accept_url(token))
    assert 'value="kim@example.test"' in page.content.decode()

    response = client.post(
        _accept_url(token), {"username": "kim", "email": "kim@example.test", **_passwords()}
    )

    assert response.status_code == 302
    kim = get_user_model().objects.get(username="kim")
    assert kim.email == "kim@example.test" and kim.check_password(STRONG_PASSWORD)
    assert Membership.objects.get(user=kim).account == account
    assert client.session["_auth_user_id"] == str(kim.pk)
    assert Invitation.objects.get().accepted_by == kim


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password1": "12345678", "password2": "12345678"}, "too common"),
        ({"password1": "kimkimkim1", "password2": "kimkimkim1"}, "too similar"),
        ({"password1": "a-Long-one-1", "password2": "another-one-2"}, "differ"),
        ({"username": "bad name!"}, "Enter a valid username"),
        ({"username": "TAKEN-name"}, "This username is taken"),
    ],
)
def test_signup_errors_are_shown_and_nothing_is_written(client, owner, account, fields, message):
    UserFactory(username="taken-name")
    _invitation, token = _invite(owner, account)
    users = get_user_model().objects.count()
    data = {"username": "kimkimkim", "email": "", **_passwords(), **fields}

    response = client.post(_accept_url(token), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert get_user_model().objects.count() == users
    assert Invitation.objects.get().accepted_at is None


def test_a_member_already_gets_a_clear_message_and_no_duplicate(client, owner, chatter, account):
    _invitation, token = _invite(owner, account, role="owner")
    client.force_login(chatter)
    page = client.get(_accept_url(token))
    html = page.content.decode()
    assert "already a member" in html
    assert f"Join {account.display_name}</button>" not in html
    client.post(_accept_url(token))
    assert list(Membership.objects.filter(user=chatter).values_list("role", flat=True)) == [
        "chatter"
    ]
    assert Invitation.objects.get().accepted_at is None


def test_every_dead_link_gets_the_same_page(client, owner, account):
    _used, used_token = _invite(owner, account)
    invitation_accept(token=used_token, user=UserFactory())
    expired, expired_token = _invite(owner, account)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(1))
    revoked, revoked_token = _invite(owner, account)
    invitation_revoke(actor=owner, account=account, invitation_id=revoked.pk)
    tokens = [used_token, expired_token, revoked_token, "unknown-token", "x" * 300]

    for method in (client.get, client.post):
        answers = [method(_accept_url(token)) for token in tokens]
        assert {a.status_code for a in answers} == {404}
        assert len({_page_text(a) for a in answers}) == 1
        assert "This invitation is no longer valid." in _page_text(answers[0])
    assert Membership.objects.filter(account=account).count() == 2  # the owner, the used one


# --- admin -------------------------------------------------------------------------------------


def test_admin_lists_invitations_in_constant_queries(client, owner, account):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    url = reverse("admin:crm_invitation_changelist")
    _invite(owner, account)
    with CaptureQueriesContext(connection) as one:
        assert client.get(url).status_code == 200
    for _ in range(10):
        _invite(owner, account, email="kim@example.test")
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(one)
    invitation = Invitation.objects.first()
    assert invitation is not None
    change = client.get(reverse("admin:crm_invitation_change", args=[invitation.pk]))
    assert change.status_code == 200
