"""Account and role changes get a hash-chained, append-only log: one chain, its head in a one-row table

Revision ID: 0027
Revises: 0026

Nothing is backfilled: accounts and roles as they stood before the upgrade left no trace to chain, and the log
vouches only for the changes it records from now on. UPDATE and DELETE (and TRUNCATE on PostgreSQL) on the log are
refused, as on the personal-report log (0025).
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

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


def upgrade() -> None:
    op.create_table(
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
    assert head is not None
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": None}])
    for statement in POSTGRESQL_TRIGGERS if op.get_bind().dialect.name == "postgresql" else SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    for statement in DROP_TRIGGERS.get(op.get_bind().dialect.name, ()):
        op.execute(statement)
    op.drop_table("account_log_head")
    op.drop_index("ix_account_log_target", table_name="account_log")
    op.drop_index("ix_account_log_actor", table_name="account_log")
    op.drop_index("ix_account_log_seq", table_name="account_log")
    op.drop_table("account_log")
