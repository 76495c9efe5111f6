"""Cases count their timer steps since a person last acted on them (`timer_firings`)

A loop through a short timer fires once per worker poll for ever, writing history each time; the worker holds a
case as an incident once MAX_TIMER_FIRINGS_WITHOUT_PERSON timer steps passed with no person's act in between.
Cases already stored start at 0.

Revision ID: 0028
Revises: 0027
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE ... ADD COLUMN: a batch rebuild of `cases` on SQLite would fail on the foreign keys of
    # tasks and history once it holds data (as in 0008).
    op.add_column("cases", sa.Column("timer_firings", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("cases", "timer_firings")
