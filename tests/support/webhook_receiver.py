"""A real HTTP webhook receiver for tests: a server thread on 127.0.0.1 that verifies
every request with the ``standardwebhooks`` package (PyPI) and records what it got,
or answers 503 while ``down`` is set."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def free_port() -> int:
    """A port nothing listens on right now (connections to it are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing (the test servers' base)."""

    def log_message(self, *args: Any) -> None:
        pass

    def body_unless_down(self, down: bool) -> bytes | None:
        """The request's body; None after answering 503 while the receiver is ``down``."""
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if down:
            self.send_response(503)
            self.end_headers()
            self.wfile.write(b"maintenance")
            return None
        return body


def serve(port: int, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A threaded HTTP server on 127.0.0.1:``port`` running in a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def shut(server: ThreadingHTTPServer | None) -> None:
    """Stop a server started by :func:`serve` (None: nothing to do)."""
    if server is not None:
        server.shutdown()
        server.server_close()


@dataclass(kw_only=True)
class Recording:
    """What a test receiver of POSTs keeps: the valid requests it ``got`` (what its
    ``accept`` made of them), why it ``rejected`` the others; ``down`` answers 503."""

    down: bool = False
    got: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def serve_posts(self, port: int,
                    accept: Callable[[BaseHTTPRequestHandler, bytes], None]) -> None:
        """Serve ``accept(handler, body)`` for every POST on ``port``."""
        recording = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.body_unless_down(recording.down)
                if body is not None:
                    accept(self, body)

        self.server = serve(port, Handler)

    def stop(self) -> None:
        shut(self.server)
        self.server = None


@dataclass
class Received:
    id: str
    headers: dict[str, str]
    payload: dict[str, Any]


@dataclass
class Receiver:
    """Verifies with each of ``secrets`` (all must verify); ``got`` holds the verified
    requests in arrival order, ``rejected`` the ones that failed verification."""

    port: int
    secrets: list[str]
    down: bool = False
    answer: int | None = None  # answer this status (with a Location) instead of verifying
    got: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    hits: list[dict[str, str]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Receiver:
        receiver = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.body_unless_down(receiver.down)
                if body is None:
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.answer is not None:
                    receiver.hits.append(headers)
                    self.send_response(receiver.answer)
                    self.send_header("Location", receiver.url + "/elsewhere")
                    self.end_headers()
                    self.wfile.write(b"x" * 100_000)
                    return
                try:
                    payload = {}
                    for secret in receiver.secrets:
                        payload = Webhook(secret).verify(body, headers)
                except WebhookVerificationError as exc:
                    receiver.rejected.append(str(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.got.append(Received(headers["webhook-id"], headers, payload))
                assert json.loads(body) == payload
                self.send_response(204)
                self.end_headers()

        self.server = serve(self.port, Handler)
        return self

    def stop(self) -> None:
        shut(self.server)
        self.server = None

    def ids(self) -> list[str]:
        return [r.id for r in self.got]
