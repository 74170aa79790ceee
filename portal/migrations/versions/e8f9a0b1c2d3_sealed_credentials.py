"""sealed credentials: gateway credentials encrypted at rest with the instance's Fernet key

Revision ID: e8f9a0b1c2d3
Revises: d7e8f9a0b1c2
Create Date: 2026-12-03 16:45:00.000000

"""
import json

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


# revision identifiers, used by Alembic.
revision = 'e8f9a0b1c2d3'
down_revision = 'd7e8f9a0b1c2'
branch_labels = None
depends_on = None


def _retype(to, source, postgres):
    if postgres:
        using = '"credentials"::jsonb' if to is not sa.Text else '"credentials"::text'
        op.alter_column('gateways', 'credentials', type_=postgresql.JSONB() if to is not sa.Text
                        else sa.Text(), existing_type=source, postgresql_using=using)
    else:
        with op.batch_alter_table('gateways') as batch_op:
            batch_op.alter_column('credentials', type_=to(), existing_type=source)


def _each(change):
    bind = op.get_bind()
    for gateway_id, stored in bind.execute(sa.text('SELECT id, credentials FROM gateways')).all():
        bind.execute(sa.text('UPDATE gateways SET credentials = :v WHERE id = :id'),
                     {'v': change(stored), 'id': gateway_id})


def upgrade():
    from portal import vault  # the key of the app running the migration (flask db upgrade)

    postgres = op.get_bind().dialect.name == 'postgresql'
    _retype(sa.Text, postgresql.JSONB() if postgres else sa.JSON(), postgres)
    _each(lambda stored: vault.current().seal(json.loads(stored)))


def downgrade():
    from portal import vault

    postgres = op.get_bind().dialect.name == 'postgresql'
    _each(lambda stored: json.dumps(vault.current().open(stored), sort_keys=True))
    _retype(sa.JSON, sa.Text(), postgres)
