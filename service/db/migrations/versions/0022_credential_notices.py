"""Credential notices: PostgreSQL tells every listener when logins, users or roles change

Each web process may keep who holds a token or session between requests (service/db/credentials.py)
only while it hears every change to them. These statement-level triggers send a NOTIFY on channel
`cadreflow_credentials` after any statement that changes api_tokens, web_sessions, users or
user_roles, whoever runs it (the service, the CLI, an administrator's SQL); PostgreSQL delivers it
at commit, and only then. A new token or session needs no notice (a refused secret is never kept),
so their INSERTs send none. SQLite keeps no such cache: nothing to add there.

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

EVENTS = {  # table -> the statements after which a kept holder may be wrong
    "api_tokens": "UPDATE OR DELETE OR TRUNCATE",
    "web_sessions": "UPDATE OR DELETE OR TRUNCATE",
    "users": "UPDATE OR DELETE OR TRUNCATE",
    "user_roles": "INSERT OR UPDATE OR DELETE OR TRUNCATE",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("""CREATE FUNCTION credentials_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('cadreflow_credentials', TG_TABLE_NAME);
        RETURN NULL;
    END $$""")
    for table, events in EVENTS.items():
        op.execute(f"CREATE TRIGGER {table}_changed AFTER {events} ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in EVENTS:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute("DROP FUNCTION IF EXISTS credentials_changed()")
