"""SCIM records: a stable SCIM id of their own and pending addresses

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 01:40:00

A unit's SCIM record gets ``scim_id`` (what the HR system knows; existing records
keep their account id, so no HR system sees an id change) and ``pending_email`` (the
address of a record bound to nobody yet, see ``idp.provisioning.ownership``) ``joined_at``
(when the holder of that address joined) and ``suspended_roles`` (a joined record HR
deactivated). Downgrade refuses
while any record is pending or has an id other than its account's: those states do
not exist in 0001 and would be lost.
"""

from alembic import op
import sqlalchemy as sa
import idp.store.models


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scim_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('pending_email', sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column(
            'joined_at', idp.store.models.UTCDateTime(timezone=True), nullable=True
        ))
        batch_op.add_column(sa.Column('suspended_roles', sa.JSON(), nullable=True))
    op.execute("UPDATE scim_users SET scim_id = account_id")
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.alter_column('scim_id', existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_scim_users_scim_id'), ['scim_id'])
        batch_op.create_index(
            batch_op.f('ix_scim_users_pending_email'), ['pending_email'], unique=False
        )


def downgrade() -> None:
    bind = op.get_bind()
    kept = bind.execute(sa.text(
        "SELECT count(*) FROM scim_users "
        "WHERE pending_email IS NOT NULL OR joined_at IS NOT NULL OR scim_id <> account_id"
    )).scalar()
    if kept:
        raise RuntimeError(
            f"{kept} SCIM records are pending or were bound to their holder's account; "
            "revision 0001 cannot hold them (delete them through SCIM first)"
        )
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scim_users_pending_email'))
        batch_op.drop_constraint(batch_op.f('uq_scim_users_scim_id'), type_='unique')
        batch_op.drop_column('suspended_roles')
        batch_op.drop_column('joined_at')
        batch_op.drop_column('pending_email')
        batch_op.drop_column('scim_id')
