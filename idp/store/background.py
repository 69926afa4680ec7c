"""The loops that drain the leased queues (:mod:`idp.store.leases`) in the background
of a worker process: the delivery of webhooks and of back-channel logout tokens each
run one (``idp serve`` starts them per worker; any number of workers and nodes share
a queue through its leases). Standard library only."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoopThread:
    """Handle of a running loop; :meth:`stop` ends it."""

    thread: threading.Thread
    stop_event: threading.Event = field(default_factory=threading.Event)

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


def start_loop(
    name: str, step: Callable[[int], int], prune: Callable[[], object], *,
    interval: float, limit: int, prune_every: float, log: logging.Logger,
) -> LoopThread:
    """Run ``step(limit)`` every ``interval`` seconds in a daemon thread named
    ``name`` (at once again when it handled a full batch: ``limit`` or more), and
    ``prune()`` at its first step and then every ``prune_every`` seconds (the first
    prune never waits on the clock: :func:`time.monotonic` counts from the host's
    boot, so a node started soon after a boot would otherwise not prune for up to
    ``prune_every``). A failing step is logged and the loop goes on: a database or
    network outage never ends it."""
    stop_event = threading.Event()

    def loop() -> None:
        pruned_at: float | None = None
        while not stop_event.is_set():
            try:
                if pruned_at is None or time.monotonic() - pruned_at > prune_every:
                    pruned_at = time.monotonic()
                    prune()
                if step(limit) >= limit:
                    continue
            except Exception:
                log.exception("%s loop step failed", name)
            stop_event.wait(interval)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    handle = LoopThread(thread=thread, stop_event=stop_event)
    thread.start()
    return handle
