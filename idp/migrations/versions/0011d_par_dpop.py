"""FAPI-grade client options and DPoP-bound refresh tokens (issue 18 item 6)

Revision ID: 0011d
Revises: 0011k
Create Date: 2026-12-06 10:10:00

* ``clients.require_pushed_authorization_requests`` (RFC 9126 §6) and
  ``clients.dpop_bound_access_tokens`` (RFC 9449 §5.2): booleans, false for every
  existing client.
* ``grants.dpop_jkt``: the DPoP key thumbprint a public client's refresh tokens are
  bound to (RFC 9449 §5); NULL for existing grants (not bound).

Downgrade drops the three columns. The revision id is a string so the integrator can
rechain it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011d'
down_revision = '0011k'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(sa.Column("require_pushed_authorization_requests", sa.Boolean(),
                                   nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("dpop_bound_access_tokens", sa.Boolean(),
                                   nullable=False, server_default=sa.false()))
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("dpop_jkt", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.drop_column("dpop_jkt")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("dpop_bound_access_tokens")
        batch.drop_column("require_pushed_authorization_requests")
