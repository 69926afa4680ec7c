"""Closed-loop load with ``wrk`` from core 1: keep-alive and new-connection variants."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.server import LOAD_CORE, Server, busy_share, machine_busy, pinned

SCRIPT = Path(__file__).resolve().parent / "lua" / "request.lua"


@dataclass
class Measurement:
    """One load run: throughput, latency percentiles and errors."""

    scenario: str
    variant: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu: float  # share of one core the worker used during the run (0..1)
    machine_busy: float  # share of all cores busy during the run (0..1)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    server: Server,
    scenario: str,
    method: str,
    path: str,
    body: str = "",
    auth: str = "",
    close: bool = False,
    seconds: int = 5,
    connections: int = 16,
) -> Measurement:
    """Run wrk with one thread and ``connections`` connections for ``seconds``."""
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(SCRIPT),
        server.url,
        "--",
        method,
        path,
        body,
        auth,
        "close" if close else "keep",
    ]
    cpu_before = server.cpu_seconds()
    machine_before = machine_busy()
    result = subprocess.run(
        pinned(LOAD_CORE, argv), capture_output=True, text=True, check=False, timeout=seconds + 60
    )
    cpu_used = server.cpu_seconds() - cpu_before
    machine = busy_share(machine_before, machine_busy())
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    secs = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return Measurement(
        scenario=scenario,
        variant="new connection" if close else "keep-alive",
        requests=data["requests"],
        seconds=secs,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        server_cpu=cpu_used / secs if secs else 0.0,
        machine_busy=machine,
    )
