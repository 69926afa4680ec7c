"""``live_server``: the test's ``app`` served over real HTTP by werkzeug's threaded
WSGI server in a background thread on a free loopback port, for browser and
relying-party tests. The port is the ``live_port`` fixture, chosen before the app,
so a test module whose issuer must be that URL can say so::

    @pytest.fixture
    def settings_overrides(live_port: int) -> dict[str, object]:
        return {"issuer": f"http://127.0.0.1:{live_port}"}
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from tests.support.processes import free_port, wait_for_http


@dataclass
class LiveServer:
    app: Flask
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture
def live_port() -> int:
    """The loopback port :func:`live_server` serves on."""
    return free_port()


@pytest.fixture
def live_server(app: Flask, live_port: int) -> Iterator[LiveServer]:
    """Serve ``app`` until the test ends (mail still queued is delivered first). Routes
    a test adds to ``app`` must be added before requesting this fixture's pages
    (Flask refuses late registration)."""
    from idp.mail.outbox import courier

    server = make_server("127.0.0.1", live_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    live = LiveServer(app=app, server=server, thread=thread)
    wait_for_http(live.url + "/healthz")
    yield live
    server.shutdown()
    thread.join(10)
    server.server_close()
    courier(app).drain()
