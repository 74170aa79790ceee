"""call deadline: the most one gateway call may take in all (a dripping answer is cut off)

Revision ID: d7e8f9a0b1c2
Revises: c6d7e8f9a0b1
Create Date: 2026-12-03 16:35:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd7e8f9a0b1c2'
down_revision = 'c6d7e8f9a0b1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('gateways') as batch_op:
        batch_op.add_column(
            sa.Column('deadline_seconds', sa.Numeric(precision=8, scale=3), nullable=False,
                      server_default='120')
        )
    # A gateway given a longer timeout keeps it whole: its deadline is never below its timeout.
    op.execute('UPDATE gateways SET deadline_seconds = timeout_seconds WHERE timeout_seconds > 120')


def downgrade():
    with op.batch_alter_table('gateways') as batch_op:
        batch_op.drop_column('deadline_seconds')
