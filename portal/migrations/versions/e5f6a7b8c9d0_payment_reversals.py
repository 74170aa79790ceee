"""payment reversals: a movement that takes part of a payment back when the gateway does not hold
it (given back by Refund & Unlock, or a booking corrected after reconciliation)

Revision ID: e5f6a7b8c9d0
Revises: db8462d721a4
Create Date: 2026-12-08 00:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e5f6a7b8c9d0'
down_revision = 'db8462d721a4'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'payment_reversals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('payment_id', sa.Integer(), nullable=False),
        sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('transaction_id', sa.Integer(), nullable=True),
        sa.Column('refund_id', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.CheckConstraint('amount > 0', name=op.f('ck_payment_reversals_amount_positive')),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_payment_reversals_created_by_id_users')),
        sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_payment_reversals_payment_id_payments')),
        sa.ForeignKeyConstraint(['refund_id'], ['payment_transactions.id'], name=op.f('fk_payment_reversals_refund_id_payment_transactions')),
        sa.ForeignKeyConstraint(['transaction_id'], ['payment_transactions.id'], name=op.f('fk_payment_reversals_transaction_id_payment_transactions')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_reversals')),
    )
    op.create_index(op.f('ix_payment_reversals_payment_id'), 'payment_reversals', ['payment_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_payment_reversals_payment_id'), table_name='payment_reversals')
    op.drop_table('payment_reversals')
