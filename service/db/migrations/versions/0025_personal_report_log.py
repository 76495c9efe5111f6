"""Personal reports get a hash-chained log: one chain per cadre, its head on the cadre, append-only triggers

Revision ID: 0025
Revises: 0024

Every report already stored gets one `backfill` entry (actor `system`, the time of the upgrade) saying what its
row holds then: the log vouches for such a report only from the upgrade on, since what it held before cannot be
proven now, and the entry says so. Only then are UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the log refused.
"""

from datetime import UTC, datetime
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

from service.db.chain import GENESIS, report_detail, report_entry_hash

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

REFUSED = "the personal-report log is append-only (个人事项报告日志只能追加，不能修改或删除)"
BACKFILL_NOTE = ("recorded before the log existed: vouched for only from this entry on "
                 "(本报告早于日志，仅自此条起可证明未被改动)")

POSTGRESQL_TRIGGERS = (
    f"""CREATE FUNCTION personal_report_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSED}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    "CREATE TRIGGER personal_report_log_no_rewrite BEFORE UPDATE OR DELETE ON personal_report_log "
    "FOR EACH ROW EXECUTE FUNCTION personal_report_log_append_only()",
    "CREATE TRIGGER personal_report_log_no_truncate BEFORE TRUNCATE ON personal_report_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION personal_report_log_append_only()",
)
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER personal_report_log_no_{verb.lower()} BEFORE {verb} ON personal_report_log "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE"))
DROP_TRIGGERS = {
    "postgresql": ("DROP TRIGGER IF EXISTS personal_report_log_no_truncate ON personal_report_log",
                   "DROP TRIGGER IF EXISTS personal_report_log_no_rewrite ON personal_report_log",
                   "DROP FUNCTION IF EXISTS personal_report_log_append_only()"),
    "sqlite": ("DROP TRIGGER IF EXISTS personal_report_log_no_update",
               "DROP TRIGGER IF EXISTS personal_report_log_no_delete"),
}

reports = sa.table("personal_reports", sa.column("id", sa.Integer), sa.column("cadre_id", sa.String),
                   sa.column("kind", sa.String), sa.column("event_on", sa.Date), sa.column("reported_on", sa.Date),
                   sa.column("summary", sa.Text), sa.column("found_unreported", sa.Boolean),
                   sa.column("late", sa.Boolean), sa.column("case_id", sa.Integer),
                   sa.column("recorded_by", sa.String), sa.column("recorded_at", sa.DateTime(timezone=True)))
cadres = sa.table("cadres", sa.column("id", sa.String), sa.column("report_seq", sa.Integer),
                  sa.column("report_hash", sa.String))


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN: a batch rebuild of `cadres` on SQLite would drop a table others reference.
    op.add_column("cadres", sa.Column("report_seq", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("cadres", sa.Column("report_hash", sa.String(length=64), nullable=True))
    log = op.create_table(
        "personal_report_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cadre_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["cadre_id"], ["cadres.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_personal_report_log_cadre_seq", "personal_report_log", ["cadre_id", "seq"], unique=True)
    assert log is not None
    _backfill(op.get_bind(), log)
    for statement in POSTGRESQL_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def _backfill(connection: sa.Connection, log: sa.Table) -> None:
    """One `backfill` entry per stored report, chained per cadre in report id order; each cadre gets its head."""
    now = datetime.now(UTC)
    entries: list[dict] = []
    heads: dict[str, dict] = {}
    for row in connection.execute(sa.select(reports).order_by(reports.c.cadre_id, reports.c.id)):
        head = heads.get(row.cadre_id, {"cadre": row.cadre_id, "seq": 0, "hash": GENESIS})
        entry = {"cadre_id": row.cadre_id, "seq": head["seq"] + 1, "at": now, "actor": "system",
                 "action": "backfill", "detail": {**report_detail(row), "note": BACKFILL_NOTE}}
        entry["hash"] = report_entry_hash(SimpleNamespace(**entry), head["hash"])
        entries.append(entry)
        heads[row.cadre_id] = {**head, "seq": entry["seq"], "hash": entry["hash"]}
    if entries:
        connection.execute(log.insert(), entries)
        connection.execute(cadres.update().where(cadres.c.id == sa.bindparam("cadre"))
                           .values(report_seq=sa.bindparam("seq"), report_hash=sa.bindparam("hash")),
                           list(heads.values()))


def downgrade() -> None:
    for statement in DROP_TRIGGERS.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    op.drop_index("ix_personal_report_log_cadre_seq", table_name="personal_report_log")
    op.drop_table("personal_report_log")
    op.drop_column("cadres", "report_hash")  # ALTER TABLE DROP COLUMN (SQLite 3.35+), no rebuild
    op.drop_column("cadres", "report_seq")
