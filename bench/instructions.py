"""``python -m bench.instructions``: instructions per purchase authorisation, counted
by ``valgrind --tool=callgrind`` (repeatable whatever else the machine does, unlike
CPU time on a shared host), for Unitgate (this tree), an older tree
(``IDP_BENCH_PURCHASES_BASELINE``, with its own venv and the ``--plain`` mode) and
the bare stack (:mod:`bench.purchases_floor`).

Each is run twice under callgrind, with ``LOW`` and ``HIGH`` requests after the same
set-up and warm-up; the difference of the two totals divided by ``HIGH - LOW`` is the
instructions of one request, set-up excluded. Child processes (``idp init``,
PostgreSQL, Redis) are not counted: the figure is the app process's own, like the
CPU time :mod:`bench.purchases_bench` reports. Slow (callgrind runs Python about 50
times slower): a few minutes per tree.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

LOW, HIGH = 20, 120
PEOPLE = 5
COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _count(python: str, cwd: str, args: list[str], env: dict[str, str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out",
             python, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False,
            timeout=3600)
    found = COLLECTED.findall(done.stderr)
    if done.returncode != 0 or not found:
        raise RuntimeError(f"callgrind run failed ({done.returncode}): {done.stderr[-2000:]}")
    return int(found[-1])


def per_request(python: str, cwd: str, module_args: list[str], env: dict[str, str]) -> float:
    """Instructions of one request of ``python -m <module_args> N`` (N appended)."""
    low = _count(python, cwd, [*module_args, str(LOW)], env)
    high = _count(python, cwd, [*module_args, str(HIGH)], env)
    return (high - low) / (HIGH - LOW)


def measure(baseline: str | None) -> dict[str, Any]:
    here = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ}
    env.pop("IDP_BENCH_PURCHASES_BASELINE", None)
    ours = ["-m", "bench.purchases_bench", "--plain", "--people", str(PEOPLE), "--requests"]
    out: dict[str, Any] = {
        "unitgate": per_request(sys.executable, here, ours, env),
        "floor": per_request(sys.executable, here, ["-m", "bench.purchases_floor", "--plain"],
                             env),
    }
    if baseline:
        out["baseline"] = per_request(
            f"{baseline}/.venv/bin/python", baseline, ours,
            {**env, "IDP_BENCH_PURCHASES_DB": "unitgate_bench_purchases_before"})
        out["baseline_commit"] = subprocess.run(
            ["git", "-C", baseline, "rev-parse", "--short", "HEAD"], capture_output=True,
            text=True, check=False).stdout.strip()
    return out


def describe(r: dict[str, Any]) -> str:
    lines = ["| Instructions per authorisation (callgrind, app process) | millions |",
             "|---|---:|"]
    if "baseline" in r:
        lines.append(f"| before ({r['baseline_commit']}) | {r['baseline'] / 1e6:.2f} |")
    lines.append(f"| Unitgate (this tree) | {r['unitgate'] / 1e6:.2f} |")
    lines.append(f"| the bare stack, no Unitgate code (bench/purchases_floor.py) "
                 f"| {r['floor'] / 1e6:.2f} |")
    lines.append(f"| Unitgate / bare stack | {r['unitgate'] / r['floor']:.2f} |")
    if "baseline" in r:
        lines.append(f"| after / before | {r['unitgate'] / r['baseline']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = measure(os.environ.get("IDP_BENCH_PURCHASES_BASELINE"))
    print(json.dumps(result) if args.json else describe(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
