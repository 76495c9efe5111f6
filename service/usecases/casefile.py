"""Read-model pieces shared by the UI's case and task pages: cadre, history, decisions, links.

Plain functions over an open session; the page use cases (`inbox.task_page`, `tracker.case_file`)
call them inside their one read transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, HistoryEntry, ProcessVersion, Task

from . import views
from .context import Services


def cadre_brief(session: Session, cadre_id: str) -> dict[str, Any] | None:
    """Who a case is about: name, unit, post and any promotion ban."""
    cadre = session.get(Cadre, cadre_id)
    if cadre is None:
        return None
    return {"id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post,
            "post_level": cadre.post_level, "promotion_ban_until": views.iso(cadre.promotion_ban_until)}


def cadre_names(session: Session, cadre_ids: set[str]) -> dict[str, str]:
    """Names of the given cadres, by id."""
    if not cadre_ids:
        return {}
    return dict(session.execute(select(Cadre.id, Cadre.name).where(Cadre.id.in_(cadre_ids))).all())


def process_names(session: Session) -> dict[str, str]:
    """The newest display name of every process, by key."""
    rows = session.execute(select(ProcessVersion.process_key, ProcessVersion.name)
                           .order_by(ProcessVersion.process_key, ProcessVersion.version))
    return dict(rows.all())


def history(session: Session, case_id: int) -> list[dict[str, Any]]:
    """Every history entry of a case, oldest first, with the task's display name."""
    names = task_names(session, case_id)
    entries = session.scalars(select(HistoryEntry).where(HistoryEntry.case_id == case_id).order_by(HistoryEntry.id))
    return [{**views.history_view(e), "task_name": names.get(e.task or "") or (e.detail or {}).get("name") or e.task}
            for e in entries]


def task_names(session: Session, case_id: int) -> dict[str, str]:
    """Display names of the user tasks a case opened, by element id."""
    rows = session.execute(select(Task.element_id, Task.name).where(Task.case_id == case_id))
    return dict(rows.all())


def decisions(services: Services, case: Case, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What earlier tasks decided: each completion with its fields labelled by the task's form."""
    forms = services.definitions.get(case.process_version).forms
    return [{"task": e.get("task"), "task_name": e.get("task_name"), "at": e["at"], "actor": e["actor"],
             "fields": describe(forms.get(e.get("task") or "", {}), e["detail"].get("data") or {})}
            for e in entries if e["action"] == "complete"]


def describe(schema: dict[str, Any], data: dict[str, Any]) -> list[dict[str, Any]]:
    """Data as labelled fields in the form's order: `{name, label, value, display}`."""
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    names = [n for n in properties if n in data] + [n for n in data if n not in properties]
    return [_field(name, properties.get(name) or {}, data[name]) for name in names]


def _field(name: str, prop: dict[str, Any], value: Any) -> dict[str, Any]:
    display = value
    labels = prop.get("x-enumNames")
    if labels and value in prop.get("enum", []):
        display = labels[prop["enum"].index(value)]
    return {"name": name, "label": prop.get("title") or name, "value": value, "display": display}


def linked_cases(session: Session, case: Case) -> dict[str, Any]:
    """The case's parent and children, each with process, status and outcome."""
    children = session.scalars(select(Case).where(Case.parent_case_id == case.id).order_by(Case.id))
    parent = session.get(Case, case.parent_case_id) if case.parent_case_id else None
    return {"parent": _link(parent) if parent else None, "children": [_link(c) for c in children]}


def _link(case: Case) -> dict[str, Any]:
    return {"id": case.id, "process": case.process_key, "process_name": case.process_version.name,
            "status": case.status, "outcome": case.outcome, "cadre_id": case.cadre_id}
