"""Accounts without an e-mail address (SCIM users with only a userName)

Revision ID: 0011s
Revises: 0011d (client options for PAR and DPoP)
Create Date: 2026-12-06 10:00:00

* ``accounts.email`` becomes nullable. RFC 7643 requires only ``userName``; an HR
  system provisions people without a mailbox, and their account keeps its roles and
  data without an address. The unique constraint stays: both SQLite and PostgreSQL
  let any number of rows hold NULL in a unique column.
* Downgrade gives each account without an address an undeliverable one
  (``no-email-<id>@pending.invalid``, RFC 2606), so nobody can receive a code for it,
  and makes the column NOT NULL again.

SQLite rebuilds ``accounts`` in batch mode and cannot carry 0008b's expression
indexes over by itself: they are made again after each rebuild (as in 0009s).

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011s'
down_revision = '0011d'
branch_labels = None
depends_on = None

PATTERN_INDEXES = {
    'ix_accounts_email_prefix': 'email',
    'ix_accounts_given_name_prefix': 'given_name',
    'ix_accounts_family_name_prefix': 'family_name',
}


def _restore_pattern_indexes() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for name, column in PATTERN_INDEXES.items():
            op.execute(f'CREATE INDEX IF NOT EXISTS {name} ON accounts ((lower({column})))')


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.alter_column('email', existing_type=sa.String(length=320), nullable=True)
    _restore_pattern_indexes()


def downgrade() -> None:
    conn = op.get_bind()
    accounts = sa.table('accounts', sa.column('id', sa.String), sa.column('email', sa.String))
    ids = conn.execute(sa.select(accounts.c.id).where(accounts.c.email.is_(None))).scalars()
    for account_id in list(ids):
        conn.execute(accounts.update().where(accounts.c.id == account_id)
                     .values(email=f'no-email-{account_id}@pending.invalid'))
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.alter_column('email', existing_type=sa.String(length=320), nullable=False)
    _restore_pattern_indexes()
