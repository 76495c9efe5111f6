"""Read a loaded workflow into plain values: its tasks (subprocesses included), due times, outcome,
diagram, and what happened during a step.

Tasks are read from the workflows' task tables, never with SpiffWorkflow's tree iterator: the
iterator stops at depth 1000 and would silently lose the open tasks of a long-running case.
Embedded subprocesses, event subprocesses and their tasks live in `workflow.subprocesses`; every
function here covers them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from itertools import chain
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import SignalEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, EventBasedGateway
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask, ScriptTask, ServiceTask
from SpiffWorkflow.util.task import TaskState

from .bounds import OUTCOME_PREFIX
from .pruning import completed_elements
from .specs import LinkedCallActivity
from .types import Diagram, EngineEvent, Thrown, Wait

CASE_DATA = "case_data"
AUTOMATIC_SPECS = (ScriptTask, ServiceTask, BusinessRuleTask)
OPEN_STATES = (TaskState.READY, TaskState.WAITING, TaskState.STARTED, TaskState.ERROR)
_MISSING = object()


def all_tasks(workflow: BpmnWorkflow) -> Iterator[Any]:
    """Every task of the case: the process's own and those of its subprocesses."""
    return chain(workflow.tasks.values(), *(sub.tasks.values() for sub in workflow.subprocesses.values()))


def tasks_in(workflow: BpmnWorkflow, *states: int) -> list[Any]:
    return [task for task in all_tasks(workflow) if task.state in states]


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Any]:
    return [task for task in tasks_in(workflow, TaskState.READY) if task.task_spec.manual]


def errored(workflow: BpmnWorkflow) -> list[Any]:
    return tasks_in(workflow, TaskState.ERROR)


def waiting_calls(workflow: BpmnWorkflow) -> frozenset[str]:
    """The ids of the call activity tasks waiting for their child case (STARTED until the child's end comes)."""
    return frozenset(str(task.id) for task in tasks_in(workflow, TaskState.STARTED)
                     if isinstance(task.task_spec, LinkedCallActivity))


def finished(workflow: BpmnWorkflow) -> bool:
    """Whether nothing of the process is left to do (read from the task table, not the iterator)."""
    return all(task.state & TaskState.FINISHED_MASK for task in workflow.tasks.values())


def deepest(workflow: BpmnWorkflow) -> int:
    """The deepest task of the case, counting a subprocess's tasks below the task that holds it."""
    depths: dict[Any, int] = {}
    for sub_workflow in (workflow, *sorted(workflow.subprocesses.values(), key=lambda sub: sub.depth)):
        offset = 0
        if sub_workflow is not workflow:
            offset = depths.get(sub_workflow.parent_task_id, 0) + 1
        for task in sub_workflow.tasks.values():  # parents come before their children
            depths[task.id] = depths.get(task._parent, offset - 1) + 1
    return max(depths.values(), default=0)


def outcome(workflow: BpmnWorkflow, event_subprocesses: frozenset[str] = frozenset()) -> str | None:
    """The outcome of the latest `end_<outcome>` end event the process itself reached, if any. An end inside an
    embedded subprocess ends only that subprocess (the case goes on) and decides nothing; an event subprocess
    the process opened (`event_subprocesses`: their ids) counts as the process's own: its end can end the case."""
    ends = [task for task in _process_tasks(workflow, event_subprocesses) if task.state == TaskState.COMPLETED
            and isinstance(task.task_spec, EndEvent) and (task.task_spec.bpmn_id or "").startswith(OUTCOME_PREFIX)]
    if not ends:
        return None
    latest: str = max(ends, key=lambda task: task.last_state_change).task_spec.bpmn_id
    return latest[len(OUTCOME_PREFIX):]


def _process_tasks(workflow: BpmnWorkflow, event_subprocesses: frozenset[str]) -> Iterator[Any]:
    """The process's own tasks and those of the event subprocesses it opened (not of embedded subprocesses)."""
    holders = {task.id for task in workflow.tasks.values() if task.task_spec.bpmn_id in event_subprocesses}
    own = [sub for sub in workflow.subprocesses.values() if sub.parent_task_id in holders]
    return chain(workflow.tasks.values(), *(sub.tasks.values() for sub in own))


def diagram(workflow: BpmnWorkflow) -> Diagram:
    completed, active = set(completed_elements(workflow)), set()
    for task in all_tasks(workflow):
        if task.task_spec.bpmn_id is None:
            continue
        if task.state == TaskState.COMPLETED:
            completed.add(task.task_spec.bpmn_id)
        elif task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
            active.add(task.task_spec.bpmn_id)
    return Diagram(completed=tuple(sorted(completed)), active=tuple(sorted(active)))


# Timers ------------------------------------------------------------------------------------------

def is_timer(definition: Any) -> bool:
    if isinstance(definition, MultipleEventDefinition):
        return any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
    return isinstance(definition, TimerEventDefinition)


def timer_value(task: Any) -> str | None:
    """When a waiting timer fires, ISO 8601 in UTC: dues are compared as text and stored in a column that refuses
    a time without zone, while a timeDate keeps the value the diagram gave (any zone, or none)."""
    if not is_timer(getattr(task.task_spec, "event_definition", None)):
        return None
    moment = timer_moment(task.internal_data.get("event_value"))
    return moment.isoformat() if moment is not None else None


def timer_moment(value: Any) -> datetime | None:
    """A timer's due time as SpiffWorkflow reads it (without a zone: the server's), in UTC; None for a cycle's
    position, or a timeDate that names no time (a duration there is counted anew at every look: never due)."""
    try:
        return TimerEventDefinition.get_datetime(value) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None


def due_at(task: Any) -> str | None:
    """When a user task's boundary timer fires, if it has one."""
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return None
    dues = [timer_value(sibling) for sibling in parent.children
            if isinstance(sibling.task_spec, BoundaryEvent) and sibling.state == TaskState.WAITING]
    set_dues = [d for d in dues if d]
    return min(set_dues) if set_dues else None


def next_timer_due(workflow: BpmnWorkflow) -> str | None:
    """When the timer worker should next fire the case's timers. A timer that came due during a step is READY,
    not run: SpiffWorkflow's `do_engine_steps` looks at the clock after its last run. Its time, now past, is
    counted too, so the worker fires it at its next pass instead of never."""
    dues = [timer_value(task) for task in tasks_in(workflow, TaskState.WAITING, TaskState.READY)]
    set_dues = [d for d in dues if d]
    return min(set_dues) if set_dues else None


# Case data and history -----------------------------------------------------------------------------

def merge_case_data(workflow: BpmnWorkflow, updates: Mapping[str, Any]) -> None:
    """Latest value wins, except `results`, which keeps every task's entry (parallel branches too)."""
    current = workflow.data.get(CASE_DATA, {})
    merged = {**current, **updates}
    if "results" in updates:
        merged["results"] = {**current.get("results", {}), **updates["results"]}
    workflow.data[CASE_DATA] = merged


def changed_data(task: Any) -> dict[str, Any]:
    parent = task.parent.data if task.parent is not None else {}
    return {k: v for k, v in task.data.items() if parent.get(k, _MISSING) != v}


def events_since(workflow: BpmnWorkflow, completed_before: set[UUID], kinds: Mapping[str, str]) -> list[EngineEvent]:
    """Record every task completed during this step, however it completed (engine step or event)."""
    done = [task for task in tasks_in(workflow, TaskState.COMPLETED) if task.id not in completed_before]
    events: list[EngineEvent] = []
    for task in sorted(done, key=lambda t: t.last_state_change):
        spec = task.task_spec
        if spec.bpmn_id is None:
            continue
        merge_case_data(workflow, changed_data(task))  # latest completion wins (scripts, DMN, post-scripts)
        action = _action_of(spec, kinds)
        if action is not None:
            events.append(EngineEvent(action, spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, _detail(action, task)))
    return events


def _action_of(spec: Any, kinds: Mapping[str, str]) -> str | None:
    """What a completed element was, for history; catch events by their kind in the diagram
    (the parser moves an event gateway's timer and message onto the gateway itself)."""
    if isinstance(spec, AUTOMATIC_SPECS):
        return "automatic"
    if isinstance(spec, EndEvent) and spec.bpmn_id.startswith(OUTCOME_PREFIX):
        return "end"
    if isinstance(spec, CatchingEvent) and not isinstance(spec, EventBasedGateway):
        return kinds.get(spec.bpmn_id)
    return None


def _detail(action: str, task: Any) -> dict[str, Any]:
    if action == "automatic":
        return _json_safe(changed_data(task))
    if action == "end":
        return {"outcome": task.task_spec.bpmn_id[len(OUTCOME_PREFIX):]}
    return {}


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(data)
        return data
    except (TypeError, ValueError):
        return {k: repr(v) for k, v in data.items()}


# Events between cases ----------------------------------------------------------------------------

def waits(workflow: BpmnWorkflow) -> tuple[Wait, ...]:
    """The messages and signals the case waits for: its waiting catch events, and the message or
    signal starts of its event subprocesses (which open when such an event arrives)."""
    found: set[Wait] = set()
    for task in tasks_in(workflow, TaskState.WAITING):
        for definition in _definitions(getattr(task.task_spec, "event_definition", None)):
            found.update(_wait_for(definition, task.workflow.correlations))
    for name in workflow.spec.start.trigger_specs:
        for start in workflow.subprocess_specs[name].bpmn_start_events:
            for definition in _definitions(start.event_definition):
                found.update(_wait_for(definition, workflow.correlations))
    return tuple(sorted(found, key=lambda wait: (wait.kind, wait.name, wait.correlations)))


def thrown(events: list[Any]) -> tuple[Thrown, ...]:
    """What a step threw that its own case did not catch (SpiffWorkflow's pending external events)."""
    out = []
    for event in events:
        definition = event.event_definition
        if isinstance(definition, MessageEventDefinition):
            out.append(Thrown("message", definition.name, event.payload, correlation_texts(event.correlations)))
        elif isinstance(definition, SignalEventDefinition):
            out.append(Thrown("signal", definition.name, event.payload))
    return tuple(out)


def correlation_texts(correlations: Mapping[str, Any]) -> tuple[str, ...]:
    """SpiffWorkflow's correlations ({key: {property: value}}) as comparable "key=value" texts."""
    return tuple(sorted(f"{key}={json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)}"
                        for key, value in correlations.items()))


def correlations_of(texts: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The inverse of `correlation_texts`."""
    pairs = (text.split("=", 1) for text in texts)
    return {key: json.loads(value) for key, value in pairs}


def _definitions(definition: Any) -> list[Any]:
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [definition] if definition is not None else []


def _wait_for(definition: Any, correlations: Mapping[str, Any]) -> list[Wait]:
    if isinstance(definition, MessageEventDefinition):
        keyed = correlation_texts(correlations) if definition.correlation_properties else ()
        return [Wait("message", definition.name, keyed)]
    if isinstance(definition, SignalEventDefinition):
        return [Wait("signal", definition.name)]
    return []
