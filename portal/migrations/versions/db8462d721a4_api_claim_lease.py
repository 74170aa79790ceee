"""api claim lease: when an Idempotency-Key's request took its key, so that a repeat takes over a
claim whose request died

Revision ID: db8462d721a4
Revises: d3e4f5a6b7c8
Create Date: 2026-12-08 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'db8462d721a4'
down_revision = 'd3e4f5a6b7c8'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_requests') as batch_op:
        batch_op.add_column(sa.Column('claimed_at', sa.DateTime(), nullable=True))
    # A claim kept before the upgrade was taken when it was made.
    op.execute('UPDATE api_requests SET claimed_at = created_at')
    with op.batch_alter_table('api_requests') as batch_op:
        batch_op.alter_column('claimed_at', existing_type=sa.DateTime(), nullable=False)


def downgrade():
    with op.batch_alter_table('api_requests') as batch_op:
        batch_op.drop_column('claimed_at')
