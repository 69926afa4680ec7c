"""Impersonation ("log in as account", issue 13 item 2)

Revision ID: 0010i
Revises: 0010p (passwords)
Create Date: 2026-12-06 09:00:00

* ``impersonations``: who acted as whom in which unit, why, from when to when, and
  the two browser sessions (the acting one, the actor's own to return to).
* ``sessions.impersonation_id`` (nullable): set on the session that acts as someone.
* ``grants.impersonation_id`` (nullable, indexed): tokens issued meanwhile carry
  ``act`` and die with the impersonation.
* ``units.notify_impersonation`` (boolean, default true): the unit's policy to tell
  its people by e-mail when someone acted as them.

Downgrade drops all of it (the history of impersonations is lost).

The revision id is a string so the integrator can rechain it: change ``revision`` /
``down_revision`` here only.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.store.models

revision = '0010i'
down_revision = '0010p'
branch_labels = None
depends_on = None



def upgrade() -> None:
    op.create_table(
        'impersonations',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('unit_id', sa.String(length=32), nullable=False),
        sa.Column('access_id', sa.String(length=32), nullable=True),
        sa.Column('target_account_id', sa.String(length=32), nullable=False),
        sa.Column('actor_kind', sa.String(length=20), nullable=False),
        sa.Column('actor_account_id', sa.String(length=32), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('session_hash', sa.String(length=128), nullable=True),
        sa.Column('actor_session_hash', sa.String(length=128), nullable=True),
        sa.Column('started_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ends_at', idp.store.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', idp.store.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('end_reason', sa.String(length=20), nullable=True),
        sa.ForeignKeyConstraint(['unit_id'], ['units.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['access_id'], ['accesses.id'], ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['target_account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['actor_account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_impersonations_unit_id', 'impersonations', ['unit_id'])
    op.create_index('ix_impersonations_actor_account_id', 'impersonations',
                    ['actor_account_id'])
    op.create_index('ix_impersonations_session_hash', 'impersonations', ['session_hash'])
    op.create_index('ix_impersonations_target', 'impersonations',
                    ['target_account_id', 'started_at'])
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('impersonation_id', sa.String(length=32), nullable=True))
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('impersonation_id', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_grants_impersonation_id', ['impersonation_id'])
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notify_impersonation', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('units', schema=None) as batch_op:
        batch_op.drop_column('notify_impersonation')
    with op.batch_alter_table('grants', schema=None) as batch_op:
        batch_op.drop_index('ix_grants_impersonation_id')
        batch_op.drop_column('impersonation_id')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_column('impersonation_id')
    op.drop_index('ix_impersonations_target', table_name='impersonations')
    op.drop_index('ix_impersonations_session_hash', table_name='impersonations')
    op.drop_index('ix_impersonations_actor_account_id', table_name='impersonations')
    op.drop_index('ix_impersonations_unit_id', table_name='impersonations')
    op.drop_table('impersonations')
