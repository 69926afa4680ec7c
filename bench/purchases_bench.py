"""Benchmark: purchase authorisations (issue 17).

Target, on PostgreSQL: at least 500 authorisations per second per core, and a p99
under 50 ms at half that rate.

A fresh database of its own (``idp init``), Redis for the ephemeral store (the
idempotency keys), one company with :data:`PEOPLE` employees, a role budget, a unit
pool and a per-order limit (large enough that every purchase is approved and
reserved: the full path, budget rows locked, usage updated, audit event written),
and a merchant client with the ``purchases`` scope; each employee's access token
comes from a real code-flow sign-in choosing the unit.

The app runs *in this process* (like bench/customers_bench.py), one thread, through
the Flask test client: ``POST /api/v1/purchases`` with a new ``Idempotency-Key``
each time, rotating over the employees. The time measured is the server's own
(token verification, authorisation, locks, inserts, commit, serialisation), on one
core, without an HTTP server in front. First a closed loop for the rate, then a
paced loop at half that rate for the latency percentiles.

Per core: the closed loop's wall-clock rate includes waiting for PostgreSQL and
Redis (other processes, on other cores when there are any) and whatever else the
machine runs. The per-core figure is therefore this process's CPU time per
authorisation (``time.process_time``): one core busy only with this app serves
``1 / CPU`` authorisations per second. The database server's own CPU is not in it.

Before/after: with ``IDP_BENCH_PURCHASES_BASELINE=<a worktree of an older commit
with its own .venv>`` the older code's benchmark runs first, in the same run on the
same machine (its own database), and the report shows both.

Run it alone: ``.venv/bin/python -m bench.purchases_bench [--requests N]``, or
``python -m bench --only purchases``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from typing import Any

from bench.scale_app import scale_app

BENCH_DB = os.environ.get("IDP_BENCH_PURCHASES_DB", "unitgate_bench_purchases")
PEOPLE = 50
REQUESTS = 1000
TARGET_RATE = 500.0
TARGET_P99_MS = 50.0


def _seed(app: Any, people_count: int = PEOPLE) -> list[str]:
    """The company, its people and budgets, the merchant; the people's tokens."""
    from idp.accounts import accesses
    from idp.purchases import budgets
    from idp.rights import SYSTEM
    from idp.store.db import db
    from idp.store.models import Account
    from idp.store.unit_of_work import atomic
    from idp.units import registry as units
    from tests.support import oidc

    with app.app_context():
        unit = units.create("Bench GmbH", slug="bench-gmbh")
        unit_id = unit.id
        budgets.set_budget(SYSTEM, unit_id, budgets.BudgetInput(
            "role", "employee", "month", "100000000.00", "EUR", "1000.00"))
        budgets.set_budget(SYSTEM, unit_id, budgets.BudgetInput(
            "unit", None, "month", "900000000.00", "EUR"))
        people = []
        for i in range(people_count):
            account = Account(email=f"buyer{i}@bench.example", email_verified=True,
                              given_name="Buyer", family_name=str(i))
            db.session.add(account)
            db.session.commit()
            with atomic():
                accesses.create(account.id, unit_id, ["employee"], "bench", event=None)
            people.append(account.id)
    rp = oidc.register(app, name="Bench Shop", scope="openid purchases")
    http = app.test_client()
    tokens = []
    for account_id in people:
        si = oidc.sign_in(app, http, rp, account_id, unit_id=unit_id, scope="openid purchases")
        tokens.append(str(oidc.exchange(http, rp, si).get_json()["access_token"]))
    return tokens


def _one(http: Any, token: str) -> float:
    started = time.perf_counter()
    resp = http.post("/api/v1/purchases", json={
        "order_ref": uuid.uuid4().hex[:12], "amount": "12.34", "currency": "EUR"},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex})
    took = time.perf_counter() - started
    if resp.status_code != 201 or resp.get_json()["status"] != "approved":
        raise RuntimeError(f"purchase not approved: {resp.status_code} {resp.get_data()[:300]!r}")
    return took


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def run(requests: int, people: int = PEOPLE) -> dict[str, Any]:
    extra = {"IDP_REDIS_URL": os.environ.get("IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
             "IDP_REDIS_PREFIX": "bench-purchases:"}
    with scale_app(BENCH_DB, extra_env=extra) as (app, _url):
        tokens = _seed(app, people)
        http = app.test_client()
        for i in range(50):  # warm-up: caches, prepared statements
            _one(http, tokens[i % len(tokens)])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        closed = [_one(http, tokens[i % len(tokens)]) for i in range(requests)]
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        rate = requests / wall
        half = rate / 2
        paced: list[float] = []
        interval = 1.0 / half
        next_at = time.perf_counter()
        for i in range(max(200, requests // 2)):
            now = time.perf_counter()
            if now < next_at:
                time.sleep(next_at - now)
            paced.append(_one(http, tokens[i % len(tokens)]))
            next_at += interval
    return {
        "requests": requests, "people": people, "rate_per_s": rate,
        "cpu_ms_per_auth": cpu / requests * 1000, "per_core_rate_per_s": requests / cpu,
        "cpu_share": cpu / wall, "closed_p50_ms": statistics.median(closed) * 1000,
        "closed_p99_ms": _pct(closed, 0.99), "paced_rate_per_s": half,
        "paced_p50_ms": statistics.median(paced) * 1000, "paced_p99_ms": _pct(paced, 0.99),
    }


def plain(requests: int, people: int) -> None:
    """A warm-up and ``requests`` authorisations, untimed (for
    :mod:`bench.instructions`, which counts the instructions of the process)."""
    extra = {"IDP_REDIS_URL": os.environ.get("IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
             "IDP_REDIS_PREFIX": "bench-purchases:"}
    with scale_app(BENCH_DB, extra_env=extra) as (app, _url):
        tokens = _seed(app, people)
        http = app.test_client()
        for i in range(20 + requests):
            _one(http, tokens[i % len(tokens)])


def profile(requests: int, people: int, top: int) -> None:
    """Print the SQL statements and Redis calls of one authorisation, the CPU per
    authorisation (unprofiled) and the cProfile top (cumulative and own time)."""
    import cProfile
    import pstats

    from sqlalchemy import event

    from idp.services import ephemeral
    from idp.store.db import db

    extra = {"IDP_REDIS_URL": os.environ.get("IDP_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
             "IDP_REDIS_PREFIX": "bench-purchases:"}
    with scale_app(BENCH_DB, extra_env=extra) as (app, _url):
        tokens = _seed(app, people)
        http = app.test_client()
        for i in range(50):
            _one(http, tokens[i % len(tokens)])
        seen: list[str] = []
        with app.app_context():
            engine = db.engine
            store = type(ephemeral())

        def record(_c: Any, _cur: Any, statement: str, *args: Any) -> None:
            seen.append(" ".join(statement.split())[:160])

        calls: list[str] = []
        wrapped = {}
        for name in ("add", "get", "put", "delete", "incr", "take", "get_many"):
            if hasattr(store, name):
                original = getattr(store, name)
                wrapped[name] = original

                def spy(self: Any, *a: Any, _n: str = name, _o: Any = original,
                        **k: Any) -> Any:
                    calls.append(_n)
                    return _o(self, *a, **k)

                setattr(store, name, spy)
        event.listen(engine, "before_cursor_execute", record)
        _one(http, tokens[0])
        event.remove(engine, "before_cursor_execute", record)
        for name, original in wrapped.items():
            setattr(store, name, original)
        print(f"{len(seen)} SQL statements, {len(calls)} ephemeral-store calls "
              f"({', '.join(calls)}) in one authorisation:")
        for line in seen:
            print("  ", line)
        cpu0 = time.process_time()
        for i in range(requests):
            _one(http, tokens[i % len(tokens)])
        cpu = (time.process_time() - cpu0) / requests
        print(f"CPU per authorisation (unprofiled): {cpu * 1000:.2f} ms "
              f"-> {1 / cpu:.0f}/s per core")
        prof = cProfile.Profile(time.process_time)  # CPU, not waiting for the database
        prof.enable()
        for i in range(requests):
            _one(http, tokens[i % len(tokens)])
        prof.disable()
        stats = pstats.Stats(prof)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)


def _per_core(r: dict[str, Any]) -> tuple[float, float]:
    """(CPU ms per authorisation, per-core rate); older results carry only the CPU
    share and the rate."""
    cpu_ms = r.get("cpu_ms_per_auth") or r["cpu_share"] / r["rate_per_s"] * 1000
    return cpu_ms, 1000 / cpu_ms


def _rows(r: dict[str, Any]) -> list[str]:
    cpu_ms, per_core = _per_core(r)
    ok_core = "meets" if per_core >= TARGET_RATE else "**misses**"
    ok_p99 = "meets" if r["paced_p99_ms"] < TARGET_P99_MS else "**misses**"
    return [
        f"{cpu_ms:.2f}", f"{per_core:.0f} ({ok_core} {TARGET_RATE:.0f}/s)",
        f"{r['rate_per_s']:.0f}", f"{r['closed_p50_ms']:.1f} / {r['closed_p99_ms']:.1f}",
        f"{r['paced_rate_per_s']:.0f}/s: {r['paced_p50_ms']:.1f} / {r['paced_p99_ms']:.1f} "
        f"({ok_p99} {TARGET_P99_MS:.0f} ms)",
        f"{r['cpu_share']:.2f}",
    ]


LABELS = (
    "CPU ms per authorisation (this process)",
    "authorisations per second per core (1 / CPU)",
    "closed loop, one thread: authorisations per second (wall clock)",
    "closed loop: p50 / p99 ms",
    "paced at half the closed-loop rate: p50 / p99 ms",
    "this process's CPU share during the closed loop",
)


def describe(r: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    if before is None:
        lines = ["| Purchase authorisations (PostgreSQL, in-process, one thread) | value |",
                 "|---|---:|"]
        lines += [f"| {label} | {value} |" for label, value in zip(LABELS, _rows(r), strict=True)]
        return "\n".join(lines)
    lines = ["| Purchase authorisations (PostgreSQL, in-process, one thread) "
             f"| before ({before.get('commit', 'baseline')}) | after |", "|---|---:|---:|"]
    lines += [f"| {label} | {old} | {new} |"
              for label, old, new in zip(LABELS, _rows(before), _rows(r), strict=True)]
    return "\n".join(lines)


def floor(requests: int) -> dict[str, Any]:
    """The same work on the bare stack, no Unitgate code (:mod:`bench.purchases_floor`),
    in a process of its own, in this run."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "bench.purchases_floor", "--json", "--requests", str(requests)],
        capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"floor failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def describe_floor(bare: dict[str, Any], r: dict[str, Any]) -> str:
    """The floor beside Unitgate's figure: what the stack alone costs, and what is left
    to Unitgate's own code."""
    cpu_ms, _ = _per_core(r)
    floor_ms = bare["cpu_ms_per_auth"]
    verdict = "meets" if 1000 / floor_ms >= TARGET_RATE else "**misses**"
    return "\n".join([
        "| Stack floor (bench/purchases_floor.py, same run) | value |", "|---|---:|",
        f"| CPU ms per authorisation with no Unitgate code (Flask test client, token "
        f"signature, 3 Redis commands, 7 hand-written SQL statements, commit) | {floor_ms:.2f} |",
        f"| the bare stack's authorisations per second per core | {1000 / floor_ms:.0f} "
        f"({verdict} {TARGET_RATE:.0f}/s) |",
        f"| Unitgate's own code on top of the floor, CPU ms | {cpu_ms - floor_ms:.2f} |",
    ])


def baseline(directory: str, requests: int, people: int) -> dict[str, Any]:
    """The older code's benchmark (its worktree, its venv, its own database)."""
    import subprocess

    env = {**os.environ, "IDP_BENCH_PURCHASES_DB": BENCH_DB + "_before"}
    env.pop("IDP_BENCH_PURCHASES_BASELINE", None)
    done = subprocess.run(
        [f"{directory}/.venv/bin/python", "-m", "bench.purchases_bench", "--json",
         "--requests", str(requests), "--people", str(people)],
        cwd=directory, env=env, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"baseline failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    commit = subprocess.run(["git", "-C", directory, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    result["commit"] = commit or "baseline"
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--people", type=int, default=PEOPLE)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="statements, store calls, CPU and the cProfile top instead")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--plain", action="store_true",
                        help="a warm-up and --requests untimed authorisations only")
    args = parser.parse_args(argv)
    if args.plain:
        plain(args.requests, args.people)
        return 0
    if args.profile:
        profile(args.requests, args.people, args.top)
        return 0
    older = os.environ.get("IDP_BENCH_PURCHASES_BASELINE")
    before = baseline(older, args.requests, args.people) if older and not args.json else None
    result = run(args.requests, args.people)
    if args.json:
        print(json.dumps(result), flush=True)
        return 0
    print(describe(result, before), flush=True)
    print("\n" + describe_floor(floor(args.requests), result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
