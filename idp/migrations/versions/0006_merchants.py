"""Merchants: one record behind each OIDC client and SAML SP, real foreign keys

Revision ID: 0006
Revises: 0005 (accesses)
Create Date: 2026-12-06 03:00:00

``merchants`` (id, name, protocol, identifier, status, created_at, removed_at) gets one
active row per client (protocol ``oidc``, identifier = client_id, the client's name)
and per SAML SP (``saml``, entity ID, the SP's name); ``clients.merchant_id`` and
``saml_service_providers.merchant_id`` (NOT NULL, unique) point to them.

``consents.client_id`` and ``sign_ins.client_id`` (an OIDC client_id or a SAML entity
ID, free strings) become ``merchant_id`` foreign keys (the tables are rebuilt; the
unique pair of consents is now (account, merchant)); ``grants`` keeps its
``client_id`` (the tokens' binding) and gains ``merchant_id``. A string that names no
registered client or SP (the history of a deleted one) gets a merchant of its own
with status ``removed``, its identifier and name the old string (what the dashboard
showed for it), so no row is lost. Its protocol: ``oidc`` for grants; a sign-in's own
protocol; for a consent, the protocol of a sign-in with the same string, else
``saml`` when the string looks like an entity ID (contains ``:``), else ``oidc``.
Strings are matched exactly; OIDC first where a string is both. History older than
the registration that now holds its string (an SP deleted and registered again under
its entity ID) belongs to the earlier registration: it goes to a ``removed`` merchant
of that identifier, so the new party inherits no consent given to the old one.

Downgrade restores the strings from the merchants' identifiers and drops the
merchants. Where an entity ID was registered again after its SP was deleted (two
merchants, one identifier), an account's consents to both collapse into the most
recently changed one (0005's unique (account, client_id) cannot hold two).

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

UTC_TS = idp.store.models.UTCDateTime(timezone=True)


def _refuse_sqlite_foreign_keys(bind: sa.engine.Connection) -> None:
    """Batch mode rebuilds ``grants`` and ``saml_service_providers`` on SQLite; with
    foreign keys enforced, dropping the old copy would cascade into refresh tokens and
    SLO participants. Alembic's own engine never enables them; refuse if someone did."""
    if bind.dialect.name == 'sqlite' and bind.exec_driver_sql('PRAGMA foreign_keys').scalar():
        raise RuntimeError('run this migration with PRAGMA foreign_keys=OFF')


def _merchants_table() -> None:
    op.create_table(
        'merchants',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('protocol', sa.String(length=10), nullable=False),
        sa.Column('identifier', sa.String(length=500), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('created_at', UTC_TS, nullable=False),
        sa.Column('removed_at', UTC_TS, nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_merchants_identifier', 'merchants', ['identifier'], unique=False)


MERCHANTS = sa.table(
    'merchants',
    sa.column('id', sa.String()), sa.column('name', sa.String()),
    sa.column('protocol', sa.String()), sa.column('identifier', sa.String()),
    sa.column('status', sa.String()), sa.column('created_at', UTC_TS),
    sa.column('removed_at', UTC_TS),
)


def _new_id() -> str:
    return uuid.uuid4().hex


def _fill_merchants(bind: sa.engine.Connection) -> None:
    """One active merchant per client and SP, one removed merchant per orphan string."""
    rows: list[dict[str, Any]] = []
    known: set[tuple[str, str]] = set()
    registered: dict[tuple[str, str], datetime] = {}
    for table, protocol, ident in (('clients', 'oidc', 'client_id'),
                                   ('saml_service_providers', 'saml', 'entity_id')):
        t = sa.table(table, sa.column(ident, sa.String()), sa.column('name', sa.String()),
                     sa.column('created_at', UTC_TS))
        for identifier, name, created in bind.execute(
                sa.select(t.c[ident], t.c.name, t.c.created_at)):
            rows.append({'id': _new_id(), 'name': name, 'protocol': protocol,
                         'identifier': identifier, 'status': 'active', 'created_at': created,
                         'removed_at': None})
            known.add((protocol, identifier))
            registered[(protocol, identifier)] = _aware(created) or datetime.now(UTC)
    now = datetime.now(UTC)
    orphans: dict[tuple[str, str], datetime] = {}

    def orphan(protocol: str, identifier: str, at: datetime) -> None:
        """History of ``identifier`` from ``at`` on that no registration holds: none
        has it, or the one that has it came later (an SP deleted and registered again
        under its entity ID: the history is the earlier registration's)."""
        key = (protocol, identifier)
        if key in known and at >= registered[key]:
            return
        if key not in orphans or at < orphans[key]:
            orphans[key] = at

    def lookup(protocol: str, identifier: str) -> bool:
        return (protocol, identifier) in known or (protocol, identifier) in orphans

    for identifier, at in bind.execute(sa.text(
            'SELECT client_id, MIN(created_at) FROM grants GROUP BY client_id')):
        orphan('oidc', identifier, _aware(at) or now)
    signed: dict[str, str] = {}
    for identifier, protocol, at in bind.execute(sa.text(
            'SELECT client_id, protocol, MIN(at) FROM sign_ins GROUP BY client_id, protocol')):
        protocol = 'saml' if protocol == 'saml' else 'oidc'
        signed.setdefault(identifier, protocol)
        orphan(protocol, identifier, _aware(at) or now)
    for identifier, at in bind.execute(sa.text(
            'SELECT client_id, MIN(granted_at) FROM consents GROUP BY client_id')):
        held = [p for p in ('oidc', 'saml') if (p, identifier) in known]
        if held:
            orphan(held[0], identifier, _aware(at) or now)
            continue
        if lookup('oidc', identifier) or lookup('saml', identifier):
            continue
        protocol = signed.get(identifier) or ('saml' if ':' in identifier else 'oidc')
        orphan(protocol, identifier, _aware(at) or now)
    for (protocol, identifier), at in sorted(orphans.items()):
        rows.append({'id': _new_id(), 'name': identifier[:200], 'protocol': protocol,
                     'identifier': identifier, 'status': 'removed', 'created_at': at,
                     'removed_at': now})
    if rows:
        bind.execute(MERCHANTS.insert(), rows)


def _aware(value: Any) -> datetime | None:
    """A MIN() over a timestamp column, as an aware datetime (SQLite returns text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# The merchant for a row's string: exact match, OIDC preferred (a consent names no
# protocol); the active registration only for history from its creation on (``at``: the
# row's time), earlier history to the removed merchant of that identifier.
def _merchant_for(column: str, protocol: str | None = None, at: str | None = None) -> str:
    where = f'm.identifier = {column}'
    if protocol is not None:
        where += f" AND m.protocol = {protocol}"
    if at and op.get_bind().dialect.name == 'sqlite':  # timestamps are text there
        at_or_after = f' AND julianday(m.created_at) <= julianday({at})'
    else:
        at_or_after = f' AND m.created_at <= {at}' if at else ''
    current = "m.status = 'active'" + at_or_after
    choices = [current, "m.status = 'removed'", "m.status = 'active'"]
    # (SQLite does not let a subquery's ORDER BY see the outer row: one subquery per
    # preference, the first that finds one wins)
    return 'COALESCE(' + ', '.join(
        f'(SELECT m.id FROM merchants m WHERE {where} AND {choice}'
        " ORDER BY CASE WHEN m.protocol = 'oidc' THEN 0 ELSE 1 END LIMIT 1)"
        for choice in choices
    ) + ')'


def _link_registrations() -> None:
    for table, protocol, ident in (('clients', 'oidc', 'client_id'),
                                   ('saml_service_providers', 'saml', 'entity_id')):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column('merchant_id', sa.String(length=32), nullable=True))
        op.execute(f'UPDATE {table} SET merchant_id = '
                   + _merchant_for(f'{table}.{ident}', f"'{protocol}'"))
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column('merchant_id', existing_type=sa.String(length=32),
                                  nullable=False)
            batch_op.create_unique_constraint(f'uq_{table}_merchant_id', ['merchant_id'])
            batch_op.create_foreign_key(f'fk_{table}_merchant_id', 'merchants',
                                        ['merchant_id'], ['id'])


def _link_grants() -> None:
    with op.batch_alter_table('grants') as batch_op:
        batch_op.add_column(sa.Column('merchant_id', sa.String(length=32), nullable=True))
    op.execute('UPDATE grants SET merchant_id = ' + _merchant_for('grants.client_id', "'oidc'"))
    with op.batch_alter_table('grants') as batch_op:
        batch_op.alter_column('merchant_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_index('ix_grants_merchant_id', ['merchant_id'], unique=False)
        batch_op.create_foreign_key('fk_grants_merchant_id', 'merchants', ['merchant_id'], ['id'])


def _rename_old(bind: sa.engine.Connection, table: str, indexes: list[str]) -> None:
    for index in indexes:
        op.drop_index(index, table_name=table)
    op.rename_table(table, f'{table}_old')
    if bind.dialect.name == 'postgresql':
        op.execute(f'ALTER TABLE {table}_old RENAME CONSTRAINT {table}_pkey TO {table}_old_pkey')


def _consents(reference: sa.Column[Any], unique: str) -> None:
    op.create_table(
        'consents',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        reference,
        sa.Column('scopes', sa.JSON(), nullable=False),
        sa.Column('claims', sa.JSON(), nullable=False),
        sa.Column('granted_at', UTC_TS, nullable=False),
        sa.Column('updated_at', UTC_TS, nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        *([sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'])]
          if unique == 'merchant_id' else []),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', unique),
    )


def _sign_ins(reference: sa.Column[Any]) -> None:
    op.create_table(
        'sign_ins',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        reference,
        sa.Column('unit_id', sa.String(length=32), nullable=True),
        sa.Column('protocol', sa.String(length=10), nullable=False),
        sa.Column('released', sa.JSON(), nullable=False),
        sa.Column('at', UTC_TS, nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        *([sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'])]
          if reference.name == 'merchant_id' else []),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_sign_ins_account_id', 'sign_ins', ['account_id'], unique=False)


def upgrade() -> None:
    bind = op.get_bind()
    _refuse_sqlite_foreign_keys(bind)
    _merchants_table()
    _fill_merchants(bind)
    _link_registrations()
    _link_grants()

    _rename_old(bind, 'consents', [])
    _consents(sa.Column('merchant_id', sa.String(length=32), nullable=False), 'merchant_id')
    op.create_index('ix_consents_merchant_id', 'consents', ['merchant_id'], unique=False)
    op.execute(
        'INSERT INTO consents (id, account_id, merchant_id, scopes, claims, granted_at,'
        ' updated_at) SELECT c.id, c.account_id, '
        + _merchant_for('c.client_id', at='c.granted_at')
        + ', c.scopes, c.claims, c.granted_at, c.updated_at FROM consents_old c'
    )
    op.drop_table('consents_old')

    _rename_old(bind, 'sign_ins', ['ix_sign_ins_account_id'])
    _sign_ins(sa.Column('merchant_id', sa.String(length=32), nullable=False))
    op.create_index('ix_sign_ins_merchant_id', 'sign_ins', ['merchant_id'], unique=False)
    op.execute(
        'INSERT INTO sign_ins (id, account_id, merchant_id, unit_id, protocol, released, at)'
        ' SELECT s.id, s.account_id, '
        + _merchant_for('s.client_id',
                        "(CASE WHEN s.protocol = 'saml' THEN 'saml' ELSE 'oidc' END)",
                        's.at')
        + ', s.unit_id, s.protocol, s.released, s.at FROM sign_ins_old s'
    )
    op.drop_table('sign_ins_old')


def downgrade() -> None:
    bind = op.get_bind()
    _refuse_sqlite_foreign_keys(bind)

    op.drop_index('ix_sign_ins_merchant_id', table_name='sign_ins')
    _rename_old(bind, 'sign_ins', ['ix_sign_ins_account_id'])
    _sign_ins(sa.Column('client_id', sa.String(length=500), nullable=False))
    op.execute(
        'INSERT INTO sign_ins (id, account_id, client_id, unit_id, protocol, released, at)'
        ' SELECT s.id, s.account_id, m.identifier, s.unit_id, s.protocol, s.released, s.at'
        ' FROM sign_ins_old s JOIN merchants m ON m.id = s.merchant_id'
    )
    op.drop_table('sign_ins_old')

    op.drop_index('ix_consents_merchant_id', table_name='consents')
    _rename_old(bind, 'consents', [])
    _consents(sa.Column('client_id', sa.String(length=500), nullable=False), 'client_id')
    # One consent per (account, identifier): the most recently changed wins where an
    # entity ID was registered again (two merchants, one identifier).
    op.execute(
        'INSERT INTO consents (id, account_id, client_id, scopes, claims, granted_at,'
        ' updated_at) SELECT c.id, c.account_id, m.identifier, c.scopes, c.claims,'
        ' c.granted_at, c.updated_at FROM consents_old c JOIN merchants m'
        ' ON m.id = c.merchant_id WHERE NOT EXISTS (SELECT 1 FROM consents_old c2'
        ' JOIN merchants m2 ON m2.id = c2.merchant_id WHERE c2.account_id = c.account_id'
        ' AND m2.identifier = m.identifier AND (c2.updated_at > c.updated_at'
        ' OR (c2.updated_at = c.updated_at AND c2.id > c.id)))'
    )
    op.drop_table('consents_old')

    with op.batch_alter_table('grants') as batch_op:
        batch_op.drop_constraint('fk_grants_merchant_id', type_='foreignkey')
        batch_op.drop_index('ix_grants_merchant_id')
        batch_op.drop_column('merchant_id')
    for table in ('saml_service_providers', 'clients'):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_merchant_id', type_='foreignkey')
            batch_op.drop_constraint(f'uq_{table}_merchant_id', type_='unique')
            batch_op.drop_column('merchant_id')
    op.drop_index('ix_merchants_identifier', table_name='merchants')
    op.drop_table('merchants')
