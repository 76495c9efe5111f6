"""Credential notices: the database tells every web process when logins, users or roles change

Each web process may keep who holds a token or session between requests (service/db/credentials.py)
only while it learns of every change to them, whoever makes it (the service, the CLI, an
administrator's SQL). On PostgreSQL statement-level triggers send a NOTIFY on channel
`cadreflow_credentials` after any statement that changes api_tokens, web_sessions, users or
user_roles (delivered at commit, and only then). On SQLite, which has no notifications, row triggers
count the same changes in the one row of `credential_epoch`, which a process reads whenever another
connection has committed. A new token or session needs no notice (a refused secret is never kept),
so their INSERTs send none.

Revision ID: 0022
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

EVENTS = {  # table -> the statements after which a kept holder may be wrong
    "api_tokens": ("UPDATE", "DELETE"),
    "web_sessions": ("UPDATE", "DELETE"),
    "users": ("UPDATE", "DELETE"),
    "user_roles": ("INSERT", "UPDATE", "DELETE"),
}


def upgrade() -> None:
    op.create_table("credential_epoch", sa.Column("id", sa.Integer(), nullable=False),
                    sa.Column("changes", sa.Integer(), nullable=False), sa.PrimaryKeyConstraint("id"))
    op.execute("INSERT INTO credential_epoch (id, changes) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""CREATE FUNCTION credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('cadreflow_credentials', TG_TABLE_NAME);
            RETURN NULL;
        END $$""")
        for table, events in EVENTS.items():
            op.execute(f"CREATE TRIGGER {table}_changed AFTER {' OR '.join(events)} OR TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed()")
        return
    for table, events in EVENTS.items():
        for event in events:
            op.execute(f"CREATE TRIGGER {table}_{event.lower()}_changed AFTER {event} ON {table} "
                       "BEGIN UPDATE credential_epoch SET changes = changes + 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
        op.execute("DROP FUNCTION IF EXISTS credentials_changed()")
    else:
        for table, events in EVENTS.items():
            for event in events:
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{event.lower()}_changed")
    op.drop_table("credential_epoch")
