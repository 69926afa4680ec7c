"""Periodic domain re-checks inside the server.

:func:`start_domain_scheduler` starts a daemon thread that wakes every
:data:`TICK_SECONDS` and runs :func:`run_due_checks`: pending claims and verified
claims last checked more than ``IDP_DOMAIN_RECHECK_HOURS`` ago are looked up in DNS
(:func:`idp.domains.registry.check`), so a lapsed domain stops auto-joining without anybody
running ``idp domains check``. Every worker of every node may run one: a lock in the
shared ephemeral store lets one of them check at a time while the others skip.
"""

from __future__ import annotations

import logging
import threading

from flask import Flask

from idp.domains import registry as domains
from idp.ephemeral import EphemeralUnavailable
from idp.services import ephemeral

log = logging.getLogger("idp.domains.scheduler")

TICK_SECONDS = 900.0
LOCK_KEY = "domains:check-lock"
LOCK_SECONDS = 600


def run_due_checks() -> list[domains.CheckReport] | None:
    """Check every due claim once (needs an app context) and return the reports, or
    None when another process holds the lock (or the ephemeral store is down: then
    nothing is checked, and states stay as they are)."""
    try:
        if not ephemeral().add(LOCK_KEY, "1", LOCK_SECONDS):
            return None
    except EphemeralUnavailable:
        log.warning("domain re-check skipped: ephemeral store unavailable")
        return None
    try:
        reports = domains.check(actor="system:domain-scheduler")
    finally:
        try:
            ephemeral().delete(LOCK_KEY)
        except EphemeralUnavailable:
            log.warning("domain re-check lock not released; it expires by itself")
    for r in reports:
        if r.before != r.state:
            log.info("domain %s: %s -> %s (%s)", r.domain, r.before, r.state, r.detail)
    return reports


class DomainScheduler(threading.Thread):
    """The background thread; :meth:`stop` ends it after the current tick."""

    def __init__(self, app: Flask, tick: float = TICK_SECONDS) -> None:
        super().__init__(name="domain-scheduler", daemon=True)
        self.app = app
        self.tick = tick
        self.stopping = threading.Event()
        self.ticks = 0

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with self.app.app_context():
                    run_due_checks()
            except Exception:
                log.exception("domain re-check failed; retrying next tick")
            self.ticks += 1
            self.stopping.wait(self.tick)

    def stop(self) -> None:
        self.stopping.set()


def start_domain_scheduler(app: Flask, tick: float = TICK_SECONDS) -> DomainScheduler:
    """Start the periodic re-check thread for ``app`` and return it (a daemon thread:
    it never keeps the process alive). Safe to call in every worker of every node."""
    thread = DomainScheduler(app, tick)
    thread.start()
    return thread
