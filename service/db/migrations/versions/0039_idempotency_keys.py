"""The API's `Idempotency-Key` header: the keys sent and the answers replayed to a retry

Revision ID: 0039
Revises: 0033

A POST sent again over the API (a client that timed out and retried) was carried out again: two cases, two
personal reports. A POST with the header now stores the key, per user, a digest of the request and its first
successful answer, and a retry gets that answer back instead of a second record (docs/api.md).
"""

import sqlalchemy as sa
from alembic import op

revision = "0039"
down_revision = "0033"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("username", sa.String(100), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("content_type", sa.String(100), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    op.drop_table("idempotency_keys")
