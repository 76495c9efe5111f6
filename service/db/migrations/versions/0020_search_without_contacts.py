"""Search: a public report's searchable text without the reporter's contact, which only discipline roles read

Revision ID: 0020
Revises: 0019
"""

import json

import sqlalchemy as sa
from alembic import op

from service.usecases.search import search_text

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

PROCESS = "public_report"


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text(
        "SELECT cases.id, cases.cadre_id, cases.data, process_versions.name FROM cases "
        "JOIN process_versions ON process_versions.id = cases.process_version_id "
        "WHERE cases.process_key = :process"), {"process": PROCESS}).all()
    for case_id, cadre_id, data, name in rows:
        values = json.loads(data) if isinstance(data, str) else data
        connection.execute(sa.text("UPDATE cases SET search_text = :text WHERE id = :id"),
                           {"text": search_text(name, cadre_id, values, PROCESS), "id": case_id})


def downgrade() -> None:
    pass  # the contact is not put back into the index
