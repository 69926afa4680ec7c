"""The console's CSV imports as background jobs with progress (issue 14).

:func:`start` stores the uploaded file (bounded by ``IDP_CSV_IMPORT_MAX_BYTES``)
with the number of rows as an :class:`idp.store.models.AccessImport` and answers at
once; :func:`run_due` (the ``access-imports`` loop of every worker,
:func:`start_thread`) claims due imports with a lease (:mod:`idp.store.leases`: on
several nodes one claim wins) and runs each through the one import,
:func:`idp.accounts.access_csv.run_import`, as the person who uploaded it (their
rights are checked again when it runs). While it runs, the rows done, the partial
report and a renewed lease are saved after every batch (at least every
:data:`FLUSH_SECONDS`); the run stops when its lease was taken over. A node that
dies mid-import leaves a claim whose lease runs out: another node then runs the
file again from the start, which changes nothing twice (the import is idempotent),
and the rows already in are reported ``unchanged``. After :data:`MAX_ATTEMPTS`
claims the import is given up (``dead``). When finished the file is dropped and
the report kept. :func:`prune` (the same loop, every :data:`PRUNE_EVERY_SECONDS`)
deletes imports that finished more than ``IDP_CSV_IMPORT_RETENTION_DAYS`` ago.
"""

from __future__ import annotations

import io
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from idp import audit
from idp.accounts import access_csv
from idp.rights import Actor, NotPermitted, person, require
from idp.services import settings
from idp.store import imports_repo
from idp.store.background import LoopThread, start_loop
from idp.store.leases import DEAD, SENT
from idp.store.models import AccessImport, utcnow
from idp.store.unit_of_work import atomic

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 3
FLUSH_SECONDS = 1.0
GAVE_UP = "gave_up"
FORBIDDEN = "forbidden"
PRUNE_BATCH = 500
PRUNE_EVERY_SECONDS = 3600.0
PRUNED = "accesses.import_pruned"


def start(actor: Actor, unit_id: str, data: bytes, *, dry_run: bool) -> str:
    """Store the import of ``data`` into the unit for the background worker; its id.
    :class:`idp.rights.NotPermitted` without ``users.manage``;
    :class:`idp.accounts.access_csv.CsvRefused` for a file too large or not readable
    as the import's CSV (nothing stored)."""
    require(actor, "users.manage", unit_id)
    limit = settings().csv_import_max_bytes
    if len(data) > limit:
        raise access_csv.CsvRefused("too_large", f"The file is larger than {limit} bytes.")
    total = access_csv.count_rows(data)
    if actor.account_id is None:
        raise NotPermitted(actor, "users.manage", unit_id, False)
    with atomic():
        row = imports_repo.add(AccessImport(
            unit_id=unit_id, account_id=actor.account_id, dry_run=dry_run, data=data,
            rows_total=total, rows_done=0, status="pending", attempts=0,
            next_attempt_at=utcnow(), created_at=utcnow(),
        ))
    return row.id


def get(actor: Actor, unit_id: str, import_id: str) -> AccessImport | None:
    """The import ``import_id`` of the unit for an actor with ``users.manage`` there;
    None for an unknown id or another unit's import."""
    require(actor, "users.manage", unit_id)
    return imports_repo.get(unit_id, import_id)


def finished(row: AccessImport) -> bool:
    return row.status in (SENT, DEAD)


class _TakenOver(Exception):
    """Another node claimed the import after this node's lease ran out."""


class _Progress:
    """Saves the rows done and the partial report as the import goes (``on_row``)."""

    def __init__(self, row: AccessImport, lease_until: datetime) -> None:
        self.row = row
        self.lease_until = lease_until
        self.partial = access_csv.ImportReport(dry_run=row.dry_run)
        self.done = 0
        self.saved_at = time.monotonic()

    def on_row(self, result: access_csv.RowResult) -> None:
        self.done += 1
        self.partial.add(result)
        self.partial.rows = self.done
        if self.done % access_csv.BATCH == 0 or \
                time.monotonic() - self.saved_at >= FLUSH_SECONDS:
            self.save({"rows_done": self.done, "report": self.partial.as_dict()})

    def save(self, values: dict[str, Any]) -> None:
        """Save ``values`` and renew the lease, while this node still holds it."""
        lease_until = max(utcnow() + LEASE, self.lease_until)
        with atomic():
            held = imports_repo.update_claimed(
                self.row.id, self.lease_until, {**values, "next_attempt_at": lease_until})
        if not held:
            raise _TakenOver(self.row.id)
        self.lease_until = lease_until
        self.saved_at = time.monotonic()


def _run(row: AccessImport) -> bool:
    """Run one claimed import to its end; True when it finished."""
    progress = _Progress(row, row.next_attempt_at)
    if row.attempts >= MAX_ATTEMPTS or row.data is None:
        progress.save({"status": DEAD, "failure": GAVE_UP, "data": None,
                       "finished_at": utcnow()})
        return True
    progress.save({"attempts": row.attempts + 1})
    failure: str | None = None
    report: dict[str, Any]
    try:
        done = access_csv.run_import(
            person(row.account_id), row.unit_id, io.BytesIO(row.data), dry_run=row.dry_run,
            on_row=progress.on_row,
        )
        report = done.as_dict()
    except access_csv.CsvRefused as exc:
        failure = str(exc)
        report = (exc.report or progress.partial).as_dict()
    except NotPermitted:
        failure, report = FORBIDDEN, progress.partial.as_dict()
    progress.save({"status": SENT, "rows_done": progress.done, "report": report,
                   "failure": failure, "data": None, "finished_at": utcnow()})
    return True


def run_due(app: Flask, limit: int = 1, now: datetime | None = None) -> int:
    """Claim up to ``limit`` due imports and run each to its end; how many finished.
    Safe on several nodes at once (one claim wins)."""
    with app.app_context():
        count = 0
        for row in imports_repo.claim_due(now or utcnow(), limit, LEASE):
            try:
                count += _run(row)
            except _TakenOver:
                log.warning("access import %s was taken over by another node", row.id)
        return count


def prune(app: Flask, now: datetime | None = None) -> int:
    """Delete up to :data:`PRUNE_BATCH` imports (with their reports) that finished
    (``sent`` or ``dead``) more than ``IDP_CSV_IMPORT_RETENTION_DAYS`` before ``now``,
    each with an audit event :data:`PRUNED` in the same transaction; how many.
    Imports still pending or running are never touched. Idempotent and safe on
    several nodes at once: each import is deleted, and audited, by one caller only;
    a second run finds nothing. Their progress page then answers 404."""
    with app.app_context():
        days = settings().csv_import_retention_days
        cutoff = (now or utcnow()) - timedelta(days=days)
        with atomic():
            gone = imports_repo.prune(cutoff, PRUNE_BATCH)
            for row in gone:
                audit.record(audit.Actor.system("retention"), PRUNED, row.id,
                             {"status": row.status, "rows_total": row.rows_total,
                              "retention_days": days}, unit_id=row.unit_id)
        if gone:
            log.info("deleted %d finished access imports older than %d days", len(gone), days)
        return len(gone)


def start_thread(app: Flask, interval: float = 2.0, limit: int = 1) -> LoopThread:
    """Run :func:`run_due` every ``interval`` seconds, and :func:`prune` every
    :data:`PRUNE_EVERY_SECONDS`, in a daemon thread until stopped
    (:func:`idp.store.background.start_loop`)."""
    return start_loop("access-imports", lambda n: run_due(app, n), lambda: prune(app),
                      interval=interval, limit=limit, prune_every=PRUNE_EVERY_SECONDS,
                      log=log)
