"""The background loops of a worker (:func:`idp.store.background.start_loop`)."""

from __future__ import annotations

import logging
import threading

from idp.store.background import start_loop


def test_a_loop_prunes_at_its_first_step_whatever_the_clock() -> None:
    """``prune`` runs before the first step even when ``prune_every`` is longer than
    the host has been up (:func:`time.monotonic` counts from the boot): a node started
    soon after a boot used to wait up to ``prune_every`` for its first prune."""
    pruned = threading.Event()
    steps = threading.Event()

    def step(limit: int) -> int:
        steps.set()
        return 0

    loop = start_loop("test-prune", step, pruned.set, interval=0.05, limit=1,
                      prune_every=1e12, log=logging.getLogger(__name__))
    try:
        assert pruned.wait(5) and steps.wait(5)
    finally:
        loop.stop()
