"""Typed unit fields (issue 16 item 3)

Revision ID: 0012f
Revises: 0012b
Create Date: 2026-12-06 12:30:00

``unit_profile_fields`` gains ``type`` (``text``, ``number``, ``money``, ``date``,
``choice``, ``email``, ``phone``; see ``idp.units.field_types``), ``currency`` (ISO
4217, money only), ``choices`` (choice only), ``labels`` and ``help`` (language ->
text) and ``set_by`` (``employee`` or ``company``). Every existing field becomes a
``text`` field the employee sets, with its label as the English one: values already
stored need no change (any text fits a text field).

Downgrade drops the columns (a field's type, translations and owner are lost; the
values stay). The revision id is a string so the integrator can rechain it: change
``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0012f'
down_revision = "0012b"
branch_labels = None
depends_on = None


# (name, type, server default while existing rows are filled) of the new columns
COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any], str | None], ...] = (
    ('type', sa.String(length=10), 'text'),
    ('currency', sa.String(length=3), None),
    ('choices', sa.JSON(), '[]'),
    ('labels', sa.JSON(), '{}'),
    ('help', sa.JSON(), '{}'),
    ('set_by', sa.String(length=10), 'employee'),
)


def upgrade() -> None:
    with op.batch_alter_table('unit_profile_fields') as batch:
        for name, kind, default in COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=default is None,
                                       server_default=default))
    with op.batch_alter_table('unit_profile_fields') as batch:
        for name, _kind, default in COLUMNS:
            if default is not None:
                batch.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('unit_profile_fields') as batch:
        for name, _kind, _default in reversed(COLUMNS):
            batch.drop_column(name)
