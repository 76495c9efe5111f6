"""Cases by cadre and process: one index on both, in place of the index on the cadre alone

A bulk start asks, per batch, which of 200 cadres already have their case of the process. Without
fresh statistics (SQLite keeps none; PostgreSQL's are stale while a bulk start fills the table) the
planners took the process_key index and read every case of the process, each batch: quadratic in
the county. The index on (cadre_id, process_key) answers that question directly and still serves
lookups by cadre alone.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_cadre_process", ["cadre_id", "process_key"], unique=False)
        batch_op.drop_index("ix_cases_cadre_id")


def downgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index("ix_cases_cadre_id", ["cadre_id"], unique=False)
        batch_op.drop_index("ix_cases_cadre_process")
