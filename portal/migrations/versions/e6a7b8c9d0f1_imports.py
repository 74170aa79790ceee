"""imports: external ids from the billing system, and uploaded import files

Revision ID: e6a7b8c9d0f1
Revises: d5f6a7b8c9e0
Create Date: 2026-12-02 01:40:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e6a7b8c9d0f1'
down_revision = 'd5f6a7b8c9e0'
branch_labels = None
depends_on = None

TABLES = ['accounts', 'payment_methods', 'invoices']


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('external_id', sa.String(length=80), nullable=True))
            batch_op.create_unique_constraint(batch_op.f(f'uq_{table}_external_id'), ['external_id'])
    op.create_table(
        'import_batches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('filename', sa.String(length=200), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('counts', sa.Text(), nullable=False),
        sa.Column('uploaded_by_id', sa.Integer(), nullable=True),
        sa.Column('uploaded_at', sa.DateTime(), nullable=False),
        sa.Column('applied_at', sa.DateTime(), nullable=True),
        sa.Column('applied_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['applied_by_id'], ['users.id'], name=op.f('fk_import_batches_applied_by_id_users')),
        sa.ForeignKeyConstraint(['uploaded_by_id'], ['users.id'], name=op.f('fk_import_batches_uploaded_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_import_batches')),
    )
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_import_batches_sha256'), ['sha256'], unique=False)


def downgrade():
    with op.batch_alter_table('import_batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_import_batches_sha256'))
    op.drop_table('import_batches')
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(batch_op.f(f'uq_{table}_external_id'), type_='unique')
            batch_op.drop_column('external_id')
