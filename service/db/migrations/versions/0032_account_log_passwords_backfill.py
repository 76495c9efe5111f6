"""The account log vouches for passwords: each account's password stored before gets a `user.password_backfill` entry

Revision ID: 0032
Revises: 0031

An entry that sets a password now carries `password_hash_sha256`, a digest of the hash it stored (never the hash),
and `cadreflow check` holds each account's hash, and whether it must replace an admin-set password, to the last
such entry: a hash written with SQL (to log in as its owner) is named. Each account no such entry vouches for gets
one `user.password_backfill` entry (actor `system`, the upgrade's time, the digest of its hash and its
`must_change_password` then), with a note that how the password came to be is not recorded.
"""

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic import op

from service.db.chain import GENESIS, account_entry_hash, password_digest

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None

BACKFILL_NOTE = ("set before the account log vouched for passwords: how is not recorded "
                 "(早于账号变更记录所载，此前的变更无从查考)")
KEY = "password_hash_sha256"
SETTING = ("user.create", "user.password_reset", "user.password_change", "user.password_backfill")

log = sa.table("account_log", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
               sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String),
               sa.column("action", sa.String), sa.column("target", sa.String), sa.column("detail", sa.JSON),
               sa.column("hash", sa.String))
head = sa.table("account_log_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
                sa.column("hash", sa.String))
users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String),
                 sa.column("password_hash", sa.String), sa.column("must_change_password", sa.Boolean))


def upgrade() -> None:
    connection = op.get_bind()
    vouched = {target for target, detail in connection.execute(
        sa.select(log.c.target, log.c.detail).where(log.c.action.in_(SETTING))) if KEY in _dict(detail)}
    wanted = [(row.username, {KEY: password_digest(row.password_hash),
                              "must_change_password": bool(row.must_change_password)})
              for row in connection.execute(sa.select(users).order_by(users.c.id)) if row.username not in vouched]
    if wanted:
        _append(connection, wanted)


def _dict(detail: Any) -> dict[str, Any]:
    return detail if isinstance(detail, dict) else {}


def _append(connection: sa.Connection, wanted: list[tuple[str, dict[str, Any]]]) -> None:
    """Chain the entries after the log's last one and move its head (as 0029 does)."""
    last = connection.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).first()
    seq, previous = (last.seq, last.hash or GENESIS) if last else (0, GENESIS)
    now, entries = datetime.now(UTC), list[dict[str, Any]]()
    for target, detail in wanted:
        seq += 1
        entry = {"seq": seq, "at": now, "actor": "system", "action": "user.password_backfill", "target": target,
                 "detail": {**detail, "note": BACKFILL_NOTE}}
        entry["hash"] = previous = account_entry_hash(SimpleNamespace(**entry), previous)
        entries.append(entry)
    connection.execute(log.insert(), entries)
    if last is None:
        connection.execute(head.insert().values(id=1, seq=seq, hash=previous))
    else:
        connection.execute(head.update().where(head.c.id == 1).values(seq=seq, hash=previous))


def downgrade() -> None:
    """The entries stay: the log is append-only, and they say what was so then."""
