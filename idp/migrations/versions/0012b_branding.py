"""Branding: merchant and company logos and colours (issue 16 item 5)

Revision ID: 0012b
Revises: 0011l
Create Date: 2026-12-06 12:30:00

* ``brandings``: one row per merchant or per unit (exactly one of the two), with the
  logo's bytes, type, SHA-256, dimensions, and a merchant's colours.

Downgrade drops the table. The revision id is a string so the integrator can rechain
it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0012b'
down_revision = '0011l'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'brandings',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('merchant_id', sa.String(length=32), nullable=True),
        sa.Column('unit_id', sa.String(length=32), nullable=True),
        sa.Column('updated_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('logo', sa.LargeBinary(), nullable=True),
        sa.Column('logo_width', sa.Integer(), nullable=True),
        sa.Column('logo_height', sa.Integer(), nullable=True),
        sa.Column('logo_type', sa.String(length=20), nullable=True),
        sa.Column('logo_sha256', sa.String(length=64), nullable=True),
        *(sa.Column(name, sa.String(length=7), nullable=True)
          for name in ('primary_color', 'background_color')),
        sa.CheckConstraint('(merchant_id IS NULL) <> (unit_id IS NULL)',
                           name='ck_brandings_one_owner'),
        sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id']),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('merchant_id'),
        sa.UniqueConstraint('unit_id'),
    )
    op.create_index('ix_brandings_logo_sha256', 'brandings', ['logo_sha256'])


def downgrade() -> None:
    op.drop_index('ix_brandings_logo_sha256', table_name='brandings')
    op.drop_table('brandings')
