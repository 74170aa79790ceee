"""invoice finalization claim: Refund & Unlock claims the invoice, not one of its charges

Revision ID: f9a0b1c2d3e4
Revises: e8f9a0b1c2d3
Create Date: 2026-12-03 17:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'f9a0b1c2d3e4'
down_revision = 'e8f9a0b1c2d3'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invoices') as batch_op:
        batch_op.add_column(sa.Column('finalizing_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('finalizing_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_invoices_finalizing_by_id_users'), 'users', ['finalizing_by_id'], ['id']
        )
    # A claim in flight during the upgrade moves to its invoice.
    op.execute(
        'UPDATE invoices SET finalizing_by_id = (SELECT t.finalizing_by_id FROM payment_transactions t'
        ' WHERE t.invoice_id = invoices.id AND t.finalizing_at IS NOT NULL'
        ' ORDER BY t.finalizing_at DESC LIMIT 1),'
        ' finalizing_at = (SELECT MAX(t.finalizing_at) FROM payment_transactions t'
        ' WHERE t.invoice_id = invoices.id)'
    )
    with op.batch_alter_table('payment_transactions') as batch_op:
        batch_op.drop_constraint('fk_payment_transactions_finalizing_by_id_users', type_='foreignkey')
        batch_op.drop_column('finalizing_by_id')
        batch_op.drop_column('finalizing_at')


def downgrade():
    with op.batch_alter_table('payment_transactions') as batch_op:
        batch_op.add_column(sa.Column('finalizing_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('finalizing_at', sa.DateTime(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_payment_transactions_finalizing_by_id_users'), 'users',
            ['finalizing_by_id'], ['id'],
        )
    with op.batch_alter_table('invoices') as batch_op:
        batch_op.drop_constraint('fk_invoices_finalizing_by_id_users', type_='foreignkey')
        batch_op.drop_column('finalizing_at')
        batch_op.drop_column('finalizing_by_id')
