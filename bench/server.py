"""The server under test: a fresh database, ``idp init`` and ``idp demo``, then
``idp serve`` with ONE worker pinned to core 0 (``taskset``), on loopback."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
SERVER_CORE = "0"
LOAD_CORE = "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: str, argv: list[str]) -> list[str]:
    """``argv`` run on one CPU core when ``taskset`` exists (Linux), else as is."""
    taskset = shutil.which("taskset")
    return [taskset, "-c", core, *argv] if taskset else argv


@dataclass
class Backend:
    """Where the server keeps its data: ``sqlite`` (a fresh file) or ``postgres``
    (a fresh database on the local PostgreSQL, plus the local Redis)."""

    name: str
    database_url: str
    redis_url: str | None = None
    redis_prefix: str = "ugbench:"
    admin_url: str | None = None  # PostgreSQL: where to drop the database afterwards

    def drop(self) -> None:
        """Remove what this run created (the PostgreSQL database, the Redis keys)."""
        if self.admin_url:
            import sqlalchemy as sa

            name = self.database_url.rsplit("/", 1)[1]
            engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            engine.dispose()
        if self.redis_url:
            import redis

            r = redis.Redis.from_url(self.redis_url)
            keys = list(r.scan_iter(match=self.redis_prefix + "*", count=1000))
            if keys:
                r.delete(*keys)


def sqlite_backend(workdir: Path) -> Backend:
    return Backend("sqlite", f"sqlite:///{workdir / 'bench.db'}")


def postgres_backend() -> Backend | None:
    """A fresh database and Redis key prefix of this run's own (several benchmark runs
    on one machine never share state), or None when either service is unreachable."""
    run = f"{os.getpid()}"
    try:
        import redis
        import sqlalchemy as sa

        admin_url = os.environ.get(
            "IDP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        )
        redis_url = os.environ.get("IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "unitgate_bench_{run}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "unitgate_bench_{run}"'))
        engine.dispose()
    except Exception as exc:  # any failure means: skip this backend
        print(f"bench: PostgreSQL/Redis backend skipped ({type(exc).__name__}: {exc})")
        return None
    return Backend(
        "postgres+redis",
        admin_url.rsplit("/", 1)[0] + f"/unitgate_bench_{run}",
        redis_url,
        redis_prefix=f"ugbench:{run}:",
        admin_url=admin_url,
    )


def machine_busy() -> tuple[float, float]:
    """Counters of /proc/stat (busy, total jiffies of all cores); differences of two
    readings give how busy the whole machine was in between."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return float(total - idle), float(total)


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    """Share (0..1) of all cores' time that was busy between two readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


class Server:
    """One ``idp serve`` process (gunicorn master + one worker) for the benchmark."""

    def __init__(self, workdir: Path, backend: Backend, smtp_port: int, threads: int) -> None:
        self.workdir = workdir
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.threads = threads
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
        self.env.update(
            PYTHONPATH=str(ROOT),
            IDP_ISSUER=self.url,
            IDP_DATABASE_URL=backend.database_url,
            IDP_MASTER_KEY_FILE=str(workdir / "master.key"),
            IDP_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
            IDP_SECURE_COOKIES="false",
            IDP_LOG_LEVEL="WARNING",
            # One IP (loopback) drives thousands of sign-ins; the address limit still applies.
            IDP_OTP_SENDS_PER_IP="100000000",
        )
        if backend.redis_url:
            self.env["IDP_REDIS_URL"] = backend.redis_url
            self.env["IDP_REDIS_PREFIX"] = backend.redis_prefix
        self.proc: subprocess.Popen[bytes] | None = None
        self.demo: dict[str, str] = {}

    def _run(self, *argv: str) -> str:
        """``python -m <argv>`` with the server's environment; its stdout."""
        result = subprocess.run(
            [sys.executable, "-m", *argv],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr[-2000:]}")
        return result.stdout

    def idp(self, *args: str) -> str:
        return self._run("idp.cli", *args)

    def prepare(self) -> None:
        """``idp init`` and ``idp demo`` (the demo client has client_credentials)."""
        self.idp("init", "--json")
        self.demo = json.loads(self.idp("demo", "--json"))

    def seed_returning(self, count: int) -> str:
        """``python -m bench.seed count``: the returning employees of the sign-in
        scenario (:mod:`bench.seed`); returns its one-line summary."""
        return self._run("bench.seed", str(count)).strip()

    def start(self) -> None:
        argv = [
            sys.executable,
            "-m",
            "idp.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--threads",
            str(self.threads),
            "--no-access-log",
        ]
        log = open(self.workdir / f"serve-{self.backend.name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            pinned(SERVER_CORE, argv), env=self.env, cwd=ROOT, stdout=log, stderr=log
        )
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError("idp serve exited; see " + log.name)
            try:
                if requests.get(self.url + "/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("idp serve did not become healthy")

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        if self.proc is None:
            return []
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in children.read_text().split()]
        except OSError:
            return []

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the worker processes."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
