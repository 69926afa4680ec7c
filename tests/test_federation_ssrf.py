"""Connectors reach public addresses only unless the operator allows more
(``IDP_FEDERATION_ALLOW_PRIVATE``): company admins configure the issuer URLs the server
fetches, so a connector must not become a way into the operator's network."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from flask import Flask

from connectors import ConnectorError
from connectors.http import get_json, request
from idp.federation.registry import metadata_cache
from idp.webhooks import targets
from tests.support.tls import make_ca_and_server_cert


@pytest.fixture()
def listener() -> Iterator[socket.socket]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(0.3)
    yield sock
    sock.close()


def _no_connection(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except TimeoutError:
        return True
    conn.close()
    return False


def test_a_private_address_is_refused_before_any_connection(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(ConnectorError) as refused:
        get_json(f"https://127.0.0.1:{port}/.well-known/openid-configuration",
                 targets.is_public)
    assert refused.value.code == "private_address"
    with pytest.raises(ConnectorError) as refused:
        request(f"https://localhost:{port}/token", data={"a": "b"},
                address_check=targets.is_public)
    assert refused.value.code == "private_address"
    assert _no_connection(listener)


def test_plain_http_is_refused_even_on_loopback(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(ConnectorError) as refused:
        get_json(f"http://127.0.0.1:{port}/jwks", targets.is_public)
    assert refused.value.code == "insecure_url"
    assert _no_connection(listener)


@pytest.fixture()
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    ca, cert, key = make_ca_and_server_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"issuer": "pinned", "host": self.headers["Host"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_an_allowed_address_is_reached_over_verified_tls(tls_server: str) -> None:
    """The connection goes to the checked address, and TLS still verifies the name."""
    seen: list[str] = []

    def allow(address: str) -> bool:
        seen.append(address)
        return True

    doc = get_json(tls_server + "/.well-known/openid-configuration", allow)
    assert doc["issuer"] == "pinned" and doc["host"] == tls_server.removeprefix("https://")
    assert seen == ["127.0.0.1"]


@pytest.mark.parametrize("settings_overrides", [{"federation_allow_private": False}])
def test_by_default_the_apps_connectors_reach_public_addresses_only(
    app: Flask, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    with app.app_context():
        cache = metadata_cache()
        assert cache.address_check is targets.is_public
        with pytest.raises(ConnectorError) as refused:
            cache.document(f"https://127.0.0.1:{port}/.well-known/openid-configuration")
    assert refused.value.code == "private_address"
    assert _no_connection(listener)
