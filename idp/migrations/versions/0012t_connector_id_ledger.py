"""a deleted connector's id is never given to another connector

Revision ID: 0012t
Revises: 0012s
Create Date: 2026-12-06 15:30:00

``connector_id_ledger``: every id a connector was ever created under, kept when the
connector is deleted (its callback, ACS and metadata URLs embed the id). Upgrade
fills it with the ids of the connectors that exist and of those the audit log shows
created or deleted before (``connector.create``/``connector.delete``), so ids
retired before this revision are not given again either. Downgrade drops the table
(connectors stay; their ids could be reused again). The revision id is a string so
the integrator can rechain it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0012t'
down_revision = "0012s"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'connector_id_ledger',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.execute(
        "INSERT INTO connector_id_ledger (id, unit_id, created_at)"
        " SELECT id, unit_id, created_at FROM connectors"
    )
    op.execute(
        "INSERT INTO connector_id_ledger (id, unit_id, created_at)"
        " SELECT target, MIN(unit_id), MIN(at) FROM audit_events"
        " WHERE action IN ('connector.create', 'connector.delete')"
        " AND target IS NOT NULL AND LENGTH(target) <= 32"
        " AND target NOT IN (SELECT id FROM connectors)"
        " GROUP BY target"
    )


def downgrade() -> None:
    op.drop_table('connector_id_ledger')
