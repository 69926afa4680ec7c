"""An independent, OpenID Certified relying party signs in at Unitgate: the npm
package ``openid-client`` (tests/upstream/rp.js) does discovery, builds the
authorization request (PKCE S256, nonce, state), validates the authorization
response (``iss``, RFC 9207), the token response and ID token, userinfo, a refresh
with its ID token, introspection, revocation and builds the logout URL - all with
the library's own checks. The browser leg between is the real login pages with the
code read from a real SMTP server."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask

from tests.support import oidc
from tests.support.backends import missing
from tests.support.live import LiveServer
from tests.support.live_oidc import EMAIL, browse_login
from tests.support.smtp import SmtpSink
from tests.support.upstream import UPSTREAM_DIR, ensure_node_packages

POST_LOGOUT = "https://rp.example/bye"
TIMEOUT = 60


@pytest.fixture
def settings_overrides(live_port: int, smtp_server: SmtpSink) -> dict[str, object]:
    return {"issuer": f"http://127.0.0.1:{live_port}", "smtp_url": smtp_server.url}


class NodeRP:
    """``node rp.js`` as a child process, spoken to one JSON line at a time."""

    def __init__(self, *args: str) -> None:
        node = shutil.which("node")
        if node is None:
            missing("node not installed")
        ensure_node_packages()
        self.proc = subprocess.Popen(
            [str(node), "rp.js", *args], cwd=UPSTREAM_DIR, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")

    def receive(self) -> dict[str, Any]:
        line = self.lines.get(timeout=TIMEOUT)
        if not line:
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"rp.js ended without an answer: {err[-1500:]}")
        message: dict[str, Any] = json.loads(line)
        if "failure" in message:
            raise AssertionError(f"openid-client refused Unitgate: {message['failure']}")
        return message

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def test_certified_relying_party_signs_in(app: Flask, live_server: LiveServer,
                                          smtp_server: SmtpSink) -> None:  # fmt: skip
    base_url = live_server.url
    rp = oidc.register(app, scope="openid profile email wallet",
                       post_logout_redirect_uris=[POST_LOGOUT])  # fmt: skip
    assert rp.secret
    node = NodeRP(base_url, rp.client_id, rp.secret, rp.redirect_uri, POST_LOGOUT, EMAIL)
    try:
        authorize = node.receive()["authorize"]
        assert authorize.startswith(base_url + "/authorize?")
        browser = requests.Session()
        first = browser.get(authorize, allow_redirects=False, timeout=10)
        back = browse_login(browser, base_url, first, smtp_server)
        node.send({"callback": back.headers["Location"]})
        result = node.receive()["result"]
    finally:
        node.close()

    claims = result["claims"]
    assert claims["iss"] == base_url and claims["aud"] == rp.client_id
    assert claims["email"] == EMAIL and claims["email_verified"] is True
    assert claims["amr"] == ["otp"] and "auth_time" in claims
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["userinfo"]["given_name"] == "Nina"
    # a person of no unit has no employer facts: a posted cost centre is kept nowhere
    assert "cost_centre" not in result["userinfo"]
    assert set(result["scope"].split()) == {"openid", "profile", "email", "wallet"}
    # the refresh's ID token passed the library's checks and names the same login
    refreshed = result["refreshed_claims"]
    assert refreshed is not None and refreshed["sub"] == claims["sub"]
    assert refreshed["auth_time"] == claims["auth_time"]
    assert result["refreshed_token_type"].lower() == "bearer"
    introspection = result["introspection"]
    assert introspection["active"] is True and introspection["sub"] == claims["sub"]
    assert introspection["client_id"] == rp.client_id
    # revoked with the library's revocation request: refreshing fails
    assert result["refresh_after_revocation"] == "invalid_grant"
    # the logout URL the library built is one Unitgate accepts
    logout = urlsplit(result["logout"])
    assert f"{logout.scheme}://{logout.netloc}" == base_url
    resp = browser.get(result["logout"], allow_redirects=False, timeout=10)
    # a valid id_token_hint of this browser's session: signed out, back to the merchant
    assert resp.status_code == 303, resp.text[:300]
    target = urlsplit(resp.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == POST_LOGOUT
    assert parse_qs(target.query)["state"] == [result["state"]]


def test_certified_relying_party_asks_claims_individually(
    app: Flask, live_server: LiveServer, smtp_server: SmtpSink
) -> None:
    """OIDC Core §5.5 through openid-client: only ``openid`` as scope, the e-mail
    address asked for the ID token and the given name for UserInfo with ``claims``;
    the library validates both answers (ID token, UserInfo ``sub``)."""
    base_url = live_server.url
    rp = oidc.register(app, scope="openid profile email",
                       post_logout_redirect_uris=[POST_LOGOUT])  # fmt: skip
    assert rp.secret
    extra = {"scope": "openid", "claims": json.dumps({
        "id_token": {"email": {"essential": True}, "email_verified": None},
        "userinfo": {"given_name": None},
    })}
    node = NodeRP(base_url, rp.client_id, rp.secret, rp.redirect_uri, POST_LOGOUT, EMAIL,
                  json.dumps(extra))
    try:
        authorize = node.receive()["authorize"]
        browser = requests.Session()
        first = browser.get(authorize, allow_redirects=False, timeout=10)
        back = browse_login(browser, base_url, first, smtp_server)
        node.send({"callback": back.headers["Location"]})
        result = node.receive()["result"]
    finally:
        node.close()
    claims = result["claims"]
    assert claims["email"] == EMAIL and claims["email_verified"] is True
    assert "given_name" not in claims
    assert result["userinfo"]["given_name"] == "Nina"
    assert "email" not in result["userinfo"]
    assert result["scope"] == "openid"
