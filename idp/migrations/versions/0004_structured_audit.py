"""Audit events: structured actor, unit, and a sequence number for exporters

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 02:00:00

``audit_events`` gets ``seq``, its new primary key, an integer the database assigns
(PostgreSQL IDENTITY, SQLite AUTOINCREMENT rowid); ``id`` stays as a unique string.
Also ``actor_kind``/``actor_id``/``on_behalf_of`` (the structured actor; ``actor`` keeps
the readable string) and ``unit_id`` (indexed, no foreign key: events outlive units).

The table is rebuilt (a primary key cannot change in place on SQLite): existing rows
get ``seq`` 1, 2, ... in ``at`` order (ties by id), their structured actor parsed from
the old string by :func:`idp.audit.parse_actor`, ``unit_id`` (and ``on_behalf_of``)
from their details when present. Downgrade rebuilds the old table and keeps ``unit_id``
and ``on_behalf_of`` in the details, so nothing is lost but the numbering (a new
upgrade numbers again: exporters start over from 0).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

BATCH = 1000


def _old_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column('at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.Column('action', sa.String(length=100), nullable=False),
        sa.Column('target', sa.String(length=200), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('request_id', sa.String(length=64), nullable=True),
    ]


def _rename_old(bind: sa.engine.Connection) -> None:
    op.rename_table('audit_events', 'audit_events_old')
    op.drop_index('ix_audit_events_at', table_name='audit_events_old')
    if bind.dialect.name == 'postgresql':
        op.execute('ALTER TABLE audit_events_old RENAME CONSTRAINT audit_events_pkey'
                   ' TO audit_events_old_pkey')


def _renamed(*extra: sa.ColumnClause[Any]) -> sa.TableClause:
    """The renamed table, typed (timestamps and JSON read the same on both databases)."""
    return sa.table(
        'audit_events_old',
        sa.column('id', sa.String()),
        sa.column('at', idp.store.models.UTCDateTime(timezone=True)),
        sa.column('actor', sa.String()),
        sa.column('action', sa.String()),
        sa.column('target', sa.String()),
        sa.column('details', sa.JSON()),
        sa.column('request_id', sa.String()),
        *extra,
    )


def upgrade() -> None:
    from idp.audit import parse_actor

    bind = op.get_bind()
    _rename_old(bind)
    table = op.create_table(
        'audit_events',
        sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), sa.Identity(),
                  nullable=False),
        sa.Column('id', sa.String(length=32), nullable=False),
        *_old_columns(),
        sa.Column('actor_kind', sa.String(length=20), nullable=False),
        sa.Column('actor_id', sa.String(length=200), nullable=True),
        sa.Column('on_behalf_of', sa.String(length=32), nullable=True),
        sa.Column('unit_id', sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint('seq'),
        sa.UniqueConstraint('id'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_audit_events_at', 'audit_events', ['at'], unique=False)
    op.create_index('ix_audit_events_unit_id', 'audit_events', ['unit_id'], unique=False)

    seq = 0
    batch: list[dict[str, Any]] = []
    old = _renamed()
    for row in bind.execute(sa.select(old).order_by(old.c.at, old.c.id)).mappings():
        seq += 1
        details = dict(row['details'] or {})
        actor = parse_actor(row['actor'])
        unit_id, behalf = details.get('unit_id'), details.get('on_behalf_of')
        batch.append({
            **row, 'seq': seq, 'details': details, 'actor_kind': actor.kind,
            'actor_id': actor.id,
            'on_behalf_of': behalf if isinstance(behalf, str) else None,
            'unit_id': unit_id[:32] if isinstance(unit_id, str) else None,
        })
        if len(batch) >= BATCH:
            bind.execute(table.insert(), batch)
            batch = []
    if batch:
        bind.execute(table.insert(), batch)
    if bind.dialect.name == 'postgresql':
        op.execute(f'ALTER TABLE audit_events ALTER COLUMN seq RESTART WITH {seq + 1}')
    op.drop_table('audit_events_old')


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index('ix_audit_events_unit_id', table_name='audit_events')
    _rename_old(bind)
    table = op.create_table(
        'audit_events',
        sa.Column('id', sa.String(length=32), nullable=False),
        *_old_columns(),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_events_at', 'audit_events', ['at'], unique=False)
    old = _renamed(sa.column('seq', sa.Integer()), sa.column('unit_id', sa.String()),
                   sa.column('on_behalf_of', sa.String()))
    batch: list[dict[str, Any]] = []
    for row in bind.execute(sa.select(old).order_by(old.c.seq)).mappings():
        details = dict(row['details'] or {})
        for name in ('unit_id', 'on_behalf_of'):
            if row[name] is not None:
                details.setdefault(name, row[name])
        batch.append({
            k: v for k, v in row.items() if k not in ('seq', 'unit_id', 'on_behalf_of')
        } | {'details': details})
        if len(batch) >= BATCH:
            bind.execute(table.insert(), batch)
            batch = []
    if batch:
        bind.execute(table.insert(), batch)
    op.drop_table('audit_events_old')
