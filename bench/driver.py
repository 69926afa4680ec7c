"""Scripted clients for the journeys wrk cannot drive: complete email-code sign-ins
and authorization-code exchanges. Several processes with a few threads each, pinned
to the load core; one ``requests`` session (cookie jar) per simulated person."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from bench.browser import Browser, Client, FlowError, StepTimes

PROCESSES = 4
THREADS = {"exchange": 6, "signin": 8}  # per process; sign-ins wait for mail


@dataclass
class FlowResult:
    completed: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # whole journey
    token_latencies: list[float] = field(default_factory=list)  # the /token call only
    mail_waits: list[float] = field(default_factory=list)
    requests: int = 0
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


def _signin_loop(client: Client, codes: Any, until: float, tag: str, out: FlowResult) -> None:
    n = 0
    while time.perf_counter() < until:
        n += 1
        email = f"bench-{tag}-{n}@acme-demo.example"
        times = StepTimes()
        started = time.perf_counter()
        try:
            browser = Browser(codes)
            code = browser.authorize(client, email, times)
            browser.exchange(client, code, times)
        except (FlowError, OSError, ValueError) as exc:
            out.errors += 1
            out.first_error = out.first_error or f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
            continue
        out.completed += 1
        out.latencies.append(time.perf_counter() - started)
        out.token_latencies.append(times.token)
        out.mail_waits.append(times.mail_wait)
        out.requests += times.requests


def _exchange_loop(client: Client, codes: Any, until: float, tag: str, out: FlowResult) -> None:
    browser = Browser(codes)
    email = f"bench-exchange-{tag}@acme-demo.example"
    try:  # one full sign-in first: session and consent exist afterwards
        warm = StepTimes()
        browser.exchange(client, browser.authorize(client, email, warm), warm)
    except (FlowError, OSError, ValueError) as exc:
        out.errors += 1
        out.first_error = out.first_error or f"warm-up: {type(exc).__name__}: {exc}"
        return
    while time.perf_counter() < until:
        times = StepTimes()
        started = time.perf_counter()
        try:
            code = browser.authorize(client, email, times)
            browser.exchange(client, code, times)
        except (FlowError, OSError, ValueError) as exc:
            out.errors += 1
            out.first_error = out.first_error or f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
            continue
        out.completed += 1
        out.latencies.append(time.perf_counter() - started)
        out.token_latencies.append(times.token)
        out.requests += times.requests


LOOPS = {"signin": _signin_loop, "exchange": _exchange_loop}


def _process(
    kind: str, client: Client, codes: Any, start: float, seconds: float, index: int, queue: mp.Queue
) -> None:
    threads_n = THREADS[kind]
    results = [FlowResult() for _ in range(threads_n)]
    try:
        while time.perf_counter() < start:
            time.sleep(0.01)
        until = start + seconds
        tags = [f"{index}-{i}-{os.getpid()}" for i in range(threads_n)]
        threads = [
            threading.Thread(target=LOOPS[kind], args=(client, codes, until, tags[i], results[i]))
            for i in range(threads_n)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except Exception:  # report, never hang the parent
        results[0].first_error = traceback.format_exc()[-500:]
    queue.put(results)


def run_flows(kind: str, client: Client, codes: Any, seconds: float) -> FlowResult:
    """Run ``kind`` ("signin" or "exchange") from every driver thread for ``seconds``;
    the throughput counts journeys completed within that window."""
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    start = time.perf_counter() + 1.0
    procs = [
        ctx.Process(target=_process, args=(kind, client, codes, start, seconds, i, queue))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    total = FlowResult(seconds=seconds)
    for _ in procs:
        for r in queue.get():
            total.completed += r.completed
            total.errors += r.errors
            total.latencies += r.latencies
            total.token_latencies += r.token_latencies
            total.mail_waits += r.mail_waits
            total.requests += r.requests
            total.first_error = total.first_error or r.first_error
    for p in procs:
        p.join()
    return total
