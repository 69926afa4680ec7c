"""console CSV imports run in the background with progress (issue 14)

Revision ID: 0012p
Revises: 0012m
Create Date: 2026-12-06 13:15:00

``access_imports``: an uploaded CSV import of a unit's accesses, claimed by a
background worker with a lease, with its progress and report. Downgrade drops the
table (imports not yet run are lost). The revision id is a string so the integrator
can rechain it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0012p'
down_revision = '0012m'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'access_imports',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('dry_run', sa.Boolean(), nullable=False),
        sa.Column('data', sa.LargeBinary(), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', idp.store.models.UTCDateTime(timezone=True),
                  nullable=False),
        sa.Column('rows_total', sa.Integer(), nullable=False),
        sa.Column('rows_done', sa.Integer(), nullable=False),
        sa.Column('report', sa.JSON(), nullable=True),
        sa.Column('failure', sa.Text(), nullable=True),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('finished_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('access_imports') as batch:
        batch.create_index('ix_access_imports_due', ['status', 'next_attempt_at'])
        batch.create_index(batch.f('ix_access_imports_unit_id'), ['unit_id'])


def downgrade() -> None:
    op.drop_table('access_imports')
