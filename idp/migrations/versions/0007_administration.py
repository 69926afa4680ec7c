"""Administration: customers' own data, access settings, admin API clients

Revision ID: 0007
Revises: 0006 (merchants)
Create Date: 2026-12-06 06:20:00

Additive only, so nodes of 0006 keep running beside nodes of this revision:

* ``units``: ``status`` (``active``), ``address`` (``{}``), ``vat_id``, ``given_name``
  and ``family_name`` (``''``): the data of a customer of kind company or person;
* ``accesses``: ``platform_access`` (true: every existing access could sign in),
  ``notifications`` (NULL: the defaults of the roles), ``details_sent_at`` (NULL);
* ``admin_clients`` (new): a client-credentials client of ``/api/v1`` and the unit it
  acts for (NULL: the whole operator).

Downgrade drops what upgrade added.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=False,
                                      server_default='active'))
        batch_op.add_column(sa.Column('address', sa.JSON(), nullable=False,
                                      server_default='{}'))
        batch_op.add_column(sa.Column('vat_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('given_name', sa.String(length=200), nullable=False,
                                      server_default=''))
        batch_op.add_column(sa.Column('family_name', sa.String(length=200), nullable=False,
                                      server_default=''))
    with op.batch_alter_table('accesses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('platform_access', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.add_column(sa.Column('notifications', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column(
            'details_sent_at', idp.store.models.UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        'admin_clients',
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('client_id'),
    )
    with op.batch_alter_table('admin_clients', schema=None) as batch_op:
        batch_op.create_index('ix_admin_clients_unit_id', ['unit_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('admin_clients', schema=None) as batch_op:
        batch_op.drop_index('ix_admin_clients_unit_id')
    op.drop_table('admin_clients')
    with op.batch_alter_table('accesses', schema=None) as batch_op:
        batch_op.drop_column('details_sent_at')
        batch_op.drop_column('notifications')
        batch_op.drop_column('platform_access')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('family_name')
        batch_op.drop_column('given_name')
        batch_op.drop_column('vat_id')
        batch_op.drop_column('address')
        batch_op.drop_column('status')
