"""RP logout: OIDC Back-Channel and Front-Channel Logout (issue 18 item 3)

Revision ID: 0011l
Revises: 0011s
Create Date: 2026-12-06 10:00:00

* ``client_logout_channels``: a client's back-channel and front-channel logout URIs
  and whether each requires the session id.
* ``oidc_session_participants``: the clients that took part in each browser session.
* ``backchannel_logouts``: the leased queue of logout tokens to POST.

Downgrade drops the tables. The revision id is a string so the integrator can rechain
it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0011l'
down_revision = '0011s'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'client_logout_channels',
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('backchannel_logout_uri', sa.Text(), nullable=True),
        sa.Column('backchannel_logout_session_required', sa.Boolean(), nullable=False),
        sa.Column('frontchannel_logout_uri', sa.Text(), nullable=True),
        sa.Column('frontchannel_logout_session_required', sa.Boolean(), nullable=False),
        sa.Column('updated_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('client_id'),
    )
    op.create_table(
        'oidc_session_participants',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('session_id_hash', sa.String(length=128), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('account_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['session_id_hash'], ['sessions.id_hash'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['client_id'], ['clients.client_id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('session_id_hash', 'client_id'),
    )
    op.create_index('ix_oidc_session_participants_session_id_hash',
                    'oidc_session_participants', ['session_id_hash'])
    op.create_table(
        'backchannel_logouts',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('client_id', sa.String(length=64), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.Column('claims', sa.JSON(), nullable=False),
        sa.Column('alg', sa.String(length=10), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=True),
        sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('sent_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_backchannel_logouts_due', 'backchannel_logouts',
                    ['status', 'next_attempt_at'])


def downgrade() -> None:
    op.drop_index('ix_backchannel_logouts_due', table_name='backchannel_logouts')
    op.drop_table('backchannel_logouts')
    op.drop_index('ix_oidc_session_participants_session_id_hash',
                  table_name='oidc_session_participants')
    op.drop_table('oidc_session_participants')
    op.drop_table('client_logout_channels')
