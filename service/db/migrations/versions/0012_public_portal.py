"""Public portal: reports tracked by code and key; a public report has no cadre until triage links one

Revision ID: 0012
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _cadre_id_nullable(True)
    op.create_table(
        "public_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_code", sa.String(length=20), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("contact", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_public_reports_tracking_code", "public_reports", ["tracking_code"], unique=True)
    op.create_index("ix_public_reports_case_id", "public_reports", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_public_reports_case_id", table_name="public_reports")
    op.drop_index("ix_public_reports_tracking_code", table_name="public_reports")
    op.drop_table("public_reports")
    _cadre_id_nullable(False)


def _cadre_id_nullable(nullable: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("cases", "cadre_id", existing_type=sa.String(length=64), nullable=nullable)
        return
    # SQLite changes a column only by rebuilding its table, and dropping `cases` (which tasks, history
    # and others reference) is refused under foreign_keys=ON. Dropping or adding a NOT NULL does not
    # change what is stored, so the table's definition is edited in place, as SQLite's documentation
    # on ALTER TABLE describes for such changes (the schema version is bumped so connections reload it).
    connection = op.get_bind()
    sql = connection.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cases'").scalar()
    strict, loose = "cadre_id VARCHAR(64) NOT NULL", "cadre_id VARCHAR(64)"
    new_sql = sql.replace(strict, loose) if nullable else sql.replace(loose + ",", strict + ",")
    if new_sql == sql:
        return
    version = connection.exec_driver_sql("PRAGMA schema_version").scalar()
    connection.exec_driver_sql("PRAGMA writable_schema=ON")
    connection.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'cases'", (new_sql,))
    connection.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    connection.exec_driver_sql("PRAGMA writable_schema=OFF")
