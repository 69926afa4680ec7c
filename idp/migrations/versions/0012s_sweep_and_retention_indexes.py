"""indexes for the session sweeper and the retention of console CSV imports

Revision ID: 0012s
Revises: 0012p
Create Date: 2026-12-06 15:30:00

``ix_sessions_expires_at`` and ``ix_sessions_last_seen_at``: the session sweeper
(``idp.interaction.rp_logout.sweep_unseen`` through
``idp.store.sessions_repo.unseen_with_participants``) filters sessions on
``expires_at <= now OR last_seen_at <= idle_since`` and orders by ``expires_at``
every 30 s on every node. PostgreSQL answers the OR from both indexes (BitmapOr);
with ``expires_at`` alone it still scans the whole table (measured: 200,000
sessions, 22 ms scan against 0.06 ms). ``last_seen_at`` is written at most once a
minute per active session, so its index costs little.
``ix_access_imports_finished_at``: finished imports are deleted
``IDP_CSV_IMPORT_RETENTION_DAYS`` after ``finished_at``
(``idp.accounts.import_jobs.prune``). Only indexes: no data changes; downgrade drops
them. On PostgreSQL the indexes on ``sessions`` are built with a plain
``CREATE INDEX``, which holds writes to ``sessions`` (sign-ins) while it builds:
seconds for a million rows. The revision id is a string so the integrator can
rechain it: change ``revision`` / ``down_revision`` here only.
"""

from __future__ import annotations

from alembic import op

revision = '0012s'
down_revision = '0012p'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sessions') as batch:
        batch.create_index(batch.f('ix_sessions_expires_at'), ['expires_at'])
        batch.create_index(batch.f('ix_sessions_last_seen_at'), ['last_seen_at'])
    with op.batch_alter_table('access_imports') as batch:
        batch.create_index(batch.f('ix_access_imports_finished_at'), ['finished_at'])


def downgrade() -> None:
    with op.batch_alter_table('access_imports') as batch:
        batch.drop_index(batch.f('ix_access_imports_finished_at'))
    with op.batch_alter_table('sessions') as batch:
        batch.drop_index(batch.f('ix_sessions_last_seen_at'))
        batch.drop_index(batch.f('ix_sessions_expires_at'))
