"""import results stored per batch

Revision ID: 0009_import_batches
Revises: 0008_broadcasts
Create Date: 2026-12-03 13:55:00

The per-row ``import_rows`` table becomes ``import_batches``: one record per
batch of rows, its results as a JSON list. Existing results are carried over
(2,000 rows a record), so every finished import keeps its per-row table.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0009_import_batches"
down_revision = "0008_broadcasts"
branch_labels = None
depends_on = None

CARRY_BATCH = 2000

import_rows = sa.table(
    "import_rows",
    sa.column("import_id", sa.String),
    sa.column("row_number", sa.Integer),
    sa.column("identifier", sa.String),
    sa.column("result", sa.String),
    sa.column("case_id", sa.String),
    sa.column("message", sa.Text),
)
import_batches = sa.table(
    "import_batches",
    sa.column("import_id", sa.String),
    sa.column("first_row", sa.Integer),
    sa.column("last_row", sa.Integer),
    sa.column("position", sa.Integer),
    sa.column("size", sa.Integer),
    sa.column("outcomes", sa.Text),
)


def _batch(import_id, position, rows):
    return {
        "import_id": import_id,
        "first_row": rows[0][0],
        "last_row": rows[-1][0],
        "position": position,
        "size": len(rows),
        "outcomes": json.dumps(rows, separators=(",", ":")),
    }


def upgrade():
    op.create_table(
        "import_batches",
        sa.Column("import_id", sa.String(length=32), nullable=False),
        sa.Column("first_row", sa.Integer(), nullable=False),
        sa.Column("last_row", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["imports.id"],
            name=op.f("fk_import_batches_import_id_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("import_id", "first_row", name=op.f("pk_import_batches")),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            import_rows.c.import_id,
            import_rows.c.row_number,
            import_rows.c.identifier,
            import_rows.c.result,
            import_rows.c.case_id,
            import_rows.c.message,
        ).order_by(import_rows.c.import_id, import_rows.c.row_number)
    )
    current, position, pending = None, 0, []

    def carry():
        if pending:
            connection.execute(import_batches.insert(), [_batch(current, position, pending)])

    for import_id, *outcome in rows:
        if import_id != current:
            carry()
            current, position, pending = import_id, 0, []
        elif len(pending) >= CARRY_BATCH:
            carry()
            position, pending = position + len(pending), []
        pending.append(outcome)
    carry()
    op.drop_table("import_rows")


def downgrade():
    op.create_table(
        "import_rows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("import_id", sa.String(length=32), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("identifier", sa.String(length=255), nullable=True),
        sa.Column("result", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"], ["imports.id"], name=op.f("fk_import_rows_import_id_imports"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_rows")),
        sa.UniqueConstraint("import_id", "row_number", name=op.f("uq_import_rows_import_id_row_number")),
    )
    with op.batch_alter_table("import_rows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_import_rows_import_id"), ["import_id"], unique=False)
        batch_op.create_index("ix_import_rows_import_case", ["import_id", "case_id"], unique=False)
        batch_op.create_index("ix_import_rows_import_identifier", ["import_id", "identifier"], unique=False)
    connection = op.get_bind()
    batches = connection.execute(
        sa.select(import_batches.c.import_id, import_batches.c.outcomes).order_by(
            import_batches.c.import_id, import_batches.c.first_row
        )
    ).all()
    for import_id, outcomes in batches:
        values = [
            dict(zip(("row_number", "identifier", "result", "case_id", "message"), o, strict=True))
            for o in json.loads(outcomes)
        ]
        connection.execute(import_rows.insert(), [{"import_id": import_id, **v} for v in values])
    op.drop_table("import_batches")
