"""Standard peers: locale as a full BCP 47 tag, and the unit policy
``fresh_code_every_sign_in``

Revision ID: 0009s
Revises: 0009p (customer list indexes)
Create Date: 2026-12-06 07:10:00

* ``accounts.locale`` widens from 10 to 35 characters: a BCP 47 language tag such as
  ``sr-Latn-RS-u-nu-latn`` (RFC 5646 section 4.4.1 advises 35 as the minimum buffer).
  Downgrade shortens it again: tags longer than 10 characters are cut to their first
  subtags that fit (never cut in the middle of a subtag), so no row is refused.
* ``units.fresh_code_every_sign_in`` (boolean, default false): every authorisation
  request for the unit's members asks for a new code or a new upstream sign-in.
  Downgrade drops the column.
* ``grants.claims_request`` (JSON, nullable): the ``claims`` request parameter
  (OIDC Core section 5.5) of the authorization, for UserInfo and refreshed ID tokens.
  Existing grants have none. Downgrade drops the column.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009s'
down_revision = '0009p'
branch_labels = None
depends_on = None


# 0008b's prefix indexes on expressions of ``accounts``: SQLite's batch mode rebuilds
# the table from what it can reflect, and it cannot reflect expression indexes, so
# they are made again after each rebuild (PostgreSQL alters in place and keeps them).
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
        batch_op.alter_column('locale', existing_type=sa.String(length=10),
                              type_=sa.String(length=35), existing_nullable=True)
    _restore_pattern_indexes()
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fresh_code_every_sign_in', sa.Boolean(),
                                      nullable=False, server_default=sa.false()))
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claims_request', sa.JSON(), nullable=True))


def _shorten(tag: str) -> str:
    kept = ""
    for part in tag.split("-"):
        candidate = f"{kept}-{part}" if kept else part
        if len(candidate) > 10:
            break
        kept = candidate
    return kept or tag[:10]


def downgrade() -> None:
    conn = op.get_bind()
    accounts = sa.table('accounts', sa.column('id', sa.String), sa.column('locale', sa.String))
    long_rows = conn.execute(
        sa.select(accounts.c.id, accounts.c.locale).where(sa.func.length(accounts.c.locale) > 10)
    ).all()
    for row in long_rows:
        conn.execute(accounts.update().where(accounts.c.id == row.id)
                     .values(locale=_shorten(row.locale)))
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_column('claims_request')
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('fresh_code_every_sign_in')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.alter_column('locale', existing_type=sa.String(length=35),
                              type_=sa.String(length=10), existing_nullable=True)
    _restore_pattern_indexes()
