"""Typed unit fields (issue 16 item 3)

Revision ID: 0012f
Revises: 0011l
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

import sqlalchemy as sa
from alembic import op

revision = '0012f'
down_revision = '0011l'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('unit_profile_fields') as batch:
        batch.add_column(sa.Column('type', sa.String(length=10), nullable=False,
                                   server_default='text'))
        batch.add_column(sa.Column('currency', sa.String(length=3), nullable=True))
        batch.add_column(sa.Column('choices', sa.JSON(), nullable=False, server_default='[]'))
        batch.add_column(sa.Column('labels', sa.JSON(), nullable=False, server_default='{}'))
        batch.add_column(sa.Column('help', sa.JSON(), nullable=False, server_default='{}'))
        batch.add_column(sa.Column('set_by', sa.String(length=10), nullable=False,
                                   server_default='employee'))
    with op.batch_alter_table('unit_profile_fields') as batch:
        for name in ('type', 'choices', 'labels', 'help', 'set_by'):
            batch.alter_column(name, server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('unit_profile_fields') as batch:
        for name in ('set_by', 'help', 'labels', 'choices', 'currency', 'type'):
            batch.drop_column(name)
