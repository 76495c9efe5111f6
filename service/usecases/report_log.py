"""The personal-report log: one hash chain per cadre, like a case's history (service/db/chain.py).

Each report recorded (action `report`) or corrected (`correct`, with its reason) appends an entry saying what its
row holds (`report_detail`), under the cadre's row lock, and
the cadre keeps the chain's head; `check_reports` (part of `cadreflow check`) recomputes every chain and holds each
report row to its latest entry, so a report rewritten, deleted or slipped in with SQL is named.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import groupby
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from service.db.chain import GENESIS, report_detail, report_entry_hash, stored_json
from service.db.models import Cadre, PersonalReport, PersonalReportLog, utcnow
from service.errors import NotFound

from .cadres import lock_cadre
from .check import ChainNames, chain_faults, one_snapshot, vouched
from .context import Services

BATCH = 200
REPORT_LOG = ChainNames("个人事项报告日志", "personal-report log", "干部", "cadre")


HELD_CADRES = "cadreflow.held_report_logs"


def lock_reports(session: Session, cadre_id: str) -> Cadre:
    """Take a cadre's row for appending to its log (row-locked on PostgreSQL, BEGIN IMMEDIATE on SQLite), first in
    the transaction, so two reports on one cadre at once never fork its chain."""
    cadre = lock_cadre(session, cadre_id)
    if cadre is None:
        raise NotFound(f"cadre {cadre_id} not found (干部不存在)")
    session.info.setdefault(HELD_CADRES, set()).add(cadre.id)
    return cadre


def record_report(session: Session, cadre: Cadre, actor: str, action: str, report: PersonalReport,
                  reason: str | None = None) -> None:
    """Append what a report's row now holds to its cadre's log, chained to the entry before (the only way to add
    one); a correction's entry also keeps its `reason`, which no report column holds (check compares none)."""
    if cadre.id not in session.info.get(HELD_CADRES, ()):
        raise RuntimeError(f"cadre {cadre.id}'s report log is written without holding its lock (lock_reports)")
    detail = report_detail(report) if reason is None else {**report_detail(report), "reason": reason}
    entry = PersonalReportLog(cadre_id=cadre.id, seq=cadre.report_seq + 1, at=utcnow(), actor=actor,
                              action=action, detail=stored_json(detail))
    entry.hash = report_entry_hash(entry, cadre.report_hash or GENESIS)
    cadre.report_seq, cadre.report_hash = entry.seq, entry.hash
    session.add(entry)


def check_reports(services: Services) -> tuple[int, list[str]]:
    """Check every cadre's personal-report log and reports; returns how many cadres were checked and the faults."""
    checked, last_id = 0, ""
    faults: list[str] = []
    while True:
        with services.db.unit_of_work(write=False) as session:
            one_snapshot(session)
            heads = select(Cadre.id, Cadre.report_seq, Cadre.report_hash).where(Cadre.id > last_id)
            batch: list[Row[Any]] = list(session.execute(heads.order_by(Cadre.id).limit(BATCH)))
            if not batch:
                return checked, faults
            logs, rows = _logs(session, batch), _reports(session, batch)
            for cadre in batch:
                log = logs.get(cadre.id, [])
                head = (cadre.report_seq, cadre.report_hash)
                found = [*chain_faults(log, head, report_entry_hash, REPORT_LOG),
                         *_report_faults(log, rows.get(cadre.id, []))]
                faults.extend(f"cadre {cadre.id}: {fault}" for fault in found)
        checked += len(batch)
        last_id = batch[-1].id


LOG_COLUMNS = (PersonalReportLog.id, PersonalReportLog.cadre_id, PersonalReportLog.seq, PersonalReportLog.at,
               PersonalReportLog.actor, PersonalReportLog.action, PersonalReportLog.detail, PersonalReportLog.hash)


def _logs(session: Session, batch: list[Row[Any]]) -> dict[str, list[Row[Any]]]:
    """The log of a batch of consecutive cadres in one query, each cadre's entries in id order."""
    rows = session.execute(select(*LOG_COLUMNS).where(PersonalReportLog.cadre_id.between(batch[0].id, batch[-1].id))
                           .order_by(PersonalReportLog.cadre_id, PersonalReportLog.id))
    return {cadre_id: list(entries) for cadre_id, entries in groupby(rows, key=lambda row: row.cadre_id)}


def _reports(session: Session, batch: list[Row[Any]]) -> dict[str, list[PersonalReport]]:
    found: dict[str, list[PersonalReport]] = {}
    for report in session.scalars(select(PersonalReport).where(
            PersonalReport.cadre_id.between(batch[0].id, batch[-1].id))):
        found.setdefault(report.cadre_id, []).append(report)
    return found


def _report_faults(log: list[Row[Any]], reports: list[PersonalReport]) -> Iterator[str]:
    """Reports that say what the latest log entry of their id does not: rewritten, deleted or slipped in. Only
    report_detail's keys are compared: a correction's `reason` is the log's alone."""
    latest = {e.detail.get("report_id"): e for e in log if isinstance(e.detail, dict)}  # later entries win
    yield from vouched("personal report", reports, latest, lambda row, e: all(
        e.detail.get(key) == value for key, value in report_detail(row).items()))
