"""The OpenAPI schema: generates without warnings, validates, and documents every API URL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver

ROOT = Path(__file__).resolve().parent.parent
# The schema and its docs page describe the API; they are not part of it.
NOT_IN_SCHEMA = {"/api/schema/", "/api/docs/"}
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _api_routes(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = "/"
) -> dict[str, object]:
    """``{"/api/crm/fans/{fan_id}/": view callback}`` for every URL under /api/."""
    routes: dict[str, object] = {}
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        route = prefix + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        if isinstance(pattern, URLResolver):
            routes.update(_api_routes(pattern.url_patterns, route))
        elif route.startswith("/api/") and route not in NOT_IN_SCHEMA:
            routes[route] = pattern.callback
    return routes


def _generate(settings_module: str) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    if settings_module == "config.settings.base":
        env.update(DJANGO_DEBUG="0", DJANGO_SECRET_KEY="schema-test")
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--format",
            "openapi-json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "Error" not in result.stderr, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def schema() -> dict:
    return _generate("config.settings.test")


def test_every_api_url_and_method_is_in_the_schema(schema):
    routes = _api_routes()
    assert "/api/crm/conversations/{conversation_id}/messages/" in routes  # the walk works
    assert set(routes) == set(schema["paths"])
    for route, callback in routes.items():
        view_class = getattr(callback, "cls", None)
        if view_class is None:
            continue  # plain Django views (the webhook) are documented by hand
        methods = {m for m in HTTP_METHODS if hasattr(view_class, m)}
        assert set(schema["paths"][route]) >= methods, route


def test_every_operation_documents_its_errors(schema):
    for route, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert any(code.startswith("2") for code in responses), (route, method)
            errors = {code: r for code, r in responses.items() if code[0] == "4"}
            assert errors, (route, method)
            for response in errors.values():
                assert response["description"].startswith("code: "), (route, method)
            if route != "/api/onlyfans/webhooks":
                assert {"401", "429"} <= set(errors), (route, method)
                assert all(
                    r["content"]["application/json"]["schema"]["$ref"]
                    == "#/components/schemas/Error"
                    for r in errors.values()
                ), (route, method)


def test_cursor_pages_and_errors_are_components(schema):
    components = schema["components"]["schemas"]
    assert set(components["Error"]["properties"]) == {
        "code",
        "detail",
        "errors",
        "retry_after_seconds",
    }
    for page in ("ConversationPage", "MessagePage"):
        assert set(components[page]["properties"]) == {"results", "next_cursor", "next"}
    assert schema["components"]["securitySchemes"]["tokenAuth"]["scheme"] == "bearer"


def test_production_urls_are_documented_too():
    """In production the send and detail views are wrapped to run on a thread pool; the
    wrapper must keep what the generator finds them by."""
    production = _generate("config.settings.base")
    assert "/api/onlyfans/messages/send" in production["paths"]
    assert "/api/onlyfans/messages/{message_id}" in production["paths"]
    assert set(production["paths"]) == set(_api_routes())


@pytest.mark.django_db
def test_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    assert "/api/crm/conversations/" in schema.json()["paths"]

    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    static_prefix = f"/{settings.STATIC_URL.strip('/')}/drf_spectacular_sidecar/"
    # Swagger UI's start-up script comes from the docs view itself (?script), not inline: CSP.
    assert all(
        url.startswith(static_prefix) or url.startswith("/api/docs/?script") for url in assets
    ), assets
    assert "<script>" not in html
