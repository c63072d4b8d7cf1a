"""dashboard

Revision ID: 0017_dashboard
Revises: 0016_dynamic_groups
Create Date: 2026-12-07 19:10:00

- ``message_day_counts``: a past UTC day's messages by direction and status, for the
  dashboard's chart (``messaging.sms.daily_counts``).
- ``ix_messages_project_created``: a project's messages of a time range (today, yesterday);
  ``ix_messages_project_failed``: its failures of a time range (why messages failed).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0017_dashboard'
down_revision = '0016_dynamic_groups'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('message_day_counts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('direction', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('messages', sa.Integer(), nullable=False),
    sa.Column('segments', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_message_day_counts_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_day_counts')),
    sa.UniqueConstraint('project_id', 'day', 'direction', 'status', name=op.f('uq_message_day_counts_project_id_day_direction_status'))
    )
    with op.batch_alter_table('message_day_counts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_day_counts_project_id'), ['project_id'], unique=False)

    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_project_created', ['project_id', 'created_at'], unique=False)
        batch_op.create_index(
            'ix_messages_project_failed',
            ['project_id', 'created_at'],
            unique=False,
            postgresql_where=sa.text("status IN ('failed', 'undelivered')"),
            sqlite_where=sa.text("status IN ('failed', 'undelivered')"),
        )


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_project_failed')
        batch_op.drop_index('ix_messages_project_created')

    with op.batch_alter_table('message_day_counts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_day_counts_project_id'))

    op.drop_table('message_day_counts')
