"""Webhooks: endpoints per unit, their deliveries and the log of attempts

Revision ID: 0010w
Revises: 0010i
Create Date: 2026-12-06 09:00:00

* ``webhook_endpoints``: a unit's receiver (URL, event types, enabled, the sealed
  signing secret and, during a rotation, the previous one with its end).
* ``webhook_deliveries``: one event for one endpoint; its id is the ``webhook-id``.
  Claimed with leases like the outbox (index on status and due time).
* ``webhook_attempts``: one row per delivery attempt (status, duration, error).

Downgrade drops the three tables (their data with them).

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0010w'
down_revision = '0010i'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'webhook_endpoints',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('events', sa.JSON(), nullable=True),
        sa.Column('description', sa.String(length=500), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('secret_sealed', sa.Text(), nullable=False),
        sa.Column('previous_secret_sealed', sa.Text(), nullable=True),
        sa.Column('previous_secret_until', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('failing_since', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('disabled_reason', sa.String(length=40), nullable=True),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_endpoints_unit_id', 'webhook_endpoints', ['unit_id'])
    op.create_table(
        'webhook_deliveries',
        sa.Column('id', sa.String(length=40), nullable=False),
        sa.Column('endpoint_id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('event_type', sa.String(length=100), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('timestamp', sa.BigInteger(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sent_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['endpoint_id'], ['webhook_endpoints.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_deliveries_due', 'webhook_deliveries',
                    ['status', 'next_attempt_at'])
    op.create_index('ix_webhook_deliveries_endpoint', 'webhook_deliveries',
                    ['endpoint_id', 'created_at', 'id'])
    op.create_table(
        'webhook_attempts',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('delivery_id', sa.String(length=40), nullable=False),
        sa.Column('endpoint_id', sa.String(length=32), nullable=False),
        sa.Column('at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('status_code', sa.Integer(), nullable=True),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('response', sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(['delivery_id'], ['webhook_deliveries.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_webhook_attempts_delivery', 'webhook_attempts', ['delivery_id', 'at'])


def downgrade() -> None:
    op.drop_index('ix_webhook_attempts_delivery', table_name='webhook_attempts')
    op.drop_table('webhook_attempts')
    op.drop_index('ix_webhook_deliveries_endpoint', table_name='webhook_deliveries')
    op.drop_index('ix_webhook_deliveries_due', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_webhook_endpoints_unit_id', table_name='webhook_endpoints')
    op.drop_table('webhook_endpoints')
