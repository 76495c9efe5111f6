"""An error or escalation a called case ended with, reaching the boundary events of its caller's call activity.

A called process runs as a linked case of its own (specs.LinkedCallActivity), so what its end events throw stays
in its own workflow: SpiffWorkflow, finding nothing there to catch it, leaves it among the workflow's pending
events. The child's step reports those (`raised`); when the caller takes the child's end, the event is thrown
again at the call activity's own boundary events, as BPMN 2.0 has them catch it (an error boundary with the
same errorCode, or one naming none; an escalation boundary likewise, interrupting or not). SpiffWorkflow's own
catch makes a boundary ready (`task_spec.catch` and `_update`, as its EventManager.catch does); its boundary join
then cancels the call activity for an interrupting one. An event no boundary catches is dropped, as an uncaught
error end event inside one case is: the call goes on down its normal path.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn import BpmnEvent
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import CodeEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.spiff.specs.event_definitions import ErrorEventDefinition, EscalationEventDefinition
from SpiffWorkflow.util.task import TaskState

from .types import Thrown

RAISED = {ErrorEventDefinition: "error", EscalationEventDefinition: "escalation"}
DEFINITIONS = {kind: definition for definition, kind in RAISED.items()}


def raised(events: list[Any]) -> tuple[Thrown, ...]:
    """The errors and escalations a step threw that its own case did not catch (kind, and code or "")."""
    return tuple(Thrown(RAISED[type(event.event_definition)], event.event_definition.code or "")
                 for event in events if type(event.event_definition) in RAISED)


def catch_raised(call: Any, events: tuple[Thrown, ...], outcome: str | None) -> bool:
    """Throw what the child raised at the call activity's boundary events; whether an interrupting one caught it.
    The catching boundary's path gets `<call id>_<kind>` (the code) and `<call id>_outcome` in its data."""
    interrupted = False
    for event in events:
        boundary = _catcher(call, event)
        if boundary is None:
            continue
        definition = DEFINITIONS[event.kind](event.name, code=event.name or None)
        boundary.task_spec.catch(boundary, BpmnEvent(definition))
        boundary.task_spec._update(boundary)  # fired: READY, with the call activity's data
        boundary.data.update(_data(call, event, outcome))
        interrupted = interrupted or boundary.task_spec.cancel_activity
    return interrupted


def raised_data(call: Any, events: tuple[Thrown, ...], outcome: str | None) -> dict[str, Any]:
    """What the call activity's normal path gets of the events the child raised: the last code of each kind."""
    data: dict[str, Any] = {}
    for event in events:
        data.update(_data(call, event, outcome))
    return data


def _data(call: Any, event: Thrown, outcome: str | None) -> dict[str, Any]:
    bpmn_id = call.task_spec.bpmn_id
    return {f"{bpmn_id}_{event.kind}": event.name, f"{bpmn_id}_outcome": outcome}


def _catcher(call: Any, event: Thrown) -> Any:
    """The waiting boundary event of the call activity that catches the event: one naming its code before one
    naming none (BPMN: the most specific catch wins)."""
    split = call.parent
    if split is None or not isinstance(split.task_spec, BoundaryEventSplit):
        return None
    fitting = [task for task in split.children
               if isinstance(task.task_spec, BoundaryEvent) and task.state == TaskState.WAITING
               and type(task.task_spec.event_definition) is DEFINITIONS[event.kind]
               and _fits(task.task_spec.event_definition, event.name)]
    fitting.sort(key=lambda task: task.task_spec.event_definition.code is None)
    return fitting[0] if fitting else None


def _fits(definition: CodeEventDefinition, code: str) -> bool:
    return definition.code is None or definition.code == code
