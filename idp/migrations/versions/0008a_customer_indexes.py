"""Customers: indexes for a customer's tree and its accesses

Revision ID: 0008a
Revises: 0007 (administration)
Create Date: 2026-12-06 06:20:00

Additive only (two indexes), so nodes of 0007 keep running beside nodes of this
revision:

* ``ix_units_parent_id``: the sub-units of a unit (a customer's tree: listing its
  activity, blocking, deleting);
* ``ix_accesses_unit_id``: the accesses of a unit (the authorisations view, a
  customer's activity, deleting a customer). The unique (account_id, unit_id)
  index cannot serve a search by unit alone.

On a large PostgreSQL database each index is built while writes to its table wait;
build them beforehand with ``CREATE INDEX CONCURRENTLY`` under the same names to
avoid that (this migration then finds them and does nothing).

Downgrade drops both.

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008a'
down_revision = '0007'
branch_labels = None
depends_on = None

INDEXES = (("ix_units_parent_id", "units", "parent_id"),
           ("ix_accesses_unit_id", "accesses", "unit_id"))


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for name, table, column in INDEXES:
        if name in {i["name"] for i in inspector.get_indexes(table)}:
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, [column], unique=False)


def downgrade() -> None:
    for name, table, _column in INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
