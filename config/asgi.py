"""One ASGI app for HTTP and websockets (served by uvicorn; ``runserver`` uses daphne)."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from config.body_limit import with_body_limit  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from config.static_asgi import with_static_files  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Oversized bodies are refused (413) before Django spools them to disk.
        "http": with_body_limit(with_static_files(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
