"""private_key_jwt clients may register a jwks_uri (issue 18, remaining gaps)

Revision ID: 0012m
Revises: 0012l
Create Date: 2026-12-06 12:45:00

``clients.jwks_uri``: where a ``private_key_jwt`` client publishes its JWK Set,
instead of registering ``jwks``. Downgrade drops the column (such clients are left
without keys: they cannot authenticate until keys are registered again). The revision
id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012m'
down_revision = '0012l'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('clients') as batch:
        batch.add_column(sa.Column('jwks_uri', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients') as batch:
        batch.drop_column('jwks_uri')
