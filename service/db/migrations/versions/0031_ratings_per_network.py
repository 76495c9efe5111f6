"""述职述廉 ratings remember an IPv6 rater's /48 (`disclosure_ratings.network_hash`), so a disclosure takes at most
PUBLIC_RATINGS_PER_NETWORK ratings from one

One rating per address counts an IPv6 client by its /64, and a /48 (free from a tunnel broker) holds 65,536 of
them: enough to decide any tally. Ratings stored before have no network (NULL) and count towards none.

Revision ID: 0031
Revises: 0030
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch rebuild of the table on SQLite), as in 0028.
    op.add_column("disclosure_ratings", sa.Column("network_hash", sa.String(length=64), nullable=True))
    op.create_index("ix_disclosure_ratings_network", "disclosure_ratings", ["disclosure_id", "network_hash"])


def downgrade() -> None:
    op.drop_index("ix_disclosure_ratings_network", table_name="disclosure_ratings")
    op.drop_column("disclosure_ratings", "network_hash")
