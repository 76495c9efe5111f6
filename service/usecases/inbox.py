"""Read models of the approvers' pages: the inbox with its cadres, and one task in its case's context."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, Task
from service.db.uow import existing

from . import access_log, casefile, disclosures, lookups, policy, queries, reminders, tasks, users, views
from .context import Actor, Services

SORTS = ("due", "created", "process", "cadre")
DUE_FILTERS = ("overdue", "soon", "none")


def inbox(services: Services, actor: Actor, filters: dict[str, Any]) -> dict[str, Any]:
    """One page of the open tasks of the actor's roles and assigned to it, with cadres, filtered and
    sorted in SQL (as the API pages its inbox), the processes to filter by and the filtered cadre's name
    (the page picks a cadre by typing: `search.find_cadres`; any cadre id filters)."""
    now = datetime.now(UTC)
    per_page = filters.get("per_page") or PER_PAGE
    every = tasks.actionable_tasks(actor, {"held": filters.get("held")})  # `held`: those of cases held instead
    with services.db.unit_of_work(write=False) as session:
        process_names = casefile.process_names(session)
        # Outer join: a public report has no cadre until its triage links one.
        # "Due soon" is the due-soon notice's window (NOTIFY_DUE_SOON_HOURS), so the badge and the notice agree.
        soon = reminders.due_soon_window(services)
        query = _filtered(every.add_columns(Case.cadre_id, Cadre.name).join(Case, Case.id == Task.case_id)
                          .outerjoin(Cadre, Cadre.id == Case.cadre_id), filters, actor, now, soon)
        rows, where = queries.page_of(session, query.order_by(*_order(filters.get("sort") or "due", process_names)),
                                      filters.get("page") or 1, per_page, rows=True)
        subjects = _report_subjects(session, [task.case_id for task, cadre_id, _ in rows if cadre_id is None])
        items = [_inbox_row(views.task_view(services, session, task), cadre_id, cadre_name,
                            subjects.get(task.case_id), process_names, now, soon)
                 for task, cadre_id, cadre_name in rows]
        filtered = any(filters.get(name) for name in ("process", "cadre_id", "mine", "due"))
        all_total = queries.count(session, every) if filtered else where["total"]
        shown = every.subquery()
        keys = session.scalars(select(shown.c.process_key).distinct())
    return {"items": items, **where, "all_total": all_total,
            "processes": sorted(((key, process_names.get(key, key)) for key in keys), key=lambda p: p[1]),
            "cadre_chosen": lookups.cadre_label(services, actor, filters.get("cadre_id"))}


def _report_subjects(session: Session, case_ids: list[int]) -> dict[int, str]:
    """For cases without a cadre (public reports before triage), whom the report names."""
    if not case_ids:
        return {}
    rows = session.execute(select(Case.id, Case.data).where(Case.id.in_(case_ids)))
    return {case_id: str((data or {}).get("subject_name", "")) for case_id, data in rows}


PER_PAGE = 50


def _filtered(query: Select[Any], filters: dict[str, Any], actor: Actor, now: datetime,
              soon: timedelta | None) -> Select[Any]:
    if filters.get("process"):
        query = query.where(Task.process_key == filters["process"])
    if filters.get("cadre_id"):
        query = query.where(Case.cadre_id == filters["cadre_id"])
    if filters.get("mine"):
        query = query.where(Task.assignee == actor.username)
    due = filters.get("due")
    if due == "overdue":
        query = query.where(queries.overdue(now))
    elif due == "soon":  # with no due-soon window (NOTIFY_DUE_SOON_HOURS=0), the overdue ones
        query = query.where((queries.overdue(now) | (Task.due_at <= now + soon)) if soon else queries.overdue(now))
    elif due == "none":
        query = query.where(Task.due_at.is_(None))
    return query


def _order(sort: str, process_names: dict[str, str]) -> tuple[Any, ...]:
    due = (Task.due_at.asc().nulls_last(), Task.created_at)
    if sort == "created":
        return Task.created_at, Task.id
    if sort == "process":
        name = sql_case(process_names, value=Task.process_key, else_=Task.process_key) if process_names \
            else Task.process_key
        return name, *due, Task.id
    if sort == "cadre":
        return Cadre.name, *due, Task.id
    return *due, Task.id


def _inbox_row(row: dict[str, Any], cadre_id: str | None, cadre_name: str | None, subject: str | None,
               process_names: dict[str, str], now: datetime, window: timedelta | None) -> dict[str, Any]:
    due = datetime.fromisoformat(row["due_at"]) if row["due_at"] else None
    soon = due is not None and window is not None and not row["overdue"] and due - now <= window
    subject = None if cadre_id else subject or ""
    name = cadre_name if cadre_id else casefile.report_subject_name(subject)
    return {**row, "cadre_id": cadre_id, "cadre_name": name or cadre_id, "report_subject": subject,
            "process_name": process_names.get(row["process"], row["process"]), "due_soon": soon}


def task_page(services: Services, actor: Actor, task_id: str,
              values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One task with what its approver needs: cadre, earlier decisions, history, what it may do (`values`:
    what was submitted, when the page shows it again, so its pickers name the cadres it chose)."""
    task, _ = tasks.read_task(services, actor, task_id)
    with services.db.unit_of_work(write=False) as session:
        case = existing(session, Case, task["case_id"])
        entries = casefile.history(session, case.id, actor, services.definitions.get(case.process_version))
        case_view = views.case_view(services, session, case, actor, with_tasks=False)
        process_name, cadre = case.process_version.name, casefile.cadre_brief(session, case.cadre_id)
        decisions, start_data = casefile.decisions(services, case, entries), _start_data(services, case, entries)
        disclosure = disclosures.of_case(session, case)  # 述职述廉: the public's tally and comments
        submitted = next((e["fields"] for e in entries if e["action"] == "complete"
                          and (e["detail"] or {}).get("task_id") == task["id"]), None)
        may = permissions(actor, task, policy.head_role_of(session))
    page: dict[str, Any] = {"task": task, "case": case_view, "process_name": process_name, "cadre": cadre,
                            "history": entries, "decisions": decisions, "start_data": start_data,
                            "disclosure": disclosure, "submitted": submitted}
    may["return"] = may["return"] and task["element_id"] in services.definitions.get(case.process_version).returnable
    if case_view["status"] != "open":  # held as an incident: nothing is done on its tasks until a retry
        may.update({"claim": False, "complete": False, "extend": False, "return": False})
    page["may"] = may
    page["may_read_cadre"] = policy.reads_cadres_of_readable_cases(actor)
    page["user_choices"] = {**_user_choices(services, task["form"]),
                            **_cadre_choices(services, actor, task["form"], values or {})}
    page["holders"] = users.usernames_with_role(services, task["role"] or "admin") if may["assign"] else []
    access_log.note(services, actor, "task_page", case.id, case.cadre_id)
    return page


def permissions(actor: Actor, task: dict[str, Any], head_of: policy.HeadOf | None = None) -> dict[str, bool]:
    """What the actor may do with the task: claim, give back, complete, reassign, extend (a task with a deadline),
    return (the use cases decide finally)."""
    is_open, holder = task["status"] == "open", task["assignee"]

    def may(action: str) -> bool:
        return is_open and policy.may_act_on_task(actor, action, task["role"], holder, head_of)
    return {"claim": may("task.claim") and holder is None, "unclaim": may("task.unclaim") and holder is not None,
            "complete": may("task.complete"), "assign": may("task.assign"),
            "extend": may("task.extend") and task["due_at"] is not None,  # no deadline: nothing to extend
            "return": may("task.return")}  # task_page adds whether the process lets this task be returned


def _start_data(services: Services, case: Case, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    start = next((e for e in entries if e["action"] == "start"), None)
    if start is None:
        return []
    schema = services.definitions.get(case.process_version).start_form
    return casefile.describe(schema, start["detail"].get("data") or {})


def _cadre_choices(services: Services, actor: Actor, form: dict[str, Any],
                   values: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """For fields naming a cadre (`x-cadre`, e.g. the cadre a public report is about), the cadre chosen in
    `values` as [(id, "name · unit")] (none when nothing readable is chosen): the page's typeahead picker
    names it, and searches the others as the user types."""
    names = [name for name, prop in form.get("properties", {}).items()
             if isinstance(prop, dict) and prop.get("x-cadre")]
    return {name: lookups.cadre_choices(services, actor, values[name])
            if isinstance(values.get(name), str) and values[name] else [] for name in names}


def _user_choices(services: Services, form: dict[str, Any]) -> dict[str, list[str]]:
    """For fields naming a user of a role (`x-user-role`), the users who may be named."""
    roles = {name: prop["x-user-role"] for name, prop in form.get("properties", {}).items()
             if isinstance(prop, dict) and isinstance(prop.get("x-user-role"), str) and prop["x-user-role"]}
    return {name: users.usernames_with_role(services, role) for name, role in roles.items()}
