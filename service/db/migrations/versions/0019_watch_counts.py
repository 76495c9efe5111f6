"""The watch list's history (PROCESSES.md §10): cadres per unit and level at each early-warning scan

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watch_counts",
        sa.Column("scanned_on", sa.Date(), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scanned_on", "unit", "level"),
    )


def downgrade() -> None:
    op.drop_table("watch_counts")
