"""Benchmark: the console's access list (issue 14, "Quality").

Target: a list page of a unit with 10,000 accesses renders in under 100 ms server
time at p95.

A fresh PostgreSQL database of its own (``idp init``) gets one customer with
:data:`ACCESSES` accesses (one account each; roles, statuses, names and last
sign-ins spread as in ``bench.accesses_bench``, whose seeding it reuses). The app runs
*in this process*: every request goes through the Flask test client with the browser
session of the customer's main user, so the time measured is the server's own
(session, the console's guard and ``idp.rights`` decision, the keyset query, the
template) without a network or an HTTP server in front.

Scenarios, :data:`REQUESTS` pages each: the first page, filtered by status, by
role, by a name prefix, and the next page of a walk (``?after=``); p50, p95, max.

Run it alone: ``.venv/bin/python -m bench.console_bench`` (or ``python -m bench
--only console``); ``--customers`` is the number of accesses here (default 10,000).
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench.accesses_bench import FAMILY, GIVEN, _stats, seed
from bench.scale_app import list_table, scale_app
from bench.scale_app import main as scale_main

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "unitgate_bench_console"
ACCESSES = 10_000
REQUESTS = 200
TARGET_MS = 100.0
NEXT = re.compile(r'href="([^"]+)" rel="next"')


def _session(app: Any, http: Any, account_id: str) -> None:
    """Give the test browser a live session of ``account_id`` (what a login leaves)."""
    from flask import g

    from idp.interaction import sessions

    with app.test_request_context("/"):
        sessions.create(account_id, ["otp"], "urn:unitgate:acr:email-otp")
        token = g.session_cookie
    http.set_cookie(sessions.COOKIE, token, domain="localhost")


def pages(http: Any, unit_id: str, requests: int) -> list[dict[str, Any]]:
    rng = random.Random(9)
    base = f"/admin/units/{unit_id}/accesses"
    scenarios: list[tuple[str, Any]] = [
        ("first page", lambda: {}),
        ("status=suspended", lambda: {"status": "suspended"}),
        ("role=employee, status=active", lambda: {"role": "employee", "status": "active"}),
        ("q=<name prefix>", lambda: {"q": rng.choice(GIVEN + FAMILY)[: rng.randint(2, 5)]}),
    ]
    out = []
    walk = [base]

    def walking() -> str:
        return walk[-1]

    for name, make in [*scenarios, ("the next page of a walk (?after=)", None)]:
        samples, cpu = [], []
        for _ in range(requests):
            started, started_cpu = time.perf_counter(), time.thread_time()
            resp = (http.get(base, query_string=make()) if make is not None
                    else http.get(walking()))
            samples.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
            assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
            if make is None:
                found = NEXT.search(resp.get_data(as_text=True))
                walk.append(found.group(1).replace("&amp;", "&") if found else base)
        cpu_stats = _stats(cpu)
        out.append({"scenario": name, **_stats(samples),
                    "cpu_p50_ms": cpu_stats["p50_ms"], "cpu_p95_ms": cpu_stats["p95_ms"]})
    return out


def run(accesses: int = ACCESSES, requests: int = REQUESTS, keep: bool = False
        ) -> dict[str, Any]:
    with scale_app(BENCH_DB, keep) as (app, url):
        with app.app_context():
            seeded = seed(1, accesses, 0, 0)
            if keep:
                print(f"seeded and kept: {url}", flush=True)
                return {"seed": seeded}
            from sqlalchemy import select

            from idp.store.db import db
            from idp.store.models import Access

            unit_id, main_user = next(
                (row.unit_id, row.account_id) for row in db.session.scalars(select(Access))
                if row.roles == ["main_user"]
            )
            db.session.remove()
        http = app.test_client()
        _session(app, http, main_user)
        http.get(f"/admin/units/{unit_id}/accesses")  # warm up
        rows = pages(http, unit_id, requests)
    load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    return {"backend": "postgres", "seed": seeded, "lists": rows, "requests": requests,
            "load": load}


def describe(result: dict[str, Any]) -> str:
    seed_ = result["seed"]
    cpu = ["", "CPU time of the app's own thread per page (without the database's, and "
           "without waiting for a core on a busy machine):", "",
           "| List scenario | CPU p50 ms | CPU p95 ms |", "|---|---:|---:|"]
    cpu += [f"| {row['scenario']} | {row['cpu_p50_ms']:.1f} | {row['cpu_p95_ms']:.1f} |"
            for row in result["lists"]]
    return "\n".join([
        f"The console's access list on PostgreSQL: one customer with "
        f"{seed_['accesses']:,} accesses (seeded in {seed_['seconds']:.0f} s); in-process "
        f"server time per page (Flask test client, the main user's browser session), "
        f"{result['requests']} pages per scenario, 50 rows each. "
        f"Target: p95 < {TARGET_MS:.0f} ms.",
        "",
        *list_table(result["lists"], TARGET_MS),
        *cpu,
        "",
        f"Load average while measuring: {result['load']}.",
    ])


def main(argv: list[str] | None = None) -> int:
    return scale_main(__doc__, run, describe, ACCESSES, REQUESTS, argv)


if __name__ == "__main__":
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
