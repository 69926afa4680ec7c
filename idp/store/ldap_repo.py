"""Repository of LDAP directories and of the links between directory entries and
accounts. The sync works page by page: each page's reads are a handful of ``IN``
queries, its writes one transaction (:func:`commit` or :func:`rollback`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from idp.store.db import db
from idp.store.models import Access, Account, LdapDirectory, LdapLink, ScimUser

CHUNK = 500  # bound for IN lists


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def add_directory(row: LdapDirectory) -> LdapDirectory:
    """Stage a directory (one per unit; the unique constraint refuses a second at
    commit)."""
    db.session.add(row)
    return row


def directory(directory_id: str) -> LdapDirectory | None:
    return db.session.get(LdapDirectory, directory_id) if directory_id else None


def directory_for_unit(unit_id: str) -> LdapDirectory | None:
    return db.session.scalars(
        select(LdapDirectory).where(LdapDirectory.unit_id == unit_id)
    ).first()


def refresh(row: LdapDirectory) -> None:
    """Re-read ``row`` from the database (another node may have changed it). Ends the
    current transaction first, so the read sees what others committed since; nothing
    may be staged then (callers read only before it)."""
    db.session.rollback()
    db.session.refresh(row)


def directories() -> list[LdapDirectory]:
    return list(db.session.scalars(select(LdapDirectory).order_by(LdapDirectory.created_at)))


def scheduled_directories() -> list[LdapDirectory]:
    """Directories with a periodic sync (``schedule_minutes`` > 0)."""
    return list(
        db.session.scalars(select(LdapDirectory).where(LdapDirectory.schedule_minutes > 0))
    )


def delete_directory(row: LdapDirectory) -> None:
    """Stage the deletion of a directory and its links (the accounts stay)."""
    db.session.delete(row)


def save_run(directory_id: str, at: datetime, summary: dict[str, Any]) -> None:
    """Stage the record of a finished sync run on its directory."""
    row = db.session.get(LdapDirectory, directory_id)
    if row is not None:
        row.last_run_at = at
        row.last_run_summary = summary


def link_count(directory_id: str) -> int:
    return int(
        db.session.scalar(
            select(func.count()).select_from(LdapLink).where(LdapLink.directory_id == directory_id)
        )
        or 0
    )


def links_for(directory_id: str, external_ids: list[str]) -> dict[str, tuple[LdapLink, Account]]:
    """Links (with their accounts) of ``directory_id`` for these external ids."""
    found: dict[str, tuple[LdapLink, Account]] = {}
    for part in _chunks(sorted(set(external_ids))):
        rows = db.session.execute(
            select(LdapLink, Account)
            .join(Account, Account.id == LdapLink.account_id)
            .where(LdapLink.directory_id == directory_id, LdapLink.external_id.in_(part))
        )
        for link, account in rows:
            found[link.external_id] = (link, account)
    return found


def accounts_by_email(emails: list[str]) -> dict[str, Account]:
    """Accounts whose (lower-case) e-mail address is one of ``emails``."""
    found: dict[str, Account] = {}
    for part in _chunks(sorted(set(emails))):
        for account in db.session.scalars(select(Account).where(Account.email.in_(part))):
            if account.email is not None:  # always: matched by its address
                found[account.email.lower()] = account
    return found


def links_of_accounts(account_ids: list[str]) -> dict[str, list[LdapLink]]:
    """Every directory link of these accounts, by account id."""
    found: dict[str, list[LdapLink]] = {}
    for part in _chunks(sorted(set(account_ids))):
        for link in db.session.scalars(select(LdapLink).where(LdapLink.account_id.in_(part))):
            found.setdefault(link.account_id, []).append(link)
    return found


def scim_managed(account_ids: list[str]) -> set[str]:
    """Those of ``account_ids`` that a unit provisions over SCIM."""
    found: set[str] = set()
    for part in _chunks(sorted(set(account_ids))):
        found.update(db.session.scalars(select(ScimUser.account_id).where(ScimUser.account_id.in_(part))))
    return found


def accesses_in(unit_id: str, account_ids: list[str]) -> dict[str, Access]:
    """Memberships of these accounts in ``unit_id``, by account id."""
    found: dict[str, Access] = {}
    for part in _chunks(sorted(set(account_ids))):
        rows = db.session.scalars(
            select(Access).where(Access.unit_id == unit_id, Access.account_id.in_(part))
        )
        for membership in rows:
            found[membership.account_id] = membership
    return found


def links_not_in(directory_id: str, seen: set[str]) -> list[tuple[LdapLink, Account]]:
    """Links of ``directory_id`` (with accounts) whose external id is not in ``seen``."""
    rows = db.session.execute(
        select(LdapLink, Account)
        .join(Account, Account.id == LdapLink.account_id)
        .where(LdapLink.directory_id == directory_id)
    )
    return [(link, account) for link, account in rows if link.external_id not in seen]


def active_link_count(directory_id: str) -> int:
    """How many links the last sync saw as present and enabled."""
    return int(
        db.session.scalar(
            select(func.count())
            .select_from(LdapLink)
            .where(LdapLink.directory_id == directory_id, LdapLink.state == "active")
        )
        or 0
    )


def link_of_account(directory_id: str, account_id: str) -> LdapLink | None:
    return db.session.scalars(
        select(LdapLink).where(
            LdapLink.directory_id == directory_id, LdapLink.account_id == account_id
        )
    ).first()


def login_directory_for(account_id: str) -> tuple[LdapDirectory, LdapLink] | None:
    """The login-enabled directory that manages ``account_id``, with the link."""
    row = db.session.execute(
        select(LdapDirectory, LdapLink)
        .join(LdapLink, LdapLink.directory_id == LdapDirectory.id)
        .where(LdapLink.account_id == account_id, LdapDirectory.login_enabled.is_(True))
    ).first()
    return (row[0], row[1]) if row else None


def mark_seen(link_ids: list[str], at: datetime) -> None:
    """Set ``last_seen_at`` of these links in the current transaction."""
    for part in _chunks(link_ids):
        db.session.execute(
            update(LdapLink)
            .where(LdapLink.id.in_(part))
            .values(last_seen_at=at)
            .execution_options(synchronize_session=False)
        )


def any_login_enabled() -> bool:
    """True when some directory offers LDAP password login."""
    return (
        db.session.scalars(
            select(LdapDirectory.id).where(LdapDirectory.login_enabled.is_(True)).limit(1)
        ).first()
        is not None
    )


def add(*rows: object) -> None:
    """Stage new rows in the current transaction."""
    db.session.add_all(rows)


def flush() -> None:
    db.session.flush()
