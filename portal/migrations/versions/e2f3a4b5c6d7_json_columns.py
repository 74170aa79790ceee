"""json columns: SQLAlchemy's JSON type (JSONB on PostgreSQL) for every JSON value held as text

Revision ID: e2f3a4b5c6d7
Revises: d1e2f3a4b5c6
Create Date: 2026-12-02 16:05:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'e2f3a4b5c6d7'
down_revision = 'd1e2f3a4b5c6'
branch_labels = None
depends_on = None

COLUMNS = {
    'audit_events': ['before', 'after'],
    'gateways': ['credentials'],
    'import_batches': ['counts'],
    'payment_transactions': ['raw_request', 'raw_response', 'findings'],
    'reconciliation_reports': ['gateways', 'counts'],
    'run_chunks': ['invoice_ids'],
    'settings': ['value'],
}



def upgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table, columns in COLUMNS.items():
        if postgres:
            # The text already holds JSON: PostgreSQL parses each value once, here.
            for column in columns:
                op.alter_column(table, column, type_=postgresql.JSONB(), existing_type=sa.Text(),
                                postgresql_using=f'"{column}"::jsonb')
        else:
            # SQLite keeps JSON as text either way: the declared type changes, not the values.
            with op.batch_alter_table(table, schema=None) as batch_op:
                for column in columns:
                    batch_op.alter_column(column, type_=sa.JSON(), existing_type=sa.Text())


def downgrade():
    postgres = op.get_bind().dialect.name == 'postgresql'
    for table, columns in COLUMNS.items():
        if postgres:
            for column in columns:
                op.alter_column(table, column, type_=sa.Text(), existing_type=postgresql.JSONB(),
                                postgresql_using=f'"{column}"::text')
        else:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for column in columns:
                    batch_op.alter_column(column, type_=sa.Text(), existing_type=sa.JSON())
