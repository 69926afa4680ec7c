"""Accesses: memberships become accesses with a status, and employer facts move to them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:00:00

``memberships`` becomes ``accesses`` (rebuilt, so constraint names follow the new
table on both databases) with ``status``, ``created_by_kind``/``created_by_id``,
``ends_at``, ``last_signin_at`` and the employer facts ``cost_centre``,
``personnel_number``, ``department``, ``extra`` (the unit's own fields) and
``field_owners`` (their owners). Data:

* every membership becomes an active access, ``created_at`` kept, created by
  ``migration``;
* the account's facts go to the accesses of the units they belong to, with their
  owners (``accounts.field_owners`` and the legacy ``extra["field_owners"]``): a fact
  a directory set (owner ``scim``, ``ldap`` or ``sso``) only to the access of the unit
  whose SCIM records, LDAP directory or SSO connector reach the account, so one
  company's HR data is never released for, or readable by, another; a unit field only
  to the units that define a field of that name; the employee's own values to every
  access. A fact whose owner reaches none of the account's units (nothing to tell
  where it belongs) goes to every access, as it was released before;
  the account keeps only the owners of its personal fields;
* a joined SCIM record HR deactivated (``scim_users.suspended_roles``) becomes a
  suspended access with those roles; the column goes.

Facts of an account that has no access at all have no employer to belong to; they
are dropped and the upgrade prints how many accounts that concerned.

Downgrade refuses (``RuntimeError``, nothing changed) when it would lose data: an
access that is neither active nor a suspended joined SCIM record, an end date, or two
accesses of one account with different values (or owners) of one fact; a fact one
access has and another lacks is merged. Otherwise it writes the facts back to
the accounts and the suspended roles back to the records. Who created an access and
its last sign-in are not kept (the audit log and ``sign_ins`` still have them).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

FACTS = ('cost_centre', 'personnel_number', 'department')
EXTRA_PREFIX = 'extra.'


def _json(value: Any, default: Any) -> Any:
    """A JSON column's value as Python (drivers return text or objects)."""
    if value is None:
        return default
    if isinstance(value, str):
        return json.loads(value)
    return value


def _is_fact(name: str) -> bool:
    return name in FACTS or name.startswith(EXTRA_PREFIX)


def _accesses_table(name: str) -> None:
    op.create_table(
        name,
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('roles', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by_kind', sa.String(length=20), nullable=False),
        sa.Column('created_by_id', sa.String(length=200), nullable=True),
        sa.Column('ends_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('last_signin_at', idp.store.models.UTCDateTime(timezone=True),
                  nullable=True),
        sa.Column('cost_centre', sa.String(length=100), nullable=True),
        sa.Column('personnel_number', sa.String(length=100), nullable=True),
        sa.Column('department', sa.String(length=200), nullable=True),
        sa.Column('extra', sa.JSON(), nullable=False),
        sa.Column('field_owners', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'unit_id'),
    )


ACCESSES = sa.table(
    'accesses',
    sa.column('id', sa.String()), sa.column('account_id', sa.String()),
    sa.column('unit_id', sa.String()), sa.column('roles', sa.JSON()),
    sa.column('status', sa.String()),
    sa.column('created_at', idp.store.models.UTCDateTime(timezone=True)),
    sa.column('created_by_kind', sa.String()), sa.column('created_by_id', sa.String()),
    sa.column('ends_at', idp.store.models.UTCDateTime(timezone=True)),
    sa.column('cost_centre', sa.String()), sa.column('personnel_number', sa.String()),
    sa.column('department', sa.String()), sa.column('extra', sa.JSON()),
    sa.column('field_owners', sa.JSON()),
)
MEMBERSHIPS = sa.table(
    'memberships',
    sa.column('id', sa.String()), sa.column('account_id', sa.String()),
    sa.column('unit_id', sa.String()), sa.column('roles', sa.JSON()),
    sa.column('created_at', idp.store.models.UTCDateTime(timezone=True)),
)
ACCOUNTS = sa.table(
    'accounts',
    sa.column('id', sa.String()), sa.column('cost_centre', sa.String()),
    sa.column('personnel_number', sa.String()), sa.column('department', sa.String()),
    sa.column('extra', sa.JSON()), sa.column('field_owners', sa.JSON()),
)
SCIM_USERS = sa.table(
    'scim_users',
    sa.column('account_id', sa.String()), sa.column('unit_id', sa.String()),
    sa.column('joined_at', idp.store.models.UTCDateTime(timezone=True)),
    sa.column('suspended_roles', sa.JSON()),
)


def _account_facts(bind: sa.engine.Connection) -> dict[str, dict[str, Any]]:
    """Each account's facts, unit fields and the owners of both, and the owners of
    its personal fields."""
    out: dict[str, dict[str, Any]] = {}
    for row in bind.execute(sa.select(ACCOUNTS)).mappings():
        extra = dict(_json(row['extra'], {}))
        owners: dict[str, Any] = {}
        legacy = extra.pop('field_owners', None)
        if isinstance(legacy, dict):
            owners.update(legacy)
        owners.update(_json(row['field_owners'], {}))
        out[row['id']] = {
            **{name: row[name] for name in FACTS},
            'extra': extra,
            'field_owners': {k: v for k, v in owners.items() if _is_fact(k)},
            'personal_owners': {k: v for k, v in owners.items() if not _is_fact(k)},
        }
    return out


def _sources(bind: sa.engine.Connection) -> dict[tuple[str, str], set[str]]:
    """(account, owner kind) -> the units whose directories reach the account: its SCIM
    records' units (``scim``), its LDAP links' directories' units (``ldap``), its
    upstream identities' connectors' units (``sso``)."""
    out: dict[tuple[str, str], set[str]] = {}
    queries = (
        ('scim', 'SELECT account_id, unit_id FROM scim_users'),
        ('ldap', 'SELECT l.account_id, d.unit_id FROM ldap_links l'
                 ' JOIN ldap_directories d ON d.id = l.directory_id'),
        ('sso', 'SELECT i.account_id, c.unit_id FROM upstream_identities i'
                ' JOIN connectors c ON c.id = i.connector_id'),
    )
    for kind, query in queries:
        for account_id, unit_id in bind.execute(sa.text(query)):
            out.setdefault((account_id, kind), set()).add(unit_id)
    return out


def _defined(bind: sa.engine.Connection) -> dict[str, set[str]]:
    """Unit -> the names of the wallet fields it defines."""
    out: dict[str, set[str]] = {}
    for unit_id, name in bind.execute(sa.text('SELECT unit_id, name FROM unit_profile_fields')):
        out.setdefault(unit_id, set()).add(name)
    return out


class _Placement:
    """Which of an account's facts each of its accesses receives (see the module
    docstring)."""

    def __init__(self, bind: sa.engine.Connection, units: dict[str, set[str]]) -> None:
        self.units = units  # account -> the units it will have an access to
        self.sources = _sources(bind)
        self.defined = _defined(bind)

    def _reaches(self, account_id: str, owner: Any, unit_id: str) -> bool:
        if owner in (None, 'employee'):
            return True
        targets = self.sources.get((account_id, owner), set()) & self.units[account_id]
        return not targets or unit_id in targets

    def facts(self, account_id: str, unit_id: str, mine: dict[str, Any]) -> dict[str, Any]:
        owners = mine['field_owners']
        values: dict[str, Any] = {name: None for name in FACTS}
        extra: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        for name in FACTS:
            if mine[name] is not None and self._reaches(account_id, owners.get(name), unit_id):
                values[name] = mine[name]
                if name in owners:
                    kept[name] = owners[name]
        for key, value in mine['extra'].items():
            owner = owners.get(EXTRA_PREFIX + key)
            if not self._reaches(account_id, owner, unit_id):
                continue
            definers = {u for u in self.units[account_id] if key in self.defined.get(u, ())}
            if definers and unit_id not in definers:
                continue
            extra[key] = value
            if owner is not None:
                kept[EXTRA_PREFIX + key] = owner
        return {**values, 'extra': extra, 'field_owners': kept}


def upgrade() -> None:
    bind = op.get_bind()
    _accesses_table('accesses')
    facts = _account_facts(bind)
    members = bind.execute(sa.select(MEMBERSHIPS)).mappings().all()
    suspended = bind.execute(
        sa.select(SCIM_USERS).where(SCIM_USERS.c.suspended_roles.is_not(None))
    ).mappings().all()
    units: dict[str, set[str]] = {}
    for row in [*members, *suspended]:
        units.setdefault(row['account_id'], set()).add(row['unit_id'])
    place = _Placement(bind, units)
    used: set[str] = set()
    for row in members:
        mine = facts.get(row['account_id'])
        if mine is None:
            continue
        used.add(row['account_id'])
        bind.execute(sa.insert(ACCESSES).values(
            id=row['id'], account_id=row['account_id'], unit_id=row['unit_id'],
            roles=_json(row['roles'], []), status='active', created_at=row['created_at'],
            created_by_kind='migration', created_by_id=None,
            **place.facts(row['account_id'], row['unit_id'], mine),
        ))
    for row in suspended:
        mine = facts.get(row['account_id'])
        if mine is None:
            continue
        used.add(row['account_id'])
        roles = _json(row['suspended_roles'], [])
        found = bind.execute(sa.select(ACCESSES.c.id).where(
            ACCESSES.c.account_id == row['account_id'], ACCESSES.c.unit_id == row['unit_id']
        )).first()
        if found is not None:
            bind.execute(sa.update(ACCESSES).where(ACCESSES.c.id == found[0])
                         .values(status='suspended'))
            continue
        bind.execute(sa.insert(ACCESSES).values(
            id=idp.store.models.new_id(), account_id=row['account_id'],
            unit_id=row['unit_id'], roles=roles, status='suspended',
            created_at=row['joined_at'] or idp.store.models.utcnow(),
            created_by_kind='migration', created_by_id=None,
            **place.facts(row['account_id'], row['unit_id'], mine),
        ))
    dropped = [
        account_id for account_id, mine in facts.items()
        if account_id not in used
        and (any(mine[name] for name in FACTS) or mine['extra'])
    ]
    if dropped:
        print(f"0005: {len(dropped)} accounts without any unit had employer facts;"  # noqa: T201
              " they have no access to hold them and are dropped")
    for account_id, mine in facts.items():
        bind.execute(sa.update(ACCOUNTS).where(ACCOUNTS.c.id == account_id)
                     .values(field_owners=mine['personal_owners']))
    op.drop_table('memberships')
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.drop_column('suspended_roles')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('extra')
        batch_op.drop_column('department')
        batch_op.drop_column('personnel_number')
        batch_op.drop_column('cost_centre')


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(ACCESSES)).mappings().all()
    joined_suspended = {
        (r['account_id'], r['unit_id'])
        for r in bind.execute(
            sa.select(SCIM_USERS.c.account_id, SCIM_USERS.c.unit_id)
            .where(SCIM_USERS.c.joined_at.is_not(None))
        ).mappings()
    }
    problems: list[str] = []
    by_account: dict[str, list[Any]] = {}
    for row in rows:
        by_account.setdefault(row['account_id'], []).append(row)
        key = (row['account_id'], row['unit_id'])
        if row['status'] == 'suspended' and key in joined_suspended:
            pass
        elif row['status'] != 'active':
            problems.append(f"access {row['id']} is {row['status']}")
        if row['ends_at'] is not None:
            problems.append(f"access {row['id']} has an end date")
    merged: dict[str, dict[str, Any]] = {}
    for account_id, theirs in by_account.items():
        found_values: dict[str, Any] = {name: None for name in FACTS}
        extra: dict[str, Any] = {}
        owners: dict[str, Any] = {}
        clash: set[str] = set()
        for r in theirs:
            seen = {name: r[name] for name in FACTS if r[name] is not None}
            for name, value in _json(r['extra'], {}).items():
                seen[EXTRA_PREFIX + name] = value
            for name, value in seen.items():
                held = extra.get(name[len(EXTRA_PREFIX):]) if name.startswith(
                    EXTRA_PREFIX) else found_values[name]
                if held is not None and held != value:
                    clash.add(name)
                elif name.startswith(EXTRA_PREFIX):
                    extra[name[len(EXTRA_PREFIX):]] = value
                else:
                    found_values[name] = value
            for name, owner in _json(r['field_owners'], {}).items():
                if owners.get(name, owner) != owner:
                    clash.add(name)
                owners[name] = owner
        if clash:
            problems.append(f"account {account_id} has different facts in its units"
                            f" ({', '.join(sorted(clash))})")
            continue
        merged[account_id] = {**found_values, 'extra': extra, 'field_owners': owners}
    if problems:
        raise RuntimeError(
            "revision 0004 cannot hold these accesses (one account, one set of facts, "
            "no status but membership): " + "; ".join(problems[:20])
            + (f"; and {len(problems) - 20} more" if len(problems) > 20 else "")
        )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cost_centre', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('personnel_number', sa.String(length=100),
                                      nullable=True))
        batch_op.add_column(sa.Column('department', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('extra', sa.JSON(), nullable=True))
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suspended_roles', sa.JSON(), nullable=True))
    op.create_table(
        'memberships',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('roles', sa.JSON(), nullable=False),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'unit_id'),
    )
    accounts = bind.execute(sa.select(ACCOUNTS.c.id, ACCOUNTS.c.field_owners)).all()
    for account_id, owners in accounts:
        mine = merged.get(account_id)
        personal = _json(owners, {})
        values: dict[str, Any] = {'extra': {}, 'field_owners': personal}
        if mine is not None:
            values = {**{n: mine[n] for n in FACTS}, 'extra': mine['extra'],
                      'field_owners': {**personal, **mine['field_owners']}}
        bind.execute(sa.update(ACCOUNTS).where(ACCOUNTS.c.id == account_id).values(**values))
    for row in rows:
        if row['status'] == 'suspended':
            bind.execute(sa.update(SCIM_USERS).where(
                SCIM_USERS.c.account_id == row['account_id'],
                SCIM_USERS.c.unit_id == row['unit_id'],
            ).values(suspended_roles=_json(row['roles'], [])))
            continue
        bind.execute(sa.insert(MEMBERSHIPS).values(
            id=row['id'], account_id=row['account_id'], unit_id=row['unit_id'],
            roles=_json(row['roles'], []), created_at=row['created_at'],
        ))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.alter_column('extra', existing_type=sa.JSON(), nullable=False)
    op.drop_table('accesses')
