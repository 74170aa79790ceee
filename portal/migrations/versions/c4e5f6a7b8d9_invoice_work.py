"""invoice work: since when an invoice is locked, and the clerk who owns its finalization

Revision ID: c4e5f6a7b8d9
Revises: b7d8e9f0a1c2
Create Date: 2026-12-02 01:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'c4e5f6a7b8d9'
down_revision = 'b7d8e9f0a1c2'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locked_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_invoices_locked_at'), ['locked_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_owner_id'), ['owner_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_invoices_owner_id_users'), 'users', ['owner_id'], ['id'])
    # Invoices locked before this column: since their latest lock in the audit trail.
    op.execute(
        "UPDATE invoices SET locked_at = (SELECT max(at) FROM audit_events "
        "WHERE entity_type = 'invoices' AND entity_id = invoices.id AND action = 'invoice.locked') "
        "WHERE corrective_action IS NOT NULL"
    )


def downgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_invoices_owner_id_users'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_invoices_owner_id'))
        batch_op.drop_index(batch_op.f('ix_invoices_locked_at'))
        batch_op.drop_column('owner_id')
        batch_op.drop_column('locked_at')
