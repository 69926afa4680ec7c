"""The audit log: an append-only record of security-relevant changes. This module is
its one writer: every event is built by :func:`event` and staged by :func:`record`.

Each event names a structured :class:`Actor` (kind, id, on whose behalf), the unit it
concerns (``unit_id``, None for an employee's own affairs such as consent), the action,
its target and details. Details name what changed (field names, counts), not personal
values, so events can be kept after an account is anonymised (``docs/scim.md``,
retention). Inside a request an event carries the request id that the error pages and
the log show, so an operator can join the three.

:func:`record` stages the event in the caller's transaction: it commits (or rolls
back) with the change it describes, when the caller's
:func:`idp.store.unit_of_work.atomic` block ends. The database
gives every event a sequence number ``seq`` while the transaction commits, in commit
order (:mod:`idp.store.audit_repo`), so :func:`since` hands an exporter every
committed event exactly once when it resumes from its cursor.

During the transition callers may still pass the old actor strings (``account:<id>``,
``admin``, ``cli:<user>``, ``scim:<token name>``, ``ldap-sync:<directory id>``,
``connector:<id>``, ``system``...); :func:`parse_actor` is the one place that reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import has_request_context

from idp.store import audit_repo
from idp.store.models import AuditEvent

# Who can act. ``operator`` is the platform operator through the CLI or admin tools;
# ``staff`` the operator's people in their own right; ``client`` an administration
# API client; ``sso`` an upstream connector's
# just-in-time provisioning; ``system`` schedulers and the IdP itself.
KINDS = ("account", "staff", "client", "scim", "ldap", "sso", "operator", "system")

MAX_PAGE = 1000  # most events one :func:`since` call returns


@dataclass(frozen=True)
class Actor:
    """Who did something: ``kind`` (one of :data:`KINDS`), ``id`` (account id, SCIM
    token id, directory id, connector id, operator name...; None when the kind says
    it all), ``on_behalf_of`` (the account id an actor acts for, e.g. when
    impersonating; None otherwise) and ``display``, the readable string also stored
    in the event's ``actor`` column (``scim:<token name>``...)."""

    kind: str
    id: str | None = None
    on_behalf_of: str | None = None
    display: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown actor kind {self.kind!r}")
        if not self.display:
            object.__setattr__(
                self, "display", f"{self.kind}:{self.id}" if self.id else self.kind
            )

    @classmethod
    def account(cls, account_id: str) -> Actor:
        """An employee acting for themselves (display ``account:<id>``)."""
        return cls("account", account_id)

    @classmethod
    def staff(cls, staff_id: str, on_behalf_of: str | None = None) -> Actor:
        """One of the operator's staff, possibly acting for an account."""
        return cls("staff", staff_id, on_behalf_of)

    @classmethod
    def client(cls, client_id: str) -> Actor:
        """An administration API client (display ``client:<client_id>``)."""
        return cls("client", client_id)

    @classmethod
    def scim(cls, token_id: str, token_name: str) -> Actor:
        """A unit's SCIM client, identified by its token (display ``scim:<name>``)."""
        return cls("scim", token_id, display=f"scim:{token_name}")

    @classmethod
    def ldap(cls, directory_id: str, via: str = "ldap-sync") -> Actor:
        """An LDAP directory's sync (or sign-in, ``via="ldap-login"``)."""
        return cls("ldap", directory_id, display=f"{via}:{directory_id}")

    @classmethod
    def sso(cls, connector_id: str) -> Actor:
        """An upstream connector's just-in-time provisioning."""
        return cls("sso", connector_id, display=f"connector:{connector_id}")

    @classmethod
    def operator(cls, name: str | None = None) -> Actor:
        """The platform operator (CLI user, admin tool); display ``cli:<name>``."""
        return cls("operator", name, display=f"cli:{name}" if name else "admin")

    @classmethod
    def system(cls, name: str | None = None) -> Actor:
        """The IdP itself or one of its schedulers (``system:<name>``)."""
        return cls("system", name)


_PREFIXES = {
    "account": "account",
    "staff": "staff",
    "client": "client",
    "scim": "scim",
    "ldap": "ldap",
    "ldap-sync": "ldap",
    "ldap-login": "ldap",
    "connector": "sso",
    "sso": "sso",
    "admin": "operator",
    "cli": "operator",
    "operator": "operator",
    "system": "system",
}


def parse_actor(text: str) -> Actor:
    """The structured actor of an old-style actor string, keeping the string as its
    display: ``account:<id>``, ``staff:<id>``, ``scim:<name>``,
    ``ldap-sync:<directory>``/``ldap-login:<directory>``, ``connector:<id>``,
    ``admin[:<x>]``/``cli:<user>[:...]`` (operator), ``system[:<x>]``. Anything
    else (``login``, ``test``) is the system with the whole string as its id. Also
    used by migration 0004 for events written before structured actors."""
    text = text[:200]
    prefix, sep, rest = text.partition(":")
    kind = _PREFIXES.get(prefix)
    if kind is None:
        return Actor("system", text, display=text)
    return Actor(kind, rest if sep and rest else None, display=text)


def as_actor(actor: Actor | str) -> Actor:
    """``actor`` itself, or the old string parsed by :func:`parse_actor`."""
    return actor if isinstance(actor, Actor) else parse_actor(actor)


def event(
    actor: Actor | str,
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
    unit_id: str | None = None,
) -> AuditEvent:
    """An unsaved audit event by ``actor`` about ``target`` in ``unit_id`` (when not
    given: ``details["unit_id"]`` if that is a string), with the current request id
    when in a request. Repositories that write a change and its event together take
    it as an argument; it gets its ``seq`` when their transaction commits."""
    who = as_actor(actor)
    details = dict(details or {})
    if unit_id is None and isinstance(details.get("unit_id"), str):
        unit_id = details["unit_id"]
    request_id: str | None = None
    if has_request_context():
        from idp.errors import request_id as current_request_id

        request_id = current_request_id()
    return AuditEvent(
        actor=who.display[:200],
        actor_kind=who.kind,
        actor_id=who.id[:200] if who.id else None,
        on_behalf_of=who.on_behalf_of,
        unit_id=unit_id,
        action=action[:100],
        target=target[:200] if target else None,
        details=details,
        request_id=request_id,
    )


def record(
    actor: Actor | str,
    action: str,
    target: str | None,
    details: dict[str, Any] | None = None,
    unit_id: str | None = None,
) -> AuditEvent:
    """Stage an audit event (see :func:`event`) in the current transaction, committed
    or rolled back with the caller's change."""
    row = event(actor, action, target, details, unit_id)
    audit_repo.add(row)
    return row


def since(
    cursor: int, limit: int = 100, unit_id: str | None = None
) -> tuple[Sequence[AuditEvent], int]:
    """The committed events after ``cursor`` (a ``seq``; 0 for the beginning) in
    ``seq`` order, at most ``limit`` (capped at :data:`MAX_PAGE`), only ``unit_id``'s
    when given, and the cursor to resume from (the last event's ``seq``, or
    ``cursor`` when there is none).

    Guarantee: an exporter that always resumes from the returned cursor sees every
    committed event exactly once. Events get their ``seq`` only while their
    transaction commits, one committing transaction at a time (an advisory lock on
    PostgreSQL, SQLite's single writer), so no event can commit later with a ``seq``
    below one already visible. Numbers of rolled-back transactions are gaps that
    never fill."""
    limit = max(1, min(limit, MAX_PAGE))
    events = audit_repo.after(cursor, limit, unit_id)
    return events, (events[-1].seq if events else cursor)


def search(
    after_seq: int,
    limit: int,
    unit_ids: Iterable[str] | None = None,
    actor_kind: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Sequence[AuditEvent]:
    """The committed events after ``after_seq`` in ``seq`` order (the same
    exactly-once guarantee as :func:`since`), at most ``limit`` (capped at
    :data:`MAX_PAGE`), filtered as :func:`idp.store.audit_repo.page` says."""
    return audit_repo.page(
        after_seq, max(1, min(limit, MAX_PAGE)), unit_ids, actor_kind, actor_id, action,
        since, until,
    )


def account_actor(account_id: str) -> Actor:
    """The actor of an employee acting on their own behalf."""
    return Actor.account(account_id)


def describe(row: AuditEvent) -> dict[str, Any]:
    """An event as exporters and the CLI show it (JSON-ready)."""
    return {
        "seq": row.seq,
        "id": row.id,
        "at": row.at.isoformat() if row.at else None,
        "actor": {"kind": row.actor_kind, "id": row.actor_id, "on_behalf_of": row.on_behalf_of,
                  "display": row.actor},
        "unit_id": row.unit_id,
        "action": row.action,
        "target": row.target,
        "details": dict(row.details or {}),
        "request_id": row.request_id,
    }
