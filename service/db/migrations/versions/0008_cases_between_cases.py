"""Cases between cases: the outbox, what open cases wait for, call-activity links, timer starts, retries

Revision ID: 0008
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("source_case_id", sa.Integer(), nullable=True),
        sa.Column("target_case_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["source_case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["target_case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_next_attempt_at"), ["next_attempt_at"], unique=False)
    op.create_table(
        "case_waits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("correlation", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("case_waits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_waits_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_case_waits_lookup", ["kind", "name", "correlation"], unique=False)
    op.create_table(
        "scheduled_starts",
        sa.Column("process_key", sa.String(length=100), nullable=False),
        sa.Column("next_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("process_key"),
    )
    # Plain ALTER TABLE ... ADD COLUMN: a batch rebuild of `cases` on SQLite would fail on the foreign
    # keys of tasks and history once it holds data.
    op.add_column("cases", sa.Column("parent_task_id", sa.String(length=36), nullable=True))
    op.add_column("cases", sa.Column("retry_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("cases", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_cases_retry_at"), "cases", ["retry_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_cases_retry_at"), table_name="cases")
    for column in ("retry_at", "retry_attempts", "parent_task_id"):
        op.drop_column("cases", column)
    op.drop_table("scheduled_starts")
    with op.batch_alter_table("case_waits", schema=None) as batch_op:
        batch_op.drop_index("ix_case_waits_lookup")
        batch_op.drop_index(batch_op.f("ix_case_waits_case_id"))
    op.drop_table("case_waits")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_next_attempt_at"))
    op.drop_table("outbox")
