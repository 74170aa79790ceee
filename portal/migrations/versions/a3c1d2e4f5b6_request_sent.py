"""request_sent: whether a call is known to have reached its gateway

Revision ID: a3c1d2e4f5b6
Revises: 21efc18ed215
Create Date: 2026-12-02 00:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3c1d2e4f5b6'
down_revision = '21efc18ed215'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('request_sent', sa.Boolean(), nullable=True))
    # Answers stored before this column: Settle's own "Request not sent" reason says which.
    op.execute(
        "UPDATE payment_transactions SET request_sent = "
        "CASE WHEN reason LIKE 'Request not sent:%' THEN false ELSE true END "
        "WHERE status <> 'Pending'"
    )


def downgrade():
    with op.batch_alter_table('payment_transactions', schema=None) as batch_op:
        batch_op.drop_column('request_sent')
