"""Early warning 苗头性问题预警 (PROCESSES.md §10): the watch list the daily scan keeps

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist",
        sa.Column("cadre_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("signals", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("since", sa.Date(), nullable=False),
        sa.Column("scanned_on", sa.Date(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("cadre_id"),
    )
    op.create_index("ix_watchlist_level", "watchlist", ["level"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_watchlist_level", table_name="watchlist")
    op.drop_table("watchlist")
