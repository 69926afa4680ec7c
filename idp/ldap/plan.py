"""Planning an LDAP sync: what each directory entry means for the unit's accounts.

The planner only reads. For each page it decides one :class:`Plan` per entry
(create, adopt, update, deactivate, reactivate, unchanged) and counts what cannot be
used as an error; :mod:`idp.ldap.apply` carries the plans out, a dry run does not.
The rules are described in :mod:`idp.ldap.sync`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from connectors import ldap as ldap_connector
from idp import audit
from idp.accounts.field_owners import fact_value, is_fact
from idp.domains import registry as domains
from idp.ldap import accounts as ldap_accounts
from idp.ldap.mapping import MappedEntry, MappingError, map_entry
from idp.provisioning import ownership
from idp.store import ldap_repo
from idp.store.models import Access, Account, LdapDirectory, LdapLink

MASS_DEACTIVATION_FLOOR = 10
DEFAULT_ROLE = "employee"  # every new membership, like a domain's auto-join default
MAX_ERROR_SAMPLES = 20


def not_own(standing: ownership.Standing, renaming: bool) -> str | None:
    """Why an address whose :func:`idp.provisioning.ownership.standing` is ``standing`` is not
    provisioned (a new entry) or not given to an account (``renaming``); None for an
    address of the unit's own domains."""
    if standing is ownership.Standing.OWN:
        return None
    if standing is ownership.Standing.FOREIGN:
        reason = "lies in a domain another company verified"
        return f"{reason}; address not changed" if renaming else f"{reason}; not provisioned"
    reason = "is not in a domain this unit verified"
    if renaming:
        return f"{reason}; address not changed"
    return f"{reason}; verify the domain to provision it"


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


def actor(directory: LdapDirectory) -> audit.Actor:
    """The audit actor of this directory's sync runs (display ``ldap-sync:<id>``)."""
    return audit.Actor.ldap(directory.id)


@dataclass
class Plan:
    """One decided change, applied later unless the run is dry."""

    kind: str  # create | update | adopt | deactivate | reactivate | unchanged | untouched
    entry: MappedEntry | None = None
    link: LdapLink | None = None
    account: Account | None = None
    membership: Access | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    roles: list[str] | None = None
    reason: str = ""


def _field_value(account: Account, access: Access | None, name: str) -> Any:
    """The current value: an employer fact from the unit's access, a personal field
    from the account."""
    if is_fact(name):
        return fact_value(access, name)
    return getattr(account, name)


def field_value_for(name: str, value: str | None) -> Any:
    if name in ("given_name", "family_name") and value is None:
        return ""
    return value


def _field_changes(
    account: Account, access: Access | None, entry: MappedEntry, trust_email: bool
) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    personal, facts = ldap_accounts.writable(account), ldap_accounts.writable(access)
    for name, value in entry.values.items():
        if not (facts if is_fact(name) else personal)(name):
            continue
        target = field_value_for(name, value)
        current = _field_value(account, access, name)
        if name == "email":
            current = (current or "").lower()
        if current != target:
            changes[name] = target
    if "email" in changes:
        changes["email_verified"] = trust_email
    return changes


def _managed_roles(directory: LdapDirectory) -> set[str]:
    return set((directory.group_map or {}).values())


def _role_change(
    directory: LdapDirectory, membership: Access | None, entry: MappedEntry
) -> list[str] | None:
    """The membership's new role list, or None when it stays as it is."""
    managed = _managed_roles(directory)
    current = list(membership.roles or []) if membership else [DEFAULT_ROLE]
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
        self.scim_managed: set[str] = set()
        self.standings: dict[str, ownership.Standing] = {}  # e-mail domain -> standing

    def standing(self, email: str) -> ownership.Standing:
        """:func:`idp.provisioning.ownership.standing` of ``email`` towards the directory's unit,
        asked once per e-mail domain and run (a page holds many addresses of few
        domains)."""
        key = domains.email_domain(email) or email
        found = self.standings.get(key)
        if found is None:
            found = ownership.standing(self.directory.unit_id, email)
            self.standings[key] = found
        return found

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
            and (links[m.external_id][1].email or "").lower() != m.email
        ]
        by_email = ldap_repo.accounts_by_email(new_emails + changed_emails)
        account_ids = [a.id for _, a in links.values()] + [a.id for a in by_email.values()]
        memberships = ldap_repo.accesses_in(d.unit_id, account_ids)
        other_links = ldap_repo.links_of_accounts([a.id for a in by_email.values()])
        self.scim_managed = ldap_repo.scim_managed([a.id for a in by_email.values()])

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
        memberships: dict[str, Access],
        by_email: dict[str, Account],
    ) -> Plan:
        membership = memberships.get(account.id)
        if account.status == ldap_accounts.DELETED:
            # Deprovisioned (anonymised) elsewhere: never refill the profile.
            return Plan("untouched", m, link, account, membership)
        if m.disabled:
            if account.status == ldap_accounts.ACTIVE:
                return Plan("deactivate", m, link, account, membership, reason="disabled")
            return Plan("unchanged", m, link, account, membership)
        fields = _field_changes(account, membership, m, self.directory.trust_email)
        if "email" in fields:
            # The account keeps its address unless the new one is the unit's own
            # (idp.provisioning.ownership) and free; the other fields change all the same.
            holder = by_email.get(m.email)
            problem = not_own(self.standing(m.email), renaming=True)
            if problem is None and holder is not None and holder.id != account.id:
                problem = "belongs to another account; address not changed"
            if problem is not None:
                self.summary.error(f"{m.dn}: new address {m.email} {problem}")
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
        memberships: dict[str, Access],
        other_links: dict[str, list[LdapLink]],
    ) -> Plan | None:
        if m.disabled:
            self.summary.skipped += 1
            return None
        account = by_email.get(m.email)
        links = (other_links.get(account.id) or []) if account is not None else []
        ours = len(links) == 1 and links[0].directory_id == self.directory.id
        if account is not None and ours and links[0].state == "missing":
            # The entry was deleted and re-created with a new id: the same person,
            # whose account this directory already manages.
            return self._known(m, links[0], account, memberships, by_email)
        refused = not_own(self.standing(m.email), renaming=False)
        if refused is not None:
            self.summary.error(f"{m.dn}: {m.email} {refused}")
            return None
        if account is None:
            return Plan("create", m, roles=_role_change(self.directory, None, m))
        if links:
            self.summary.error(
                f"{m.dn}: {m.email} is already managed by a directory entry; not adopted"
            )
            return None
        if account.id in self.scim_managed or account.status == ldap_accounts.DELETED:
            self.summary.error(f"{m.dn}: {m.email} is managed by SCIM; not adopted")
            return None
        membership = memberships.get(account.id)
        if membership is None:
            self.summary.error(
                f"{m.dn}: {m.email} belongs to an account outside this unit; not adopted"
            )
            return None
        if not ownership.bindable(self.directory.unit_id, account):
            self.summary.error(
                f"{m.dn}: {m.email} belongs to an account another unit also reaches; not adopted"
            )
            return None
        fields = _field_changes(account, membership, m, self.directory.trust_email)
        roles = _role_change(self.directory, membership, m)
        return Plan("adopt", m, None, account, membership, fields, roles)


def missing_plans(
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
