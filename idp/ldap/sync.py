"""LDAP / Active Directory sync: one run reads the directory page by page and brings
the unit's accounts in line with it.

Per entry (keyed on its stable id, :class:`~idp.store.models.LdapLink`):

* **new and enabled**: only for an address the unit owns
  (:func:`idp.provisioning.ownership.standing` ``OWN``: a domain in force for the unit or a unit
  above it); any other address is an error (another company's domain, or one the
  unit did not verify). An account is created (status active; ``email_verified``
  only when the directory is trusted for e-mail, ``trust_email``) with a membership
  in the unit. An existing account with the same address is *adopted* only when it
  is already a member of the unit and :func:`idp.provisioning.ownership.bindable` (nothing of
  another unit reaches it); otherwise the entry is an error: a directory never
  takes over someone else's account by e-mail address.
* **known**: the fields LDAP owns (the attribute map's fields) are updated, and the
  roles the group map manages are set; roles given by other means stay. A new
  address is taken only when the unit owns it and no other account holds it;
  otherwise the old one stays, the entry counts as an error and its other changes
  are applied.
* **disabled** (AD userAccountControl ACCOUNTDISABLE) or **gone**: the account is
  deactivated, which ends its sessions and revokes its grants.
* **enabled again / back**: an account the sync itself deactivated is reactivated;
  one blocked by an administrator or by SCIM stays blocked.

Each page is one transaction. A dry run plans exactly the same changes and reports
the same summary but writes nothing. Every change is audited with the actor
``ldap-sync:<directory id>``. Runs of one directory never overlap: a lock in the
ephemeral store (``ephemeral().add``) admits one node at a time.

Safety: a run whose search returns nothing, or that would deactivate more than half
of the directory's accounts (and more than :data:`MASS_DEACTIVATION_FLOOR`), does
not deactivate anyone unless forced: a wrong base DN or filter must not lock a whole
company out.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from connectors import ldap as ldap_connector
from idp import audit
from idp.ldap.apply import Applier, apply_page, count
from idp.ldap.directories import connection_config
from idp.ldap.mapping import search_attributes
from idp.ldap.plan import MASS_DEACTIVATION_FLOOR, Planner, SyncSummary, actor, missing_plans
from idp.observability import metrics
from idp.services import ephemeral
from idp.store import ldap_repo, unit_of_work
from idp.store.models import LdapDirectory, new_id, utcnow
from idp.store.unit_of_work import atomic
from idp.webhooks import emit

__all__ = [
    "MASS_DEACTIVATION_FLOOR",
    "SyncBusy",
    "SyncError",
    "SyncSummary",
    "count_entries",
    "run_locked",
    "sync",
]

log = logging.getLogger("idp.ldap.sync")

LOCK_TTL_SECONDS = 15 * 60
Progress = Callable[[int], None]


class SyncError(RuntimeError):
    """The run could not start or finish (connection, search, lock); nothing half-done
    is left behind: pages already committed stay, later ones were not read."""


class SyncBusy(SyncError):
    """Another node or process is syncing this directory right now."""


def pages(directory: LdapDirectory) -> Iterator[list[ldap_connector.LdapEntry]]:
    """The directory's user entries, page by page (binds as the service account)."""
    cfg = connection_config(directory)
    conn = ldap_connector.connect(cfg)
    try:
        yield from ldap_connector.paged_entries(
            conn,
            directory.base_dn,
            directory.user_filter,
            search_attributes(directory.attribute_map, directory.id_attribute),
            directory.page_size,
        )
    finally:
        conn.unbind()


def count_entries(directory: LdapDirectory) -> int:
    """How many entries the filter matches (a cheap paged search without attributes)."""
    try:
        conn = ldap_connector.connect(connection_config(directory))
        try:
            return sum(
                len(page)
                for page in ldap_connector.paged_entries(
                    conn, directory.base_dn, directory.user_filter, ["1.1"], directory.page_size
                )
            )
        finally:
            conn.unbind()
    except ldap_connector.LdapError as exc:
        raise SyncError(str(exc)) from None


def sync(
    directory: LdapDirectory,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
    heartbeat: Callable[[], None] | None = None,
) -> SyncSummary:
    """Run one sync of ``directory`` (see the module docstring for the semantics).

    Raises :class:`SyncError` when the directory cannot be read, after recording the
    failed run (:func:`record_failure`); entries that cannot be used are counted in
    ``errors`` and do not stop the run. A dry run writes nothing, not even the run
    summary.
    """
    summary = SyncSummary(directory_id=directory.id, dry_run=dry_run)
    summary.started_at = utcnow().isoformat()
    planner = Planner(directory, summary)
    applier = Applier(directory, summary)
    try:
        for page in pages(directory):
            plans = planner.page(page)
            if not dry_run:
                plans = apply_page(applier, plans, summary)
            else:
                unit_of_work.rollback()
            count(summary, plans)
            if progress is not None:
                progress(len(page))
            if heartbeat is not None:
                heartbeat()
    except ldap_connector.LdapError as exc:
        unit_of_work.rollback()
        metrics.count(metrics.LDAP, "sync", "unavailable")
        if not dry_run:
            record_failure(directory, summary, exc)
        raise SyncError(str(exc)) from None
    missing = missing_plans(directory, planner.seen, summary, force)
    if dry_run:
        unit_of_work.rollback()
    else:
        missing = apply_page(applier, missing, summary)
    count(summary, missing)
    summary.finished_at = utcnow().isoformat()
    if not dry_run:
        with atomic():
            audit.record(
                actor(directory), "ldap.sync", directory.unit_id, summary.as_dict(),
                unit_id=directory.unit_id,
            )
            ldap_repo.save_run(directory.id, utcnow(), summary.as_dict())
            if summary.created or summary.updated or summary.deactivated or summary.reactivated:
                emit(unit_id=directory.unit_id, event_type="ldap.synced", data={
                    "directory_id": directory.id, "unit_id": directory.unit_id,
                    "created": summary.created, "updated": summary.updated,
                    "deactivated": summary.deactivated, "reactivated": summary.reactivated})
    metrics.count(metrics.LDAP, "sync", "dry_run" if dry_run else "done")
    return summary


def record_failure(
    directory: LdapDirectory, summary: SyncSummary, exc: ldap_connector.LdapError
) -> None:
    """Record a run the directory stopped (unreachable, bind refused, TLS, search) as
    the directory's last run: the counts of the pages it committed before, plus
    ``failed`` (the connector's sentence: server, bind DN, cause; never the password
    nor a trace) and ``failure`` (its kind, which the console words for the unit's
    admins). Audited as ``ldap.sync_failed``."""
    summary.finished_at = utcnow().isoformat()
    data = {**summary.as_dict(), "failed": str(exc), "failure": exc.kind}
    with atomic():
        audit.record(actor(directory), "ldap.sync_failed", directory.unit_id, data,
                     unit_id=directory.unit_id)
        ldap_repo.save_run(directory.id, utcnow(), data)


# --- one run at a time ------------------------------------------------------------


def lock_key(directory_id: str) -> str:
    return f"ldap-sync-lock:{directory_id}"


def holder_name() -> str:
    """Who holds a lock: host and process id, for the operator's message."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"


@contextmanager
def directory_lock(directory: LdapDirectory) -> Iterator[Callable[[], None]]:
    """Hold the directory's cluster-wide sync lock; yields a heartbeat that extends it.

    Raises :class:`SyncBusy` when another run holds it. The lock expires after
    :data:`LOCK_TTL_SECONDS` without a heartbeat, so a crashed node cannot block
    syncs for long; it is released only by its holder.
    """
    key = lock_key(directory.id)
    me = holder_name()
    if not ephemeral().add(key, me, LOCK_TTL_SECONDS):
        raise SyncBusy(f"a sync of this directory is already running ({ephemeral().get(key)})")

    def heartbeat() -> None:
        ephemeral().put(key, me, LOCK_TTL_SECONDS)

    try:
        yield heartbeat
    finally:
        try:
            if ephemeral().get(key) == me:
                ephemeral().delete(key)
        except Exception:
            log.warning("could not release LDAP sync lock %s; it expires by itself", key)


def run_locked(
    directory: LdapDirectory,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> SyncSummary:
    """:func:`sync` under :func:`directory_lock` (:class:`SyncBusy` when another run
    holds it). A dry run needs no lock: it writes nothing."""
    if dry_run:
        return sync(directory, dry_run=True, force=force, progress=progress)
    with directory_lock(directory) as heartbeat:
        return sync(directory, dry_run=False, force=force, progress=progress, heartbeat=heartbeat)


def run_if(directory: LdapDirectory, wanted: Callable[[LdapDirectory], bool]) -> SyncSummary | None:
    """Take the lock, re-read the directory and sync only if ``wanted(directory)`` still
    holds (a periodic run another node finished meanwhile is not repeated); None when
    it no longer does. :class:`SyncBusy` when another run holds the lock."""
    with directory_lock(directory) as heartbeat:
        ldap_repo.refresh(directory)
        if not wanted(directory):
            return None
        return sync(directory, heartbeat=heartbeat)
