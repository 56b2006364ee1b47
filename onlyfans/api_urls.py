from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from onlyfans import api


def in_thread_pool(view: Callable[..., Any]) -> Callable[..., Any]:
    """Serve a sync API view on a thread pool under ASGI instead of Django's one sync thread.

    Under daphne Django runs every sync view on a single thread, so 50 chatters sending at
    once queue behind each other's database and SQS round trips (p95 over 800 ms measured).
    The view code is unchanged; each thread has its own pooled database connection. Tests keep
    the plain sync view (``API_SEND_IN_THREAD_POOL``) so their transaction sees the view's rows.
    """
    if not settings.API_SEND_IN_THREAD_POOL:
        return view

    @functools.wraps(view)  # keeps ``view.cls``, by which the OpenAPI schema finds the view
    async def pooled(request: Any, *args: Any, **kwargs: Any) -> Any:
        return await sync_to_async(view, thread_sensitive=False)(request, *args, **kwargs)

    return csrf_exempt(pooled)  # DRF enforces CSRF itself for session-authenticated calls


urlpatterns = [
    path(
        "messages/send",
        in_thread_pool(api.MessageSendApi.as_view()),
        name="api-message-send",
    ),
    path("messages/status", api.PipelineStatusApi.as_view(), name="api-pipeline-status"),
    path("messages/failed", api.FailedMessagesApi.as_view(), name="api-messages-failed"),
    path(
        "messages/<int:message_id>",
        in_thread_pool(api.MessageDetailApi.as_view()),
        name="api-message-detail",
    ),
    path(
        "messages/<int:message_id>/retry", api.MessageRetryApi.as_view(), name="api-message-retry"
    ),
]
