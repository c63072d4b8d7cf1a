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
    op.add_column(
        "projects", sa.Column("default_language", sa.String(length=16), server_default="en", nullable=False)
    )
    op.add_column("web_users", sa.Column("language", sa.String(length=16), nullable=True))


def downgrade():
    # Plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35), not a batch copy of the table: on
    # SQLite, copying ``projects`` would drop the old table, and its ON DELETE CASCADE
    # foreign keys would empty every table that belongs to a project.
    op.drop_column("web_users", "language")
    op.drop_column("projects", "default_language")
