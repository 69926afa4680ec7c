"""Purchases, budgets and approvals (issue 17)

Revision ID: 0010b
Revises: 0010o
Create Date: 2026-12-06 09:00:00

* ``units.time_zone`` (IANA name, default ``UTC``): the calendar of budget periods.
* ``budgets``: limits per access, permission group, role or unit, in integer minor
  units of a currency, per month, quarter or year, with an optional per-order limit.
* ``budget_usage``: what each budget period has used (reserved plus spent), per
  person for personal budgets and as one pool for unit budgets.
* ``purchases``: merchants' purchase authorisations and their state.
* ``payment_methods``: the payment methods a unit allows at merchants.
* ``approvals``, ``approval_comments``: orders waiting for approval, their thread.

Downgrade drops the tables and the column. The revision id is a string so the
integrator can rechain it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from idp.store.models import UTCDateTime

revision = '0010b'
down_revision = '0010o'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), nullable=False,
                                      server_default='UTC'))
    op.create_table(
        'budgets',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('scope', sa.String(length=10), nullable=False),
        sa.Column('subject', sa.String(length=64), nullable=False),
        sa.Column('period', sa.String(length=10), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('per_order_minor', sa.BigInteger(), nullable=True),
        sa.Column('include_subunits', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('unit_id', 'scope', 'subject'),
    )
    op.create_index('ix_budgets_unit_id', 'budgets', ['unit_id'])
    op.create_table(
        'budget_usage',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('budget_id', sa.String(length=32), nullable=False),
        sa.Column('access_id', sa.String(length=32), nullable=False),
        sa.Column('period_start', sa.String(length=10), nullable=False),
        sa.Column('used_minor', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['budget_id'], ['budgets.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('budget_id', 'access_id', 'period_start'),
    )
    op.create_table(
        'purchases',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('access_id', sa.String(length=32), nullable=True),
        sa.Column('client_id', sa.String(length=100), nullable=False),
        sa.Column('order_ref', sa.String(length=200), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('amount_minor', sa.BigInteger(), nullable=False),
        sa.Column('lines', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('charges', sa.JSON(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_purchases_unit', 'purchases', ['unit_id', 'created_at', 'id'])
    op.create_index('ix_purchases_account', 'purchases', ['account_id', 'created_at', 'id'])
    op.create_index('ix_purchases_client_id', 'purchases', ['client_id'])
    op.create_table(
        'payment_methods',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('roles', sa.JSON(), nullable=False),
        sa.Column('min_budget_minor', sa.BigInteger(), nullable=True),
        sa.Column('max_budget_minor', sa.BigInteger(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('unit_id', 'kind'),
    )
    op.create_table(
        'approvals',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('purchase_id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('why', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('decided_by', sa.String(length=200), nullable=True),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.Column('decision_reason', sa.Text(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['purchase_id'], ['purchases.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('purchase_id'),
    )
    op.create_index('ix_approvals_unit_status', 'approvals', ['unit_id', 'status'])
    op.create_table(
        'approval_comments',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('approval_id', sa.String(length=32), nullable=False),
        sa.Column('author', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('internal', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['approval_id'], ['approvals.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_approval_comments_approval', 'approval_comments',
                    ['approval_id', 'created_at'])


def downgrade() -> None:
    op.drop_table('approval_comments')
    op.drop_table('approvals')
    op.drop_table('payment_methods')
    op.drop_table('purchases')
    op.drop_table('budget_usage')
    op.drop_index('ix_budgets_unit_id', table_name='budgets')
    op.drop_table('budgets')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
