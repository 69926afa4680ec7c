"""The failover cluster: three ``idp serve`` nodes behind nginx, sharing a private
PostgreSQL cluster (``initdb``/``pg_ctl``, so it can be restarted), a private
``redis-server`` (so it can be stopped) and a private SMTP server (aiosmtpd), all on
loopback; and the load that runs against it: e-mail-code sign-ins walked by scripted
browsers and client_credentials token requests."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import RemoteDisconnected
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from urllib3.exceptions import ProtocolError

from tests.support.backends import missing
from tests.support.processes import PROJECT_ROOT, free_port
from tests.support.smtp import SmtpSink, code_in

NGINX = "/usr/sbin/nginx"
DEPLOY_CONF = PROJECT_ROOT / "deploy" / "nginx-unitgate.conf"
REDIRECT = "https://rp.example/cb"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


class PgCluster:
    """A throwaway PostgreSQL cluster (trust auth, no fsync) in its own directory. As
    root it runs as the ``postgres`` user (PostgreSQL refuses root)."""

    def __init__(self) -> None:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            missing("initdb/pg_ctl not installed: no private PostgreSQL to restart")
            raise AssertionError("unreachable")
        self.initdb, self.pg_ctl = initdb, pg_ctl
        self.dir = Path(tempfile.mkdtemp(prefix="ug-failover-pg-"))
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run([self.initdb, "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8"])

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str]) -> None:
        subprocess.run([*self.as_user, *args], check=True, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _ctl(self, action: str) -> None:
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c max_connections=60")
        self._run([self.pg_ctl, "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                   "-o", opts, "-w", "-m", "fast", action])

    def start(self) -> None:
        self._ctl("start")

    def stop(self) -> None:
        self._ctl("stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Node:
    """One ``idp serve`` (one gunicorn worker) on a fixed port."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "idp.cli", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1", "--proxy-hops", "1",
                 "--no-access-log"],
                env=self.env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"node {self.port} not ready")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """SIGTERM: gunicorn stops accepting, finishes requests in flight, exits."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)

    def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            # its gunicorn worker dies with the master (its parent-death check)
            time.sleep(0.5)


def location_block() -> str:
    """The ``location /`` block of the deploy config, as operators run it."""
    match = re.search(r"\n    location / \{.*?\n    \}\n", DEPLOY_CONF.read_text(), re.S)
    assert match, "deploy/nginx-unitgate.conf has no location / block"
    return match.group(0)


class Nginx:
    """nginx, unprivileged, with a private prefix; the deploy config's proxy block in
    front of the nodes (one upstream, several servers)."""

    def __init__(self, prefix: Path, port: int, nodes: list[int]) -> None:
        if not Path(NGINX).exists():
            missing("nginx not installed")
        self.prefix, self.port, self.nodes = prefix, port, nodes
        prefix.mkdir(parents=True, exist_ok=True)
        self.write()

    def write(self, down: int | None = None) -> None:
        """The config; the node on port ``down`` marked ``down`` (drained: nginx sends it
        nothing new)."""
        prefix, port = self.prefix, self.port
        servers = "\n".join(
            f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s{' down' * (p == down)};"
            for p in self.nodes)
        temp = "\n".join(f"    {kind}_temp_path {prefix}/{kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        (prefix / "nginx.conf").write_text(f"""
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log off;
{temp}
    upstream unitgate {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 1m;
{location_block()}
    }}
}}
""")

    def _nginx(self, *args: str) -> None:
        subprocess.run([NGINX, "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
                        *args], check=True, timeout=20)

    def start(self) -> None:
        self._nginx()

    def drain(self, port: int | None) -> None:
        """Reload with the node on ``port`` drained (None: every node back). A reload is
        graceful: old nginx workers finish what they proxy, new ones use the new list."""
        self.write(down=port)
        self._nginx("-s", "reload")
        time.sleep(1.0)  # the old workers finish their requests in flight

    def stop(self) -> None:
        self._nginx("-s", "stop")


def _reset_idle_connection(exc: requests.RequestException) -> bool:
    """True when the front (nginx) closed the kept-alive connection the request was
    sent on before answering anything: at a graceful reload its old workers close their
    idle client connections, and a request sent at that moment meets the reset. The
    request never reached a node (a node's failure would be nginx's 502, not a reset
    of the client's connection), so a browser sends it again on a new connection, as
    RFC 9112 §9.3.1 lets it and browsers do."""
    reason = exc.args[0] if isinstance(exc, requests.ConnectionError) and exc.args else None
    cause = reason.args[1] if getattr(reason, "args", None) and len(reason.args) > 1 else None
    return (isinstance(reason, ProtocolError) and "Connection aborted" in str(reason.args[0])
            and isinstance(cause, (ConnectionResetError, RemoteDisconnected)))


class Recording(requests.Session):
    """A browser that counts every status it gets (and every request that got none).
    Like a browser, it sends a request again once when the front closed the idle
    connection it went out on (:func:`_reset_idle_connection`); that is counted too."""

    def __init__(self, counts: Counter[str], lock: threading.Lock) -> None:
        super().__init__()
        self.counts, self.lock = counts, lock

    def request(self, method: str | bytes, url: str | bytes, *args: Any,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        kwargs["allow_redirects"] = False  # get() asks for True; this browser never follows
        try:
            try:
                resp = super().request(method, url, *args, **kwargs)
            except requests.ConnectionError as exc:
                if not _reset_idle_connection(exc):
                    raise
                with self.lock:
                    self.counts["sent again after the front closed an idle connection"] += 1
                resp = super().request(method, url, *args, **kwargs)
        except requests.RequestException:
            with self.lock:
                self.counts["no answer"] += 1
            raise
        with self.lock:
            self.counts[str(resp.status_code)] += 1
        return resp


@dataclass
class Cluster:
    url: str
    nodes: list[Node]
    pg: PgCluster
    redis: Any
    smtp: SmtpSink
    client_id: str
    secret: str
    service_id: str
    service_secret: str
    nginx: Nginx
    counts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def browser(self) -> Recording:
        return Recording(self.counts, self.lock)

    def token(self, session: requests.Session | None = None) -> requests.Response:
        return (session or self.browser()).post(
            self.url + "/token", data={"grant_type": "client_credentials"},
            auth=(self.service_id, self.service_secret))

    def authorize_params(self, **extra: str) -> dict[str, str]:
        return {"response_type": "code", "client_id": self.client_id,
                "redirect_uri": REDIRECT, "scope": "openid email",
                "state": secrets.token_hex(4), "nonce": secrets.token_hex(4), **extra}

    def sign_in(self, email: str, code_timeout: float = 30.0,
                browser: requests.Session | None = None) -> requests.Session:
        """An e-mail-code sign-in walked through the real pages, then the code exchanged
        at /token; returns the browser (with its session). Raises on any failure."""
        browser = browser or self.browser()
        resp = browser.get(self.url + "/authorize", params=self.authorize_params())
        for _ in range(14):
            assert resp.status_code == 303, (resp.status_code, visible_text(resp.text))
            target = urljoin(self.url, resp.headers["Location"])
            if target.startswith(REDIRECT):
                code = parse_qs(urlsplit(target).query)["code"][0]
                token = browser.post(self.url + "/token", auth=(self.client_id, self.secret),
                                     data={"grant_type": "authorization_code", "code": code,
                                           "redirect_uri": REDIRECT})
                assert token.status_code == 200 and "id_token" in token.json(), (
                    token.status_code, token.text[:200])
                return browser
            path = urlsplit(target).path
            if path.startswith("/authorize/resume/"):
                resp = browser.get(target)
                continue
            page = browser.get(target)
            assert page.status_code == 200, (path, page.status_code, visible_text(page.text))
            found = CSRF_RE.search(page.text)
            assert found, f"no CSRF token on {path}"
            data: dict[str, str] = {"csrf_token": found.group(1)}
            action = path
            if path.endswith("/code"):
                data["code"] = code_in(self.smtp.last_to(email, timeout=code_timeout))
            elif path.endswith("/profile"):
                data.update(given_name="Lea", family_name="Last")
            elif path.endswith("/consent"):
                data["decision"] = "allow"
            else:
                data["email"] = email
                action = path + "/email"
            resp = browser.post(urljoin(self.url, action), data=data)
        raise AssertionError("the login pages never sent the browser back")

    def has_session(self, browser: requests.Session) -> bool:
        """A silent authorization request (prompt=none) is answered with a code."""
        resp = browser.get(self.url + "/authorize",
                           params=self.authorize_params(prompt="none"))
        return resp.status_code == 303 and "code=" in resp.headers.get("Location", "")


@dataclass
class Load:
    """Sign-in threads and token threads against the cluster until stopped."""

    cluster: Cluster
    sign_in_threads: int = 2
    token_threads: int = 1
    done: list[tuple[str, requests.Session]] = field(default_factory=list)
    sign_in_failures: list[str] = field(default_factory=list)
    tokens_ok: int = 0
    token_failures: list[str] = field(default_factory=list)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def _sign_ins(self, n: int) -> None:
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            email = f"load{n}-{i}-{secrets.token_hex(3)}@corp.example"
            try:
                browser = self.cluster.sign_in(email)
                with self.lock:
                    self.done.append((email, browser))
            except (AssertionError, requests.RequestException, KeyError, ValueError) as exc:
                with self.lock:
                    self.sign_in_failures.append(f"{email}: {exc!r}"[:300])
                time.sleep(0.5)

    def _tokens(self) -> None:
        session = self.cluster.browser()
        while not self.stop_flag.is_set():
            try:
                r = self.cluster.token(session)
                ok = r.status_code == 200
                detail = f"{r.status_code} {r.text[:100]}"
            except requests.RequestException as exc:
                ok, detail = False, repr(exc)[:200]
            with self.lock:
                if ok:
                    self.tokens_ok += 1
                else:
                    self.token_failures.append(detail)
            time.sleep(0.1)

    def __enter__(self) -> Load:
        self.threads = [threading.Thread(target=self._sign_ins, args=(n,))
                        for n in range(self.sign_in_threads)]
        self.threads += [threading.Thread(target=self._tokens)
                         for _ in range(self.token_threads)]
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=90)

    def summary(self) -> str:
        return (f"sign-ins done {len(self.done)}, failed {len(self.sign_in_failures)} "
                f"{self.sign_in_failures[:3]}; tokens ok {self.tokens_ok}, failed "
                f"{len(self.token_failures)} {self.token_failures[:3]}")


def visible_text(html: str) -> str:
    """The words of a page's body, for failure messages."""
    body = html.split("<body", 1)[-1]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).strip()[:400]


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               detail: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {detail()}")
