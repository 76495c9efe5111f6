"""History hash chain: per-case sequence and hash on each entry, the chain's head on the case, append-only triggers

Revision ID: 0005
Revises: 0003

Existing entries are chained in id order per case, in batches, and each case gets its head;
only then are UPDATE and DELETE (and TRUNCATE on PostgreSQL) on history refused by triggers.
A later migration that rebuilds the history table on SQLite (batch mode: copy, drop, rename)
drops these triggers with it and must create them again (tests/service/test_history_chain.py
checks head refuses an UPDATE).
"""

from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op

from service.db.chain import GENESIS, entry_hash

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 500  # cases per round trip while chaining existing history

REFUSED = "history is append-only (履历只能追加，不能修改或删除)"

POSTGRESQL_TRIGGERS = (
    f"""CREATE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSED}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    "CREATE TRIGGER history_no_rewrite BEFORE UPDATE OR DELETE ON history "
    "FOR EACH ROW EXECUTE FUNCTION history_append_only()",
    "CREATE TRIGGER history_no_truncate BEFORE TRUNCATE ON history "
    "FOR EACH STATEMENT EXECUTE FUNCTION history_append_only()",
)
SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER history_no_{verb.lower()} BEFORE {verb} ON history "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: {verb} refused'); END"
    for verb in ("UPDATE", "DELETE"))
DROP_TRIGGERS = {
    "postgresql": ("DROP TRIGGER IF EXISTS history_no_truncate ON history",
                   "DROP TRIGGER IF EXISTS history_no_rewrite ON history",
                   "DROP FUNCTION IF EXISTS history_append_only()"),
    "sqlite": ("DROP TRIGGER IF EXISTS history_no_update", "DROP TRIGGER IF EXISTS history_no_delete"),
}

cases = sa.table("cases", sa.column("id", sa.Integer), sa.column("history_seq", sa.Integer),
                 sa.column("history_hash", sa.String))
history = sa.table("history", sa.column("id", sa.Integer), sa.column("case_id", sa.Integer),
                   sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String),
                   sa.column("action", sa.String), sa.column("task", sa.String), sa.column("detail", sa.JSON),
                   sa.column("seq", sa.Integer), sa.column("hash", sa.String))


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN: a batch rebuild of `cases` on SQLite would drop a table that
    # tasks and history reference, which foreign_keys=ON refuses once it holds rows.
    op.add_column("cases", sa.Column("history_seq", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.add_column("cases", sa.Column("history_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    _chain_existing_history(op.get_bind())
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_index("ix_history_case_id")
        batch_op.create_index("ix_history_case_seq", ["case_id", "seq"], unique=True)
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def _chain_existing_history(connection: sa.Connection) -> None:
    """Chain every case's entries in id order, a batch of cases at a time, and set each case's head."""
    last_id = 0
    while True:
        ids = connection.execute(sa.select(cases.c.id).where(cases.c.id > last_id)
                                 .order_by(cases.c.id).limit(BATCH)).scalars().all()
        if not ids:
            return
        entries, heads = _chain(connection.execute(
            sa.select(history).where(history.c.case_id.between(ids[0], ids[-1]))
            .order_by(history.c.case_id, history.c.id)))
        if entries:
            connection.execute(history.update().where(history.c.id == sa.bindparam("entry_id"))
                               .values(seq=sa.bindparam("new_seq"), hash=sa.bindparam("new_hash")), entries)
            connection.execute(cases.update().where(cases.c.id == sa.bindparam("case_id"))
                               .values(history_seq=sa.bindparam("new_seq"), history_hash=sa.bindparam("new_hash")),
                               heads)
        last_id = ids[-1]


def _chain(rows: sa.CursorResult) -> tuple[list[dict], list[dict]]:
    entries: list[dict] = []
    heads: dict[int, dict] = {}
    for row in rows:
        head = heads.get(row.case_id, {"case_id": row.case_id, "new_seq": 0, "new_hash": GENESIS})
        seq = head["new_seq"] + 1
        digest = entry_hash(SimpleNamespace(**{**row._asdict(), "seq": seq}), head["new_hash"])
        entries.append({"entry_id": row.id, "new_seq": seq, "new_hash": digest})
        heads[row.case_id] = {**head, "new_seq": seq, "new_hash": digest}
    return entries, list(heads.values())


def downgrade() -> None:
    for statement in DROP_TRIGGERS.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    with op.batch_alter_table("history", schema=None) as batch_op:
        batch_op.drop_index("ix_history_case_seq")
        batch_op.create_index("ix_history_case_id", ["case_id"], unique=False)
        batch_op.drop_column("hash")
        batch_op.drop_column("seq")
    op.drop_column("cases", "history_hash")  # ALTER TABLE DROP COLUMN (SQLite 3.35+), no rebuild
    op.drop_column("cases", "history_seq")
