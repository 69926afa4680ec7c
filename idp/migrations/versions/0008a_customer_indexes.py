"""Customers: an index of a customer's tree

Revision ID: 0008a
Revises: 0007 (administration)
Create Date: 2026-12-06 06:20:00

Additive only (one index), so nodes of 0007 keep running beside nodes of this
revision:

* ``ix_units_parent_id``: the sub-units of a unit (a customer's tree: its activity,
  blocking, deleting, the authorisations view).

The searches of a unit's accesses use ``ix_accesses_unit_id`` of migration 0008b
(the access lists). On a large PostgreSQL database the index is built while writes
to ``units`` wait; build it beforehand with ``CREATE INDEX CONCURRENTLY`` under the
same name to avoid that (this migration then finds it and does nothing).

Downgrade drops it.

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

NAME = "ix_units_parent_id"


def upgrade() -> None:
    if NAME in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("units")}:
        return
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.create_index(NAME, ["parent_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_index(NAME)
