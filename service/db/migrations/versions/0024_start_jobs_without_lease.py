"""Start jobs lose `lease_until`, which nothing ever read or wrote

A job's batch is taken under the job row's lock (`SELECT ... FOR UPDATE`) and committed or rolled back whole,
so a crashed worker leaves nothing to expire; the column only misled readers of the schema.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("start_jobs", schema=None) as batch_op:
        batch_op.drop_column("lease_until")


def downgrade() -> None:
    with op.batch_alter_table("start_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
