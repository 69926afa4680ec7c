"""Approval policies per unit and the chain of each approval

Revision ID: 0011a
Revises: 0011m
Create Date: 2026-12-06 10:00:00

* ``approval_policies``: one row per unit that sets its own policy (currency, the
  ascending threshold steps as JSON, the expiry in hours or NULL for the setting).
* ``approval_chains``: one row per approval opened from 0011a on (the steps fixed
  at opening, the index of the current step, the decisions so far). Approvals
  without a row are one step decided by the manager or an ``approvals.decide``
  holder, as before.

Downgrade drops both tables; pending multi-step approvals then become single-step.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0011a'
down_revision = '0011m'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'approval_policies',
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('steps', sa.JSON(), nullable=False),
        sa.Column('expiry_hours', sa.Integer(), nullable=True),
        sa.Column('updated_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('unit_id'),
    )
    op.create_table(
        'approval_chains',
        sa.Column('approval_id', sa.String(length=32), nullable=False),
        sa.Column('steps', sa.JSON(), nullable=False),
        sa.Column('current', sa.Integer(), nullable=False),
        sa.Column('decisions', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['approval_id'], ['approvals.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('approval_id'),
    )


def downgrade() -> None:
    op.drop_table('approval_chains')
    op.drop_table('approval_policies')
