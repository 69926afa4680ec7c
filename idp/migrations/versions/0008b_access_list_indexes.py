"""Indexes of the access lists

Revision ID: 0008b
Revises: 0008a (customer indexes)
Create Date: 2026-12-06 06:30:00

The lists and bulk actions of issue 12 (``idp/store/access_lists_repo.py``) filter
and page 100,000 accesses; these indexes keep a page under 50 ms on PostgreSQL:

* ``ix_accesses_unit_id`` on ``accesses (unit_id, id)``: a unit's list (the unique
  index on ``(account_id, unit_id)`` cannot serve it);
* expression indexes on ``lower(email)``, ``lower(given_name)`` and
  ``lower(family_name)`` (free text is a prefix of any of them), on PostgreSQL with
  ``varchar_pattern_ops`` so ``LIKE 'prefix%'`` uses them whatever the database's
  collation;
* PostgreSQL only: ``reverse(lower(email))`` (an e-mail domain is a prefix of the
  reversed address; SQLite has no ``reverse``), and expression statistics on the
  roles' text, so the planner knows how common a role is (without them it guesses
  "rare", fetches every holder and sorts them: 115 ms instead of 12 on 100,000).

Additive only: nodes of 0007 run beside it. Downgrade drops them.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

from alembic import op

revision = '0008b'
down_revision = '0008a'
branch_labels = None
depends_on = None

PATTERN_INDEXES = {
    'ix_accounts_email_prefix': 'email',
    'ix_accounts_given_name_prefix': 'given_name',
    'ix_accounts_family_name_prefix': 'family_name',
}


def upgrade() -> None:
    with op.batch_alter_table('accesses', schema=None) as batch_op:
        batch_op.create_index('ix_accesses_unit_id', ['unit_id', 'id'], unique=False)
    postgres = op.get_bind().dialect.name == 'postgresql'
    ops = ' varchar_pattern_ops' if postgres else ''
    for name, column in PATTERN_INDEXES.items():
        op.execute(f'CREATE INDEX {name} ON accounts ((lower({column})){ops})')
    if postgres:
        op.execute('CREATE INDEX ix_accounts_email_reversed ON accounts'
                   ' ((reverse(lower(email))) varchar_pattern_ops)')
        # the planner's estimate for a role filter (LIKE on the roles' text)
        op.execute('CREATE STATISTICS st_accesses_roles_text ON ((roles)::varchar) FROM accesses')


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP STATISTICS IF EXISTS st_accesses_roles_text')
        op.execute('DROP INDEX IF EXISTS ix_accounts_email_reversed')
    for name in PATTERN_INDEXES:
        op.execute(f'DROP INDEX {name}')
    with op.batch_alter_table('accesses', schema=None) as batch_op:
        batch_op.drop_index('ix_accesses_unit_id')
