"""The real upstream OpenID provider (``tests/upstream/server.js``, node-oidc-provider)
as a child process, and a tiny "browser" that walks its pages.

:class:`Upstream` starts ``node server.js`` (running ``npm ci`` first when
``node_modules`` is missing), reads the ports it printed, and offers the test
controls: register a client (RFC 7591 dynamic registration), choose who signs in
next, tamper with the next ID token, rotate signing keys.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.backends import missing

UPSTREAM_DIR = Path(__file__).resolve().parent.parent / "upstream"
START_TIMEOUT = 60


@dataclass
class Upstream:
    ports: dict[str, int]
    tenants: dict[str, str]
    process: subprocess.Popen[str]

    def base(self, shape: str) -> str:
        return f"http://127.0.0.1:{self.ports[shape]}"

    @property
    def google_issuer(self) -> str:
        return self.base("google")

    @property
    def plain_issuer(self) -> str:
        """A generic provider in node-oidc-provider's default claims configuration: the
        ID token of a code flow carries no email or profile claims, UserInfo does."""
        return self.base("google") + "/plain"

    @property
    def okta_org_issuer(self) -> str:
        return self.base("okta")

    @property
    def okta_custom_issuer(self) -> str:
        return self.base("okta") + "/oauth2/default"

    @property
    def microsoft_authority(self) -> str:
        return self.base("microsoft")

    def tenant_issuer(self, tid: str) -> str:
        return f"{self.microsoft_authority}/{tid}/v2.0"

    def _control(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = requests.post(self.base("google") + path, json=body, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def register_client(self, issuer: str, redirect_uri: str, **metadata: Any
                        ) -> tuple[str, str]:
        """Register a confidential client at ``issuer``; returns (client_id, secret).
        ``metadata`` adds client metadata (``userinfo_signed_response_alg="RS256"``)."""
        resp = requests.post(
            issuer + "/reg",
            json={
                "redirect_uris": [redirect_uri],
                "response_types": ["code"],
                "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "client_secret_basic",
                **metadata,
            },
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        doc = resp.json()
        return doc["client_id"], doc["client_secret"]

    def entra_app(self, redirect_uri: str) -> tuple[str, str]:
        """An Entra app registration usable in every tenant; returns (client_id, secret)."""
        doc = self._control("/_test/entra-app", {"redirect_uris": [redirect_uri]})
        return str(doc["client_id"]), str(doc["client_secret"])

    def login_as(self, sub: str, claims: dict[str, Any], amr: list[str] | None = None) -> None:
        """The next interaction at any provider signs in ``sub`` with ``claims``."""
        self._control("/_test/login", {"sub": sub, "claims": claims, "amr": amr or ["pwd"]})

    def tamper(self, **defects: Any) -> None:
        """Re-sign the next token response's id_token with ``claims``/``remove``/``alg``/
        ``key`` ("foreign-same-kid", "foreign-new-kid")."""
        self._control("/_test/tamper", defects)

    def tamper_userinfo(self, **claims: Any) -> None:
        """Change claims of the next UserInfo answer (re-signed when it is a JWT)."""
        self._control("/_test/tamper", {"userinfo": claims})

    def rotate(self, shape: str) -> str:
        """A new signing key for ``shape``; returns its kid."""
        return str(self._control("/_test/rotate", {"shape": shape})["kid"])

    def authorize(self, url: str) -> str:
        """Follow the browser through the upstream from ``url`` until it is sent back
        off the upstream; returns that final URL (our callback with code, state, iss)."""
        browser = requests.Session()
        for _ in range(20):
            resp = browser.get(url, allow_redirects=False, timeout=10)
            if resp.status_code not in (302, 303):
                raise AssertionError(f"upstream answered {resp.status_code}: {resp.text[-800:]}")
            location = resp.headers["Location"]
            if location.startswith("/"):
                parts = urlsplit(url)
                location = f"{parts.scheme}://{parts.netloc}{location}"
            if urlsplit(location).port not in self.ports.values():
                return location
            url = location
        raise AssertionError("too many redirects at the upstream")


def _npm_ci() -> None:
    npm = shutil.which("npm")
    if npm is None:
        missing("npm not installed")
    result = subprocess.run(
        [str(npm), "ci", "--no-audit", "--no-fund"],
        cwd=UPSTREAM_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        missing(f"npm ci failed in tests/upstream: {result.stderr[-500:]}")


def ensure_node_packages() -> None:
    """``npm ci`` in tests/upstream unless every package of its lock file is there."""
    wanted = json.loads((UPSTREAM_DIR / "package.json").read_text())["dependencies"]
    if not all((UPSTREAM_DIR / "node_modules" / name).is_dir() for name in wanted):
        _npm_ci()


def start_upstream() -> Upstream:
    node = shutil.which("node")
    if node is None:
        missing("node not installed")
    ensure_node_packages()
    proc = subprocess.Popen(
        [str(node), "server.js"],
        cwd=UPSTREAM_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline() if proc.stdout
                                                         else ""))
    reader.start()
    reader.join(START_TIMEOUT)
    if not line or not line[0].strip():
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        missing(f"upstream OpenID provider did not start: {err[-500:]}")
    info = json.loads(line[0])
    threading.Thread(target=_drain, args=(proc,), daemon=True).start()
    ports = {k: int(v) for k, v in info.items() if k in ("google", "okta", "microsoft")}
    return Upstream(ports=ports, tenants=dict(info["tenants"]), process=proc)


def _drain(proc: subprocess.Popen[str]) -> None:
    for stream in (proc.stderr,):
        if stream is not None:
            for _ in stream:
                pass


@pytest.fixture(scope="session")
def upstream() -> Iterator[Upstream]:
    """One upstream provider process for the whole test session."""
    up = start_upstream()
    try:
        yield up
    finally:
        up.process.terminate()
        try:
            up.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            up.process.kill()
