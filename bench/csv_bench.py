"""Benchmark: CSV import and export of accesses at scale (issue 13, items 3 and 4).

Target, on PostgreSQL: 100,000 rows imported (and exported) in constant memory.

A fresh database of its own (``idp init`` migrates it; :mod:`bench.scale_app`). A
CSV file of :data:`ROWS` new people (names, mobile numbers, roles, a permission
group, platform access) is written to a temporary file, then, in this process:

* a dry run of the file, then the import itself
  (:func:`idp.accounts.access_csv.run_import`, the service behind
  ``idp accesses import``; ``invite`` false, so the time is the import's and not the
  mail courier's: with invitations only the unit's hourly budget, 500 by default,
  would be sent and the rest deferred);
* the export of the unit (:func:`idp.accounts.access_csv.export`, the generator
  behind ``GET .../accesses/export``), consumed and thrown away.

Each is timed whole; the resident set size is sampled every 20 ms meanwhile (growth
over the start of that step), and the Python heap's peak is taken with
``tracemalloc`` in a second, smaller pass (tracemalloc slows Python down, so it
does not run during the timed pass). The same is done first for a file of a fifth
of the size: constant memory means about the same growth for both.

Run it alone: ``.venv/bin/python -m bench.csv_bench [--rows N]`` (or
``python -m bench --only csv``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.scale_app import scale_app

BENCH_DB = "unitgate_bench_csv"
ROWS = 100_000
TARGET_RSS_MIB = 100.0
HEADER = ["email", "given_name", "family_name", "mobile", "roles", "permission_groups",
          "platform_access"]


def write_file(path: Path, rows: int, tag: str) -> int:
    """A CSV of ``rows`` new people; its size in bytes."""
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(rows):
            writer.writerow([
                f"p{i:06d}@{tag}.example", f"Given{i % 97}", f"Family{i % 89}",
                f"+4930{i:08d}" if i % 4 == 0 else "",
                "employee" if i % 10 else "employee,operational_contact",
                "buyers" if i % 7 == 0 else "", "yes" if i % 5 else "no",
            ])
    return path.stat().st_size


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@contextmanager
def measured(out: dict[str, Any]) -> Iterator[None]:
    """Time the block and sample the resident set every 20 ms."""
    start_rss = _rss_kib()
    peak = [start_rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            peak[0] = max(peak[0], _rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        yield
    finally:
        out["seconds"] = time.perf_counter() - started
        stop.set()
        sampler.join()
        out["rss_growth_mib"] = (max(peak[0], _rss_kib()) - start_rss) / 1024


def heap_peak(step: Callable[[], Any]) -> float:
    """The Python heap's peak during ``step`` in MiB (tracemalloc)."""
    tracemalloc.start()
    try:
        step()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def one_size(app: Any, rows: int, tmp: Path) -> dict[str, Any]:
    from idp.accounts import access_csv
    from idp.rights import SYSTEM, groups
    from idp.store.access_lists_repo import Filter
    from idp.units import registry as units

    tag = f"n{rows}"
    result: dict[str, Any] = {"rows": rows}
    with app.app_context():
        unit = units.create(f"CSV {rows}", slug=f"csv-{rows}")
        groups.set_group(unit.slug, "buyers", ["orders.create"])
        unit_id = unit.id
        path = tmp / f"{tag}.csv"
        result["file_mib"] = write_file(path, rows, tag) / 2**20

        def do_import(dry_run: bool) -> access_csv.ImportReport:
            with path.open("rb") as f:
                return access_csv.run_import(SYSTEM, unit_id, f, dry_run=dry_run, invite=False)

        dry: dict[str, Any] = {}
        with measured(dry):
            report = do_import(True)
        dry["counts"] = report.counts
        real: dict[str, Any] = {}
        with measured(real):
            report = do_import(False)
        real["counts"] = report.counts

        f = access_csv.export_filter(Filter(unit_ids=frozenset({unit_id})), True, False)
        chosen = access_csv.columns(None)

        def do_export() -> int:
            size = 0
            for chunk in access_csv.export(SYSTEM, unit_id, f, chosen, "excel"):
                size += len(chunk)
            return size

        exported: dict[str, Any] = {}
        with measured(exported):
            exported["mib"] = do_export() / 2**20
        # the Python heap's peak: the export again, and a re-run of the import (every
        # row unchanged: the same reading, checking and lookups, nothing written)
        exported["heap_peak_mib"] = heap_peak(do_export)
        real["heap_peak_rerun_mib"] = heap_peak(lambda: do_import(False))
        result.update(dry_run=dry, import_=real, export=exported)
    return result


def run(rows: int) -> dict[str, Any]:
    small = max(rows // 5, 1)
    with scale_app(BENCH_DB) as (app, _url), tempfile.TemporaryDirectory() as tmp:
        return {"backend": "postgres",
                "sizes": [one_size(app, small, Path(tmp)), one_size(app, rows, Path(tmp))]}


def describe(result: dict[str, Any]) -> str:
    lines = [
        "PostgreSQL; the service in-process (`idp accesses import`/`export`'s code), "
        "import without invitations. Growth: the resident set over the step's start "
        f"(target: constant, under {TARGET_RSS_MIB:.0f} MiB at any size); heap: "
        "tracemalloc's peak (import: a re-run of the file, all rows unchanged).",
        "",
        "| Rows | File MiB | Step | Seconds | Rows/s | RSS growth MiB | Heap peak MiB | Outcome |",
        "|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    for size in result["sizes"]:
        n = size["rows"]
        for name, step, heap in (
            ("dry run", size["dry_run"], None),
            ("import", size["import_"], size["import_"].get("heap_peak_rerun_mib")),
            ("export", size["export"], size["export"].get("heap_peak_mib")),
        ):
            outcome = ", ".join(f"{k} {v}" for k, v in step.get("counts", {}).items() if v)
            if name == "export":
                outcome = f"{step['mib']:.1f} MiB of CSV"
            lines.append(
                f"| {n:,} | {size['file_mib']:.1f} | {name} | {step['seconds']:.1f} | "
                f"{n / step['seconds']:,.0f} | {step['rss_growth_mib']:.1f} | "
                f"{'' if heap is None else f'{heap:.1f}'} | {outcome} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    result = run(args.rows)
    print(json.dumps(result) if args.json else describe(result), flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
