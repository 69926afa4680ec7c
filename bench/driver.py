"""Scripted clients for the journeys wrk cannot drive: complete email-code sign-ins
(a new employee, or a returning one at a merchant for the first time) and
authorization-code exchanges. Several processes with a few threads each, pinned to
the load core; one ``requests`` session (cookie jar) per simulated person."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench import seed
from bench.browser import Browser, Client, FlowError, StepTimes, check_pages

PROCESSES = 4
THREADS = {"exchange": 6, "signin": 8, "returning": 8}  # per process; sign-ins wait for mail
# The scenario names in bench/RESULTS.md.
NAMES = {
    "exchange": "Code exchange (authorize + token, signed-in browser)",
    "signin": "Complete email-code sign-in (new employee)",
    "returning": "Complete email-code sign-in (returning employee, new merchant)",
}
# The pages each sign-in must show (else the journey counts as failed): a new
# employee creates the wallet; a returning one (bench.seed) is asked only for consent.
PAGES = {
    "signin": (("email", "code", "profile", "consent"), ()),
    "returning": (("email", "code", "consent"), ("profile",)),
}


def returning_accounts(seconds: float) -> int:
    """How many returning employees to seed for a run of ``seconds``: enough for
    200 sign-ins/s (above the 150/s target) plus the journeys in flight."""
    return int(200 * seconds) + PROCESSES * THREADS["returning"] * 2


@dataclass
class Seat:
    """One driver thread: ``tag`` names its new employees; of the ``pool`` seeded
    returning employees it takes numbers ``index``, ``index + of``, ... (no two
    threads share an account, so every journey is a first visit without a session)."""

    tag: str
    index: int
    of: int
    pool: int = 0


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


class Window:
    """The measured window, the same for every thread of every driver process: it
    opens when all of them are ready (warm-up done) and lasts ``seconds``."""

    def __init__(self, threads_n: int, barrier: Any, opened: Any, seconds: float) -> None:
        self._local = threading.Barrier(threads_n, action=self._open)
        self._global = barrier
        self._opened = opened
        self._seconds = seconds
        self.until = 0.0

    def _open(self) -> None:
        if self._global.wait(timeout=300) == 0:
            self._opened.set()
        self.until = time.perf_counter() + self._seconds

    def ready(self) -> float:
        """Wait for every driver thread; returns when the window closes."""
        self._local.wait(timeout=300)
        return self.until


def _record(out: FlowResult, until: float, started: float, times: StepTimes) -> None:
    finished = time.perf_counter()
    if finished > until:  # only journeys that ended inside the window count
        return
    out.completed += 1
    out.latencies.append(finished - started)
    out.token_latencies.append(times.token)
    if times.mail_wait:
        out.mail_waits.append(times.mail_wait)
    out.requests += times.requests


def _failed(out: FlowResult, exc: BaseException, prefix: str = "") -> None:
    out.errors += 1
    out.first_error = out.first_error or f"{prefix}{type(exc).__name__}: {exc}"


def _signin(client: Client, codes: Any, email: str, pages: tuple[Any, Any]) -> StepTimes:
    times = StepTimes()
    browser = Browser(codes)
    code = browser.authorize(client, email, times)
    check_pages(times, *pages)
    browser.exchange(client, code, times)
    return times


def _journey_loop(
    client: Client, codes: Any, window: Window, out: FlowResult, pages: str, next_email: Any
) -> None:
    """Run sign-ins of ``pages`` kind until the window closes; ``next_email()`` gives
    each journey's address (None: the seeded accounts are used up)."""
    until = window.ready()
    while time.perf_counter() < until:
        email = next_email()
        if email is None:
            return
        started = time.perf_counter()
        try:
            times = _signin(client, codes, email, PAGES[pages])
        except (FlowError, OSError, ValueError) as exc:
            _failed(out, exc)
            time.sleep(0.05)
            continue
        _record(out, until, started, times)


def _signin_loop(client: Client, codes: Any, window: Window, seat: Seat, out: FlowResult) -> None:
    numbers = iter(range(1, 10**9))
    _journey_loop(client, codes, window, out, "signin",
                  lambda: f"bench-{seat.tag}-{next(numbers)}@acme-demo.example")


def _returning_loop(
    client: Client, codes: Any, window: Window, seat: Seat, out: FlowResult
) -> None:
    accounts = iter(range(seat.index, seat.pool, seat.of))

    def next_email() -> str | None:
        k = next(accounts, None)
        if k is None:
            _failed(out, FlowError(f"all {seat.pool} seeded returning employees used"))
            return None
        return seed.email(k)

    _journey_loop(client, codes, window, out, "returning", next_email)


def _exchange_loop(
    client: Client, codes: Any, window: Window, seat: Seat, out: FlowResult
) -> None:
    browser = Browser(codes)
    email = f"bench-exchange-{seat.tag}@acme-demo.example"
    warmed = True
    try:  # one full sign-in first (outside the window): session and consent exist then
        warm = StepTimes()
        browser.exchange(client, browser.authorize(client, email, warm), warm)
    except (FlowError, OSError, ValueError) as exc:
        _failed(out, exc, "warm-up: ")
        warmed = False
    until = window.ready()
    while warmed and time.perf_counter() < until:
        times = StepTimes()
        started = time.perf_counter()
        try:
            code = browser.authorize(client, email, times)
            browser.exchange(client, code, times)
        except (FlowError, OSError, ValueError) as exc:
            _failed(out, exc)
            time.sleep(0.05)
            continue
        _record(out, until, started, times)


LOOPS = {"signin": _signin_loop, "returning": _returning_loop, "exchange": _exchange_loop}


def _process(
    kind: str,
    client: Client,
    codes: Any,
    sync: tuple[Any, Any],
    seconds: float,
    index: int,
    pool: int,
    queue: mp.Queue,
) -> None:
    threads_n = THREADS[kind]
    results = [FlowResult() for _ in range(threads_n)]
    try:
        window = Window(threads_n, sync[0], sync[1], seconds)
        seats = [
            Seat(f"{index}-{i}-{os.getpid()}", index * threads_n + i, PROCESSES * threads_n, pool)
            for i in range(threads_n)
        ]
        threads = [
            threading.Thread(target=LOOPS[kind], args=(client, codes, window, seats[i], results[i]))
            for i in range(threads_n)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    except Exception:  # report, never hang the parent
        results[0].first_error = traceback.format_exc()[-500:]
    queue.put(results)


def run_flows(
    kind: str,
    client: Client,
    codes: Any,
    seconds: float,
    on_open: Callable[[], None] | None = None,
    on_close: Callable[[], None] | None = None,
    pool: int = 0,
) -> FlowResult:
    """Run ``kind`` ("signin", "returning" or "exchange") from every driver thread for
    ``seconds`` (after the warm-up); the throughput counts journeys completed within
    that window. ``on_open`` and ``on_close`` run in this process when the window
    opens and closes (to sample the server's CPU over exactly that window).
    "returning" signs in the ``pool`` returning employees seeded by :mod:`bench.seed`
    (at most one journey each; :func:`returning_accounts` says how many suffice)."""
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    sync = (ctx.Barrier(PROCESSES), ctx.Event())
    procs = [
        ctx.Process(target=_process, args=(kind, client, codes, sync, seconds, i, pool, queue))
        for i in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    if sync[1].wait(timeout=300) and on_open:
        on_open()
    time.sleep(seconds)
    if on_close:
        on_close()
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
