"""list indexes: each filter and sort of the transactions list, a charge's follow-ups by parent,
calls by time, and (on PostgreSQL) trigram indexes for the search boxes' ILIKE '%text%'

Revision ID: c2d3e4f5a6b7
Revises: b1c2d3e4f5a6
Create Date: 2026-12-07 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c2d3e4f5a6b7'
down_revision = 'b1c2d3e4f5a6'
branch_labels = None
depends_on = None

LOOKUP = sa.text("operation = 'lookup'")
LOCKED, LOCKED_SQLITE = sa.text("locked_invoice"), sa.text("locked_invoice = 1")
UNMAPPED, UNMAPPED_SQLITE = sa.text("unmapped"), sa.text("unmapped = 1")
MONTH_COLUMNS = ['operation', 'status', 'locked_invoice', 'currency', 'amount', 'gateway_id',
                 'provider_code']
TRIGRAMS = [
    ('ix_invoices_number_trgm', 'invoices', 'number'),
    ('ix_accounts_number_trgm', 'accounts', 'number'),
    ('ix_accounts_name_trgm', 'accounts', 'name'),
]


def upgrade():
    postgresql = op.get_bind().dialect.name == 'postgresql'
    if postgresql:
        # A trusted extension since PostgreSQL 13: the database's owner may create it.
        op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    with op.batch_alter_table('payment_transactions') as batch_op:
        batch_op.drop_index('ix_payment_transactions_status')
        batch_op.create_index('ix_payment_transactions_status_id', ['status', 'id'])
        batch_op.create_index('ix_payment_transactions_amount_id', ['amount', 'id'])
        batch_op.create_index('ix_payment_transactions_locked_run', ['run_id'],
                              sqlite_where=LOCKED_SQLITE, postgresql_where=LOCKED)
        batch_op.create_index('ix_payment_transactions_parent_id', ['parent_id'])
        batch_op.create_index('ix_payment_transactions_requested_at', ['requested_at'],
                              postgresql_include=MONTH_COLUMNS)
        batch_op.create_index('ix_payment_transactions_lookups', ['id'],
                              sqlite_where=LOOKUP, postgresql_where=LOOKUP)
        batch_op.create_index('ix_payment_transactions_unmapped', ['id'],
                              sqlite_where=UNMAPPED_SQLITE, postgresql_where=UNMAPPED)
    for name, table, column in TRIGRAMS:
        if postgresql:
            op.create_index(name, table, [column], postgresql_using='gin',
                            postgresql_ops={column: 'gin_trgm_ops'})
        else:
            op.create_index(name, table, [column])


def downgrade():
    for name, table, _ in TRIGRAMS:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table('payment_transactions') as batch_op:
        for name in ('unmapped', 'lookups', 'requested_at', 'parent_id', 'locked_run', 'amount_id',
                     'status_id'):
            batch_op.drop_index(f'ix_payment_transactions_{name}')
        batch_op.create_index('ix_payment_transactions_status', ['status'])
