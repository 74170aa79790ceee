"""unallocations: a supervisor's unallocation is written on the allocation, never a deletion

Revision ID: d5f6a7b8c9e0
Revises: c4e5f6a7b8d9
Create Date: 2026-12-02 01:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd5f6a7b8c9e0'
down_revision = 'c4e5f6a7b8d9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('unallocated_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('unallocated_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('unallocation_reason', sa.Text(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_allocations_unallocated_by_id_users'), 'users', ['unallocated_by_id'], ['id'])


def downgrade():
    with op.batch_alter_table('allocations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_allocations_unallocated_by_id_users'), type_='foreignkey')
        batch_op.drop_column('unallocation_reason')
        batch_op.drop_column('unallocated_by_id')
        batch_op.drop_column('unallocated_at')
