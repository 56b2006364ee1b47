from __future__ import annotations

import pytest
from django.urls import reverse

from crm.middleware import SESSION_KEY
from crm.models import CreatorAccount, Fan
from tests.factories import (
    CreatorAccountFactory,
    FanFactory,
    MembershipFactory,
    PurchaseFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-123"


# --- Login ---------------------------------------------------------------------------------


def test_login_with_good_password_lands_on_home(client, owner, account):
    response = client.post(
        reverse("login"), {"username": owner.username, "password": PASSWORD}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    assert account.display_name in response.content.decode()


def test_login_with_bad_password_shows_an_error(client, owner):
    response = client.post(reverse("login"), {"username": owner.username, "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_pages_require_login(client, account):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_logout_is_a_post(client, owner):
    client.force_login(owner)
    assert client.get(reverse("logout")).status_code == 405
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session


def test_base_layout_loads_vendored_htmx_and_csrf_header(client, owner):
    client.force_login(owner)
    html = client.get(reverse("home")).content.decode()
    assert "vendor/htmx/htmx.min.js" in html
    assert 'hx-headers=\'{"X-CSRFToken"' in html
    assert reverse("account_switch") in html


# --- Home ----------------------------------------------------------------------------------


def test_home_lists_accounts_with_role_state_and_fan_count(client, django_assert_num_queries):
    user = UserFactory()
    connected = CreatorAccountFactory(display_name="Alpha")
    expired = CreatorAccountFactory(
        display_name="Beta", connection_state=CreatorAccount.ConnectionState.EXPIRED
    )
    MembershipFactory(user=user, account=connected, role="owner")
    MembershipFactory(user=user, account=expired, role="chatter")
    FanFactory.create_batch(3, account=connected)
    FanFactory(account=CreatorAccountFactory())  # someone else's fan is not counted
    client.force_login(user)

    # session, user, accounts with counts, switcher list, current membership
    with django_assert_num_queries(5):
        response = client.get(reverse("home"))

    rows = list(response.context["memberships"])
    assert [(m.account.display_name, m.role, m.fan_count) for m in rows] == [
        ("Alpha", "owner", 3),
        ("Beta", "chatter", 0),
    ]
    html = response.content.decode()
    assert "Connected" in html and "Expired" in html
    assert reverse("fan_list", args=[connected.pk]) in html


def test_home_query_count_does_not_grow_with_accounts(client, django_assert_num_queries):
    user = UserFactory()
    for _ in range(6):
        account = CreatorAccountFactory()
        MembershipFactory(user=user, account=account)
        FanFactory.create_batch(2, account=account)
    client.force_login(user)
    with django_assert_num_queries(5):
        client.get(reverse("home"))


# --- Account switcher ----------------------------------------------------------------------


def test_switch_to_own_account_stores_it_and_redirects_to_next(client, owner, account):
    second = CreatorAccountFactory()
    MembershipFactory(user=owner, account=second)
    client.force_login(owner)
    next_url = reverse("fan_list", args=[second.pk])
    response = client.post(reverse("account_switch"), {"account_id": second.pk, "next": next_url})
    assert response.status_code == 302
    assert response["Location"] == next_url
    assert client.session[SESSION_KEY] == second.pk
    page = client.get(reverse("home"))
    assert page.context["current_membership"].account_id == second.pk


def test_switch_to_someone_elses_account_is_404(client, owner, other_account):
    client.force_login(owner)
    response = client.post(reverse("account_switch"), {"account_id": other_account.pk})
    assert response.status_code == 404
    assert SESSION_KEY not in client.session


def test_switch_ignores_an_unsafe_next(client, owner, account):
    client.force_login(owner)
    response = client.post(
        reverse("account_switch"), {"account_id": account.pk, "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("home")


def test_switch_needs_post(client, owner, account):
    client.force_login(owner)
    assert client.get(reverse("account_switch")).status_code == 405


# --- Fans ----------------------------------------------------------------------------------


def _fans_url(account, **params):
    from urllib.parse import urlencode

    url = reverse("fan_list", args=[account.pk])
    return f"{url}?{urlencode(params)}" if params else url


def test_fan_list_searches_filters_and_sorts(client, chatter, account):
    FanFactory(account=account, username="bigspender", lifetime_spend_cents=90000, tags=["whale"])
    FanFactory(
        account=account,
        username="newbie",
        display_name="Fresh Face",
        lifetime_spend_cents=0,
        tags=["new"],
        subscription_state=Fan.SubscriptionState.ACTIVE,
    )
    FanFactory(account=account, username="middle", lifetime_spend_cents=500)
    FanFactory(account=CreatorAccountFactory(), username="bigspender2", tags=["whale"])
    client.force_login(chatter)

    def names(**params):
        page = client.get(_fans_url(account, **params)).context["page"]
        return [fan.username for fan in page.object_list]

    assert names() == ["bigspender", "middle", "newbie"]
    assert names(q="SPEND") == ["bigspender"]
    assert names(q="fresh") == ["newbie"]
    assert names(tag="Whale") == ["bigspender"]
    assert names(state="active") == ["newbie"]
    assert names(state="bogus") == ["bigspender", "middle", "newbie"]


def test_fan_list_sorts_by_last_seen(client, chatter, account):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    FanFactory(account=account, username="old", last_seen_at=now - timedelta(days=9))
    FanFactory(account=account, username="recent", last_seen_at=now - timedelta(minutes=1))
    client.force_login(chatter)
    page = client.get(_fans_url(account, sort="last_seen")).context["page"]
    assert [fan.username for fan in page.object_list] == ["recent", "old"]


def test_fan_list_paginates_by_fifty(client, chatter, account):
    FanFactory.create_batch(51, account=account)
    client.force_login(chatter)
    first = client.get(_fans_url(account)).context["page"]
    second = client.get(_fans_url(account, page=2)).context["page"]
    assert len(first.object_list) == 50
    assert len(second.object_list) == 1
    assert first.paginator.count == 51


def test_fan_list_htmx_renders_only_the_table(client, chatter, account):
    FanFactory(account=account, username="tablefan")
    client.force_login(chatter)
    response = client.get(_fans_url(account, q="table"), headers={"HX-Request": "true"})
    html = response.content.decode()
    assert 'id="fan-table"' in html
    assert "tablefan" in html
    assert "<html" not in html
    assert "<form" not in html


def test_fan_list_links_each_fan_and_tag(client, chatter, account):
    # The table builds its links from one reversed URL: they must be the ones reverse() gives.
    fan = FanFactory(account=account, username="linkfan", tags=["vip"])
    client.force_login(chatter)
    html = client.get(_fans_url(account)).content.decode()
    assert f'href="{reverse("fan_detail", args=[account.pk, fan.pk])}"' in html
    assert f'hx-get="{_fans_url(account)}?tag=vip"' in html


def test_fan_list_full_page_keeps_href_beside_hx_get(client, chatter, account):
    FanFactory.create_batch(51, account=account, tags=["vip"])
    client.force_login(chatter)
    html = client.get(_fans_url(account)).content.decode()
    assert "<html" in html
    assert 'href="?page=2"' in html
    assert 'hx-get="' + _fans_url(account) + '?page=2"' in html


@pytest.mark.parametrize("fans", [2, 40])
def test_fan_list_query_count_is_constant(
    client, chatter, account, fans, django_assert_num_queries
):
    FanFactory.create_batch(fans, account=account, tags=["vip"])
    client.force_login(chatter)
    # session, user, membership check (the view's, which the selector reuses), count, page,
    # switcher list, current membership
    with django_assert_num_queries(7):
        response = client.get(_fans_url(account))
    assert len(response.context["page"].object_list) == fans


def test_fan_detail_shows_and_saves_tags_and_notes(client, chatter, account, fan):
    PurchaseFactory(fan=fan, amount_cents=1234)
    client.force_login(chatter)
    url = reverse("fan_detail", args=[account.pk, fan.pk])
    assert "Tip" in client.get(url).content.decode()

    response = client.post(url, {"tags": " VIP, europe ,vip,, ", "notes": " likes cats "})

    assert response.status_code == 302
    fan.refresh_from_db()
    assert fan.tags == ["vip", "europe"]
    assert fan.notes == "likes cats"


def test_fan_detail_shows_service_errors_not_500(client, chatter, account, fan):
    client.force_login(chatter)
    url = reverse("fan_detail", args=[account.pk, fan.pk])
    response = client.post(url, {"tags": "x" * 51, "notes": ""})
    assert response.status_code == 400
    assert "at most 50 characters" in response.content.decode()
    fan.refresh_from_db()
    assert fan.tags == []


def test_fan_detail_under_the_wrong_account_is_404(client, chatter, account, fan):
    second = CreatorAccountFactory()
    MembershipFactory(user=chatter, account=second)
    client.force_login(chatter)
    # The user belongs to both accounts, but the fan is not in the second one.
    assert client.get(reverse("fan_detail", args=[second.pk, fan.pk])).status_code == 404


def test_a_fan_without_a_chat_is_messaged_from_their_page(client, chatter, account):
    # An imported fan who never wrote: no conversation yet, so not in the inbox's list.
    from crm.models import Conversation

    fan = FanFactory(account=account, platform_fan_id="4242")
    client.force_login(chatter)
    page = client.get(reverse("fan_detail", args=[account.pk, fan.pk])).content.decode()
    chat_url = reverse("fan_chat", args=[account.pk, fan.pk])
    assert f'action="{chat_url}"' in page

    response = client.post(chat_url)

    conversation = Conversation.objects.get(fan=fan)
    assert response.status_code == 302
    assert response["Location"] == reverse("inbox_thread", args=[account.pk, conversation.pk])
    # again: the same conversation, and the page links to it
    assert client.post(chat_url)["Location"] == response["Location"]
    assert Conversation.objects.filter(fan=fan).count() == 1
    page = client.get(reverse("fan_detail", args=[account.pk, fan.pk])).content.decode()
    assert f'href="{response["Location"]}"' in page
    assert client.get(response["Location"]).status_code == 200


def test_a_fan_not_linked_to_the_platform_cannot_be_opened_in_the_inbox(client, chatter, account):
    from crm.models import Conversation

    fan = FanFactory(account=account, platform_fan_id=None)
    client.force_login(chatter)
    page = client.get(reverse("fan_detail", args=[account.pk, fan.pk])).content.decode()
    assert "Not linked to the platform yet" in page

    response = client.post(reverse("fan_chat", args=[account.pk, fan.pk]), follow=True)

    assert "not linked to the platform yet" in response.content.decode()
    assert not Conversation.objects.filter(fan=fan).exists()


def test_a_fan_of_another_account_cannot_be_opened(client, chatter, account, other_fan):
    client.force_login(chatter)
    assert client.post(reverse("fan_chat", args=[account.pk, other_fan.pk])).status_code == 404
    response = client.get(reverse("fan_chat", args=[account.pk, other_fan.pk]))
    assert response.status_code in (404, 405)


# --- Settings ------------------------------------------------------------------------------


def test_settings_creates_a_named_token_shown_once(client, chatter):
    # Hashed tokens (issue 11): the key appears in the creating answer only.
    from crm.models import ApiToken

    client.force_login(chatter)
    assert client.get(reverse("settings")).context["tokens"] == []
    created = client.post(reverse("settings"), {"action": "create", "name": "export"})
    key = created.context["new_key"]
    assert key in created.content.decode()
    assert ApiToken.objects.get(user=chatter).name == "export"
    assert key not in client.get(reverse("settings")).content.decode()
