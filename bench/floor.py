"""``python -m bench.floor``: the per-request floor of the server stack, without
Unitgate. A bare Flask "hello world" served by gunicorn exactly as ``idp serve
--workers 1 --threads 4`` serves Unitgate (gthread, same options, one worker pinned
to core 0), loaded by wrk from core 1 (keep-alive and a new connection per request).

No journey that needs N HTTP requests can run faster than floor / N per core; the
output states that ceiling for the benchmark's journeys."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
from flask import Flask

from bench import paced, wrk
from bench.server import LOAD_CORE, SERVER_CORE, free_port, pinned

app = Flask(__name__)


@app.get("/hello")
def hello() -> str:
    return "hello"


# Requests per journey as the bench's scripted browsers count them today.
JOURNEYS = (
    ("code exchange", 2),
    ("e-mail-code sign-in, returning employee", 8),
    ("e-mail-code sign-in, new employee", 10),
)


@dataclass
class _Bare:
    """Enough of :class:`bench.server.Server` for :func:`bench.wrk.run_wrk`."""

    url: str
    proc: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        total = 0.0
        for pid in children.read_text().split():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total


def _serve(port: int) -> subprocess.Popen[bytes]:
    code = (
        "from gunicorn.app.base import BaseApplication\n"
        "from idp.cli.serve import gunicorn_options\n"
        "from bench.floor import app\n"
        "class A(BaseApplication):\n"
        "    def load_config(self):\n"
        f"        o = gunicorn_options('127.0.0.1', {port}, 1, 4, 30, False)\n"
        "        o.pop('post_worker_init'); o.pop('when_ready')\n"
        "        for k, v in o.items():\n"
        "            if k in self.cfg.settings: self.cfg.set(k, v)\n"
        "    def load(self): return app\n"
        "A().run()\n"
    )
    root = Path(__file__).resolve().parent.parent
    return subprocess.Popen(
        pinned(SERVER_CORE, [sys.executable, "-c", code]),
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main() -> None:
    """Measure and print the floor as JSON."""
    paced.pin_self(LOAD_CORE)
    seconds = int(sys.argv[sys.argv.index("--seconds") + 1]) if "--seconds" in sys.argv else 5
    port = free_port()
    proc = _serve(port)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if requests.get(url + "/hello", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        bare = _Bare(url, proc)
        out: dict[str, object] = {"name": "per_request_floor", "app": "bare Flask hello world"}
        for close in (False, True):
            m = wrk.run_wrk(bare, "hello", "GET", "/hello", close=close, seconds=seconds)  # type: ignore[arg-type]
            key = "new_connection" if close else "keep_alive"
            out[f"{key}_per_second"] = round(m.rate)
            out[f"{key}_worker_cpu"] = round(m.server_cpu, 2)
            cpu_ms = 1000 * m.server_cpu / m.rate if m.rate else 0.0
            out[f"{key}_cpu_ms_per_request"] = round(cpu_ms, 3)
        # The ceiling of an N-request journey on one fully used core: 1 / (N x CPU
        # time of one bare keep-alive request).
        cpu_ms = float(out["keep_alive_cpu_ms_per_request"])  # type: ignore[arg-type]
        out["journey_ceilings_per_core_per_second"] = {
            f"{name} ({n} requests)": round(1000 / (n * cpu_ms)) if cpu_ms else None
            for name, n in JOURNEYS
        }
        print(json.dumps(out, indent=2))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
