"""Learning records (干部学习档案, seed 一(二)、一(三)) and each year's compliance.

The seed's yearly minimums: at least 12 days of group study (集中学习), 40 hours of social elective
study (社会化选学) and 60 hours of online study (干部在线学习).
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import extract, select
from sqlalchemy.orm import Session

from service.db.models import Cadre, LearningRecord
from service.errors import Invalid

from . import access_log, policy
from .context import Actor, Services
from .forms import validate_form

MINIMUMS = {"group_study_days": 12.0, "elective_hours": 40.0, "online_hours": 60.0}
KIND_NAMES = {"group_study_days": "集中学习（天）", "elective_hours": "社会化选学（学时）",
              "online_hours": "在线学习（小时）"}
RECORD_FORM = {
    "type": "object", "title": "学习记录",
    "properties": {
        "kind": {"type": "string", "title": "类别", "enum": list(MINIMUMS), "x-enumNames": list(KIND_NAMES.values())},
        "date": {"type": "string", "title": "日期", "format": "date"},
        "amount": {"type": "number", "title": "天数或学时", "exclusiveMinimum": 0, "maximum": 366},
        "source": {"type": "string", "title": "来源", "maxLength": 200},
    },
    "required": ["kind", "date", "amount"], "additionalProperties": False,
}
CSV_COLUMNS = ["cadre_id", "kind", "date", "amount", "source"]


def add_record(services: Services, actor: Actor, cadre_id: str, data: Any) -> dict[str, Any]:
    """Record one study entry for a cadre (org_dept)."""
    policy.require(actor, "learning.write")
    fields = validate_form(RECORD_FORM, data, lambda *_: True)
    with services.db.unit_of_work() as session:
        policy.readable_cadre(session, actor, cadre_id)
        record = _record(session, actor, cadre_id, fields)
        session.flush()
        return record_view(record)


def list_records(services: Services, actor: Actor, cadre_id: str, year: int | None) -> dict[str, Any]:
    """A cadre's study entries (of one year, or all) and the compliance of each year."""
    with services.db.unit_of_work(write=False) as session:
        policy.readable_cadre(session, actor, cadre_id)
        query = select(LearningRecord).where(LearningRecord.cadre_id == cadre_id)
        if year is not None:
            query = query.where(extract("year", LearningRecord.studied_on) == year)
        records = list(session.scalars(query.order_by(LearningRecord.studied_on, LearningRecord.id)))
        found = {"records": [record_view(r) for r in records], "compliance": compliance(records)}
    access_log.note(services, actor, "learning", cadre_id=cadre_id)
    return found


def yearly_compliance(session: Session, cadre_id: str, year: int | None = None) -> list[dict[str, Any]]:
    """Compliance per year (or of one year) for a cadre, read inside an open session."""
    records = session.scalars(select(LearningRecord).where(LearningRecord.cadre_id == cadre_id))
    found = compliance(list(records))
    if year is None:
        return found
    return [c for c in found if c["year"] == year] or [_year_compliance(year, {})]


def compliance(records: list[LearningRecord]) -> list[dict[str, Any]]:
    """Each year's totals against the seed's minimums, newest year first."""
    totals: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(MINIMUMS, 0.0))
    for record in records:
        totals[record.studied_on.year][record.kind] += record.amount
    return [_year_compliance(year, totals[year]) for year in sorted(totals, reverse=True)]


def _year_compliance(year: int, totals: dict[str, float]) -> dict[str, Any]:
    shortfalls = {kind: round(minimum - totals.get(kind, 0.0), 2) for kind, minimum in MINIMUMS.items()
                  if totals.get(kind, 0.0) < minimum}
    return {"year": year, "totals": {kind: totals.get(kind, 0.0) for kind in MINIMUMS}, "minimums": MINIMUMS,
            "compliant": not shortfalls, "shortfalls": shortfalls}


def import_csv(services: Services, actor: Actor, text: str) -> dict[str, Any]:
    """Import records from CSV (cadre_id,kind,date,amount,source); report each refused row and why."""
    policy.require(actor, "learning.write")
    rows = _csv_rows(text)
    if not rows or set(CSV_COLUMNS[:4]) - set(rows[0]):
        raise Invalid("CSV needs the columns cadre_id, kind, date, amount[, source] (缺少必要列)",
                      {"file": f"需要列 (needs columns): {', '.join(CSV_COLUMNS)}"})
    report = []
    with services.db.unit_of_work() as session:
        known = set(session.scalars(select(Cadre.id).where(policy.cadre_filter(actor))))
        for number, row in enumerate(rows, start=2):  # line 1 is the header
            report.append({"line": number, **_import_row(session, actor, row, known)})
    imported = sum(1 for r in report if r["status"] == "imported")
    return {"imported": imported, "refused": len(report) - imported, "rows": report}


def _csv_rows(text: str) -> list[dict[str, Any]]:
    if "\x00" in text:  # PostgreSQL refuses to store one (a 500 at commit), SQLite would keep it: the file's fault
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise Invalid(f"the CSV contains a NUL character at line {line} (CSV 第 {line} 行含有无效字符：空字符)",
                      {"file": f"第 {line} 行含有空字符 (line {line} contains a NUL character)"})
    reader = csv.DictReader(io.StringIO(text))
    try:
        return list(reader)
    except csv.Error as exc:  # an overlong field, say: the file's fault, not ours
        line = reader.reader.line_num  # DictReader's own line_num lags: it is set after a row is read
        raise Invalid(f"the CSV cannot be read at line {line}: {exc} (CSV 第 {line} 行无法读取)",
                      {"file": f"第 {line} 行无法读取 (line {line} unreadable)"}) from None


def _import_row(session: Session, actor: Actor, row: dict[str, Any], known: set[str]) -> dict[str, Any]:
    cadre_id = (row.get("cadre_id") or "").strip()
    if cadre_id not in known:
        return {"status": "refused", "reason": {"cadre_id": "干部不存在 (no such cadre)"}}
    data = {"kind": (row.get("kind") or "").strip(), "date": (row.get("date") or "").strip(),
            "amount": _number(row.get("amount")), "source": (row.get("source") or "").strip()}
    try:
        fields = validate_form(RECORD_FORM, data, lambda *_: True)
    except Invalid as exc:
        return {"status": "refused", "reason": exc.fields}
    _record(session, actor, cadre_id, fields)
    return {"status": "imported"}


def _number(raw: Any) -> Any:
    """A finite number from a CSV cell, or the raw text (which the form then refuses)."""
    try:
        number = float(raw)
    except (TypeError, ValueError):
        return raw
    return number if math.isfinite(number) else raw


def _record(session: Session, actor: Actor, cadre_id: str, fields: dict[str, Any]) -> LearningRecord:
    record = LearningRecord(cadre_id=cadre_id, kind=fields["kind"], studied_on=date.fromisoformat(fields["date"]),
                            amount=float(fields["amount"]), source=fields.get("source", ""),
                            recorded_by=actor.username)
    session.add(record)
    return record


def record_view(record: LearningRecord) -> dict[str, Any]:
    return {"id": record.id, "cadre_id": record.cadre_id, "kind": record.kind,
            "date": record.studied_on.isoformat(), "amount": record.amount, "source": record.source}
