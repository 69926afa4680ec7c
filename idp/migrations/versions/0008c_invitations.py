"""Invitations: single-use registration links with an optional SMS code

Revision ID: 0008c
Revises: 0008b (access list indexes)
Create Date: 2026-12-06 06:30:00

Additive only: a new table ``invitations``, one row per invitation sent for an
access (``idp.accounts.invites``). The link's token and the SMS code are stored only
as keyed hashes. Downgrade drops the table.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0008c'
down_revision = '0008b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'invitations',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('access_id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('sms_code_hash', sa.String(length=64), nullable=True),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('expires_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('sent_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('used_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('revoked_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(['access_id'], ['accesses.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index('ix_invitations_access_id', ['access_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index('ix_invitations_access_id')
    op.drop_table('invitations')
