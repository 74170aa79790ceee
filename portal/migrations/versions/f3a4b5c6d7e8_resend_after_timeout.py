"""resend after timeout: a supervisor may let a timed-out call be sent once more with its key

Revision ID: f3a4b5c6d7e8
Revises: e2f3a4b5c6d7
Create Date: 2026-12-02 16:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f3a4b5c6d7e8'
down_revision = 'e2f3a4b5c6d7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('gateways', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resend_after_timeout', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('gateways', schema=None) as batch_op:
        batch_op.drop_column('resend_after_timeout')
