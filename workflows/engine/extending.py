"""Deadlines: extending a task (延期) makes its deadline timers fire later; migrating a case keeps them.

A task's deadline is the boundary timer on it (bpmn/CONVENTIONS.md: a non-interrupting timer leading to
`supervise_<task>`). Extending moves the waiting date and duration timers on the task's boundary to the new
time, so the escalation (督办) follows the new deadline; cycle timers keep their rhythm.

SpiffWorkflow's migration resets every waiting task, and a reset timer counts its duration again from the
moment of the migration: each deadline would move later, and an extension would be lost. `kept_timers` and
`restore_timers` around the migration give each waiting timer that survives it, still a timer of the same
kind, the time it had (as other engines keep a timer's due date when an instance moves to a new version).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.util.task import TaskState

from .reading import is_timer, tasks_in, timer_moment

# A waiting timer before a migration: the kind of its event definition, and what it had counted (its due time, a
# cycle's position, whether it fired).
KeptTimer = tuple[type, dict[str, Any]]


def postpone_timers(task: Any, until: str) -> None:
    """An extended task: its waiting boundary timers with a fixed time (date or duration) fire at `until` instead,
    where that is later (cycle timers keep their rhythm)."""
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return
    moment = datetime.fromisoformat(until)
    for sibling in parent.children:
        value = sibling.internal_data.get("event_value")
        if isinstance(sibling.task_spec, BoundaryEvent) and sibling.state == TaskState.WAITING \
                and isinstance(value, str) and _later(moment, value):
            sibling.internal_data["event_value"] = moment.isoformat()


def postpone_waiting(workflow: BpmnWorkflow, element_id: str, seconds: float) -> None:
    """The waiting timers of `element_id` with a fixed time fire `seconds` later: a period the case could not run
    while held (an incident) is given back, not lost (a vetting case's public notice)."""
    for task in tasks_in(workflow, TaskState.WAITING):
        moment = timer_moment(task.internal_data.get("event_value"))
        if task.task_spec.bpmn_id == element_id and moment is not None and seconds > 0:
            task.internal_data["event_value"] = (moment + timedelta(seconds=seconds)).isoformat()


def _later(moment: datetime, value: str) -> bool:
    current = timer_moment(value)
    return current is not None and moment > current


def kept_timers(workflow: BpmnWorkflow) -> dict[UUID, KeptTimer]:
    """The waiting timers of a case, by task id, as they stand before a migration resets them."""
    return {task.id: (type(definition), dict(task.internal_data)) for task in tasks_in(workflow, TaskState.WAITING)
            if is_timer(definition := getattr(task.task_spec, "event_definition", None))}


def restore_timers(workflow: BpmnWorkflow, kept: dict[UUID, KeptTimer]) -> None:
    """After a migration: each timer kept, still waiting and of the same kind (a duration is not a cycle's
    position), counts as it did; one the new version made of another kind starts afresh."""
    for task in tasks_in(workflow, TaskState.WAITING):
        before = kept.get(task.id)
        if before is not None and type(getattr(task.task_spec, "event_definition", None)) is before[0]:
            task.internal_data = dict(before[1])
