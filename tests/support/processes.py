"""Real child processes for tests: the ``idp`` command, ``idp serve`` and a private
``redis-server`` that a test may stop and start again.

Nothing here is a stand-in: each helper runs the real program on loopback, on a free
port, with its own files in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.support.backends import missing

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def idp_env(**values: str) -> dict[str, str]:
    """The environment for an ``idp`` child: this one without any ``IDP_*`` variable,
    the checkout on ``PYTHONPATH``, plus ``values`` as ``IDP_<NAME>``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    env.update({f"IDP_{k.upper()}": v for k, v in values.items()})
    return env


def run_idp(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m idp.cli ARGS`` to completion and return its result."""
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_http(url: str, proc: subprocess.Popen[bytes] | None = None, tries: int = 300) -> None:
    """Poll ``url`` until it answers at all (any status); fail if ``proc`` dies."""
    for _ in range(tries):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited early with {proc.returncode}")
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


@dataclass
class Served:
    """A running ``idp serve``: its base URL, process and combined log file."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        """SIGTERM (graceful shutdown) and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def idp_serve(env: dict[str, str], log: Path, workers: int = 2,
              port: int | None = None) -> Iterator[Served]:
    """``idp serve`` on ``port`` (default: a free one), logging to ``log``; stopped with
    SIGTERM after."""
    port = port or free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "idp.cli", "serve", "--host", "127.0.0.1",
                "--port", str(port), "--workers", str(workers),
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        served = Served(f"http://127.0.0.1:{port}", proc, log)
        try:
            wait_for_http(served.url + "/healthz", proc)
            yield served
        finally:
            served.stop()


class RedisServer:
    """A private ``redis-server`` on a free loopback port that can be stopped and
    started again on the same port (for outage and recovery tests)."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing("redis-server binary not installed")
        self.binary = str(binary)
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A running private Redis, stopped after the test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
