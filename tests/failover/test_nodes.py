"""Three ``idp serve`` nodes behind nginx (the ``location /`` block of
``deploy/nginx-unitgate.conf``, plain HTTP on loopback), sharing PostgreSQL and Redis,
under a light steady load of token requests (client_credentials): a node killed with
SIGKILL costs at most the requests in flight on it; a rolling restart (SIGTERM, wait,
start, wait until ready, next node) costs none."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from idp.crypto.primitives import generate_master_key
from tests.support.backends import fresh_postgres, redis_url
from tests.support.processes import Served, free_port, idp_env, idp_serve, run_idp

NGINX = "/usr/sbin/nginx"
DEPLOY_CONF = Path(__file__).resolve().parents[2] / "deploy" / "nginx-unitgate.conf"


def location_block() -> str:
    """The ``location /`` block of the deploy config, as operators run it."""
    text = DEPLOY_CONF.read_text()
    match = re.search(r"\n    location / \{.*?\n    \}\n", text, re.S)
    assert match, "deploy/nginx-unitgate.conf has no location / block"
    return match.group(0)


def nginx_conf(prefix: Path, port: int, nodes: list[int]) -> str:
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;"
                        for p in nodes)
    return f"""
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
worker_processes 1;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
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
"""


@dataclass
class Load:
    """Token requests from two threads until stopped; outcomes counted per status."""

    url: str
    client_id: str
    secret: str
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    stop_flag: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        session = requests.Session()
        while not self.stop_flag.is_set():
            try:
                r = session.post(self.url + "/token", data={"grant_type": "client_credentials"},
                                 auth=(self.client_id, self.secret), timeout=10)
                with self.lock:
                    self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            except requests.RequestException:
                with self.lock:
                    self.errors += 1
            time.sleep(0.05)

    def failures(self) -> int:
        return self.errors + sum(n for s, n in self.statuses.items() if s != 200)

    def total(self) -> int:
        return self.errors + sum(self.statuses.values())


@dataclass
class Cluster:
    env: dict[str, str]
    nodes: list[Served]
    ports: list[int]
    url: str
    client_id: str
    secret: str
    stack: ExitStack
    tmp: Path

    def start_node(self, i: int) -> None:
        self.nodes[i] = self.stack.enter_context(
            idp_serve(self.env, self.tmp / f"node{i}-{time.monotonic_ns()}.log", workers=1,
                      port=self.ports[i]))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    if not shutil.which(NGINX):
        pytest.skip("nginx not installed")
    with fresh_postgres("unitgate_failover") as db_url, ExitStack() as stack:
        env = idp_env(database_url=db_url, redis_url=redis_url(),
                      redis_prefix=f"fo{free_port()}:", master_key=generate_master_key(),
                      issuer="http://127.0.0.1", smtp_url="", log_level="WARNING")
        env.pop("IDP_SMTP_URL")
        result = run_idp(["init"], env)
        assert result.returncode == 0, result.stderr
        result = run_idp(["clients", "create", "--name", "Load", "--redirect-uri",
                          "https://rp.example/cb", "--grant-type", "client_credentials",
                          "--scope", "openid", "--json"], env)
        assert result.returncode == 0, result.stderr + result.stdout
        created = json.loads(result.stdout)
        ports = [free_port() for _ in range(3)]
        nodes = [stack.enter_context(idp_serve(env, tmp_path / f"node{i}.log", workers=1,
                                               port=p)) for i, p in enumerate(ports)]
        proxy_port = free_port()
        prefix = tmp_path / "nginx"
        prefix.mkdir()
        (prefix / "nginx.conf").write_text(nginx_conf(prefix, proxy_port, ports))
        subprocess.run([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                       check=True, timeout=10)
        try:
            yield Cluster(env, nodes, ports, f"http://127.0.0.1:{proxy_port}",
                          created["client_id"], created["client_secret"], stack, tmp_path)
        finally:
            subprocess.run([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
                            "-s", "stop"], check=False, timeout=10)


def under_load(cluster: Cluster, action: callable) -> Load:  # type: ignore[valid-type]
    load = Load(cluster.url, cluster.client_id, cluster.secret)
    threads = [threading.Thread(target=load.run) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.5)
        action()
        time.sleep(1.5)
    finally:
        load.stop_flag.set()
        for t in threads:
            t.join(timeout=15)
    return load


def test_sigkill_of_one_node_costs_at_most_the_requests_in_flight(cluster: Cluster) -> None:
    def kill() -> None:
        cluster.nodes[1].proc.send_signal(signal.SIGKILL)
        cluster.nodes[1].proc.wait(timeout=10)

    load = under_load(cluster, kill)
    assert load.total() > 20, load
    # two load threads: at most one request each can have been in flight on the node
    assert load.failures() <= 2, load
    # the survivors serve on
    r = requests.post(cluster.url + "/token", data={"grant_type": "client_credentials"},
                      auth=(cluster.client_id, cluster.secret), timeout=10)
    assert r.status_code == 200


def test_a_rolling_restart_loses_no_request(cluster: Cluster) -> None:
    def roll() -> None:
        for i in range(3):
            cluster.nodes[i].stop()
            cluster.start_node(i)

    load = under_load(cluster, roll)
    assert load.total() > 20, load
    assert load.failures() == 0, load
