"""One ASGI app for HTTP and websockets (served by uvicorn; ``runserver`` uses daphne).

HTTP requests are served whole on a thread pool (``config/threaded_http.py``,
``WEB_HTTP_THREADS`` threads per process; 0 gives Django's own ASGI handler back), websockets
on the event loop (Channels)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from config.body_limit import with_body_limit  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from config.static_asgi import with_static_files  # noqa: E402
from config.threaded_http import ThreadedASGIHandler  # noqa: E402

http_app = ThreadedASGIHandler() if settings.WEB_HTTP_THREADS > 0 else django_asgi_app

application = ProtocolTypeRouter(
    {
        # Oversized bodies are refused (413) before Django spools them to disk.
        "http": with_body_limit(with_static_files(http_app)),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
