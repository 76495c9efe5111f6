"""Read models: plain dictionaries built from rows, never from deserialised workflows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, HistoryEntry, PersonalReport, PersonalReportLog, ProcessVersion, Task

from . import learning, policy, queries
from .casehistory import known_childless
from .context import Actor, Services

MAX_ID = 2**31 - 1  # the largest id the INTEGER id columns hold on PostgreSQL (a larger one there: DataError)


def iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def task_view(services: Services, session: Session, task: Task) -> dict[str, Any]:
    """A task row as the API shows it, with its form schema."""
    now = datetime.now(UTC)
    return {
        "id": task.id, "case_id": task.case_id, "process": task.process_key,
        "element_id": task.element_id, "name": task.name, "role": task.role,
        "assignee": task.assignee, "status": task.status, "created_at": iso(task.created_at),
        "due_at": iso(task.due_at),
        "overdue": queries.is_overdue(task, now),
        "form": services.definitions.by_id(session, task.process_version_id).forms.get(task.element_id, {}),
        "completed_by": task.completed_by, "completed_at": iso(task.completed_at),
    }


def case_view(services: Services, session: Session, case: Case, actor: Actor,
              with_tasks: bool = True, open_tasks: list[Task] | None = None) -> dict[str, Any]:
    """A case as the API shows it; linked cases the actor may not read are left out. `open_tasks`: its
    open task rows when the caller has them (a step just stored them), in created order."""
    children: list[int] = [] if known_childless(session, case.id) else list(session.scalars(
        select(Case.id).where(Case.parent_case_id == case.id, policy.case_filter(actor)).order_by(Case.id)))
    parent = case.parent_case_id if policy.readable_case_ids(session, actor, [case.parent_case_id]) else None
    view = {
        "id": case.id, "process": case.process_key, "process_version": case.process_version.version,
        "cadre_id": case.cadre_id, "status": case.status, "outcome": case.outcome,
        "data": _visible_data(case, actor),
        "created_at": iso(case.created_at), "updated_at": iso(case.updated_at),
        "parent_case_id": parent, "child_case_ids": list(children),
        "next_timer_due": iso(case.next_timer_due), "incident": case.incident,
    }
    if with_tasks:
        tasks = open_tasks if open_tasks is not None else session.scalars(
            select(Task).where(Task.case_id == case.id, Task.status == "open").order_by(Task.created_at, Task.id))
        today = services.today()
        view["open_tasks"] = [{**task_view(services, session, t),
                               "context": task_context(session, case, t.element_id, today, actor)} for t in tasks]
    return view


def _visible_data(case: Case, actor: Actor) -> dict[str, Any]:
    """The case's data; a reporter's contact only for the roles the policy lets read it."""
    data = case.data or {}
    hidden = hidden_fields(case, actor)
    return {key: value for key, value in data.items() if key not in hidden} if hidden else data


def hidden_fields(case: Case, actor: Actor) -> frozenset[str]:
    """The data fields of a case the caller may not see: a public report's contact, but for the discipline
    roles (policy `reporter.contact`)."""
    confidential = confidential_fields(case.process_key)
    return confidential if confidential and not policy.allows(actor, "reporter.contact") else frozenset()


def confidential_fields(process_key: str) -> frozenset[str]:
    """The data fields of a process's cases only some readers may see (a public report's contact); search never
    indexes them, since it answers every reader of the case."""
    return REPORTER_FIELDS if process_key == "public_report" else frozenset()


REPORTER_FIELDS = frozenset({"contact"})


def history_view(entry: HistoryEntry, hidden: frozenset[str] = frozenset()) -> dict[str, Any]:
    """One history entry; the `hidden` fields are taken out of the data it carries and named in `redacted`
    (its hash then covers more than is shown: the chain is verified by those who read it whole)."""
    detail = entry.detail
    data = (detail or {}).get("data")
    if hidden and isinstance(data, dict) and hidden & data.keys():
        detail = {**detail, "data": {k: v for k, v in data.items() if k not in hidden},
                  "redacted": sorted(hidden & data.keys())}
    view = {"at": iso(entry.at), "actor": entry.actor, "action": entry.action, "detail": detail,
            "seq": entry.seq, "hash": entry.hash}
    if entry.task:
        view["task"] = entry.task
    return view


def task_context(session: Session, case: Case, element_id: str, today: date, actor: Actor) -> dict[str, Any]:
    """What a person needs beside a task's form: the cadre's study record for an assessment, and the
    cadre's personal-matters reports of the last year for vetting's org_head_review (docs/processes.md §9), each
    linked to its admonishment only when `actor` may read that case."""
    if case.cadre_id is None:  # a public report before triage names its cadre
        return {}
    if case.process_key == "annual_assessment":
        return {"learning": learning.yearly_compliance(session, case.cadre_id, case.data.get("year"))}
    if case.process_key == "pre_appointment_vetting" and element_id == "org_head_review":
        return {"personal_reports": personal_reports_of(session, actor, case.cadre_id, today - RECENT_REPORTS)}
    return {}


def cadre_view(session: Session, cadre: Cadre, actor: Actor) -> dict[str, Any]:
    """A cadre with its sanctions, cleared audits, assessments and the cases the actor may read."""
    cases = list(session.scalars(select(Case).where(Case.cadre_id == cadre.id, policy.case_filter(actor))
                                 .order_by(Case.id)))
    readable = {c.id for c in cases}

    def case_ref(case_id: int) -> int | None:  # the sanction stays on the record; the case only if readable
        return case_id if case_id in readable else None

    return {
        "id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post,
        "post_level": cadre.post_level, "post_started_on": iso(cadre.post_started_on),
        "promotion_ban_until": iso(cadre.promotion_ban_until),
        "sanctions": [{"sanction": s.sanction, "case_id": case_ref(s.case_id), "decided_on": iso(s.decided_on)}
                      for s in cadre.sanctions],
        "cleared_audits": [{"case_id": case_ref(a.case_id), "cleared_on": iso(a.cleared_on)}
                           for a in cadre.cleared_audits],
        "assessments": [{"year": a.year, "grade": a.grade, "case_id": case_ref(a.case_id), "measure": a.measure}
                        for a in cadre.assessments],
        "integrity_reviews": [{"year": d.year, "result": d.result, "case_id": case_ref(d.case_id),
                               "concluded_on": iso(d.concluded_on)} for d in cadre.disclosures if d.result],
        "cases": [{"id": c.id, "process": c.process_key, "status": c.status, "outcome": c.outcome}
                  for c in cases],
        "learning": learning.yearly_compliance(session, cadre.id),
        "personal_reports": personal_reports_of(session, actor, cadre.id),
    }


RECENT_REPORTS = timedelta(days=365)  # the reports vetting's org_head_review shows beside its form


def personal_reports_of(session: Session, actor: Actor, cadre_id: str,
                        since: date | None = None) -> list[dict[str, Any]]:
    """A cadre's personal-matters reports, newest change first (those reported on or after `since`); the
    admonishment a report opened is linked only for a caller who may read it (the report itself stays)."""
    query = select(PersonalReport).where(PersonalReport.cadre_id == cadre_id)
    if since is not None:
        query = query.where(PersonalReport.reported_on >= since)
    rows = list(session.scalars(query.order_by(PersonalReport.event_on.desc(), PersonalReport.id.desc())))
    readable = policy.readable_case_ids(session, actor, [r.case_id for r in rows])
    corrections = corrections_of(session, cadre_id) if rows else {}
    return [{**personal_report_view(r, corrections.get(r.id, [])), "case_id": r.case_id if r.case_id in readable
             else None} for r in rows]


def personal_report_view(report: PersonalReport, corrections: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A report as shown, with its corrections (`corrections_of`), oldest first; its `revision` counts them (the
    base a correction may name, personal_reports.correct_report)."""
    return {"id": report.id, "kind": report.kind, "event_on": report.event_on.isoformat(),
            "reported_on": report.reported_on.isoformat(), "summary": report.summary,
            "found_unreported": report.found_unreported, "late": report.late, "case_id": report.case_id,
            "corrected": bool(corrections), "corrections": corrections or [], "revision": len(corrections or [])}


def corrections_of(session: Session, cadre_id: str) -> dict[int, list[dict[str, Any]]]:
    """The corrections of a cadre's reports by report id, each `{at, by, reason}` from its `correct` entry of the
    cadre's report log (the log vouches for them; no other table repeats them)."""
    entries = session.execute(select(PersonalReportLog.at, PersonalReportLog.actor, PersonalReportLog.detail).where(
        PersonalReportLog.cadre_id == cadre_id, PersonalReportLog.action == CORRECT).order_by(PersonalReportLog.seq))
    found: dict[int, list[dict[str, Any]]] = {}
    for at, by, detail in entries:
        if isinstance(detail, dict) and isinstance(detail.get("report_id"), int):
            found.setdefault(detail["report_id"], []).append({"at": iso(at), "by": by, "reason": detail.get("reason")})
    return found


CORRECT = "correct"  # the report log's action of a correction (personal_reports.correct_report)


def version_view(version: ProcessVersion) -> dict[str, Any]:
    return {"key": version.process_key, "name": version.name, "version": version.version,
            "deployed_at": iso(version.deployed_at), "deployed_by": version.deployed_by,
            "content_hash": version.content_hash}
