"""follow-up runs: a run for the invoices an interrupted run did not attempt

Revision ID: b7d8e9f0a1c2
Revises: a3c1d2e4f5b6
Create Date: 2026-12-02 00:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b7d8e9f0a1c2'
down_revision = 'a3c1d2e4f5b6'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('payment_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('follows_run_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_payment_runs_follows_run_id'), ['follows_run_id'])
        batch_op.create_foreign_key(batch_op.f('fk_payment_runs_follows_run_id_payment_runs'), 'payment_runs', ['follows_run_id'], ['id'])


def downgrade():
    with op.batch_alter_table('payment_runs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_payment_runs_follows_run_id_payment_runs'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_payment_runs_follows_run_id'), type_='unique')
        batch_op.drop_column('follows_run_id')
