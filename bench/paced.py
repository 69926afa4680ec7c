"""Open-loop load at a fixed rate (what wrk2 does; wrk2 is not packaged in Debian).

Each of ``PROCESSES x THREADS`` senders owns one keep-alive connection and sends on a
fixed schedule. Latency is measured from the *scheduled* send time, so a slow server
cannot hide its queueing delay by slowing the client down (coordinated omission).
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import threading
import time
from urllib.parse import urlsplit

PROCESSES = 4
THREADS = 4


def _sender(
    url: str,
    path: str,
    body: str,
    headers: dict[str, str],
    interval: float,
    start: float,
    until: float,
    out: list[float],
    errors: list[int],
) -> None:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    due = start
    while due < until:
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors[0] += 1
        except (OSError, http.client.HTTPException):
            errors[0] += 1
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        out.append(time.perf_counter() - due)
        due += interval
    conn.close()


def _process(
    url: str,
    path: str,
    body: str,
    headers: dict[str, str],
    rate_each: float,
    start: float,
    seconds: float,
    first_index: int,
    queue: mp.Queue,
) -> None:
    latencies: list[float] = []
    errors = [0]
    interval = 1.0 / rate_each
    until = start + seconds
    senders = PROCESSES * THREADS
    threads = [
        threading.Thread(
            target=_sender,
            args=(
                url,
                path,
                body,
                headers,
                interval,
                start + (first_index + i) / senders * interval,
                until,
                latencies,
                errors,
            ),
        )
        for i in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put((latencies, errors[0]))


def paced_post(
    url: str, path: str, body: str, headers: dict[str, str], rate: float, seconds: float
) -> tuple[list[float], int]:
    """Send ``rate`` POSTs per second for ``seconds``; returns latencies (s) and errors."""
    senders = PROCESSES * THREADS
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    start = time.perf_counter() + 0.5  # CLOCK_MONOTONIC: the same clock in every process
    procs = [
        ctx.Process(
            target=_process,
            args=(url, path, body, headers, rate / senders, start, seconds, p * THREADS, queue),
        )
        for p in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        lat, err = queue.get()
        latencies.extend(lat)
        errors += err
    for p in procs:
        p.join()
    return latencies, errors


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile (nearest rank) of ``values``; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def pin_self(core: str) -> None:
    """Run this process (and its children) on ``core`` only, where Linux allows."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(core)})
