"""languages

Revision ID: 0015_languages
Revises: 0014_project_texts
Create Date: 2026-12-07 17:55:00

- ``projects.default_language``: what a participant with no language of their own reads.
- ``web_users.language``: the language of the web pages a person reads (null: the browser's).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0015_languages'
down_revision = '0014_project_texts'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_language', sa.String(length=16), server_default='en', nullable=False))

    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('web_users', schema=None) as batch_op:
        batch_op.drop_column('language')

    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_column('default_language')
