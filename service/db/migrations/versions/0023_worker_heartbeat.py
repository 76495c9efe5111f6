"""Worker heartbeat: when a worker last finished a poll, for the readiness check and the dashboard

One row, written by whichever worker finishes a poll; nothing in a case depends on it.

Revision ID: 0023
Revises: 0022
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("worker_heartbeat", sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True), sa.PrimaryKeyConstraint("id"))
    op.execute("INSERT INTO worker_heartbeat (id, polled_at) VALUES (1, NULL)")


def downgrade() -> None:
    op.drop_table("worker_heartbeat")
