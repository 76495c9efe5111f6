"""Read-model pieces shared by the UI's case and task pages: cadre, history, decisions, links.

Plain functions over an open session; the page use cases (`inbox.task_page`, `tracker.case_file`)
call them inside their one read transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.db.models import Cadre, Case, HistoryEntry, ProcessVersion, Task
from workflows.engine import ProcessDefinition, element_names, event_choices, step_nodes

from . import policy, views
from .context import Actor, Services

# Case data keys whose code says why an automatic step decided as it did (e.g. `ineligible_reason`).
REASON_SUFFIX = "_reason"


def cadre_brief(session: Session, cadre_id: str | None) -> dict[str, Any] | None:
    """Who a case is about: name, unit, post and any promotion ban (None: a report not yet linked)."""
    cadre = session.get(Cadre, cadre_id) if cadre_id else None
    if cadre is None:
        return None
    return {"id": cadre.id, "name": cadre.name, "unit": cadre.unit, "post": cadre.post,
            "post_level": cadre.post_level, "promotion_ban_until": views.iso(cadre.promotion_ban_until)}


def cadre_names(session: Session, cadre_ids: set[str]) -> dict[str, str]:
    """Names of the given cadres, by id."""
    if not cadre_ids:
        return {}
    return dict(session.execute(select(Cadre.id, Cadre.name).where(Cadre.id.in_(cadre_ids))).all())


def report_subject_name(subject: str | None) -> str:
    """How a list names a public report not linked to a cadre yet: whom it names, marked as such (in Chinese,
    as the CSV export keeps it; a page says it in its own language from the row's `report_subject`)."""
    return f"{subject or ''}（举报对象）"


def process_names(session: Session) -> dict[str, str]:
    """The newest display name of every process, by key."""
    rows = session.execute(select(ProcessVersion.process_key, ProcessVersion.name)
                           .order_by(ProcessVersion.process_key, ProcessVersion.version))
    return dict(rows.all())


def history(session: Session, case_id: int, actor: Actor,
            definition: ProcessDefinition | None = None) -> list[dict[str, Any]]:
    """Every history entry of a case, oldest first, with the task's display name and, given the
    process's definition, what was submitted labelled by its form (`fields`) and any reason codes."""
    names = task_names(session, case_id)
    rows = session.scalars(select(HistoryEntry).where(HistoryEntry.case_id == case_id).order_by(HistoryEntry.id))
    case = session.get(Case, case_id)
    hidden = views.hidden_fields(case, actor) if case is not None else frozenset()
    entries = [{**views.history_view(e, hidden), "task_name": names.get(e.task or "") or (e.detail or {}).get("name")
                or e.task} for e in rows]
    for entry in entries:
        entry["fields"] = _entry_fields(definition, entry)
        entry["reasons"] = reasons_in(entry["detail"] or {}) if entry["action"] == "automatic" else []
    for entry in unlinked_unreadable(session, actor, entries):  # a child case is linked when readable
        entry["linked_case"] = (entry["detail"] or {}).get("child_case_id") if entry["action"] in CHILD_ACTIONS \
            else None
    return entries


LINKS = ("parent_case_id", "child_case_id")  # history details naming another case
CHILD_ACTIONS = ("child_started", "child_cancelled", "call_result_dropped")  # entries about one child case


def unlinked_unreadable(session: Session, actor: Actor, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History views without the ids of linked cases the actor may not read (the case view leaves those links out
    too): such an id becomes null and is named in the entry's `redacted`."""
    named = [detail.get(key) for entry in entries if isinstance(detail := entry["detail"], dict) for key in LINKS]
    readable = policy.readable_case_ids(session, actor, [n for n in named if isinstance(n, int)])
    for entry in entries:
        detail = entry["detail"]
        if not isinstance(detail, dict):
            continue
        hidden = [key for key in LINKS if detail.get(key) is not None and detail[key] not in readable]
        if hidden:
            entry["detail"] = {**detail, **dict.fromkeys(hidden), "redacted": sorted({*detail.get("redacted", []),
                                                                                     *hidden})}
    return entries


def _entry_fields(definition: ProcessDefinition | None, entry: dict[str, Any]) -> list[dict[str, Any]]:
    data = (entry["detail"] or {}).get("data")
    if definition is None or not isinstance(data, dict) or entry["action"] not in ("start", "complete"):
        return []
    schema = definition.start_form if entry["action"] == "start" else definition.forms.get(entry.get("task") or "")
    return describe(schema or {}, {k: v for k, v in data.items() if k != "cadre_id"})


def reasons_in(data: dict[str, Any]) -> list[str]:
    """The reason codes an automatic step left in the data (`…_reason` keys with a value)."""
    return [value for key, value in data.items() if key.endswith(REASON_SUFFIX) and isinstance(value, str) and value]


def waiting(case: Case, definition: ProcessDefinition, active: list[str],
            open_tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an open case waits for: its open tasks (step, holder, due) and the events it waits on
    (a timer with when it fires, e.g. the end of a notice period, or a message)."""
    if case.status not in ("open", "incident"):
        return []
    items = [{"kind": "task", "name": t["name"], "role": t["role"], "assignee": t["assignee"],
              "due_at": t["due_at"], "overdue": t["overdue"], "task_id": t["id"]} for t in open_tasks]
    task_elements = {t["element_id"] for t in open_tasks}
    bpmn = case.process_version.bpmn_xml.encode()
    names, choices = element_names(bpmn), event_choices(bpmn)
    for element in active:
        if element in task_elements:
            continue
        for event in choices.get(element, []):
            kind = definition.event_kinds.get(event, "message")
            items.append({"kind": kind, "name": names.get(element, element),
                          "event": names.get(event, event) if event != element else None,
                          "due_at": views.iso(case.next_timer_due) if kind == "timer" else None})
    return items


def steps(case: Case, diagram: dict[str, Any], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps a case has passed and stands at, in the order it reached them (the diagram as a list, for
    narrow screens): `{id, kind, name, state}`, state "completed" or "active"."""
    reached = set(diagram["completed"]) | set(diagram["active"])
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        first_seen.setdefault(entry.get("task") or "", index)
    nodes = [(i, n) for i, n in enumerate(step_nodes(case.process_version.bpmn_xml.encode())) if n[0] in reached]

    def order(item: tuple[int, tuple[str, str, str]]) -> tuple[int, int]:
        position, (element, kind, _name) = item
        return (-1 if kind == "startEvent" else first_seen.get(element, len(entries)), position)
    return [{"id": element, "kind": kind, "name": name,
             "state": "active" if element in diagram["active"] else "completed"}
            for _, (element, kind, name) in sorted(nodes, key=order)]


def ending(case: Case, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Why a case ended: the end reached (its name), the reasons automatic steps gave, the last decision."""
    if case.status not in ("completed", "cancelled"):
        return None
    end = next((e for e in reversed(entries) if e["action"] in ("end", "cancel")), None)
    decision = next((e for e in reversed(entries) if e["action"] == "complete"), None)
    reasons = [r for e in entries for r in e.get("reasons", [])]
    return {"status": case.status, "outcome": case.outcome, "end_name": (end or {}).get("task_name"),
            "cancel_reason": ((end or {}).get("detail") or {}).get("reason") if end and end["action"] == "cancel"
            else None, "reasons": reasons, "ban_until": (case.data.get("cadre") or {}).get("promotion_ban_until")
            if "promotion_ban" in reasons else None,
            "decision": {"task_name": decision["task_name"], "fields": decision["fields"]} if decision else None}


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
    names = [n for n in names if data[n] is not None]  # e.g. a public report's cadre, not linked yet
    return [_field(name, properties.get(name), data[name]) for name in names]


def _field(name: str, prop: Any, value: Any) -> dict[str, Any]:
    """A boolean field schema (valid JSON Schema, skipped by the form) labels nothing; `x-enumNames` that do
    not name every value (deploy refuses them now) show the value itself where they fall short."""
    prop = prop if isinstance(prop, dict) else {}
    values, labels = prop.get("enum"), prop.get("x-enumNames")
    display = value
    if isinstance(values, list) and isinstance(labels, list) and value in values:
        index = values.index(value)
        display = labels[index] if index < len(labels) else value
    title = prop.get("title")
    return {"name": name, "label": title if isinstance(title, str) and title else name, "value": value,
            "display": display}


def linked_cases(session: Session, case: Case, actor: Actor) -> dict[str, Any]:
    """The case's parent and children that the actor may read, each with process, status and outcome."""
    children = session.scalars(select(Case).where(Case.parent_case_id == case.id, policy.case_filter(actor))
                               .order_by(Case.id))
    parent = case.parent_case_id and session.scalar(select(Case).where(Case.id == case.parent_case_id,
                                                                       policy.case_filter(actor)))
    return {"parent": _link(parent) if parent else None, "children": [_link(c) for c in children]}


def _link(case: Case) -> dict[str, Any]:
    return {"id": case.id, "process": case.process_key, "process_name": case.process_version.name,
            "status": case.status, "outcome": case.outcome, "cadre_id": case.cadre_id}
