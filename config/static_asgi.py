"""Static files in front of the Django ASGI app, outside Django's middleware chain.

WhiteNoise's Django middleware is sync-only: in the chain, it makes Django run every view,
async ones included, on the one thread it keeps for sync code, so requests queue behind each
other. Here WhiteNoise finds the file under ``STATIC_URL`` and builds its answer (headers,
compressed variants, 304s, ranges) and it is sent straight from the event loop, the file read
in chunks on a worker thread; everything else goes to Django untouched. With DEBUG, Django's
own handler serves straight from the finders, so no collectstatic is needed while developing.

Not through asgiref's ``WsgiToAsgi``: its ``send`` from the WSGI thread runs on the loop in a
context that names that thread's executor, and a keep-alive request the server starts from
inside the last ``send`` (uvicorn's pipelined next request, which a browser sends as soon as a
file's last byte is in) inherits it; its ``sync_to_async`` then picked the finished thread and
the file failed with a 500 ("CurrentThreadExecutor already quit or is broken"): a page whose
script was lost that way ran without it (tests/onlyfans/test_asgi_serving.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from whitenoise import WhiteNoise

CHUNK_BYTES = 64 * 1024


class StaticFilesApp:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.prefix = "/" + settings.STATIC_URL.strip("/") + "/"
        self.files = WhiteNoise(None, root=settings.STATIC_ROOT, prefix=self.prefix)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.serve(scope, send)
        else:
            await self.app(scope, receive, send)

    async def serve(self, scope: dict[str, Any], send: Any) -> None:
        static_file = self.files.files.get(scope["path"])
        if static_file is None:
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"text/plain")],
                }
            )
            await send({"type": "http.response.body", "body": b"Not found"})
            return
        # The request headers as WhiteNoise reads them (WSGI's HTTP_* names).
        environ: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = "HTTP_" + raw_name.decode("latin1").upper().replace("-", "_")
            value = raw_value.decode("latin1")
            environ[name] = f"{environ[name]}, {value}" if name in environ else value
        loop = asyncio.get_running_loop()
        response = await loop.run_in_executor(
            None, static_file.get_response, scope["method"], environ
        )
        await send(
            {
                "type": "http.response.start",
                "status": int(response.status),
                "headers": [
                    (name.lower().encode("latin1"), value.encode("latin1"))
                    for name, value in response.headers
                ],
            }
        )
        if response.file is None:
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            while True:
                chunk = await loop.run_in_executor(None, response.file.read, CHUNK_BYTES)
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            response.file.close()


def with_static_files(app: Any) -> Any:
    if settings.DEBUG:
        return ASGIStaticFilesHandler(app)
    return StaticFilesApp(app)
