"""Read models of the approvers' pages: the inbox with its cadres, and one task in its case's context."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from service.db.models import Case

from . import casefile, tasks, users, views
from .context import Actor, Services

SORTS = ("due", "created", "process", "cadre")
DUE_FILTERS = ("overdue", "soon", "none")
DUE_SOON = timedelta(days=3)
_FAR = "9999"


def inbox(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """The open tasks of the actor's roles and assigned to it, with cadres, filtered and sorted."""
    rows = tasks.list_tasks(services, actor, {})
    with services.db.unit_of_work(write=False) as session:
        cases = {c.id: c for c in session.scalars(select(Case).where(Case.id.in_({r["case_id"] for r in rows})))}
        names = casefile.cadre_names(session, {c.cadre_id for c in cases.values()})
        process_names = casefile.process_names(session)
    now = datetime.now(UTC)
    every = [_inbox_row(row, cases[row["case_id"]], names, process_names, now) for row in rows]
    items = sorted((item for item in every if _matches(item, filters, actor)),
                   key=_SORT_KEYS[filters.get("sort") or "due"])
    return {"items": items, "total": len(items), "all_total": len(every),
            "processes": sorted({(t["process"], t["process_name"]) for t in every}, key=lambda p: p[1]),
            "cadres": sorted({(t["cadre_id"], t["cadre_name"]) for t in every}, key=lambda c: c[1])}


def _inbox_row(row: dict[str, Any], case: Case, cadre_names: dict[str, str], process_names: dict[str, str],
               now: datetime) -> dict[str, Any]:
    due = datetime.fromisoformat(row["due_at"]) if row["due_at"] else None
    soon = due is not None and not row["overdue"] and due - now <= DUE_SOON
    return {**row, "cadre_id": case.cadre_id, "cadre_name": cadre_names.get(case.cadre_id, case.cadre_id),
            "process_name": process_names.get(row["process"], row["process"]), "due_soon": soon}


def _matches(item: dict[str, Any], filters: dict[str, Any], actor: Actor) -> bool:
    checks: list[Callable[[], bool]] = [
        lambda: not filters.get("process") or item["process"] == filters["process"],
        lambda: not filters.get("cadre_id") or item["cadre_id"] == filters["cadre_id"],
        lambda: not filters.get("mine") or item["assignee"] == actor.username,
        lambda: _due_matches(item, filters.get("due")),
    ]
    return all(check() for check in checks)


def _due_matches(item: dict[str, Any], due: str | None) -> bool:
    if due == "overdue":
        return item["overdue"]
    if due == "soon":
        return item["overdue"] or item["due_soon"]
    if due == "none":
        return item["due_at"] is None
    return True


_SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "due": lambda t: (t["due_at"] or _FAR, t["created_at"]),
    "created": lambda t: t["created_at"],
    "process": lambda t: (t["process_name"], t["due_at"] or _FAR),
    "cadre": lambda t: (t["cadre_name"], t["due_at"] or _FAR),
}


def task_page(services: Services, actor: Actor, task_id: str) -> dict[str, Any]:
    """One task with what its approver needs: cadre, earlier decisions, history, what it may do."""
    task = tasks.get_task(services, actor, task_id)
    with services.db.unit_of_work(write=False) as session:
        case = session.get(Case, task["case_id"])
        entries = casefile.history(session, case.id)
        page = {"task": task, "case": views.case_view(services, session, case, with_tasks=False),
                "process_name": case.process_version.name, "cadre": casefile.cadre_brief(session, case.cadre_id),
                "history": entries, "decisions": casefile.decisions(services, case, entries),
                "start_data": _start_data(services, case, entries)}
    page["may"] = permissions(actor, task)
    page["user_choices"] = _user_choices(services, task["form"])
    return page


def permissions(actor: Actor, task: dict[str, Any]) -> dict[str, bool]:
    """What the actor may do with the task: claim, give back, complete (the use cases decide finally)."""
    is_open, holder = task["status"] == "open", task["assignee"]
    of_role = actor.has_any(task["role"] or "admin") or holder == actor.username
    free_or_mine = holder in (None, actor.username) or "admin" in actor.roles
    return {"claim": is_open and of_role and holder is None,
            "unclaim": is_open and holder is not None and (holder == actor.username or "admin" in actor.roles),
            "complete": is_open and of_role and free_or_mine}


def _start_data(services: Services, case: Case, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = next((e for e in entries if e["action"] == "start"), None)
    if start is None:
        return []
    schema = services.definitions.get(case.process_version).start_form
    return casefile.describe(schema, start["detail"].get("data") or {})


def _user_choices(services: Services, form: dict[str, Any]) -> dict[str, list[str]]:
    """For fields naming a user of a role (`x-user-role`), the users who may be named."""
    roles = {name: prop["x-user-role"] for name, prop in form.get("properties", {}).items()
             if isinstance(prop, dict) and prop.get("x-user-role")}
    return {name: users.usernames_with_role(services, role) for name, role in roles.items()}
