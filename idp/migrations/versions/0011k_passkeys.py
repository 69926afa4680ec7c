"""Passkeys (WebAuthn Level 3; issue 18 item 7)

Revision ID: 0011k
Revises: 0011a
Create Date: 2026-12-06 10:00:00

* ``passkey_handles``: one random WebAuthn user handle per account.
* ``passkey_credentials``: registered passkeys (credential id, COSE public key,
  signature counter, backup flags, name, created / last used).
* ``units.passkey_counts_as_fresh``: whether a passkey with user verification counts
  as the new code of ``fresh_code_every_sign_in``.

Downgrade drops the tables and the column. The revision id is a string so the
integrator can rechain it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from idp.store.models import UTCDateTime

revision = '0011k'
down_revision = '0011a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('passkey_counts_as_fresh', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.create_table(
        'passkey_handles',
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('handle', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('account_id'),
        sa.UniqueConstraint('handle'),
    )
    op.create_table(
        'passkey_credentials',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('credential_id', sa.String(length=1400), nullable=False),
        sa.Column('public_key', sa.Text(), nullable=False),
        sa.Column('sign_count', sa.BigInteger(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('aaguid', sa.String(length=36), nullable=False),
        sa.Column('backup_eligible', sa.Boolean(), nullable=False),
        sa.Column('backup_state', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('last_used_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('credential_id'),
    )
    op.create_index('ix_passkey_credentials_account_id', 'passkey_credentials',
                    ['account_id'])


def downgrade() -> None:
    op.drop_index('ix_passkey_credentials_account_id', table_name='passkey_credentials')
    op.drop_table('passkey_credentials')
    op.drop_table('passkey_handles')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('passkey_counts_as_fresh')
