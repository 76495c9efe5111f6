"""Step fast path: cases remember whether they have rows in case_waits

Revision ID: 0017
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing cases may have waits: true, so their next step clears them once as before.
    op.add_column("cases", sa.Column("has_waits", sa.Boolean(), server_default=sa.true(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("has_waits")
