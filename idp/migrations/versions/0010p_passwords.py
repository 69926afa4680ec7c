"""Passwords: the unit policy ``passwords_allowed`` and the accounts' password
credentials (issue 13, item 1)

Revision ID: 0010p
Revises: 0009s (standard peers)
Create Date: 2026-12-06 09:00:00

* ``units.passwords_allowed`` (boolean, default false): members holding an active
  access may also sign in with a password. Existing units keep e-mail codes only.
  Downgrade drops the column.
* ``password_credentials`` (one row per account that has a password): the argon2id
  hash and the status (``initial``, ``reset_by_staff``, ``set_by_user``). Downgrade
  drops the table, and with it every password.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0010p'
down_revision = '0009s'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('passwords_allowed', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
    op.create_table(
        'password_credentials',
        sa.Column('account_id', sa.String(length=32), nullable=False),
        sa.Column('hash', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('updated_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('account_id'),
    )


def downgrade() -> None:
    op.drop_table('password_credentials')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('passwords_allowed')
