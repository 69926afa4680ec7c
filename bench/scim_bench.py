"""Benchmark: SCIM user creations/s and filtered GETs/s (target: 300 creations/s per
core on PostgreSQL).

A served instance (``idp serve``, ONE worker pinned to core 0, see
:mod:`bench.server`) on a fresh database gets a business unit and a SCIM token
through the real CLI; ``wrk`` on core 1 then

* POSTs new users to ``/scim/v2/Users`` (each with a fresh userName), and
* GETs ``/scim/v2/Users?filter=userName eq "..."`` cycling through users it created
  (the lookup Okta and Entra make before every change);

then one ``POST /scim/v2/Bulk`` per size in :data:`BULK_SIZES`, each a chain of user
creations in reverse ``bulkId`` order (every POST names the manager created after it,
the worst order for reference resolution, issue 10 finding 6), timed whole: operations
per second, and how many ran within the request's time budget (``IDP_SCIM_BULK_SECONDS``).

Per-core rates divide the throughput by the share of a core the worker used.
Run it alone with ``.venv/bin/python -m bench.scim_bench [--backend sqlite|postgres|all]``
(``--only-bulk`` for the Bulk case alone, which needs no ``wrk``);
the harness can call :func:`run`, which returns the numbers as a dict.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench.server import LOAD_CORE, Backend, Server, free_port, pinned, sqlite_backend

TARGET_CREATIONS_PER_CORE = 300.0
SCRIPT = Path(__file__).resolve().parent / "lua" / "scim.lua"
PG_ADMIN_URL = os.environ.get(
    "IDP_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/3")
BENCH_DB = "unitgate_bench_scim"
BULK_SIZES = (300, 1000)
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def postgres_backend() -> Backend:
    """A fresh database of its own (so it never collides with the main harness)."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{BENCH_DB}"'))
    admin.dispose()
    return Backend("postgres+redis", PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + BENCH_DB, REDIS_URL)


def wrk(server: Server, seconds: int, connections: int, *args: str) -> dict[str, Any]:
    """One wrk run of ``bench/lua/scim.lua``; requests, rate, latency, errors, CPU."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
            "-s", str(SCRIPT), server.url, "--", *args]
    cpu_before = server.cpu_seconds()
    done = subprocess.run(pinned(LOAD_CORE, argv), capture_output=True, text=True,
                          check=False, timeout=seconds + 60)  # fmt: skip
    cpu = server.cpu_seconds() - cpu_before
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    secs = data["duration_us"] / 1e6
    share = cpu / secs if secs else 0.0
    rate = data["requests"] / secs if secs else 0.0
    return {
        "requests": data["requests"],
        "rate": rate,
        "per_core": rate / share if share else 0.0,
        "server_cpu": share,
        "p50_ms": data["p50_us"] / 1000,
        "p99_ms": data["p99_us"] / 1000,
        "errors": sum(data[k] for k in ("connect", "read", "write", "status", "timeout")),
    }


def user_names(server: Server, token: str, limit: int = 200) -> list[str]:
    resp = requests.get(
        f"{server.url}/scim/v2/Users",
        params={"count": str(limit), "attributes": "userName"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    resp.raise_for_status()
    return [r["userName"] for r in resp.json()["Resources"]]


def reverse_chain(size: int, prefix: str) -> dict[str, Any]:
    """A BulkRequest of ``size`` user creations, each managed by the next one."""
    ops = []
    for i in range(size):
        data: dict[str, Any] = {"schemas": [USER, ENTERPRISE],
                                "userName": f"{prefix}{i}@bench.example"}
        if i + 1 < size:
            data[ENTERPRISE] = {"manager": {"value": f"bulkId:{prefix}{i + 1}"}}
        ops.append({"method": "POST", "path": "/Users", "bulkId": f"{prefix}{i}", "data": data})
    return {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}


def bulk(server: Server, token: str, size: int) -> dict[str, Any]:
    """One reverse-order Bulk request of ``size`` operations, timed whole."""
    payload = json.dumps(reverse_chain(size, f"bulk{size}-"))
    cpu_before = server.cpu_seconds()
    started = time.perf_counter()
    resp = requests.post(
        f"{server.url}/scim/v2/Bulk", data=payload, timeout=120,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"},
    )
    seconds = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu_before
    statuses: dict[str, int] = {}
    if resp.status_code == 200:
        for result in resp.json()["Operations"]:
            statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    ran = sum(n for status, n in statuses.items() if status != "503")
    return {"operations": size, "bytes": len(payload), "http_status": resp.status_code,
            "seconds": seconds, "server_cpu_seconds": cpu, "statuses": statuses,
            "ran": ran, "ops_per_second": ran / seconds if seconds else 0.0}


def run_bulk(kind: str = "postgres", threads: int = 4) -> dict[str, Any]:
    """Only the Bulk case, on a fresh instance of ``kind``."""
    with tempfile.TemporaryDirectory(prefix="unitgate-scim-bench-") as tmp:
        server, token = _serve(Path(tmp), kind, threads)
        try:
            return {"backend": server.backend.name, "threads": threads,
                    "bulk": [bulk(server, token, size) for size in BULK_SIZES]}
        finally:
            server.stop()


def _serve(workdir: Path, kind: str, threads: int) -> tuple[Server, str]:
    """A started server on a fresh ``kind`` database with a unit and its SCIM token."""
    backend = sqlite_backend(workdir) if kind == "sqlite" else postgres_backend()
    server = Server(workdir, backend, free_port(), threads)
    server.idp("init", "--json")
    server.idp("units", "create", "--name", "Bench Corp", "--slug", "bench", "--json")
    token = json.loads(server.idp("scim-tokens", "create", "--unit", "bench",
                                  "--name", "bench", "--json"))["token"]  # fmt: skip
    server.start()
    return server, token


def run(kind: str = "postgres", seconds: int = 5, threads: int = 4,
        connections: int = 8) -> dict[str, Any]:  # fmt: skip
    """Serve a fresh instance on ``kind`` (sqlite or postgres) and measure the rates."""
    with tempfile.TemporaryDirectory(prefix="unitgate-scim-bench-") as tmp:
        workdir = Path(tmp)
        server, token = _serve(workdir, kind, threads)
        try:
            auth = f"Bearer {token}"
            wrk(server, 1, connections, "create", auth)  # warm-up
            creations = wrk(server, seconds, connections, "create", auth)
            names_file = workdir / "names.txt"
            names_file.write_text("\n".join(user_names(server, token)) + "\n")
            gets = wrk(server, seconds, connections, "get", auth, str(names_file))
            bulks = [bulk(server, token, size) for size in BULK_SIZES]
        finally:
            server.stop()
    return {"backend": server.backend.name, "seconds": seconds, "threads": threads,
            "creations": creations, "filtered_gets": gets, "bulk": bulks,
            "target_creations_per_core": TARGET_CREATIONS_PER_CORE}


def describe_bulk(result: dict[str, Any]) -> list[str]:
    lines = []
    for b in result.get("bulk", []):
        lines.append(
            f"  POST /Bulk {b['operations']:5} ops reverse order ({b['bytes'] / 1024:.0f} KiB): "
            f"HTTP {b['http_status']}, {b['ran']} ran in {b['seconds']:.2f} s = "
            f"{b['ops_per_second']:.0f} ops/s (server CPU {b['server_cpu_seconds']:.2f} s), "
            f"statuses {b['statuses']}"
        )
    return lines


def describe(result: dict[str, Any]) -> str:
    lines = [f"SCIM on {result['backend']} (one worker, {result['threads']} threads):"]
    for key, label in (("creations", "POST /Users"), ("filtered_gets", "GET filter=userName")):
        m = result[key]
        lines.append(
            f"  {label:22} {m['rate']:7.0f}/s  {m['per_core']:7.0f}/s per core  "
            f"p50 {m['p50_ms']:.1f} ms  p99 {m['p99_ms']:.1f} ms  errors {m['errors']}"
        )
    lines += describe_bulk(result)
    per_core = result["creations"]["per_core"]
    verdict = "meets" if per_core >= TARGET_CREATIONS_PER_CORE else "misses"
    lines.append(f"  creations {verdict} the target of {TARGET_CREATIONS_PER_CORE:.0f}/s per core")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="postgres")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--only-bulk", action="store_true",
                        help="only the reverse-order Bulk case (no wrk needed)")
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.backend == "all" else [args.backend]
    for kind in kinds:
        if args.only_bulk:
            result = run_bulk(kind, args.threads)
            text = "\n".join([f"SCIM Bulk on {result['backend']} (one worker, "
                              f"{result['threads']} threads):", *describe_bulk(result)])
        else:
            result = run(kind, args.seconds, args.threads)
            text = describe(result)
        print(json.dumps(result) if args.json else text, flush=True)
    return 0


if __name__ == "__main__":
    root = Path(__file__).resolve().parent.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    raise SystemExit(main())
