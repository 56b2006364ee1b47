"""The sandbox platform over HTTP/1.1 with keep-alive: one thread per client connection.

Speaks the gateway contract (``/api/...``, Bearer auth, wrapped replies, Idempotency-Key) and
offers control endpoints under ``/_sandbox/`` for tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from onlyfans.sandbox.mass import MassMessaging
from onlyfans.sandbox.state import Reply, SandboxConfig, SandboxState, idempotency_key_valid
from onlyfans.sandbox.vault import Vault
from onlyfans.sandbox.webhooks import FanPlayer, WebhookPoster, events_emit

_SEND_PATH = re.compile(r"^/api/([^/]+)/chats/([^/]+)/messages/?$")
_CHATS_PATH = re.compile(r"^/api/([^/]+)/chats/?$")
_FANS_PATH = re.compile(r"^/api/([^/]+)/fans/(all|active|expired)/?$")
_MASS_PATH = re.compile(r"^/api/([^/]+)/mass-messaging/?$")
_MASS_ONE_PATH = re.compile(r"^/api/([^/]+)/mass-messaging/(\d+)/?$")
_VAULT_PATH = re.compile(r"^/api/([^/]+)/media/vault/?$")
_VAULT_LISTS_PATH = re.compile(r"^/api/([^/]+)/media/vault/lists/?$")
_VAULT_ONE_PATH = re.compile(r"^/api/([^/]+)/media/vault/(\d+)/?$")
_CHAT_MEDIA_PATH = re.compile(r"^/api/([^/]+)/chats/([^/]+)/media/?$")
FANS_PAGE_MAX = 20  # OnlyFans gives at most 20 fans a page

_REASONS = {s.value: s.phrase for s in HTTPStatus}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        self.state = state
        self.mass = MassMessaging(state)
        self.vault = Vault(state)
        self.stopping = threading.Event()
        self.poster = WebhookPoster()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def connections_close(self) -> None:
        """Cut every keep-alive connection, so nothing is served after stop()."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: one line per request would cost more than the request

    # --- plumbing ------------------------------------------------------------------------
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _write(self, reply: Reply) -> None:
        self.server.state.count(f"status:{reply.status}")
        payload = json.dumps(reply.body, separators=(",", ":")).encode()
        head = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Unknown')}",
            "Content-Type: application/json",
            f"Content-Length: {len(payload)}",
        ]
        head.extend(f"{name}: {value}" for name, value in reply.headers.items())
        if self.close_connection:
            head.append("Connection: close")
        # One write: headers and body leave in the same segment.
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    def _write_file(self, status: int, payload: bytes, content_type: str) -> None:
        """A file as the platform's CDN serves it (no JSON, no bearer token)."""
        self.server.state.count(f"status:{status}")
        head = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(payload)}",
            "Cache-Control: private, max-age=60",
        ]
        if self.close_connection:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)

    def _origin(self) -> str:
        # File URLs point back at this server, as the client reached it.
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def _hang(self, seconds: float) -> None:
        """Never answer: hold the request, then drop the connection."""
        self.server.stopping.wait(seconds)
        self.close_connection = True

    def _authorized(self) -> bool:
        expected = self.server.state.config.api_key
        if not expected:
            return True
        header = self.headers.get("Authorization", "")
        return header == f"Bearer {expected}"

    def _dispatch(self, method: str) -> None:
        body = self._body()
        reply: Reply | None
        url = urlsplit(self.path)
        path, query = url.path, {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if path.startswith("/_sandbox/"):
                reply = self._control(method, path, query, body)
            elif path.startswith("/files/vault/") and method == "GET":
                self._write_file(*self.server.vault.file(path, query))
                return
            elif not path.startswith("/api/"):
                reply = Reply(404, {"error": "Not found.", "message": "Not found."})
            elif not self._authorized():
                reply = Reply(
                    401,
                    {
                        "error": "Unauthenticated.",
                        "message": "Unauthenticated.",
                        "code": "unauthenticated",
                    },
                )
            else:
                reply = self._api(method, path, query, body)
        except (ValueError, KeyError, TypeError) as exc:
            reply = Reply(400, {"error": str(exc), "message": str(exc), "code": "bad_request"})
        if reply is not None:
            self._write(reply)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- the gateway contract --------------------------------------------------------------
    def _api(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply | None:
        state = self.server.state
        if path.rstrip("/") == "/api/accounts" and method == "GET":
            # The SDK types this endpoint as a bare list, not a wrapped reply.
            return Reply(200, state.accounts_json())
        match = _SEND_PATH.match(path)
        if match:
            account_id, chat_id = unquote(match[1]), unquote(match[2])
            error = state.account_error(account_id)
            if error is not None:
                return error
            if method == "POST":
                return self._send(account_id, chat_id, body)
            if method == "GET":
                first_id = query.get("first_id")
                refused = state.read_admit(account_id)
                if refused is not None:
                    return refused
                return Reply(
                    200,
                    state.messages_json(
                        account_id,
                        chat_id,
                        limit=min(int(query.get("limit") or 10), 100),
                        before_id=int(first_id) if first_id else None,
                    ),
                )
        match = _CHATS_PATH.match(path)
        if match and method == "GET":
            account_id = unquote(match[1])
            error = state.account_error(account_id) or state.read_admit(account_id)
            if error is not None:
                return error
            return Reply(
                200,
                state.chats_json(
                    account_id,
                    limit=min(int(query.get("limit") or 10), 100),
                    offset=int(query.get("offset") or 0),
                ),
            )
        match = _FANS_PATH.match(path)
        if match and method == "GET":
            account_id = unquote(match[1])
            error = state.account_error(account_id) or state.read_admit(account_id)
            if error is not None:
                return error
            limit = int(query.get("limit") or 10)
            if not 1 <= limit <= FANS_PAGE_MAX:
                return Reply(
                    422,
                    {
                        "error": f"The limit must be between 1 and {FANS_PAGE_MAX}.",
                        "message": f"The limit must be between 1 and {FANS_PAGE_MAX}.",
                        "code": "validation_error",
                    },
                )
            return Reply(
                200,
                state.fans_json(
                    account_id, limit=limit, offset=int(query.get("offset") or 0), kind=match[2]
                ),
            )
        vault = self._vault(method, path, query)
        if vault is not None:
            return vault
        mass = self._mass(method, path, body)
        if mass is not None and mass.hang_seconds is not None:
            self._hang(mass.hang_seconds)
            return None
        if mass is not None:
            return mass
        return Reply(404, {"error": "Not found.", "message": "Not found.", "code": "not_found"})

    def _vault(self, method: str, path: str, query: dict[str, str]) -> Reply | None:
        """The vault's reads (onlyfans/sandbox/vault.py); None when the path is not one."""
        match = (
            _VAULT_LISTS_PATH.match(path)
            or _VAULT_ONE_PATH.match(path)
            or _VAULT_PATH.match(path)
            or _CHAT_MEDIA_PATH.match(path)
        )
        if not match or method != "GET":
            return None
        state, vault = self.server.state, self.server.vault
        account_id = unquote(match[1])
        error = state.account_error(account_id) or state.read_admit(account_id)
        if error is not None:
            return error
        if match.re is _VAULT_LISTS_PATH:
            return vault.lists_json(account_id, query)
        if match.re is _VAULT_ONE_PATH:
            return vault.item_json(self._origin(), account_id, int(match[2]))
        if match.re is _CHAT_MEDIA_PATH:
            return vault.chat_media_json(self._origin(), account_id, unquote(match[2]), query)
        return vault.list_json(self._origin(), account_id, query)

    def _mass(self, method: str, path: str, body: bytes) -> Reply | None:
        """Mass messaging (onlyfans/sandbox/mass.py); None when the path is not one of it."""
        match = _MASS_PATH.match(path) or _MASS_ONE_PATH.match(path)
        if not match:
            return None
        account_id = unquote(match[1])
        error = self.server.state.account_error(account_id)
        if error is not None:
            return error
        mass = self.server.mass
        if match.re is _MASS_ONE_PATH and method == "GET":
            return mass.retrieve_json(account_id, int(match[2]))
        if match.re is _MASS_ONE_PATH and method == "DELETE":
            return mass.unsend(account_id, int(match[2]))
        if match.re is _MASS_PATH and method == "GET":
            return mass.list_json(account_id)
        if match.re is _MASS_PATH and method == "POST":
            return mass.send(account_id, body)
        return Reply(405, {"error": "Method not allowed.", "message": "Method not allowed."})

    def _send(self, account_id: str, chat_id: str, body: bytes) -> Reply | None:
        state = self.server.state
        key = self.headers.get("Idempotency-Key")
        if key is not None and not idempotency_key_valid(key):
            return Reply(
                400,
                {
                    "error": "The Idempotency-Key must be 1-255 printable ASCII characters.",
                    "message": "The Idempotency-Key must be 1-255 printable ASCII characters.",
                    "code": "IDEMPOTENCY_KEY_INVALID",
                },
            )
        reply, ticket = state.send_begin(account_id, chat_id, body, key)
        if ticket is None:
            assert reply is not None
            if reply.hang_seconds is not None:
                self._hang(reply.hang_seconds)
                return None
            return reply
        pending: Reply = ticket["reply"]
        if pending.delay_seconds > 0:
            self.server.stopping.wait(pending.delay_seconds)
        reply = state.send_finish(ticket)
        if reply.hang_seconds is not None:
            self._hang(reply.hang_seconds)
            return None
        return reply

    # --- control -----------------------------------------------------------------------
    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> Reply:
        state = self.server.state
        data = json.loads(body) if body else {}
        route = path.removeprefix("/_sandbox/").rstrip("/")
        if route == "health":
            return Reply(200, {"ok": True})
        if route == "reset" and method == "POST":
            unknown = state.reset(data)
            return Reply(200, {"ok": True, "config": state.config_json(), "unknown": unknown})
        if route == "config":
            unknown = state.configure(data) if method == "POST" else []
            return Reply(200, {"ok": True, "config": state.config_json(), "unknown": unknown})
        if route == "messages" and method == "GET":
            return Reply(200, {"data": state.sends(query.get("account") or None)})
        if route == "stats" and method == "GET":
            return Reply(200, state.stats_json())
        if route == "accounts" and method == "GET":
            return Reply(200, {"data": state.accounts_json()})
        if route == "mass" and method == "GET":
            return Reply(200, {"data": self.server.mass.control_json(query.get("account"))})
        if route == "fans/seed" and method == "POST":
            return Reply(200, {"data": state.fans_seed(data)})
        vault = self.server.vault.control(route, data, query)
        if vault is not None:
            return vault
        if route == "webhooks/emit" and method == "POST":
            return Reply(200, {"data": events_emit(state, self.server.poster, data)})
        return Reply(404, {"error": "Unknown control endpoint.", "message": route})


class SandboxServer:
    """The sandbox in a background thread, for tests: ``start()``, ``url``, ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, **config: Any) -> None:
        cfg = SandboxConfig()
        unknown = cfg.update(config)
        if unknown:
            raise TypeError(f"unknown sandbox settings: {', '.join(unknown)}")
        self.state = SandboxState(cfg)
        self._httpd = _HTTPServer((host, port), self.state)
        address = self._httpd.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxServer:
        serve = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="sandbox-http",
        )
        fans = FanPlayer(self.state, self._httpd.stopping)
        self._threads = [serve, fans]
        for thread in self._threads:
            thread.start()
        return self

    def serve_forever(self) -> None:
        """Block in the calling thread (the CLI); fans still play in the background."""
        FanPlayer(self.state, self._httpd.stopping).start()
        try:
            self._httpd.serve_forever(poll_interval=0.2)
        finally:
            self._httpd.stopping.set()

    def stop(self) -> None:
        self._httpd.stopping.set()
        self._httpd.shutdown()
        self._httpd.connections_close()
        self._httpd.server_close()
        self._httpd.poster.close()
        for thread in self._threads:
            thread.join(timeout=5)
