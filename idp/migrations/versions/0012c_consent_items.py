"""Consent per item (issue 16 item 4)

Revision ID: 0012c
Revises: 0012f
Create Date: 2026-12-06 12:35:00

* ``consents.withheld``: the optional items an employee left out for a merchant
  (claim names, ``wallet:<name>`` for one unit field); empty for every
  existing consent, which so keeps releasing what it released.
* ``grants.withheld``: the same list, copied onto each grant at its authorization
  and kept in step when the dashboard changes the consent.
* ``clients.required_claims``: the claims a merchant cannot do without; NULL (every
  existing client) means the default, subject and e-mail address.

Downgrade drops the columns (the choices are lost: everything consented is
released again). The revision id is a string so the integrator can rechain it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012c'
down_revision = '0012f'
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ('consents', 'grants'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('withheld', sa.JSON(), nullable=False,
                                       server_default='[]'))
        with op.batch_alter_table(table) as batch:
            batch.alter_column('withheld', server_default=None)
    with op.batch_alter_table('clients') as batch:
        batch.add_column(sa.Column('required_claims', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients') as batch:
        batch.drop_column('required_claims')
    for table in ('grants', 'consents'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('withheld')
