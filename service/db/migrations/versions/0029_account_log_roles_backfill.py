"""The account log holds roles and starters too: each role and each process's starters stored before gets an entry

Revision ID: 0029
Revises: 0028

Roles seeded from settings (`cadreflow init-db`, or an admin's first change) were written without an entry until
now, so `cadreflow check`, which replays the log's role and starter entries against the `roles` and
`process_starters` tables, would name them all. Each role without a `role.create` or `role.backfill` entry gets a
`role.backfill` entry (actor `system`, the time of the upgrade, its names and head role then), and each process
whose starters no entry names gets a `process.backfill` entry (its starters then), both with a note that how they
came to be is not recorded.
"""

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic import op

from service.db.chain import GENESIS, account_entry_hash

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

BACKFILL_NOTE = ("defined before the account log held roles and starters: how is not recorded "
                 "(早于账号变更记录所载，此前的变更无从查考)")

log = sa.table("account_log", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
               sa.column("at", sa.DateTime(timezone=True)), sa.column("actor", sa.String),
               sa.column("action", sa.String), sa.column("target", sa.String), sa.column("detail", sa.JSON),
               sa.column("hash", sa.String))
head = sa.table("account_log_head", sa.column("id", sa.Integer), sa.column("seq", sa.Integer),
                sa.column("hash", sa.String))
roles = sa.table("roles", sa.column("code", sa.String), sa.column("name_zh", sa.String),
                 sa.column("name_en", sa.String), sa.column("head_role", sa.String))
starters = sa.table("process_starters", sa.column("process_key", sa.String), sa.column("role", sa.String))


def upgrade() -> None:
    connection = op.get_bind()
    wanted = [("role.backfill", code, detail) for code, detail in _unlogged_roles(connection)]
    wanted += [("process.backfill", key, {"roles": found}) for key, found in _unlogged_starters(connection)]
    if wanted:
        _append(connection, wanted)


def _logged(connection: sa.Connection, actions: tuple[str, ...]) -> set[str]:
    return set(connection.scalars(sa.select(log.c.target).where(log.c.action.in_(actions))))


def _unlogged_roles(connection: sa.Connection) -> list[tuple[str, dict[str, Any]]]:
    logged = _logged(connection, ("role.create", "role.backfill"))
    return [(row.code, {"name_zh": row.name_zh, "name_en": row.name_en, "head_role": row.head_role})
            for row in connection.execute(sa.select(roles).order_by(roles.c.code)) if row.code not in logged]


def _unlogged_starters(connection: sa.Connection) -> list[tuple[str, list[str]]]:
    logged = _logged(connection, ("process.starters", "process.backfill"))
    found: dict[str, list[str]] = {}
    for key, role in connection.execute(sa.select(starters.c.process_key, starters.c.role)):
        found.setdefault(key, []).append(role)
    return [(key, sorted(found[key])) for key in sorted(found) if key not in logged]


def _append(connection: sa.Connection, wanted: list[tuple[str, str, dict[str, Any]]]) -> None:
    """Chain the entries after the log's last one and move its head (the triggers refuse only UPDATE and DELETE
    of entries; the head is a row of its own)."""
    last = connection.execute(sa.select(head.c.seq, head.c.hash).where(head.c.id == 1)).first()
    seq, previous = (last.seq, last.hash or GENESIS) if last else (0, GENESIS)
    now, entries = datetime.now(UTC), list[dict[str, Any]]()
    for action, target, detail in wanted:
        seq += 1
        entry = {"seq": seq, "at": now, "actor": "system", "action": action, "target": target,
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
