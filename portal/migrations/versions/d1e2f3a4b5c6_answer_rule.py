"""answer rule: each answer keeps the mapping line that gave its status, and that line's guidance

Revision ID: d1e2f3a4b5c6
Revises: c0e1f2a3b4d5
Create Date: 2026-12-02 15:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd1e2f3a4b5c6'
down_revision = 'c0e1f2a3b4d5'
branch_labels = None
depends_on = None


def upgrade():
    # Answers recorded before this step keep none: their review says so.
    with op.batch_alter_table('payment_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decided_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('guidance', sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_transactions', schema=None) as batch_op:
        batch_op.drop_column('guidance')
        batch_op.drop_column('decided_by')
