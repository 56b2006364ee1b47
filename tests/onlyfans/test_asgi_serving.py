"""How the ASGI app serves: the send API on a thread pool, static files outside Django."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.test import RequestFactory, override_settings
from rest_framework.authtoken.models import Token

from crm.models import Message
from onlyfans import api
from onlyfans.api_urls import in_thread_pool
from tests.factories import FanFactory, MembershipFactory


@pytest.mark.django_db(transaction=True)
@override_settings(API_SEND_IN_THREAD_POOL=True)
def test_send_view_runs_on_the_thread_pool(sqs_queues, django_capture_on_commit_callbacks):
    membership = MembershipFactory()
    fan = FanFactory(account=membership.account)
    token = Token.objects.create(user=membership.user)
    view = in_thread_pool(api.MessageSendApi.as_view())
    request = RequestFactory().post(
        "/api/onlyfans/messages/send",
        data={"fan_id": fan.pk, "text": "hi"},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token.key}",
    )
    response = async_to_sync(view)(request)
    assert response.status_code == 202
    message = Message.objects.get(pk=response.data["message_id"])
    assert message.status == Message.Status.QUEUED
    assert message.dispatched_at is not None  # published to SQS from the pool thread


def _get(app, path: str) -> tuple[int, bytes]:
    async def run():
        scope = {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": [],
            "http_version": "1.1",
            "scheme": "http",
            "server": ("t", 80),
        }
        communicator = ApplicationCommunicator(app, scope)
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(5)
        body = b""
        while True:
            chunk = await communicator.receive_output(5)
            body += chunk.get("body", b"")
            if not chunk.get("more_body"):
                return start["status"], body

    return async_to_sync(run)()


def test_static_files_are_served_before_django(tmp_path, settings):
    from config.static_asgi import StaticFilesApp

    (tmp_path / "app.css").write_text("body{}")
    settings.STATIC_ROOT = tmp_path

    async def django_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})

    app = StaticFilesApp(django_app)
    assert _get(app, "/static/app.css") == (200, b"body{}")
    assert _get(app, "/static/missing.css")[0] == 404
    assert _get(app, "/api/x") == (299, b"django")
