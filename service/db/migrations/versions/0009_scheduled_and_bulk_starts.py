"""Timer start events and bulk starts: schedule intervals, and start jobs worked off in batches

Revision ID: 0009
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scheduled_starts", sa.Column("interval", sa.String(length=40), nullable=True))
    op.add_column("scheduled_starts", sa.Column("remaining", sa.Integer(), nullable=True))
    op.create_table(
        "start_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("process_key", sa.String(length=100), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("selector", sa.Text(), nullable=True),
        sa.Column("dedupe", sa.String(length=100), nullable=False),
        sa.Column("cursor", sa.String(length=64), nullable=False),
        sa.Column("opened", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_start_jobs_status"), "start_jobs", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_start_jobs_status"), table_name="start_jobs")
    op.drop_table("start_jobs")
    op.drop_column("scheduled_starts", "remaining")
    op.drop_column("scheduled_starts", "interval")
