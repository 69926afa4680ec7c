"""LDAP / Active Directory sync: one run reads the directory page by page and brings
the unit's accounts in line with it.

Per entry (keyed on its stable id, :class:`~idp.store.models.LdapLink`):

* **new and enabled**: an account is created (status active; ``email_verified``
  only when the directory is trusted for e-mail, ``trust_email``) with a membership
  in the unit. An existing account with the same address is *adopted* only when it
  is already a member of the unit and not managed by another directory; otherwise
  the entry is an error: a directory never takes over someone else's account by
  e-mail address.
* **known**: the fields LDAP owns (the attribute map's fields) are updated, and the
  roles the group map manages are set; roles given by other means stay.
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
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from connectors import ldap as ldap_connector
from idp import ldap_accounts
from idp.ldap_directories import connection_config
from idp.ldap_mapping import MappedEntry, MappingError, map_entry, search_attributes
from idp.services import ephemeral
from idp.store import ldap_repo
from idp.store.models import Account, LdapDirectory, LdapLink, Membership, new_id, utcnow

log = logging.getLogger("idp.ldap_sync")

LOCK_TTL_SECONDS = 15 * 60
MASS_DEACTIVATION_FLOOR = 10
MAX_ERROR_SAMPLES = 20
Progress = Callable[[int], None]


class SyncError(RuntimeError):
    """The run could not start or finish (connection, search, lock); nothing half-done
    is left behind: pages already committed stay, later ones were not read."""


class SyncBusy(SyncError):
    """Another node or process is syncing this directory right now."""


@dataclass
class SyncSummary:
    """What a run did (or, in a dry run, would do)."""

    directory_id: str
    dry_run: bool = False
    entries: int = 0
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    reactivated: int = 0
    unchanged: int = 0
    skipped: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    deactivation_blocked: int = 0
    started_at: str = ""
    finished_at: str = ""

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def actor(directory: LdapDirectory) -> str:
    """The audit actor of this directory's sync runs."""
    return f"ldap-sync:{directory.id}"


# --- planning: what should change -------------------------------------------------


@dataclass
class Plan:
    """One decided change, applied later unless the run is dry."""

    kind: str  # create | update | adopt | deactivate | reactivate | unchanged
    entry: MappedEntry | None = None
    link: LdapLink | None = None
    account: Account | None = None
    membership: Membership | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    roles: list[str] | None = None
    reason: str = ""


def _field_value(account: Account, name: str) -> Any:
    if name.startswith("extra."):
        return (account.extra or {}).get(name[6:])
    return getattr(account, name)


def _wanted(name: str, value: str | None) -> Any:
    if name in ("given_name", "family_name") and value is None:
        return ""
    return value


def _field_changes(account: Account, entry: MappedEntry, trust_email: bool) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for name, value in entry.values.items():
        wanted = _wanted(name, value)
        current = _field_value(account, name)
        if name == "email":
            current = (current or "").lower()
        if current != wanted:
            changes[name] = wanted
    if "email" in changes:
        changes["email_verified"] = trust_email
    return changes


def _managed_roles(directory: LdapDirectory) -> set[str]:
    return set((directory.group_map or {}).values())


def _role_change(
    directory: LdapDirectory, membership: Membership | None, entry: MappedEntry
) -> list[str] | None:
    """The membership's new role list, or None when it stays as it is."""
    managed = _managed_roles(directory)
    current = list(membership.roles or []) if membership else []
    kept = [r for r in current if r not in managed]
    wanted = sorted(set(kept) | set(entry.roles))
    if membership is None or sorted(current) != wanted:
        return wanted
    return None


class Planner:
    """Decides, page by page, what each entry means for the unit's accounts."""

    def __init__(self, directory: LdapDirectory, summary: SyncSummary) -> None:
        self.directory = directory
        self.summary = summary
        self.seen: set[str] = set()
        self.emails_in_run: dict[str, str] = {}  # email -> external id

    def page(self, entries: list[ldap_connector.LdapEntry]) -> list[Plan]:
        d = self.directory
        mapped: list[MappedEntry] = []
        for raw in entries:
            self.summary.entries += 1
            ext = ldap_connector.entry_id(raw, d.id_attribute)
            if ext:
                self.seen.add(ext)
            try:
                m = map_entry(raw, d.attribute_map, d.group_map or {}, d.id_attribute)
            except MappingError as exc:
                self.summary.error(str(exc))
                continue
            other = self.emails_in_run.get(m.email)
            if other is not None and other != m.external_id:
                self.summary.error(f"{m.dn}: e-mail {m.email} already used by another entry")
                continue
            self.emails_in_run[m.email] = m.external_id
            mapped.append(m)

        links = ldap_repo.links_for(d.id, [m.external_id for m in mapped])
        new_emails = [m.email for m in mapped if m.external_id not in links]
        changed_emails = [
            m.email for m in mapped if m.external_id in links
            and links[m.external_id][1].email.lower() != m.email
        ]
        by_email = ldap_repo.accounts_by_email(new_emails + changed_emails)
        account_ids = [a.id for _, a in links.values()] + [a.id for a in by_email.values()]
        memberships = ldap_repo.memberships_in(d.unit_id, account_ids)
        other_links = ldap_repo.links_of_accounts([a.id for a in by_email.values()])

        plans: list[Plan] = []
        for m in mapped:
            if m.external_id in links:
                link, account = links[m.external_id]
                plans.append(self._known(m, link, account, memberships, by_email))
            else:
                plan = self._new(m, by_email, memberships, other_links)
                if plan is not None:
                    plans.append(plan)
        return plans

    def _known(
        self,
        m: MappedEntry,
        link: LdapLink,
        account: Account,
        memberships: dict[str, Membership],
        by_email: dict[str, Account],
    ) -> Plan:
        membership = memberships.get(account.id)
        if m.disabled:
            if account.status == ldap_accounts.ACTIVE:
                return Plan("deactivate", m, link, account, membership, reason="disabled")
            return Plan("unchanged", m, link, account, membership)
        fields = _field_changes(account, m, self.directory.trust_email)
        if "email" in fields:
            holder = by_email.get(m.email)
            if holder is not None and holder.id != account.id:
                self.summary.error(f"{m.dn}: e-mail {m.email} belongs to another account")
                fields = {k: v for k, v in fields.items() if k not in ("email", "email_verified")}
        roles = _role_change(self.directory, membership, m)
        if link.deactivated_by_sync and account.status == ldap_accounts.DEACTIVATED:
            return Plan("reactivate", m, link, account, membership, fields, roles)
        if fields or roles is not None or link.dn != m.dn or link.state != "active":
            kind = "update" if fields or roles is not None else "unchanged"
            return Plan(kind, m, link, account, membership, fields, roles)
        return Plan("unchanged", m, link, account, membership)

    def _new(
        self,
        m: MappedEntry,
        by_email: dict[str, Account],
        memberships: dict[str, Membership],
        other_links: dict[str, list[LdapLink]],
    ) -> Plan | None:
        if m.disabled:
            self.summary.skipped += 1
            return None
        account = by_email.get(m.email)
        if account is None:
            return Plan("create", m, roles=_role_change(self.directory, None, m))
        if other_links.get(account.id):
            self.summary.error(
                f"{m.dn}: {m.email} is already managed by a directory entry; not adopted"
            )
            return None
        membership = memberships.get(account.id)
        if membership is None:
            self.summary.error(
                f"{m.dn}: {m.email} belongs to an account outside this unit; not adopted"
            )
            return None
        fields = _field_changes(account, m, self.directory.trust_email)
        roles = _role_change(self.directory, membership, m)
        return Plan("adopt", m, None, account, membership, fields, roles)


# --- applying: the writes ---------------------------------------------------------


def _set_fields(account: Account, fields: dict[str, Any]) -> None:
    extra = dict(account.extra or {})
    for name, value in fields.items():
        if name.startswith("extra."):
            if value is None:
                extra.pop(name[6:], None)
            else:
                extra[name[6:]] = value
        else:
            setattr(account, name, value)
    if extra != (account.extra or {}):
        account.extra = extra
    account.version = (account.version or 1) + 1


def _set_roles(
    directory: LdapDirectory, account: Account, membership: Membership | None, roles: list[str]
) -> Membership:
    if membership is None:
        membership = Membership(account_id=account.id, unit_id=directory.unit_id, roles=roles)
        ldap_repo.add(membership)
    else:
        membership.roles = roles
    return membership


class Applier:
    """Writes the plans of one page, auditing every change."""

    def __init__(self, directory: LdapDirectory, summary: SyncSummary) -> None:
        self.directory = directory
        self.summary = summary
        self.actor = actor(directory)

    def apply(self, plan: Plan, now: datetime) -> None:
        getattr(self, f"_{plan.kind}")(plan, now)

    def _audit(self, action: str, account_id: str, details: dict[str, Any]) -> None:
        ldap_accounts.audit(self.actor, action, account_id, details)

    def _create(self, plan: Plan, now: datetime) -> None:
        m = plan.entry
        assert m is not None
        d = self.directory
        account = Account(id=new_id(), email=m.email, email_verified=d.trust_email, extra={})
        fields = {k: _wanted(k, v) for k, v in m.values.items() if k != "email"}
        _set_fields(account, fields)
        account.version = 1
        account.status = ldap_accounts.ACTIVE
        ldap_repo.add(account)
        ldap_repo.add(
            LdapLink(
                directory_id=d.id, account_id=account.id, external_id=m.external_id,
                dn=m.dn, state="active", last_seen_at=now,
            )
        )
        _set_roles(d, account, None, plan.roles or [])
        ldap_accounts.claim_fields(account, list(m.values))
        self._audit(
            "account.create",
            account.id,
            {"dn": m.dn, "unit_id": d.unit_id, "roles": plan.roles or [],
             "fields": sorted(m.values)},
        )

    def _adopt(self, plan: Plan, now: datetime) -> None:
        m, account = plan.entry, plan.account
        assert m is not None and account is not None
        ldap_repo.add(
            LdapLink(
                directory_id=self.directory.id, account_id=account.id,
                external_id=m.external_id, dn=m.dn, state="active", last_seen_at=now,
            )
        )
        self._update_account(plan)
        ldap_accounts.claim_fields(account, list(m.values))
        self._audit("ldap.link", account.id, {"dn": m.dn, "external_id": m.external_id})

    def _update(self, plan: Plan, now: datetime) -> None:
        self._touch_link(plan, now)
        self._update_account(plan)

    def _update_account(self, plan: Plan) -> None:
        account = plan.account
        assert account is not None
        if plan.fields:
            _set_fields(account, plan.fields)
            self._audit("account.update", account.id, {"fields": sorted(plan.fields)})
        if plan.roles is not None:
            old = list(plan.membership.roles or []) if plan.membership else None
            _set_roles(self.directory, account, plan.membership, plan.roles)
            self._audit(
                "membership.roles",
                account.id,
                {"unit_id": self.directory.unit_id, "from": old, "to": plan.roles},
            )

    def _unchanged(self, plan: Plan, now: datetime) -> None:
        self._touch_link(plan, now)

    def _touch_link(self, plan: Plan, now: datetime) -> None:
        link, m = plan.link, plan.entry
        if link is None or m is None:
            return
        link.dn = m.dn
        link.last_seen_at = now
        link.state = "disabled" if m.disabled else "active"

    def _deactivate(self, plan: Plan, now: datetime) -> None:
        link, account = plan.link, plan.account
        assert link is not None and account is not None
        if plan.entry is not None:
            self._touch_link(plan, now)
        else:
            link.state = "missing"
        link.deactivated_by_sync = True
        ldap_accounts.deactivate(account, self.actor, plan.reason)

    def _missing(self, plan: Plan, now: datetime) -> None:
        assert plan.link is not None
        plan.link.state = "missing"

    def _reactivate(self, plan: Plan, now: datetime) -> None:
        link, account = plan.link, plan.account
        assert link is not None and account is not None
        self._touch_link(plan, now)
        link.deactivated_by_sync = False
        ldap_accounts.reactivate(account, self.actor)
        self._update_account(plan)


COUNTER = {
    "create": "created",
    "adopt": "updated",
    "update": "updated",
    "deactivate": "deactivated",
    "reactivate": "reactivated",
    "unchanged": "unchanged",
    "missing": "",
}


def _count(summary: SyncSummary, plans: list[Plan]) -> None:
    for plan in plans:
        name = COUNTER[plan.kind]
        if name:
            setattr(summary, name, getattr(summary, name) + 1)


def _apply_page(applier: Applier, plans: list[Plan], summary: SyncSummary) -> list[Plan]:
    """Apply ``plans`` in one transaction; on a conflict (a concurrent writer took an
    e-mail address), retry entry by entry so one bad entry costs only itself.
    Returns the plans that were applied."""
    now = utcnow()
    try:
        for plan in plans:
            applier.apply(plan, now)
        ldap_repo.commit()
        return plans
    except Exception as exc:
        ldap_repo.rollback()
        if not ldap_repo.is_integrity_error(exc):
            raise
    done: list[Plan] = []
    for plan in plans:
        try:
            applier.apply(plan, now)
            ldap_repo.commit()
            done.append(plan)
        except Exception as exc:
            ldap_repo.rollback()
            if not ldap_repo.is_integrity_error(exc):
                raise
            dn = plan.entry.dn if plan.entry else (plan.link.dn if plan.link else "?")
            summary.error(f"{dn}: conflicting concurrent change; retried next run")
    return done


# --- a run --------------------------------------------------------------------------


def _missing_plans(
    directory: LdapDirectory, seen: set[str], summary: SyncSummary, force: bool
) -> list[Plan]:
    """Plans for accounts whose entries were not returned by the search."""
    plans: list[Plan] = []
    for link, account in ldap_repo.links_not_in(directory.id, seen):
        if account.status == ldap_accounts.ACTIVE:
            plans.append(Plan("deactivate", None, link, account, reason="missing"))
        elif link.state != "missing":
            plans.append(Plan("missing", None, link, account))
    victims = [p for p in plans if p.kind == "deactivate"]
    active = ldap_repo.active_link_count(directory.id)
    too_many = len(victims) > MASS_DEACTIVATION_FLOOR and len(victims) * 2 > active
    if victims and not force and (summary.entries == 0 or too_many):
        summary.deactivation_blocked = len(victims)
        summary.error(
            f"refusing to deactivate {len(victims)} of {active} accounts "
            f"({summary.entries} entries found): check the base DN and filter, "
            "or sync with --force"
        )
        return [p for p in plans if p.kind != "deactivate"]
    return plans


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

    Raises :class:`SyncError` when the directory cannot be read; entries that cannot
    be used are counted in ``errors`` and do not stop the run. A dry run writes
    nothing, not even the run summary.
    """
    summary = SyncSummary(directory_id=directory.id, dry_run=dry_run)
    summary.started_at = utcnow().isoformat()
    planner = Planner(directory, summary)
    applier = Applier(directory, summary)
    try:
        for page in pages(directory):
            plans = planner.page(page)
            if not dry_run:
                plans = _apply_page(applier, plans, summary)
            else:
                ldap_repo.rollback()
            _count(summary, plans)
            if progress is not None:
                progress(len(page))
            if heartbeat is not None:
                heartbeat()
    except ldap_connector.LdapError as exc:
        ldap_repo.rollback()
        raise SyncError(str(exc)) from None
    missing = _missing_plans(directory, planner.seen, summary, force)
    if dry_run:
        ldap_repo.rollback()
    else:
        missing = _apply_page(applier, missing, summary)
    _count(summary, missing)
    summary.finished_at = utcnow().isoformat()
    if not dry_run:
        ldap_accounts.audit(actor(directory), "ldap.sync", directory.unit_id, summary.as_dict())
        ldap_repo.save_run(directory.id, utcnow(), summary.as_dict())
    return summary


# --- one run at a time ------------------------------------------------------------


def lock_key(directory_id: str) -> str:
    return f"ldap-sync-lock:{directory_id}"


def holder_name() -> str:
    """Who holds a lock: host and process id, for the operator's message."""
    return f"{socket.gethostname()}:{os.getpid()}:{new_id()[:8]}"


def run_locked(
    directory: LdapDirectory,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress | None = None,
) -> SyncSummary:
    """:func:`sync` under the directory's cluster-wide lock.

    Raises :class:`SyncBusy` when another run holds the lock. A dry run needs no
    lock (it writes nothing). The lock expires after :data:`LOCK_TTL_SECONDS`
    without a page being processed, so a crashed node cannot block syncs forever.
    """
    if dry_run:
        return sync(directory, dry_run=True, force=force, progress=progress)
    key = lock_key(directory.id)
    me = holder_name()
    if not ephemeral().add(key, me, LOCK_TTL_SECONDS):
        raise SyncBusy(f"a sync of this directory is already running ({ephemeral().get(key)})")

    def heartbeat() -> None:
        ephemeral().put(key, me, LOCK_TTL_SECONDS)

    try:
        return sync(directory, dry_run=False, force=force, progress=progress, heartbeat=heartbeat)
    finally:
        try:
            if ephemeral().get(key) == me:
                ephemeral().delete(key)
        except Exception:
            log.warning("could not release LDAP sync lock %s; it expires by itself", key)
