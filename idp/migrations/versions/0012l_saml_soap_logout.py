"""Logout reaches SAML SPs without a browser (issue 18, remaining gaps)

Revision ID: 0012l
Revises: 0012c
Create Date: 2026-12-06 12:30:00

``backchannel_logouts.kind``: ``oidc`` for a logout token (every existing row),
``saml`` for a SOAP LogoutRequest to a SAML service provider's SOAP
SingleLogoutService. Downgrade deletes the ``saml`` rows (the older code would send
them as logout tokens) and drops the column. The revision id is a string so the
integrator can rechain it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012l'
down_revision = '0012c'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('backchannel_logouts') as batch:
        batch.add_column(sa.Column('kind', sa.String(length=10), nullable=False,
                                   server_default='oidc'))


def downgrade() -> None:
    op.execute("DELETE FROM backchannel_logouts WHERE kind <> 'oidc'")
    with op.batch_alter_table('backchannel_logouts') as batch:
        batch.drop_column('kind')
