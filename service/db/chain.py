"""The history's hash chain: the canonical form of an entry and the hash linking it to the one before; and the
same for each cadre's personal-report log.

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
from datetime import UTC, date, datetime
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
    return _chained({"case_id": entry.case_id, "seq": entry.seq, "at": _utc_iso(entry.at), "actor": entry.actor,
                     "action": entry.action, "task": entry.task, "detail": entry.detail}, previous)


class ReportLogEntry(Protocol):
    """What a personal-report log entry's hash covers (one chain per cadre: service/usecases/report_log.py)."""

    cadre_id: str
    seq: int
    at: datetime
    actor: str
    action: str
    detail: Any


def report_entry_hash(entry: ReportLogEntry, previous: str) -> str:
    """The hash of a cadre's personal-report log entry chained to the one before it (GENESIS for the first). Its
    content has a cadre, never a case: no entry of one chain can pass for an entry of the other."""
    return _chained({"cadre_id": entry.cadre_id, "seq": entry.seq, "at": _utc_iso(entry.at), "actor": entry.actor,
                     "action": entry.action, "detail": entry.detail}, previous)


class AccountLogRow(Protocol):
    """What an account log entry's hash covers (one chain for the whole log: service/usecases/account_log.py)."""

    seq: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: Any


def account_entry_hash(entry: AccountLogRow, previous: str) -> str:
    """The hash of an account log entry chained to the one before it (GENESIS for the first). Its content names the
    log, so no entry of another chain can pass for one of it."""
    return _chained({"log": "account", "seq": entry.seq, "at": _utc_iso(entry.at), "actor": entry.actor,
                     "action": entry.action, "target": entry.target, "detail": entry.detail}, previous)


def password_digest(password_hash: str) -> str:
    """What the account log says of a password it vouches for: SHA-256 of the stored (salted) hash. It tells the hash
    written by the service from one written with SQL, and gives nothing to test a guessed password against: the
    salt is in the hash, which the log never holds."""
    return hashlib.sha256(b"cadreflow-password-hash:" + password_hash.encode("utf-8")).hexdigest()


class ReportRow(Protocol):
    """The columns of a personal report its log entries vouch for."""

    id: int
    kind: str
    event_on: date
    reported_on: date
    summary: str
    found_unreported: bool
    late: bool
    case_id: int | None
    recorded_by: str
    recorded_at: datetime


def report_detail(report: ReportRow) -> dict[str, Any]:
    """What a log entry says of a report: every column but its cadre (the chain's), the summary as its SHA-256 (the
    log repeats no personal text). Written by the service, by migration 0025's backfill, and compared by check."""
    return {"report_id": report.id, "kind": report.kind, "event_on": report.event_on.isoformat(),
            "reported_on": report.reported_on.isoformat(),
            "summary_sha256": hashlib.sha256(report.summary.encode("utf-8")).hexdigest(),
            "found_unreported": bool(report.found_unreported), "late": bool(report.late), "case_id": report.case_id,
            "recorded_by": report.recorded_by, "recorded_at": _utc_iso(report.recorded_at)}


def _chained(content: dict[str, Any], previous: str) -> str:
    return hashlib.sha256(_canonical({**content, "prev": previous}).encode("ascii")).hexdigest()


def _canonical(value: Any) -> str:
    # Sorted keys, no spaces and ASCII escapes: one text per value, whatever the dict order or the
    # characters (a lone surrogate from client JSON still encodes).
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _utc_iso(at: datetime) -> str:
    # SQLite gives naive datetimes back; the service stores UTC only (UTCDateTime).
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at.isoformat(timespec="microseconds")
