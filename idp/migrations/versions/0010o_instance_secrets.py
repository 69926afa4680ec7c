"""Instance secrets: secrets of the installation kept sealed with the master key

Revision ID: 0010o
Revises: 0010w (standard peers)
Create Date: 2026-12-06 09:20:00

* ``instance_secrets`` (name, value_sealed, created_at): the key of the keyed hashes
  is stored here, sealed, by the first ``idp master-key rotate``, so that it outlives
  the master key it was derived from. Until then (and on a fresh install) it is derived
  from the master key as before; nothing to fill. Downgrade drops the table -- only
  safe before a master-key rotation (afterwards the hash key would be lost).

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa

import idp.store.models
from alembic import op

revision = '0010o'
down_revision = '0010w'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'instance_secrets',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('value_sealed', sa.Text(), nullable=False),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('instance_secrets')
