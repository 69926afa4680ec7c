"""Rights: custom permission groups as a table, operator staff and their assignments

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 02:00:00

A unit's custom permission groups move from the JSON column ``units.permission_groups``
into rows of ``permission_groups`` (one per unit and name, with no permissions yet);
the column is dropped. ``staff_members`` and ``staff_assignments`` hold the
operator's own people and the customers they look after (``idp.rights``).
Downgrade rebuilds the column from the rows' names and refuses (losing nothing)
while a group grants permissions or any staff member exists: revision 0002 cannot
hold them.
"""

import json
from typing import Any
import uuid
from datetime import UTC, datetime

from alembic import op
import sqlalchemy as sa
import idp.store.models


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def _names(raw: object) -> list[str]:
    value: Any = json.loads(raw) if isinstance(raw, str) else raw
    out: list[str] = []
    for name in value or []:
        if isinstance(name, str) and name not in out:
            out.append(name)
    return out


def upgrade() -> None:
    op.create_table('permission_groups',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('unit_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('permissions', sa.JSON(), nullable=False),
    sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('unit_id', 'name')
    )
    op.create_table('staff_members',
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('added_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('added_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id')
    )
    op.create_table('staff_assignments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('unit_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('permissions', sa.JSON(), nullable=False),
    sa.Column('created_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['staff_members.account_id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'unit_id')
    )
    with op.batch_alter_table('staff_assignments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_staff_assignments_unit_id'), ['unit_id'], unique=False)

    bind = op.get_bind()
    groups = sa.table(
        'permission_groups',
        sa.column('id', sa.String), sa.column('unit_id', sa.String), sa.column('name', sa.String),
        sa.column('permissions', sa.JSON),
        sa.column('created_at', idp.store.models.UTCDateTime(timezone=True)),
    )
    now = datetime.now(UTC)
    rows = [
        {"id": uuid.uuid4().hex, "unit_id": unit_id, "name": name, "permissions": [],
         "created_at": now}
        for unit_id, raw in bind.execute(sa.text("SELECT id, permission_groups FROM units"))
        for name in _names(raw)
    ]
    if rows:
        op.bulk_insert(groups, rows)
    # Not a batch operation: rebuilding ``units`` on SQLite would touch every table
    # that refers to it; SQLite >= 3.35 drops a plain column in place.
    op.drop_column('units', 'permission_groups')


def downgrade() -> None:
    bind = op.get_bind()
    granting = [
        name for name, raw in bind.execute(sa.text("SELECT name, permissions FROM permission_groups"))
        if _names(raw)
    ]
    staff = bind.execute(sa.text("SELECT count(*) FROM staff_members")).scalar()
    if granting or staff:
        raise RuntimeError(
            f"{len(granting)} permission groups grant permissions and {staff} staff members "
            "exist; revision 0002 cannot hold them (remove them with `idp groups` and "
            "`idp staff` first)"
        )
    op.add_column('units', sa.Column(
        'permission_groups', sa.JSON(), nullable=False, server_default=sa.text("'[]'")
    ))
    names: dict[str, list[str]] = {}
    for unit_id, name in bind.execute(
        sa.text("SELECT unit_id, name FROM permission_groups ORDER BY unit_id, name")
    ):
        names.setdefault(unit_id, []).append(name)
    units = sa.table('units', sa.column('id', sa.String), sa.column('permission_groups', sa.JSON))
    for unit_id, in bind.execute(sa.text("SELECT id FROM units")).all():
        bind.execute(
            units.update().where(units.c.id == unit_id)
            .values(permission_groups=names.get(unit_id, []))
        )
    with op.batch_alter_table('staff_assignments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_staff_assignments_unit_id'))
    op.drop_table('staff_assignments')
    op.drop_table('staff_members')
    op.drop_table('permission_groups')
