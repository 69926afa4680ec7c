"""Applying an LDAP sync's plans: the writes, one transaction per page.

Every change is audited (:func:`idp.audit.record`) in the same transaction with
the actor ``Actor.ldap(<directory id>)`` and the directory's unit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from idp import audit
from idp.accounts import accesses
from idp.accounts import lifecycle as accounts
from idp.ldap import accounts as ldap_accounts
from idp.ldap.mapping import MappedEntry
from idp.ldap.plan import Plan, SyncSummary, actor, field_value_for
from idp.store import ldap_repo
from idp.store.models import Access, Account, LdapDirectory, LdapLink, utcnow
from idp.store.unit_of_work import Conflict, atomic


def _set_fields(
    account: Account, access: Access | None, fields: dict[str, Any], bump_version: bool = True
) -> None:
    """Write the directory's values through the account lifecycle as the ``ldap``
    writer (:func:`idp.accounts.lifecycle.stage_changes`: personal fields onto the account,
    employer facts onto the unit's ``access``; it owns what it fills, what it clears
    goes back to the employee, a field SCIM owns is left alone)."""
    accounts.stage_changes(
        account, None, fields, ldap_accounts.OWNER,
        refuse=False, bump_version=bump_version, access=access,
    )


def _set_roles(
    directory: LdapDirectory,
    account: Account,
    access: Access | None,
    roles: list[str],
    who: audit.Actor,
) -> Access:
    if access is None:
        return accesses.create(account.id, directory.unit_id, roles, who, event=None)
    accesses.set_roles(access, roles)
    return access


def _state(entry: MappedEntry) -> str:
    return "disabled" if entry.disabled else "active"


class Applier:
    """Writes the plans of one page, auditing every change."""

    def __init__(self, directory: LdapDirectory, summary: SyncSummary) -> None:
        self.directory = directory
        self.summary = summary
        self.actor = actor(directory)
        self.seen: list[str] = []

    def apply(self, plan: Plan, now: datetime) -> None:
        getattr(self, f"_{plan.kind}")(plan, now)

    def _audit(self, action: str, account_id: str, details: dict[str, Any]) -> None:
        audit.record(self.actor, action, account_id, details, unit_id=self.directory.unit_id)

    def _create(self, plan: Plan, now: datetime) -> None:
        m = plan.entry
        assert m is not None
        d = self.directory
        account = accounts.new_account(m.email, email_verified=d.trust_email)
        access = _set_roles(d, account, None, plan.roles or [], self.actor)
        _set_fields(
            account, access, {k: field_value_for(k, v) for k, v in m.values.items()}, False
        )
        ldap_repo.add(
            LdapLink(
                directory_id=d.id, account_id=account.id, external_id=m.external_id,
                dn=m.dn, state="active", last_seen_at=now,
            )
        )
        self._audit(
            "account.provisioned",
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
        access = self._update_account(plan)
        # the directory now owns every field it fills (the address as it stands)
        owned = {k: field_value_for(k, v) for k, v in m.values.items()}
        if "email" in owned:
            owned["email"] = account.email
        _set_fields(account, access, owned, False)
        self._audit("ldap.link", account.id, {"dn": m.dn, "external_id": m.external_id})

    def _update(self, plan: Plan, now: datetime) -> None:
        self._touch_link(plan, now)
        self._update_account(plan)

    def _update_account(self, plan: Plan) -> Access | None:
        """Fields and roles of the plan; the access to the unit afterwards."""
        account = plan.account
        assert account is not None
        access = plan.membership
        old = list(access.roles or []) if access is not None else None
        if plan.roles is not None:  # first: a new access holds the facts below
            access = _set_roles(self.directory, account, access, plan.roles, self.actor)
        if plan.fields:
            _set_fields(account, access, plan.fields)
            self._audit("account.updated", account.id, {"fields": sorted(plan.fields)})
        if plan.roles is not None:
            self._audit(
                "membership.roles",
                account.id,
                {"unit_id": self.directory.unit_id, "from": old, "to": plan.roles},
            )
        return access

    def _unchanged(self, plan: Plan, now: datetime) -> None:
        link, m = plan.link, plan.entry
        if (
            link is not None and m is not None and link.dn == m.dn
            and link.state == _state(m) and link.external_id == m.external_id
        ):
            self.seen.append(link.id)  # only last_seen_at changes: one UPDATE per page
            return
        self._touch_link(plan, now)

    def flush_seen(self, now: datetime) -> None:
        """Stamp ``last_seen_at`` on the page's untouched links in one statement."""
        if self.seen:
            ldap_repo.mark_seen(self.seen, now)
            self.seen = []

    def _touch_link(self, plan: Plan, now: datetime) -> None:
        link, m = plan.link, plan.entry
        if link is None or m is None:
            return
        link.external_id = m.external_id
        link.dn = m.dn
        link.last_seen_at = now
        link.state = _state(m)

    def _deactivate(self, plan: Plan, now: datetime) -> None:
        link, account = plan.link, plan.account
        assert link is not None and account is not None
        if plan.entry is not None:
            self._touch_link(plan, now)
        else:
            link.state = "missing"
        link.deactivated_by_sync = True
        ldap_accounts.deactivate(account, self.actor, plan.reason, self.directory.unit_id)

    def _untouched(self, plan: Plan, now: datetime) -> None:
        self._touch_link(plan, now)

    def _missing(self, plan: Plan, now: datetime) -> None:
        assert plan.link is not None
        plan.link.state = "missing"

    def _reactivate(self, plan: Plan, now: datetime) -> None:
        link, account = plan.link, plan.account
        assert link is not None and account is not None
        self._touch_link(plan, now)
        link.deactivated_by_sync = False
        ldap_accounts.reactivate(account, self.actor, self.directory.unit_id)
        self._update_account(plan)


COUNTER = {
    "create": "created",
    "adopt": "updated",
    "update": "updated",
    "deactivate": "deactivated",
    "reactivate": "reactivated",
    "unchanged": "unchanged",
    "missing": "",
    "untouched": "skipped",
}


def count(summary: SyncSummary, plans: list[Plan]) -> None:
    for plan in plans:
        name = COUNTER[plan.kind]
        if name:
            setattr(summary, name, getattr(summary, name) + 1)


def apply_page(applier: Applier, plans: list[Plan], summary: SyncSummary) -> list[Plan]:
    """Apply ``plans`` in one transaction; on a conflict (a concurrent writer took an
    e-mail address), retry entry by entry so one bad entry costs only itself.
    Returns the plans that were applied."""
    now = utcnow()
    try:
        with atomic():
            for plan in plans:
                applier.apply(plan, now)
            applier.flush_seen(now)
        return plans
    except Conflict:
        applier.seen = []
    except Exception:
        applier.seen = []
        raise
    done: list[Plan] = []
    for plan in plans:
        try:
            with atomic():
                applier.apply(plan, now)
                applier.flush_seen(now)
            done.append(plan)
        except Conflict:
            applier.seen = []
            dn = plan.entry.dn if plan.entry else (plan.link.dn if plan.link else "?")
            summary.error(f"{dn}: conflicting concurrent change; retried next run")
        except Exception:
            applier.seen = []
            raise
    return done
