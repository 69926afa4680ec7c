"""Merchant webhook endpoints (issue 17, item 3)

Revision ID: 0011m
Revises: 0010b
Create Date: 2026-12-06 10:00:00

* ``webhook_endpoints.client_id``: nullable, references ``clients.id`` (the primary
  key; the public ``client_id`` is resolved at the edges), ``ON DELETE CASCADE``, indexed.
* ``webhook_endpoints.unit_id`` becomes nullable; the check
  ``ck_webhook_endpoints_one_owner`` requires exactly one of the two. Existing rows
  all have a unit and no client, so they satisfy it.
* ``webhook_deliveries.unit_id`` becomes nullable (a merchant's deliveries have no unit).

Downgrade deletes the merchant endpoints (with their deliveries and attempt log),
then restores the columns as they were.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011m'
down_revision = '0010b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_id', sa.String(length=32), nullable=True))
        batch_op.alter_column('unit_id', existing_type=sa.String(length=32), nullable=True)
        batch_op.create_foreign_key('fk_webhook_endpoints_client_id', 'clients',
                                    ['client_id'], ['id'], ondelete='CASCADE')
        batch_op.create_index('ix_webhook_endpoints_client_id', ['client_id'])
        batch_op.create_check_constraint(
            'ck_webhook_endpoints_one_owner', '(unit_id IS NULL) <> (client_id IS NULL)'
        )
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.alter_column('unit_id', existing_type=sa.String(length=32), nullable=True)


def downgrade() -> None:
    merchant = "SELECT id FROM webhook_endpoints WHERE client_id IS NOT NULL"
    op.execute(f"DELETE FROM webhook_attempts WHERE endpoint_id IN ({merchant})")
    op.execute(f"DELETE FROM webhook_deliveries WHERE endpoint_id IN ({merchant})")
    op.execute("DELETE FROM webhook_endpoints WHERE client_id IS NOT NULL")
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.alter_column('unit_id', existing_type=sa.String(length=32), nullable=False)
    with op.batch_alter_table('webhook_endpoints', schema=None) as batch_op:
        batch_op.drop_constraint('ck_webhook_endpoints_one_owner', type_='check')
        batch_op.drop_index('ix_webhook_endpoints_client_id')
        batch_op.drop_constraint('fk_webhook_endpoints_client_id', type_='foreignkey')
        batch_op.drop_column('client_id')
        batch_op.alter_column('unit_id', existing_type=sa.String(length=32), nullable=False)
