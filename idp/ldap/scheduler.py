"""Periodic LDAP sync inside the server.

:func:`start_ldap_scheduler` starts one daemon thread per process that wakes up
every ``IDP_LDAP_SCHEDULER_SECONDS`` (30) and runs the syncs that are due (a directory with
``schedule_minutes`` > 0 whose last run is at least that long ago). Every worker of
every node may run a scheduler: the per-directory lock in the ephemeral store
(:func:`idp.ldap.sync.run_locked`) lets exactly one of them sync a directory while
the others skip it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from flask import Flask

from idp.ldap import sync as ldap_sync
from idp.store import ldap_repo, unit_of_work
from idp.store.models import LdapDirectory, utcnow

log = logging.getLogger("idp.ldap.scheduler")


def is_due(directory: LdapDirectory, now: datetime) -> bool:
    """True when ``directory`` has a schedule and its last run is that long ago."""
    if directory.schedule_minutes <= 0:
        return False
    if directory.last_run_at is None:
        return True
    return now - directory.last_run_at >= timedelta(minutes=directory.schedule_minutes)


def run_due_syncs(now: datetime | None = None) -> dict[str, str]:
    """Run every due sync once (needs an app context); returns directory id -> outcome
    (``synced``; ``busy`` when another node holds the lock; ``done elsewhere`` when
    another node finished it meanwhile; or ``failed: ...``).
    A failing directory is logged and does not stop the others."""
    now = now or utcnow()
    outcomes: dict[str, str] = {}
    for directory in ldap_repo.scheduled_directories():
        if not is_due(directory, now):
            continue
        try:
            summary = ldap_sync.run_if(directory, lambda d: is_due(d, now))
        except ldap_sync.SyncBusy:
            outcomes[directory.id] = "busy"
            continue
        except ldap_sync.SyncError as exc:
            unit_of_work.rollback()
            log.error("LDAP sync of %s failed: %s", directory.id, exc)  # recorded by sync
            outcomes[directory.id] = f"failed: {exc}"
            continue
        except Exception:
            unit_of_work.rollback()
            log.exception("LDAP sync of %s failed unexpectedly", directory.id)
            outcomes[directory.id] = "failed: unexpected error"
            continue
        if summary is None:
            outcomes[directory.id] = "done elsewhere"
            continue
        log.info(
            "LDAP sync of %s: %d created, %d updated, %d deactivated, %d errors",
            directory.id, summary.created, summary.updated, summary.deactivated, summary.errors,
        )
        outcomes[directory.id] = "synced"
    return outcomes


class LdapScheduler(threading.Thread):
    """The background thread; :meth:`stop` ends it after the current tick."""

    def __init__(self, app: Flask, tick: float) -> None:
        super().__init__(name="ldap-scheduler", daemon=True)
        self.app = app
        self.tick = tick
        self.stopping = threading.Event()
        self.ticks = 0

    def run(self) -> None:
        # The first look waits one tick: a worker that just started serves requests first.
        while not self.stopping.wait(self.tick):
            try:
                with self.app.app_context():
                    run_due_syncs()
            except Exception:
                log.exception("LDAP scheduler tick failed; retrying next tick")
            self.ticks += 1

    def stop(self) -> None:
        self.stopping.set()


def start_ldap_scheduler(app: Flask, tick: float | None = None) -> LdapScheduler | None:
    """Start the periodic-sync thread for ``app`` and return it (a daemon thread: it
    never keeps the process alive), looking every ``tick`` seconds (default
    ``IDP_LDAP_SCHEDULER_SECONDS``); None when that is 0 (scheduler off on this node).
    Safe to call in every worker of every node."""
    if tick is None:
        tick = float(app.extensions["unitgate"].settings.ldap_scheduler_seconds)
    if tick <= 0:
        return None
    thread = LdapScheduler(app, tick)
    thread.start()
    return thread
