"""webhook events: each provider event stored once; refusals counted on the gateway

Revision ID: b5c6d7e8f9a0
Revises: a4b5c6d7e8f9
Create Date: 2026-12-03 07:40:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'b5c6d7e8f9a0'
down_revision = 'a4b5c6d7e8f9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'webhook_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('gateway_id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.String(length=120), nullable=False),
        sa.Column('event_type', sa.String(length=80), nullable=False),
        sa.Column('operation', sa.String(length=10), nullable=True),
        sa.Column('final', sa.Boolean(), nullable=False),
        sa.Column('occurred_at', sa.DateTime(), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('reference', sa.String(length=120), nullable=True),
        sa.Column('settle_key', sa.String(length=64), nullable=True),
        sa.Column('order_id', sa.String(length=60), nullable=True),
        sa.Column('amount', sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('told_status', sa.String(length=20), nullable=True),
        sa.Column('code', sa.String(length=40), nullable=True),
        sa.Column('message', sa.Text(), nullable=True),
        sa.Column('transaction_id', sa.Integer(), nullable=True),
        sa.Column('outcome', sa.String(length=20), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
        sa.Column('handled_at', sa.DateTime(), nullable=True),
        sa.Column('handled_by_id', sa.Integer(), nullable=True),
        sa.Column('handled_note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['gateway_id'], ['gateways.id'], name=op.f('fk_webhook_events_gateway_id_gateways')),
        sa.ForeignKeyConstraint(['transaction_id'], ['payment_transactions.id'], name=op.f('fk_webhook_events_transaction_id_payment_transactions')),
        sa.ForeignKeyConstraint(['handled_by_id'], ['users.id'], name=op.f('fk_webhook_events_handled_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events')),
        sa.UniqueConstraint('gateway_id', 'event_id', name=op.f('uq_webhook_events_gateway_id')),
    )
    op.create_index(op.f('ix_webhook_events_gateway_id'), 'webhook_events', ['gateway_id'])
    op.create_index(op.f('ix_webhook_events_reference'), 'webhook_events', ['reference'])
    op.create_index(op.f('ix_webhook_events_transaction_id'), 'webhook_events', ['transaction_id'])
    op.create_index(op.f('ix_webhook_events_outcome'), 'webhook_events', ['outcome'])
    with op.batch_alter_table('gateways') as batch:
        batch.add_column(sa.Column('webhooks_refused', sa.Integer(), server_default='0', nullable=False))
        batch.add_column(sa.Column('webhook_refused_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('webhook_refused_reason', sa.String(length=200), nullable=True))
    with op.batch_alter_table('payment_transactions') as batch:
        batch.add_column(sa.Column('webhook_event', sa.String(length=120), nullable=True))


def downgrade():
    with op.batch_alter_table('payment_transactions') as batch:
        batch.drop_column('webhook_event')
    with op.batch_alter_table('gateways') as batch:
        batch.drop_column('webhook_refused_reason')
        batch.drop_column('webhook_refused_at')
        batch.drop_column('webhooks_refused')
    op.drop_table('webhook_events')
