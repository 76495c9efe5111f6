"""Extending a task (延期): its deadline timers fire later.

A task's deadline is the boundary timer on it (bpmn/CONVENTIONS.md: a non-interrupting timer leading to
`supervise_<task>`). Extending moves the waiting date and duration timers on the task's boundary to the new
time, so the escalation (督办) follows the new deadline; cycle timers keep their rhythm.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.util.task import TaskState


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


def _later(moment: datetime, value: str) -> bool:
    try:
        current = datetime.fromisoformat(value)
    except ValueError:
        return False
    return current.tzinfo is not None and moment > current
