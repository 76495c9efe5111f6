"""The history's hash chain: the canonical form of an entry and the hash linking it to the one before.

Each history entry's hash is SHA-256 over canonical JSON of its content (case id, sequence, time,
actor, action, task, detail) and the previous entry's hash, so altering, removing, inserting or
reordering an entry breaks every link after it; the case row keeps the latest hash, so removing
the last entries shows too. The hash is taken over values as the database gives them back (the
time in UTC with microseconds, the detail parsed from its JSON), never over stored text, so the
same entry hashes the same on SQLite and PostgreSQL and after any round trip.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, Protocol

GENESIS = ""  # the "previous hash" of a case's first entry


class ChainedEntry(Protocol):
    """What the hash covers: an ORM history entry or a row selected with these column names."""

    case_id: int
    seq: int
    at: datetime
    actor: str
    action: str
    task: str | None
    detail: Any


def stored_json(value: Any) -> Any:
    """The value as a JSON column gives it back (tuples become lists, keys strings), a fresh copy."""
    return json.loads(json.dumps(value))


def entry_hash(entry: ChainedEntry, previous: str) -> str:
    """The hash of an entry chained to the hash of the entry before it (GENESIS for the first)."""
    content = {"case_id": entry.case_id, "seq": entry.seq, "at": _utc_iso(entry.at), "actor": entry.actor,
               "action": entry.action, "task": entry.task, "detail": entry.detail, "prev": previous}
    return hashlib.sha256(_canonical(content).encode("ascii")).hexdigest()


def _canonical(value: Any) -> str:
    # Sorted keys, no spaces and ASCII escapes: one text per value, whatever the dict order or the
    # characters (a lone surrogate from client JSON still encodes).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _utc_iso(at: datetime) -> str:
    # SQLite gives naive datetimes back; the service stores UTC only (UTCDateTime).
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")
