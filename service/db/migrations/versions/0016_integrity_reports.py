"""述职述廉 (docs/processes.md §8): public disclosures of the reports and the public's ratings, one per address

Revision ID: 0016
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.String(length=20), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("concluded_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"]),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
    )
    op.create_index("ix_disclosures_cadre_id", "disclosures", ["cadre_id"], unique=False)
    op.create_index("ix_disclosures_closed_at", "disclosures", ["closed_at"], unique=False)
    op.create_table(
        "disclosure_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("disclosure_id", sa.Integer(), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("rating", sa.String(length=24), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["disclosure_id"], ["disclosures.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("disclosure_id", "address_hash", name="uq_disclosure_ratings_address"),
    )
    op.create_index("ix_disclosure_ratings_disclosure_id", "disclosure_ratings", ["disclosure_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_disclosure_ratings_disclosure_id", table_name="disclosure_ratings")
    op.drop_table("disclosure_ratings")
    op.drop_index("ix_disclosures_closed_at", table_name="disclosures")
    op.drop_index("ix_disclosures_cadre_id", table_name="disclosures")
    op.drop_table("disclosures")
