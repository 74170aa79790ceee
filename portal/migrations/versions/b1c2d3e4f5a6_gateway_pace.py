"""gateway pace: a gateway's rate limit (requests per second), and until when a run waits for
the gateway's rate limit (it answered 429, Too Many Requests)

Revision ID: b1c2d3e4f5a6
Revises: a0b1c2d3e4f5
Create Date: 2026-12-04 19:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b1c2d3e4f5a6'
down_revision = 'a0b1c2d3e4f5'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('gateways') as batch_op:
        batch_op.add_column(sa.Column('rate_limit', sa.Numeric(precision=8, scale=2), nullable=True))
    with op.batch_alter_table('payment_runs') as batch_op:
        batch_op.add_column(sa.Column('rate_limited_until', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_runs') as batch_op:
        batch_op.drop_column('rate_limited_until')
    with op.batch_alter_table('gateways') as batch_op:
        batch_op.drop_column('rate_limit')
