"""unmapped reviews: a supervisor marks a code no mapping knows as looked at

Revision ID: a4b5c6d7e8f9
Revises: f3a4b5c6d7e8
Create Date: 2026-12-02 16:50:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a4b5c6d7e8f9'
down_revision = 'f3a4b5c6d7e8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'unmapped_reviews',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plugin', sa.String(length=40), nullable=False),
        sa.Column('code', sa.String(length=40), nullable=False),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
        sa.Column('reviewed_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['reviewed_by_id'], ['users.id'], name=op.f('fk_unmapped_reviews_reviewed_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_unmapped_reviews')),
        sa.UniqueConstraint('plugin', 'code', name=op.f('uq_unmapped_reviews_plugin')),
    )


def downgrade():
    op.drop_table('unmapped_reviews')
