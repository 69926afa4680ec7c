"""``python -m bench`` (``make bench``): run every scenario and write bench/RESULTS.md.

One ``idp serve`` worker pinned to core 0 on a fresh database; load from core 1 with
wrk (keep-alive and ``Connection: close``), a paced client for latency at half the
peak rate, and scripted browsers for code exchanges and complete email-code sign-ins
(codes read from a local SMTP sink): a new employee's (wallet created on the way)
and a returning employee's at a merchant for the first time (accounts seeded by
``bench.seed`` before the server starts). Every run is a few seconds, loopback only.

``python -m bench --only returning,signin --backend sqlite`` runs just those
scenarios (keys: jwks, discovery, token, introspection, exchange, signin, returning,
extra = the SCIM, LDAP, e-mail-step timing, floor and access-list benchmarks;
accesses = the access-list benchmark alone, bench/accesses_bench.py; customers =
the customer-list benchmark alone, bench/customers_bench.py; csv = the CSV import
and export benchmark alone, bench/csv_bench.py; purchases = the purchase
authorisation benchmark alone, bench/purchases_bench.py; console = the console's
access-list benchmark alone, bench/console_bench.py) and writes
bench/out/RESULTS.md unless ``--output`` says otherwise, so a partial run never
replaces bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench import driver, paced, profile, report, wrk
from bench.browser import Client
from bench.sampler import Sampler
from bench.server import (
    LOAD_CORE,
    Server,
    busy_share,
    free_port,
    machine_busy,
    pinned,
    postgres_backend,
    sqlite_backend,
)
from bench.smtp_sink import SmtpSink

SCENARIOS = ("jwks", "discovery", "token", "introspection", "exchange", "signin", "returning")


def probe(server: Server, method: str, path: str, **kwargs: object) -> str | None:
    """None when the endpoint answers 200, else why the scenario is skipped."""
    try:
        resp = requests.request(method, server.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]
    except requests.RequestException as exc:
        return f"{method} {path} failed: {type(exc).__name__}"
    if resp.status_code != 200:
        return f"{method} {path} answered {resp.status_code} (endpoint missing or broken)"
    return None


def sampler(server: Server, seconds: float, name: str) -> Sampler | None:
    """A py-spy recording of the worker for the next ``seconds`` (SQLite run only)."""
    pids = server.worker_pids()
    if server.backend.name != "sqlite" or not pids:
        return None
    slug = "".join(c if c.isalnum() else "-" for c in name.lower())
    return Sampler(pids[0], seconds, server.workdir / f"spy-{slug}.txt", name)


def collect(spy: Sampler | None, out: report.Report) -> None:
    samples = spy.result() if spy else None
    if samples is not None:
        out.samples.append(samples)


def run_backend(
    server: Server, seconds: int, codes: object, out: report.Report, only: set[str]
) -> None:
    """The scenarios in ``only`` (keys of :data:`SCENARIOS`) against ``server``."""
    name = server.backend.name
    demo = server.demo
    basic = (
        "Basic "
        + base64.b64encode(f"{demo['client_id']}:{demo['client_secret']}".encode()).decode()
    )
    auth = (demo["client_id"], demo["client_secret"])
    cc_body = "grant_type=client_credentials"

    simple = [
        ("JWKS", "GET", "/jwks"),
        ("Discovery", "GET", "/.well-known/openid-configuration"),
    ]
    for scenario, method, path in simple:
        if scenario.lower() not in only:
            continue
        why = probe(server, method, path)
        if why:
            out.skip(name, scenario, why)
            continue
        for close in (False, True):
            out.add(name, wrk.run_wrk(server, scenario, method, path, close=close, seconds=seconds))

    why = probe(server, "POST", "/token", data={"grant_type": "client_credentials"}, auth=auth)
    token_peak = 0.0
    if why:
        out.skip(name, "client_credentials grant", why)
    elif "token" in only:
        for close in (False, True):
            spy = (
                None
                if close
                else sampler(server, seconds, "client_credentials grant (POST /token, keep-alive)")
            )
            m = wrk.run_wrk(
                server,
                "client_credentials grant",
                "POST",
                "/token",
                cc_body,
                basic,
                close=close,
                seconds=seconds,
            )
            out.add(name, m)
            collect(spy, out)
            if not close:
                token_peak = m.rate
        if token_peak > 0:
            rate = token_peak / 2
            latencies, errors = paced.paced_post(
                server.url,
                "/token",
                cc_body,
                {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded"},
                rate,
                seconds,
            )
            out.half_peak(name, rate, latencies, errors)

    access_token = ""
    if not why:
        access_token = requests.post(
            server.url + "/token", data={"grant_type": "client_credentials"}, auth=auth, timeout=10
        ).json()["access_token"]
    why = why or probe(server, "POST", "/introspect", data={"token": access_token}, auth=auth)
    if why:
        out.skip(name, "Introspection", why)
    elif "introspection" in only:
        body = f"token={access_token}"
        for close in (False, True):
            out.add(
                name,
                wrk.run_wrk(
                    server,
                    "Introspection",
                    "POST",
                    "/introspect",
                    body,
                    basic,
                    close=close,
                    seconds=seconds,
                ),
            )

    client = Client(server.url, demo["client_id"], demo["client_secret"], demo["redirect_uri"])
    for kind, scenario in driver.NAMES.items():
        if kind not in only:
            continue
        marks: dict[str, object] = {}

        def opened(name: str = scenario, marks: dict[str, object] = marks) -> None:
            marks["open"] = (time.perf_counter(), server.cpu_seconds(), machine_busy())
            marks["spy"] = sampler(server, seconds * 2, name)

        def closed(marks: dict[str, object] = marks) -> None:
            marks["close"] = (time.perf_counter(), server.cpu_seconds(), machine_busy())

        pool = driver.returning_accounts(seconds * 2)
        result = driver.run_flows(kind, client, codes, seconds * 2, opened, closed, pool)
        spy = marks.get("spy")
        cpu = machine = 0.0
        if "open" in marks and "close" in marks:
            (t0, c0, m0), (t1, c1, m1) = marks["open"], marks["close"]  # type: ignore[misc]
            cpu = (c1 - c0) / (t1 - t0)
            machine = busy_share(m0, m1)
        collect(spy, out)
        if result.completed == 0:
            out.skip(name, scenario, f"no journey completed: {result.first_error[:300]}")
        else:
            out.flow(name, scenario, result, cpu, machine)

    if not why and name == "sqlite" and "token" in only:
        out.profiles.append(
            profile.profile_endpoint(
                server.env,
                "client_credentials grant (POST /token)",
                "/token",
                {"grant_type": "client_credentials"},
                auth,
            )
        )
        out.profiles.append(
            profile.profile_endpoint(
                server.env,
                "Introspection (POST /introspect)",
                "/introspect",
                {"token": access_token},
                auth,
            )
        )


EXTRA = (
    ("SCIM provisioning", "bench/scim_bench.py", ["bench.scim_bench", "--backend", "postgres"]),
    ("LDAP directory sync", "bench/ldap_sync_bench.py", ["bench.ldap_sync_bench"]),
    ("E-mail step: known vs unknown address", "bench/enumeration.py", ["bench.enumeration"]),
    ("Per-request floor: bare Flask, same gunicorn set-up", "bench/floor.py", ["bench.floor"]),
    ("Stack floor of the returning employee's sign-in", "bench/stack_floor.py",
     ["bench.stack_floor"]),
    ("Access lists and bulk actions at scale", "bench/accesses_bench.py",
     ["bench.accesses_bench"]),
    ("Customer list at scale", "bench/customers_bench.py", ["bench.customers_bench"]),
    ("CSV import and export of 100,000 accesses", "bench/csv_bench.py", ["bench.csv_bench"]),
    ("Purchase authorisations", "bench/purchases_bench.py", ["bench.purchases_bench"]),
    ("Console access list of 10,000 accesses", "bench/console_bench.py",
     ["bench.console_bench"]),
)
# Extra benchmarks given 30 minutes instead of 15 (purchases: before and after).
LONG = ("bench.csv_bench", "bench.purchases_bench")
# Extra benchmarks that also run alone: --only <key>.
EXTRA_KEYS = {"accesses": "bench.accesses_bench", "customers": "bench.customers_bench",
              "csv": "bench.csv_bench", "purchases": "bench.purchases_bench",
              "console": "bench.console_bench"}


def run_extra(
    seconds: int, out: report.Report, only_floor: bool = False, only: set[str] | None = None
) -> None:
    """The other parts' benchmarks (or, with ``only_floor``, just the per-request
    floor; with ``only``, just those modules), each in its own process; their own
    output goes into RESULTS.md as it is."""
    every_core = ",".join(str(c) for c in range(os.cpu_count() or 1))
    for title, source, module_args in EXTRA:
        if only_floor and module_args[0] not in ("bench.floor", "bench.stack_floor"):
            continue
        if only is not None and module_args[0] not in only:
            continue
        argv = [sys.executable, "-m", *module_args]
        if module_args[0] in ("bench.scim_bench", "bench.floor"):
            argv += ["--seconds", str(seconds)]
        print(f"bench: {title} ({source})", flush=True)
        try:
            done = subprocess.run(
                pinned(every_core, argv),  # not the harness's core 1: they pin themselves
                cwd=Path(__file__).resolve().parent.parent,
                capture_output=True,
                text=True,
                check=False,
                timeout=1800 if module_args[0] in LONG else 900,
            )
            text = done.stdout.strip() or done.stderr.strip()[-2000:]
            status = "" if done.returncode == 0 else f" (exit status {done.returncode})"
        except subprocess.TimeoutExpired:
            text, status = "", " (did not finish within 15 minutes)"
        out.extra.append((f"{title} (`{source}`){status}", text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5, help="length of each load run")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument(
        "--only-core", action="store_true", help="skip the SCIM and LDAP benchmarks"
    )
    parser.add_argument(
        "--only",
        help="comma-separated scenarios to run ("
        + ", ".join((*SCENARIOS, "extra", *EXTRA_KEYS)) + ");"
        " the report then goes to bench/out/RESULTS.md unless --output is given",
    )
    parser.add_argument("--output", type=Path, help="default: bench/RESULTS.md")
    args = parser.parse_args()
    here = Path(__file__).resolve().parent
    only = set(SCENARIOS) | {"extra"}
    if args.only:
        only = {key.strip().lower() for key in args.only.split(",") if key.strip()}
        unknown = only - set(SCENARIOS) - {"extra"} - set(EXTRA_KEYS)
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    output = args.output or (here / "out" / "RESULTS.md" if args.only else here / "RESULTS.md")
    if only & {"jwks", "discovery", "token", "introspection"} and not wrk.have_wrk():
        raise SystemExit("wrk is not installed (Debian package wrk; `make bench` installs it)")

    paced.pin_self(LOAD_CORE)  # the harness and its children generate load from core 1
    started = time.time()
    out = report.Report(threads=args.threads, seconds=args.seconds)
    manager = mp.Manager()
    codes = manager.dict()
    sink = SmtpSink(codes, free_port())
    sink.start()
    try:
        # Server logs and py-spy samples stay in bench/out/ (ignored by git) for a look
        # afterwards; the databases are made fresh on every run.
        out_dir = Path(__file__).resolve().parent / "out"
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir()
        with tempfile.TemporaryDirectory(prefix="unitgate-bench-") as tmp:
            backends = []
            served = bool(only & set(SCENARIOS))  # else only extra benchmarks: no server
            if served and args.backend in ("sqlite", "all"):
                backends.append(sqlite_backend(Path(tmp)))
            if served and args.backend in ("postgres", "all"):
                pg = postgres_backend()
                if pg is None:
                    out.skip("postgres+redis", "all scenarios", "PostgreSQL or Redis unreachable")
                else:
                    backends.append(pg)
            for backend in backends:
                server = Server(out_dir, backend, sink.port, args.threads)
                try:
                    server.prepare()
                    if "returning" in only:
                        seeded = server.seed_returning(driver.returning_accounts(args.seconds * 2))
                        print(f"bench: {backend.name}: {seeded}", flush=True)
                    server.start()
                    print(f"bench: {backend.name} at {server.url}", flush=True)
                    run_backend(server, args.seconds, codes, out, only)
                finally:
                    server.stop()
                    backend.drop()
        if "extra" in only:
            run_extra(args.seconds, out, only_floor=args.only_core)
        elif only & set(EXTRA_KEYS):
            run_extra(args.seconds, out, only={EXTRA_KEYS[k] for k in only & set(EXTRA_KEYS)})
    finally:
        sink.stop()
        manager.shutdown()
    out.write(output, time.time() - started)
    print(f"bench: wrote {output}")


if __name__ == "__main__":
    main()
