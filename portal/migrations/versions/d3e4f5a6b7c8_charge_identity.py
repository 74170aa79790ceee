"""charge identity: the invoice number each call was sent with, and the per-charge reference
sent where the provider's order field is shorter than Settle's key (Authorize.Net)

Revision ID: d3e4f5a6b7c8
Revises: c2d3e4f5a6b7
Create Date: 2026-12-07 20:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'd3e4f5a6b7c8'
down_revision = 'c2d3e4f5a6b7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('order_id', sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column('order_reference', sa.String(length=40), nullable=True))
    # The calls made so far were sent with their invoice's number of today (a number could not
    # change while a charge's outcome was unknown... until now, when it cannot at all): keep it.
    op.execute(
        "UPDATE payment_transactions SET order_id = (SELECT number FROM invoices"
        " WHERE invoices.id = payment_transactions.invoice_id)"
    )


def downgrade():
    with op.batch_alter_table('payment_transactions', schema=None) as batch_op:
        batch_op.drop_column('order_reference')
        batch_op.drop_column('order_id')
