"""Read models of the inspectors' pages: the case tracker, its CSV export and the full case file."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Case, Task
from service.errors import Invalid

from . import (
    access_log,
    attachments,
    cadres,
    casefile,
    cases,
    comments,
    documents,
    ledgers,
    lookups,
    policy,
    queries,
    reminders,
    search,
    views,
)
from .context import Actor, Label, Services

# The export's columns and their (Chinese) headers; times in the county's zone (setting TIMEZONE).
CSV_COLUMNS = {"id": "案件编号", "process": "流程代码", "process_name": "流程", "cadre_id": "干部编号",
               "cadre_name": "干部姓名", "status": "状态", "outcome": "结果", "waiting_for": "当前环节",
               "overdue": "是否逾期", "created_at": "发起时间", "updated_at": "更新时间",
               "parent_case_id": "上级案件"}
CSV_PAGE = 500


SEARCHED = "case_search"  # the access log's `what` of a case a search text found


def track_cases(services: Services, actor: Actor, filters: dict[str, Any],
                events: bool = True) -> dict[str, Any]:
    """One page of cases matching the filters, with cadre and process names, an overdue flag and what
    each open case waits for (`events`: also the timers and messages of cases without open tasks). A case a
    search text found is a read of it (its record holds the text): logged as `SEARCHED`."""
    page = cases.list_cases(services, actor, filters, what=SEARCHED if search.clean_query(filters.get("q")) else None)
    with services.db.unit_of_work(write=False) as session:
        names = casefile.cadre_names(session, {c["cadre_id"] for c in page["items"]})
        process_names = casefile.process_names(session)
        overdue = _overdue_case_ids(session, [c["id"] for c in page["items"]])
        waits = _waiting_of(services, session, [c["id"] for c in page["items"] if c["status"] != "completed"
                                                 and c["status"] != "cancelled"], events)
    page["items"] = [{**case, "cadre_name": _cadre_name(case, names),
                      "report_subject": None if case["cadre_id"] else case["data"].get("subject_name", ""),
                      "process_name": process_names.get(case["process"], case["process"]),
                      "overdue": case["id"] in overdue, "waiting": waits.get(case["id"], [])}
                     for case in page["items"]]
    page["cadre_links"] = policy.reads_cadres_of_readable_cases(actor)
    return page


def _cadre_name(case: dict[str, Any], names: dict[str, str]) -> str:
    """The cadre's name; for a public report not linked yet, whom the report names."""
    if case["cadre_id"]:
        return str(names.get(case["cadre_id"], case["cadre_id"]))
    return casefile.report_subject_name(case["data"].get("subject_name"))


def tracker_page(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """The tracker's page of cases with the choices of its filters (the chosen cadre named for its picker)."""
    return {**track_cases(services, actor, filters), "processes": lookups.process_choices(services),
            "cadre_chosen": lookups.cadre_label(services, actor, filters.get("cadre_id"))}


def _waiting_of(services: Services, session: Any, case_ids: list[int], events: bool) -> dict[int, list[Any]]:
    """What each open case waits for: its open tasks; with `events`, for a case without open tasks, the
    timers and messages it waits on (reading its state: only for a page, not for an export)."""
    if not case_ids:
        return {}
    tasks = session.scalars(select(Task).where(Task.case_id.in_(case_ids), Task.status == "open")
                            .order_by(Task.created_at, Task.id))
    waits: dict[int, list[Any]] = {}
    for task in tasks:
        waits.setdefault(task.case_id, []).append(
            {"kind": "task", "task_id": task.id, "name": task.name, "role": task.role, "assignee": task.assignee,
             "due_at": views.iso(task.due_at), "overdue": queries.is_overdue(task, datetime.now(UTC))})
    for case_id in case_ids:
        if case_id in waits:
            continue
        case = session.get(Case, case_id)
        if events:
            definition = services.definitions.get(case.process_version)
            waits[case_id] = casefile.waiting(case, definition, cases.diagram_of(services, case)["active"], [])
        elif case.next_timer_due is not None:
            waits[case_id] = [{"kind": "timer", "name": "", "due_at": views.iso(case.next_timer_due)}]
    return waits


def _overdue_case_ids(session: Any, case_ids: list[int]) -> set[int]:
    if not case_ids:
        return set()
    now = datetime.now(UTC)
    query = select(Task.case_id).where(Task.case_id.in_(case_ids), queries.overdue(now))
    return set(session.scalars(query))


def cases_csv(services: Services, actor: Actor, filters: dict[str, Any], label: Label | None = None) -> str:
    """Every case matching the filters as CSV (UTF-8 with a BOM, so spreadsheet programs read Chinese):
    Chinese headers, statuses and outcomes named by `label(table, code)`, local times."""
    label = label or (lambda _table, code: code or "")
    zone = reminders.local_zone(services)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS.values())
    page_number = 1
    while True:
        page = track_cases(services, actor, {**filters, "page": page_number, "per_page": CSV_PAGE}, events=False)
        for case in page["items"]:
            row = _csv_row(case, label, zone)
            writer.writerow(row[key] for key in CSV_COLUMNS)
        if page_number >= page["pages"]:
            return buffer.getvalue()
        page_number += 1


def _csv_row(case: dict[str, Any], label: Label, zone: Any) -> dict[str, Any]:
    def local(value: str | None) -> str:
        return reminders.local_text(datetime.fromisoformat(value), zone) if value else ""
    row = {**case, "overdue": "是" if case["overdue"] else "否", "outcome": label("outcome", case["outcome"]),
           "status": label("status", case["status"]), "created_at": local(case["created_at"]),
           "updated_at": local(case["updated_at"]), "parent_case_id": case["parent_case_id"] or "",
           "waiting_for": "；".join(_wait_text(w, label, local) for w in case["waiting"])}
    return {key: _cell(value) for key, value in row.items()}


def _wait_text(wait: dict[str, Any], label: Label, local: Callable[[str | None], str]) -> str:
    if wait["kind"] == "task":
        holder = wait["assignee"] or label("role", wait["role"])
        return f"{wait['name']}（{holder}）" + (f" 期限 {local(wait['due_at'])}" if wait["due_at"] else "")
    return f"{wait['name'] or '等待'} 至 {local(wait['due_at'])}" if wait["due_at"] else f"等待{wait['name']}"


# What makes a spreadsheet read a cell as a formula, also after leading spaces or quotes it may strip.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def _cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas in text cells (CSV injection) with a leading apostrophe."""
    if isinstance(value, str) and value.lstrip(" '\"")[:1] in _FORMULA_STARTS:
        return "'" + value
    return value


def case_file(services: Services, actor: Actor, case_id: int) -> dict[str, Any]:
    """Everything an inspector reads about a case: data, cadre, timeline, open tasks, links, diagram."""
    def read(session: Session, case: Case) -> dict[str, Any]:
        definition = services.definitions.get(case.process_version)
        entries = casefile.history(session, case.id, actor, definition)
        start = next((e for e in entries if e["action"] == "start"), None)
        view = views.case_view(services, session, case, actor)
        diagram = cases.diagram_of(services, case)
        return {"case": view, "process_name": case.process_version.name,
                "cadre": casefile.cadre_brief(session, case.cadre_id), "history": entries,
                "decisions": casefile.decisions(services, case, entries),
                "start_data": casefile.describe(definition.start_form, start["detail"].get("data") or {})
                if start else [],
                "links": casefile.linked_cases(session, case, actor), "diagram": diagram,
                "waiting": casefile.waiting(case, definition, diagram["active"], view["open_tasks"]),
                "ending": casefile.ending(case, entries), "steps": casefile.steps(case, diagram, entries),
                "documents": documents.available(session, case),
                "may_read_cadre": policy.reads_cadres_of_readable_cases(actor),
                "attachments": attachments.case_attachments(session, case.id),
                "comments": comments.case_comments(session, case.id)}
    return access_log.read_case(services, actor, case_id, "case_page", read)


def cadre_file(services: Services, actor: Actor, cadre_id: str, label: Label | None = None,
               ledger_filter: dict[str, Any] | None = None) -> dict[str, Any]:
    """A cadre with its sanctions, audits, assessments and cases, the cases named by process, and its
    ledgers (their codes named by `label`; `ledger_filter`: `since`, `until`, `types` of their entries)."""
    cadre = cadres.get_cadre(services, actor, cadre_id, what="cadre_page")
    names = dict(lookups.process_choices(services))
    cadre["cases"] = [{**c, "process_name": names.get(c["process"], c["process"])} for c in cadre["cases"]]
    try:
        cadre["ledgers"] = ledgers.both_ledgers(services, actor, cadre_id, label, **(ledger_filter or {}))
    except Invalid as refused:  # too many entries: the page shows the rest of the file, and why no ledger
        cadre["ledgers"], cadre["ledger_refused"] = {kind: [] for kind in ledgers.KINDS}, refused.message
    cadre["ledger_types"] = ledgers.TYPES
    return cadre
