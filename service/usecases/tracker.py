"""Read models of the inspectors' pages: the case tracker, its CSV export and the full case file."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select

from service.db.models import Case, Task
from service.errors import NotFound

from . import cadres, casefile, cases, lookups, views
from .context import Actor, Services

CSV_COLUMNS = ["id", "process", "process_name", "cadre_id", "cadre_name", "status", "outcome", "overdue",
               "created_at", "updated_at", "parent_case_id"]
CSV_PAGE = 500


def track_cases(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """One page of cases matching the filters, with cadre and process names and an overdue flag."""
    page = cases.list_cases(services, actor, filters)
    with services.db.unit_of_work(write=False) as session:
        names = casefile.cadre_names(session, {c["cadre_id"] for c in page["items"]})
        process_names = casefile.process_names(session)
        overdue = _overdue_case_ids(session, [c["id"] for c in page["items"]])
    page["items"] = [{**case, "cadre_name": names.get(case["cadre_id"], case["cadre_id"]),
                      "process_name": process_names.get(case["process"], case["process"]),
                      "overdue": case["id"] in overdue} for case in page["items"]]
    page["pages"] = max(1, -(-page["total"] // page["per_page"]))
    return page


def tracker_page(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """The tracker's page of cases with the choices of its filters."""
    return {**track_cases(services, actor, filters), "processes": lookups.process_choices(services),
            "cadres": lookups.cadre_choices(services)}


def _overdue_case_ids(session: Any, case_ids: list[int]) -> set[int]:
    if not case_ids:
        return set()
    now = datetime.now(UTC)
    query = select(Task.case_id).where(Task.case_id.in_(case_ids), Task.status == "open",
                                       or_(Task.overdue.is_(True), Task.due_at < now))
    return set(session.scalars(query))


def cases_csv(services: Services, actor: Actor, filters: dict[str, Any]) -> str:
    """Every case matching the filters as CSV (UTF-8 with a BOM, so spreadsheet programs read Chinese)."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    page_number = 1
    while True:
        page = track_cases(services, actor, {**filters, "page": page_number, "per_page": CSV_PAGE})
        writer.writerows(_csv_row(case) for case in page["items"])
        if page_number >= page["pages"]:
            return buffer.getvalue()
        page_number += 1


def _csv_row(case: dict[str, Any]) -> dict[str, Any]:
    row = {**case, "overdue": "1" if case["overdue"] else "0", "outcome": case["outcome"] or ""}
    return {key: _cell(value) for key, value in row.items()}


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def case_file(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """Everything an inspector reads about a case: data, cadre, timeline, open tasks, links, diagram."""
    diagram = cases.case_diagram(services, actor, case_id)
    with services.db.unit_of_work(write=False) as session:
        case = session.get(Case, case_id)
        if case is None:
            raise NotFound(f"case {case_id} not found (案件不存在)")
        entries = casefile.history(session, case.id)
        definition = services.definitions.get(case.process_version)
        start = next((e for e in entries if e["action"] == "start"), None)
        return {"case": views.case_view(services, session, case), "process_name": case.process_version.name,
                "cadre": casefile.cadre_brief(session, case.cadre_id), "history": entries,
                "decisions": casefile.decisions(services, case, entries),
                "start_data": casefile.describe(definition.start_form, start["detail"].get("data") or {})
                if start else [],
                "links": casefile.linked_cases(session, case), "diagram": diagram}


def cadre_file(services: Services, actor: Actor, cadre_id: str) -> dict[str, Any]:
    """A cadre with its sanctions, audits, assessments and cases, the cases named by process."""
    cadre = cadres.get_cadre(services, actor, cadre_id)
    names = dict(lookups.process_choices(services))
    cadre["cases"] = [{**c, "process_name": names.get(c["process"], c["process"])} for c in cadre["cases"]]
    return cadre
