"""Static files in front of the Django ASGI app, outside Django's middleware chain.

WhiteNoise's Django middleware is sync-only: in the chain, it makes Django run every view,
async ones included, on the one thread it keeps for sync code, so requests queue behind each
other. Here WhiteNoise serves ``STATIC_URL`` as a WSGI app (through asgiref's adapter) and
everything else goes to Django untouched. With DEBUG, Django's own handler serves straight from
the finders, so no collectstatic is needed while developing.
"""

from __future__ import annotations

from typing import Any

from asgiref.wsgi import WsgiToAsgi
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from whitenoise import WhiteNoise


def _not_found(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"Not found"]


class StaticFilesApp:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.prefix = "/" + settings.STATIC_URL.strip("/") + "/"
        files = WhiteNoise(_not_found, root=settings.STATIC_ROOT, prefix=self.prefix)
        self.static = WsgiToAsgi(files)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.static(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def with_static_files(app: Any) -> Any:
    if settings.DEBUG:
        return ASGIStaticFilesHandler(app)
    return StaticFilesApp(app)
