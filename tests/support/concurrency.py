"""Running test jobs at the same moment in threads (concurrency tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_together(*jobs: Callable[[], None]) -> None:
    """Start the jobs at one barrier and re-raise the first failure."""
    barrier = threading.Barrier(len(jobs))
    failures: list[BaseException] = []

    def wrap(job: Callable[[], None]) -> None:
        try:
            barrier.wait()
            job()
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
