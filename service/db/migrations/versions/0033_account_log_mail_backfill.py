"""The account log vouches for mail settings: each account stored before gets a `user.mail_backfill` entry

Revision ID: 0033
Revises: 0032

Every change of a user's address or digest choice was already an entry (`user.mail`), but `cadreflow check` did not
hold the accounts to them: an address written with SQL would have had a user's notices about cases mailed to
someone else unseen. `check` now replays the entries, and each account stored before gets one `user.mail_backfill`
entry (actor `system`, the upgrade's time, its `email`, "" for none, and `mail_digest` then), with a note that how
they came to be is not recorded: what was written with SQL before the upgrade cannot be told now.
"""

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic import op

from service.db.chain import GENESIS, account_entry_hash

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

BACKFILL_NOTE = ("set before the account log vouched for mail settings: how is not recorded "
                 "(早于账号变更记录所载，此前的变更无从查考)")
ACTION = "user.mail_backfill"

log = sa.table("account_log", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
               sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String),
               sa.column("action", sa.String), sa.column("target", sa.String), sa.column("detail", sa.JSON),
               sa.column("hash", sa.String))
head = sa.table("account_log_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
                sa.column("hash", sa.String))
users = sa.table("users", sa.column("id", sa.Integer), sa.column("username", sa.String),
                 sa.column("email", sa.String), sa.column("mail_digest", sa.Boolean))


def upgrade() -> None:
    connection = op.get_bind()
    # Upgrading again after a downgrade: the accounts backfilled then are vouched for by their entries since.
    vouched = set(connection.scalars(sa.select(log.c.target).where(log.c.action == ACTION)))
    wanted = [(row.username, {"email": row.email or "", "mail_digest": bool(row.mail_digest)})
              for row in connection.execute(sa.select(users).order_by(users.c.id)) if row.username not in vouched]
    if wanted:
        _append(connection, wanted)


def _append(connection: sa.Connection, wanted: list[tuple[str, dict[str, Any]]]) -> None:
    """Chain the entries after the log's last one and move its head (as 0029 and 0032 do)."""
    last = connection.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).first()
    seq, previous = (last.seq, last.hash or GENESIS) if last else (0, GENESIS)
    now, entries = datetime.now(UTC), list[dict[str, Any]]()
    for target, detail in wanted:
        seq += 1
        entry = {"seq": seq, "at": now, "actor": "system", "action": ACTION, "target": target,
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
