"""Search: each case's searchable text, filled for the cases there are; a trigram index on PostgreSQL

Revision ID: 0015
Revises: 0012
"""

import json

import sqlalchemy as sa
from alembic import op

from service.usecases.search import search_text

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("search_text", sa.Text(), server_default="", nullable=False))
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT cases.id, cases.cadre_id, cases.data, process_versions.name FROM cases "
        "JOIN process_versions ON process_versions.id = cases.process_version_id")).all()
    for case_id, cadre_id, data, name in rows:
        values = json.loads(data) if isinstance(data, str) else data
        connection.execute(sa.text("UPDATE cases SET search_text = :text WHERE id = :id"),
                           {"text": search_text(name, cadre_id, values), "id": case_id})
    if connection.dialect.name == "postgresql":  # substring search (Chinese has no word breaks) by trigrams
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index("ix_cases_search_text", "cases", ["search_text"], unique=False, postgresql_using="gin",
                    postgresql_ops={"search_text": "gin_trgm_ops"})


def downgrade() -> None:
    op.drop_index("ix_cases_search_text", table_name="cases")
    op.drop_column("cases", "search_text")
