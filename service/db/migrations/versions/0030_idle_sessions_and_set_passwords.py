"""Web sessions end after an idle time; a password an admin set must be changed at the next web login

Revision ID: 0030
Revises: 0029

`web_sessions.last_seen_at`: the last request a session served, moved at most once a minute (logins.py), so
WEB_SESSION_IDLE_MINUTES after it the session ends. Sessions open at the upgrade count as seen then: nobody working
is logged out by it, and one left open ends an idle time later. Moving it is no change to who holds the session:
0022's triggers on web_sessions now leave an UPDATE of that column alone, or every refresh would make every web
process forget every kept holder (service/db/credentials.py).

`users.must_change_password`: set when an admin sets someone else's password (no account has one at the upgrade).
"""

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

# The columns whose change may make a kept holder wrong (last_seen_at only moves an idle deadline forward).
HOLDER_COLUMNS = "token_hash, user_id, created_at, expires_at"

web_sessions = sa.table("web_sessions", sa.column("last_seen_at", sa.DateTime(timezone=True)))


def upgrade() -> None:
    op.add_column("users", sa.Column("must_change_password", sa.Boolean(), server_default=sa.false(),
                                     nullable=False))
    op.add_column("web_sessions", sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.get_bind().execute(web_sessions.update().values(last_seen_at=datetime.now(UTC)))
    with _rebuilding_web_sessions() as batch_op:
        batch_op.alter_column("last_seen_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    _session_triggers(f"UPDATE OF {HOLDER_COLUMNS}")


def downgrade() -> None:
    with _rebuilding_web_sessions() as batch_op:
        batch_op.drop_column("last_seen_at")
    _session_triggers("UPDATE")
    op.drop_column("users", "must_change_password")


@contextmanager
def _rebuilding_web_sessions() -> Iterator[Any]:
    """Alter web_sessions; SQLite rebuilds the table (its triggers go with it: `_session_triggers` makes them
    again), reflecting `users` on the way, whose index on lower(username) it cannot read and need not."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        with op.batch_alter_table("web_sessions") as batch_op:
            yield batch_op


def _session_triggers(update: str) -> None:
    """web_sessions' triggers of migration 0022, their UPDATE event being `update`."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS web_sessions_changed ON web_sessions")
        op.execute(f"CREATE TRIGGER web_sessions_changed AFTER {update} OR DELETE OR TRUNCATE ON web_sessions "
                   "FOR EACH STATEMENT EXECUTE FUNCTION credentials_changed()")
        return
    for name, event in (("update", update), ("delete", "DELETE")):
        op.execute(f"DROP TRIGGER IF EXISTS web_sessions_{name}_changed")
        op.execute(f"CREATE TRIGGER web_sessions_{name}_changed AFTER {event} ON web_sessions "
                   "BEGIN UPDATE credential_epoch SET changes = changes + 1; END")
