"""Indexes of the customer list

Revision ID: 0009p
Revises: 0008c (invitations)
Create Date: 2026-12-06 07:15:00

The customer list of issue 12 (``idp/store/customers_repo.py``) filters 10,000
customers by activity (a sign-in through any access of the customer or its
sub-units in the last 90 days, an older one, none) and pages them by name. These
indexes keep a page under 50 ms on PostgreSQL with 100,000 accesses:

* ``ix_units_name`` on ``units (name, id)``: the list's order and its cursor seek;
  a page reads customers in this order and stops when it is full;
* ``ix_accesses_unit_signin`` on ``accesses (unit_id, last_signin_at)``: the newest
  sign-in of one unit is one index probe (the page's rows, and the count's probes);
* ``ix_accesses_last_signin`` on ``accesses (last_signin_at, unit_id)``: the units
  with a sign-in since an instant, as one index range (the count of ``active``).

A sign-in still writes one UPDATE of ``last_signin_at`` and nothing more; the two
access indexes are kept up by that same statement.

Additive only: nodes of 0008c run beside it. On a large PostgreSQL database the
indexes are built while writes to the tables wait; build them beforehand with
``CREATE INDEX CONCURRENTLY`` under the same names to avoid that (this migration
then finds them and does nothing). Downgrade drops them.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009p'
down_revision = '0008c'
branch_labels = None
depends_on = None

INDEXES = {
    'units': {'ix_units_name': ['name', 'id']},
    'accesses': {
        'ix_accesses_unit_signin': ['unit_id', 'last_signin_at'],
        'ix_accesses_last_signin': ['last_signin_at', 'unit_id'],
    },
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, indexes in INDEXES.items():
        present = {i['name'] for i in inspector.get_indexes(table)}
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name, columns in indexes.items():
                if name not in present:
                    batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    for table, indexes in INDEXES.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in indexes:
                batch_op.drop_index(name)
