"""Account and role changes get a hash-chained, append-only log: one chain, its head in a one-row table

Revision ID: 0027
Revises: 0026

Every account already stored gets one `user.backfill` entry (actor `system`, the time of the upgrade) saying its
roles and whether it may log in then: how it came to hold them left no trace, and the entry says so; `cadreflow
check` holds each account to its latest entries from then on. Only then are UPDATE and DELETE (and TRUNCATE on
PostgreSQL) on the log refused, as on the personal-report log (0025).
"""

from datetime import UTC, datetime
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

from service.db.chain import GENESIS, account_entry_hash

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

BACKFILL_NOTE = ("held before the account log existed: how is not recorded "
                 "(本账号的角色与状态早于账号变更记录，此前的变更无从查考)")
REFUSED = "the account log is append-only (账号变更记录只能追加，不能修改或删除)"

POSTGRESQL_TRIGGERS = (
    f"""CREATE FUNCTION account_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSED}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    "CREATE TRIGGER account_log_no_rewrite BEFORE UPDATE OR DELETE ON account_log "
    "FOR EACH ROW EXECUTE FUNCTION account_log_append_only()",
    "CREATE TRIGGER account_log_no_truncate BEFORE TRUNCATE ON account_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION account_log_append_only()",
)
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER account_log_no_{verb.lower()} BEFORE {verb} ON account_log "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE"))
DROP_TRIGGERS = {
    "postgresql": ("DROP TRIGGER IF EXISTS account_log_no_truncate ON account_log",
                   "DROP TRIGGER IF EXISTS account_log_no_rewrite ON account_log",
                   "DROP FUNCTION IF EXISTS account_log_append_only()"),
    "sqlite": ("DROP TRIGGER IF EXISTS account_log_no_update", "DROP TRIGGER IF EXISTS account_log_no_delete"),
}


users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String),
                sa.column("active", sa.Boolean))
user_roles = sa.table("user_roles", sa.column("user_id", sa.Integer), sa.column("role", sa.String))


def upgrade() -> None:
    log = op.create_table(
        "account_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_log_seq", "account_log", ["seq"], unique=True)
    op.create_index("ix_account_log_actor", "account_log", ["actor"])
    op.create_index("ix_account_log_target", "account_log", ["target"])
    head = op.create_table(
        "account_log_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    assert log is not None and head is not None
    connection = op.get_bind()
    seq, last = _backfill(connection, log)
    connection.execute(head.insert().values(id=1, seq=seq, hash=last or None))
    for statement in POSTGRESQL_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def _backfill(connection: sa.Connection, log: sa.Table) -> tuple[int, str]:
    """One `user.backfill` entry per stored account, in id order, chained; the chain's length and last hash."""
    now, previous = datetime.now(UTC), GENESIS
    held: dict[int, list[str]] = {}
    for user_id, role in connection.execute(sa.select(user_roles.c.user_id, user_roles.c.role)):
        held.setdefault(user_id, []).append(role)
    entries: list[dict] = []
    for row in connection.execute(sa.select(users).order_by(users.c.id)):
        entry = {"seq": len(entries) + 1, "at": now, "actor": "system", "action": "user.backfill",
                 "target": row.username, "detail": {"roles": sorted(held.get(row.id, [])),
                                                    "active": bool(row.active), "note": BACKFILL_NOTE}}
        entry["hash"] = previous = account_entry_hash(SimpleNamespace(**entry), previous)
        entries.append(entry)
    if entries:
        connection.execute(log.insert(), entries)
    return len(entries), previous


def downgrade() -> None:
    for statement in DROP_TRIGGERS.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    op.drop_table("account_log_head")
    op.drop_index("ix_account_log_target", table_name="account_log")
    op.drop_index("ix_account_log_actor", table_name="account_log")
    op.drop_index("ix_account_log_seq", table_name="account_log")
    op.drop_table("account_log")
