"""dynamic case groups

Revision ID: 0016_dynamic_groups
Revises: 0015_languages
Create Date: 2026-12-07 18:55:00

- ``case_groups.filter``: a dynamic group's ``{case_type, criteria}`` (null: cases added by hand).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = "0016_dynamic_groups"
down_revision = "0015_languages"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("case_groups", sa.Column("filter", sa.JSON(), nullable=True))


def downgrade():
    # Plain ALTER TABLE ... DROP COLUMN: a batch copy of case_groups on SQLite would drop the
    # old table, and its ON DELETE CASCADE would empty case_group_members.
    op.drop_column("case_groups", "filter")
