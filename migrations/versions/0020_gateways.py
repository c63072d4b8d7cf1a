"""gateways

- ``sms_gateways``: several per project (the one-per-project constraint goes), each with a
  ``name``, number ``prefixes`` it takes, ``is_default`` (one per project), ``settings`` and
  encrypted ``secrets_encrypted`` for the kinds other than Twilio, ``webhook_secret`` (the
  secret in its inbound and status URLs) and ``allowed_ips``. Existing gateways become their
  project's default, named after their kind.
- ``messages.gateway_id``: the saved gateway that took a message (or the one it is pinned to).

Revision ID: 0020_gateways
Revises: 0019_commcare
Create Date: 2026-12-07 23:55:00

"""
import secrets

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0020_gateways'
down_revision = '0019_commcare'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('sms_gateways', schema=None) as batch_op:
        batch_op.drop_constraint('uq_sms_gateways_project_id', type_='unique')
        batch_op.add_column(sa.Column('name', sa.String(length=80), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('is_default', sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column('prefixes', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.add_column(sa.Column('settings', sa.JSON(), nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('secrets_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('webhook_secret', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('allowed_ips', sa.JSON(), nullable=False, server_default='[]'))
        batch_op.create_index(
            'uq_sms_gateways_default',
            ['project_id'],
            unique=True,
            postgresql_where=sa.text('is_default'),
            sqlite_where=sa.text('is_default'),
        )
    gateways = sa.table(
        'sms_gateways', sa.column('id', sa.Integer), sa.column('kind', sa.String),
        sa.column('name', sa.String), sa.column('webhook_secret', sa.String),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(gateways.c.id, gateways.c.kind)).all():
        connection.execute(
            gateways.update()
            .where(gateways.c.id == row.id)
            .values(name=row.kind, webhook_secret=secrets.token_urlsafe(24))
        )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('gateway_id', sa.Integer(), nullable=True))


def downgrade():
    op.drop_column('messages', 'gateway_id')
    with op.batch_alter_table('sms_gateways', schema=None) as batch_op:
        batch_op.drop_index('uq_sms_gateways_default')
        batch_op.drop_column('allowed_ips')
        batch_op.drop_column('webhook_secret')
        batch_op.drop_column('secrets_encrypted')
        batch_op.drop_column('settings')
        batch_op.drop_column('prefixes')
        batch_op.drop_column('is_default')
        batch_op.drop_column('name')
        batch_op.create_unique_constraint('uq_sms_gateways_project_id', ['project_id'])
