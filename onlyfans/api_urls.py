from __future__ import annotations

from django.urls import path

from onlyfans import api

# The views are plain sync views: under ASGI every HTTP request runs whole on a thread of the
# web process's pool (config/threaded_http.py), so 50 chatters sending at once do not queue
# behind one thread.
urlpatterns = [
    path("messages/send", api.MessageSendApi.as_view(), name="api-message-send"),
    path("messages/status", api.PipelineStatusApi.as_view(), name="api-pipeline-status"),
    path("messages/failed", api.FailedMessagesApi.as_view(), name="api-messages-failed"),
    path("messages/<int:message_id>", api.MessageDetailApi.as_view(), name="api-message-detail"),
    path(
        "messages/<int:message_id>/retry", api.MessageRetryApi.as_view(), name="api-message-retry"
    ),
]
