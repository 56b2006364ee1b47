"""Hardening: login lockout, hashed API tokens, security headers on every page, and
`check --deploy` with the production environment from .env.example."""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import ApiToken
from crm.services import api_token_create
from tests.factories import ConversationFactory, FanFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


# --- Login lockout --------------------------------------------------------------------------


def _login(client, username: str, password: str, ip: str = "203.0.113.7"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_repeated_failures_lock_the_username_from_that_address(client, settings):
    from axes.models import AccessAttempt

    user = UserFactory(username="victim")
    user.set_password("right-password-1")
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "victim", "wrong").status_code == 200  # the form again

    locked = _login(client, "victim", "wrong")
    # Locked now: even the right password is refused, with a clear page and Retry-After.
    refused = _login(client, "victim", "right-password-1")

    assert locked.status_code == 429
    assert refused.status_code == 429
    assert "locked for 15 minutes" in refused.content.decode()
    assert refused["Retry-After"] == "900"
    assert "_auth_user_id" not in client.session
    # Visible in admin (Axes' access attempts) ...
    attempt = AccessAttempt.objects.get(username="victim")
    assert attempt.failures_since_start >= settings.AXES_FAILURE_LIMIT
    # ... and another address, or another username, is not locked.
    assert _login(client, "victim", "right-password-1", ip="198.51.100.9").status_code == 302


def test_lockout_is_logged(client, settings, caplog):
    UserFactory(username="target")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "target", "wrong")
    [event] = [r.msg for r in caplog.records if "auth.locked_out" in str(r.msg)]
    assert event["username"] == "target" and event["ip"] == "203.0.113.7"


def test_lockout_ends_after_the_cool_off(client, settings):
    from axes.models import AccessAttempt

    user = UserFactory(username="patient")
    user.set_password("right-password-1")
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "patient", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _login(client, "patient", "right-password-1").status_code == 302


def test_one_address_trying_many_usernames_is_locked(client, settings):
    settings.AXES_IP_FAILURE_LIMIT = 8
    user = UserFactory(username="real")
    user.set_password("right-password-1")
    user.save()
    # given: one address failing once each for many usernames (under the per-username limit)
    for n in range(settings.AXES_IP_FAILURE_LIMIT - 1):
        assert _login(client, f"guess{n}", "wrong").status_code == 200

    last = _login(client, "guess-last", "wrong")
    # then: the address is locked, whichever username it tries next, the right one included
    refused = _login(client, "real", "right-password-1")

    assert last.status_code == 429
    assert refused.status_code == 429
    assert "_auth_user_id" not in client.session
    # ... and only that address.
    assert _login(client, "real", "right-password-1", ip="198.51.100.9").status_code == 302


def test_the_address_limit_is_higher_than_the_username_one(client, settings):
    settings.AXES_IP_FAILURE_LIMIT = 8
    for n in range(settings.AXES_FAILURE_LIMIT):  # as many failures as locks one username
        assert _login(client, f"typo{n}", "wrong").status_code == 200
    assert _login(client, "typo-again", "wrong").status_code == 200


def test_behind_a_proxy_the_lockout_is_the_clients_not_the_proxys(client, settings):
    settings.AXES_IPWARE_PROXY_COUNT = 1
    user = UserFactory(username="shared")
    user.set_password("right-password-1")
    user.save()

    def via_proxy(client_ip: str, password: str, forged: str = ""):
        # The load balancer appends the address it saw to what the client sent.
        return client.post(
            "/login/",
            {"username": "shared", "password": password},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR=f"{forged}, {client_ip}" if forged else client_ip,
        )

    # given: an attacker behind the load balancer locks "shared" out for their own address,
    # forging a new X-Forwarded-For each time
    for n in range(settings.AXES_FAILURE_LIMIT):
        via_proxy("203.0.113.66", "wrong", forged=f"192.0.2.{n}")
    assert via_proxy("203.0.113.66", "right-password-1", forged="192.0.2.99").status_code == 429
    # then: the real user, through the same load balancer, still logs in
    assert via_proxy("198.51.100.20", "right-password-1").status_code == 302


def test_proxy_counts_come_from_the_environment():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.AXES_IPWARE_PROXY_COUNT, s.REST_FRAMEWORK['NUM_PROXIES'])"
    )
    env = {**os.environ, "AXES_IPWARE_PROXY_COUNT": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["2", "2"]


def test_axes_admin_lists_attempts(client, settings):
    admin = UserFactory(is_staff=True, is_superuser=True)
    _login(client, "someone", "wrong")
    client.force_login(admin)
    page = client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert "someone" in page.content.decode()


# --- Hashed API tokens ------------------------------------------------------------------------


def _bearer(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api


def test_tokens_are_hashed_named_several_and_revocable(chatter, account):
    # given: two named tokens
    export, export_key = api_token_create(user=chatter, name="nightly export")
    sync, sync_key = api_token_create(user=chatter, name="sync")

    # then: only hashes are stored, both work
    for token, key in ((export, export_key), (sync, sync_key)):
        row = ApiToken.objects.get(pk=token.pk)
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in str(ApiToken.objects.filter(pk=token.pk).values().get())
        assert _bearer(key).get("/api/crm/accounts/").status_code == 200

    # when: one is revoked on the settings page
    from django.test import Client

    page = Client()
    page.force_login(chatter)
    page.post("/settings/", {"action": "revoke", "token_id": export.pk})

    # then: it stops working at once, the other goes on
    revoked = _bearer(export_key).get("/api/crm/accounts/")
    assert revoked.status_code == 401
    assert revoked.json()["code"] == "authentication_failed"
    assert _bearer(sync_key).get("/api/crm/accounts/").status_code == 200


def test_last_used_is_recorded_at_most_once_a_minute(chatter, account, django_assert_num_queries):
    token, key = api_token_create(user=chatter, name="script")
    api = _bearer(key)
    assert ApiToken.objects.get(pk=token.pk).last_used_at is None

    api.get("/api/crm/accounts/")
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    # token+user, count, page: no write while the last use is under a minute old
    with django_assert_num_queries(3):
        api.get("/api/crm/accounts/")

    assert first is not None and timezone.now() - first < timedelta(seconds=30)
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first - timedelta(minutes=5))
    api.get("/api/crm/accounts/")
    later = ApiToken.objects.get(pk=token.pk).last_used_at
    assert later is not None and later > first


def test_settings_page_shows_a_new_key_once_and_never_again(client, chatter):
    client.force_login(chatter)
    created = client.post("/settings/", {"action": "create", "name": "CI"})
    key = created.context["new_key"]
    assert key.startswith("fcrm_") and key in created.content.decode()
    assert created["Cache-Control"] == "no-store"
    later = client.get("/settings/").content.decode()
    assert key not in later
    assert "CI" in later and key[:12] in later and "never" in later


def test_a_user_cannot_revoke_someone_elses_token(client, chatter, owner):
    theirs, key = api_token_create(user=owner, name="owner's")
    client.force_login(chatter)
    client.post("/settings/", {"action": "revoke", "token_id": theirs.pk})
    assert ApiToken.objects.get(pk=theirs.pk).revoked_at is None
    assert _bearer(key).get("/api/crm/accounts/").status_code == 200


def test_tokens_from_before_the_migration_keep_working(chatter, account):
    """Migration 0009 hashes every DRF token into ApiToken and deletes the plaintext row."""
    from django.apps import apps as global_apps
    from rest_framework.authtoken.models import Token

    legacy = Token.objects.create(user=chatter)
    migration = importlib.import_module("crm.migrations.0009_api_tokens")
    migration.legacy_tokens_hash(global_apps, None)

    assert not Token.objects.filter(user=chatter).exists()
    moved = ApiToken.objects.get(user=chatter)
    assert moved.key_hash == hashlib.sha256(legacy.key.encode()).hexdigest()
    assert _bearer(legacy.key).get("/api/crm/accounts/").status_code == 200


def test_create_api_token_command_prints_a_working_key(capsys, chatter, account):
    from django.core.management import call_command

    call_command("create_api_token", chatter.username, "--name", "backup script")
    key = capsys.readouterr().out.strip()
    assert ApiToken.objects.get(user=chatter).name == "backup script"
    assert _bearer(key).get("/api/crm/accounts/").status_code == 200


# --- Security headers on every page ------------------------------------------------------------


def _page_routes(patterns=None, prefix: str = "") -> list[str]:
    routes = []
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if route.startswith("admin/"):
                continue
            routes += _page_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            routes.append(route)
    return routes


def _fill(route: str, ids: dict[str, int]) -> str | None:
    names = re.findall(r"<(?:\w+:)?(\w+)>", route)
    if any(name not in ids for name in names) or "^" in route or "(?P" in route:
        return None
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), route)


def test_every_page_has_the_security_headers_and_no_inline_script(client):
    # given: an owner with an account, a fan and a conversation (ids for every page's URL)
    membership = MembershipFactory(role="owner")
    user = membership.user
    user.is_staff = user.is_superuser = True
    user.save()
    fan = FanFactory(account=membership.account)
    conversation = ConversationFactory(account=membership.account, fan=fan)
    ids = {
        "account_id": membership.account_id,
        "fan_id": fan.pk,
        "conversation_id": conversation.pk,
    }
    client.force_login(user)
    filled = [_fill(route, ids) for route in _page_routes()]
    urls = {u for u in filled if u and not u.startswith(("/api/", "/ws/", "/metrics"))}
    urls |= {"/api/docs/", "/admin/", "/admin/crm/message/"}
    checked = []
    for url in sorted(urls):
        response = client.get(url)
        if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
            continue
        checked.append(url)
        csp = response["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]+)", csp)
        assert script_src and script_src.group(1).split() == ["'self'"], (url, csp)
        assert "frame-ancestors 'none'" in csp
        assert response["X-Frame-Options"] == "DENY"
        assert response["Referrer-Policy"] == "same-origin"
        assert response["X-Content-Type-Options"] == "nosniff"
        html = response.content.decode()
        inline = [s for s in re.findall(r"<script\b([^>]*)>", html) if "src=" not in s]
        # Django admin's JSON data blocks are data, not script: CSP does not run them.
        inline = [s for s in inline if 'type="application/json"' not in s]
        assert not inline, (url, inline)
        handlers = re.findall(r"\son[a-z]+\s*=\s*[\"']", html)
        assert not handlers, (url, handlers)
    inbox = f"/accounts/{membership.account_id}/inbox/"
    assert {"/", "/settings/", inbox, "/api/docs/"} <= set(checked), checked
    assert len(checked) >= 10, checked
    # Anonymous pages too.
    client.logout()
    login = client.get("/login/")
    assert "script-src 'self'" in login["Content-Security-Policy"]


def test_swagger_ui_start_up_script_is_a_file_the_policy_allows(client):
    html = client.get("/api/docs/").content.decode()
    script = re.search(r'<script src="(/api/docs/\?script=[^"]*)"', html)
    assert script
    response = client.get(script.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    assert "SwaggerUIBundle" in response.content.decode()


# --- check --deploy with the production environment ---------------------------------------


def _env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_check_deploy_is_clean_with_the_production_environment():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update(_env_example())
    # The example's placeholder secret is what --deploy must refuse; a real one passes.
    env["DJANGO_SECRET_KEY"] = "k" + hashlib.sha256(b"not-a-real-secret").hexdigest() * 2
    env["ONLYFANS_WEBHOOK_SECRET"] = "w" + hashlib.sha256(b"not-a-real-one").hexdigest()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    # The API schema's own warnings (drf_spectacular.W001) are tests/test_api_schema.py's.
    issues = [
        line
        for line in output.splitlines()
        if re.match(r"\?: \(|\w[\w.]*: \(", line.strip()) and "drf_spectacular.W001" not in line
    ]
    assert not issues, output
    assert result.returncode == 0 or "drf_spectacular.W001" in output, output


def test_production_defaults_refuse_to_start_without_a_secret():
    if (ROOT / ".env").exists():
        pytest.skip("this checkout has a development .env (make run), which sets a secret")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd="/",  # no .env of a checkout
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
