"""Drive case workflows: start, complete a user task, fire timers, deliver a message.

Each operation loads the saved state, runs the engine until it needs a person or a clock,
and returns a `Step` of plain values. Nothing here is persisted: the caller stores the step in
the same transaction as everything else it does, or drops it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent, EventBasedGateway
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.exceptions import WorkflowException
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask, ScriptTask, ServiceTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import serialization
from .compiler import OUTCOME_PREFIX, ProcessDefinition, supervised_element
from .errors import EngineError, Incident, LoopLimitExceeded, MigrationRefused, NotWaiting, TaskNotReady
from .sandbox import CaseScriptEngine, SandboxEnvironment, ServiceHandler, require_storable
from .types import Diagram, EngineEvent, IncidentInfo, Migration, OpenTask, Step

CASE_DATA = "case_data"
AUTOMATIC_SPECS = (ScriptTask, ServiceTask, BusinessRuleTask)


class CaseRunner:
    """Runs cases of deployed processes inside the sandbox."""

    def __init__(self, deadlines: Mapping[str, str], script_timeout: float = 1.0, max_depth: int = 800) -> None:
        self.environment = SandboxEnvironment(deadlines, script_timeout)
        self.max_depth = max_depth

    def start(self, process: ProcessDefinition, data: dict[str, Any], services: ServiceHandler | None) -> Step:
        """Create a case from start data and run it to its first wait."""
        require_storable(data)
        workflow = BpmnWorkflow(process.spec, process.subprocess_specs)
        workflow.data[CASE_DATA] = dict(data)
        workflow.task_tree.data.update(data)
        return self._advance(process, workflow, services, lambda: None)

    def complete(self, process: ProcessDefinition, state: str, task_id: str, data: dict[str, Any],
                 services: ServiceHandler | None) -> Step:
        """Complete a READY user task with validated form data."""
        require_storable(data)
        workflow = self._load(process, state)
        task = self._ready_user_task(workflow, task_id)

        def run() -> None:
            fields = dict(data)
            results = {**task.data.get("results", {}), task.task_spec.bpmn_id: fields}
            task.data.update(fields, results=results)
            _merge_case_data(workflow, {**fields, "results": results})
            task.run()
        return self._advance(process, workflow, services, run)

    def fire_timers(self, process: ProcessDefinition, state: str, services: ServiceHandler | None) -> Step:
        """Fire every timer of the case that is due now."""
        workflow = self._load(process, state)
        return self._advance(process, workflow, services, workflow.refresh_timers)

    def deliver_message(self, process: ProcessDefinition, state: str, name: str, payload: dict[str, Any],
                        services: ServiceHandler | None) -> Step:
        """Hand a message to the case; NotWaiting when nothing in it waits for that name."""
        require_storable(payload)
        workflow = self._load(process, state)
        event = BpmnEvent(MessageEventDefinition(name), payload=dict(payload))

        def deliver() -> None:
            workflow.refresh_timers()  # a deadline that passed before the message wins the race
            workflow.do_engine_steps()
            try:
                workflow.send_event(event)
            except WorkflowException as exc:
                raise NotWaiting(f"the case is not waiting for message '{name}'") from exc
        return self._advance(process, workflow, services, deliver)

    def check_rule(self, expression: str, scope: dict[str, Any]) -> bool:
        """Evaluate a form rule (`x-validate`) over case data and submitted fields, in the sandbox."""
        try:
            return bool(self.environment.evaluate(expression, dict(scope)))
        except Exception as exc:  # a rule that cannot be evaluated is a failed rule
            raise Incident(f"form rule cannot be evaluated: {exc}") from exc

    def cancel(self, process: ProcessDefinition, state: str) -> Step:
        """Cancel every open path of the case."""
        workflow = self._load(process, state)
        workflow.cancel()
        return self._step(workflow, [])

    def inspect(self, process: ProcessDefinition, state: str) -> Step:
        """Read a case's current step without running anything."""
        return self._step(self._load(process, state), [])

    def diagram(self, process: ProcessDefinition, state: str) -> Diagram:
        """The elements a case has completed and those it is at now."""
        workflow = self._load(process, state)
        completed, active = set(), set()
        for task in workflow.get_tasks():
            if task.task_spec.bpmn_id is None:
                continue
            if task.state == TaskState.COMPLETED:
                completed.add(task.task_spec.bpmn_id)
            elif task.state in (TaskState.READY, TaskState.WAITING, TaskState.STARTED):
                active.add(task.task_spec.bpmn_id)
        return Diagram(completed=tuple(sorted(completed)), active=tuple(sorted(active)))

    def _load(self, process: ProcessDefinition, state: str) -> BpmnWorkflow:
        try:
            return serialization.load(state, process.spec, process.subprocess_specs)
        except (ValueError, KeyError, TypeError) as exc:
            raise EngineError(f"saved case state cannot be loaded: {exc}") from exc

    def _ready_user_task(self, workflow: BpmnWorkflow, task_id: str) -> Any:
        try:
            task = workflow.tasks.get(UUID(task_id))
        except ValueError:
            task = None
        if task is None or task.state != TaskState.READY or not task.task_spec.manual:
            raise TaskNotReady(f"task {task_id} is not open in this case")
        return task

    def _advance(self, process: ProcessDefinition, workflow: BpmnWorkflow, services: ServiceHandler | None,
                 action: Callable[[], None]) -> Step:
        workflow.script_engine = CaseScriptEngine(self.environment, services)
        ready_before = {t.id for t in _ready_user_tasks(workflow)}
        completed_before = {t.id for t in workflow.tasks.values() if t.state == TaskState.COMPLETED}
        current: list[Any] = [None]
        incident = None
        try:
            action()
            workflow.do_engine_steps(will_complete_task=lambda t: current.__setitem__(0, t))
        except (NotWaiting, TaskNotReady):
            raise
        except Exception as exc:  # any failure inside BPMN code is an incident
            failure = _incident(exc, current[0])
            if not _errored(workflow):
                raise failure from exc  # nothing coherent to save: the caller keeps the old state
            incident = IncidentInfo(failure.message, failure.element_id, failure.line)
        workflow.get_events()  # drain thrown events: cross-case effects go through service tasks
        events = _events_since(workflow, completed_before, process.event_kinds)
        for task in _ready_user_tasks(workflow):  # what their pre-scripts set
            _merge_case_data(workflow, _changed_data(task))
        events.extend(_escalations(workflow, ready_before))
        return self._step(workflow, events, incident)

    def retry(self, process: ProcessDefinition, state: str, services: ServiceHandler | None) -> Step:
        """Run the failed elements of a case in an incident again (after a fix was deployed and migrated)."""
        workflow = self._load(process, state)
        failed = _errored(workflow)
        if not failed:
            raise TaskNotReady("the case has no failed element to retry")

        def reset() -> None:
            for task in failed:
                task._set_state(TaskState.READY)
        return self._advance(process, workflow, services, reset)

    def migrate(self, process: ProcessDefinition, state: str, target: ProcessDefinition,
                dry_run: bool) -> Migration:
        """Move a case to another version; refused when an open task would disappear."""
        workflow = self._load(process, state)
        diff, _ = diff_workflow(serialization.registry(), workflow, target.spec, target.subprocess_specs)
        removed = tuple(sorted({t.task_spec.bpmn_id for t in diff.removed if t.task_spec.bpmn_id}))
        changed = tuple(sorted({t.task_spec.bpmn_id for t in diff.changed if t.task_spec.bpmn_id}))
        target_ids = {ts.bpmn_id for ts in target.spec.task_specs.values() if ts.bpmn_id}
        open_removed = sorted({t.task_spec.bpmn_id or t.task_spec.name for t in workflow.tasks.values()
                               if t.state in _OPEN_STATES and t.task_spec.bpmn_id not in target_ids
                               and (t.task_spec.bpmn_id or t in diff.removed)})
        if open_removed:
            raise MigrationRefused(f"open elements would disappear: {', '.join(open_removed)} "
                                   "(迁移后进行中的任务将消失)")
        if dry_run:
            return Migration(removed, changed, None)
        migrate_workflow(diff, workflow, target.spec)
        workflow.subprocess_specs = target.subprocess_specs
        return Migration(removed, changed, self._advance(target, workflow, None, lambda: None))

    def _step(self, workflow: BpmnWorkflow, events: list[EngineEvent], incident: IncidentInfo | None = None) -> Step:
        frontier = [t for t in workflow.tasks.values() if t.state in (TaskState.READY, TaskState.WAITING)]
        self._guard_depth(frontier)
        completed = workflow.is_completed()
        outcome = _outcome(workflow) if completed else None
        if completed and outcome is None and not _was_cancelled(workflow):
            raise LoopLimitExceeded("the engine lost track of the case's open tasks; step refused")
        try:
            state = serialization.dump(workflow)
        except (TypeError, ValueError) as exc:
            raise Incident(f"case data is not JSON: {exc}") from exc
        open_tasks = tuple(_open_task(workflow, t) for t in frontier
                           if t.state == TaskState.READY and t.task_spec.manual)
        return Step(
            state=state, completed=completed, outcome=outcome,
            data=dict(workflow.data.get(CASE_DATA, {})), open_tasks=open_tasks,
            next_timer_due=_next_timer_due(frontier), events=tuple(events),
            overdue_elements=tuple(e.detail["overdue"] for e in events if e.action == "escalation"),
            incident=incident,
            failed_elements=tuple(t.task_spec.bpmn_id or t.task_spec.name for t in _errored(workflow)),
        )

    def _guard_depth(self, frontier: list[Any]) -> None:
        for task in frontier:
            if task.depth > self.max_depth:
                raise LoopLimitExceeded(
                    f"the case has looped too often (task depth {task.depth} > {self.max_depth}); "
                    "step refused so the case is not corrupted (流程循环次数过多)")


_OPEN_STATES = (TaskState.READY, TaskState.WAITING, TaskState.STARTED, TaskState.ERROR)


def _errored(workflow: BpmnWorkflow) -> list[Any]:
    return [t for t in workflow.tasks.values() if t.state == TaskState.ERROR]


def _merge_case_data(workflow: BpmnWorkflow, updates: Mapping[str, Any]) -> None:
    """Latest value wins, except `results`, which keeps every task's entry (parallel branches too)."""
    current = workflow.data.get(CASE_DATA, {})
    merged = {**current, **updates}
    if "results" in updates:
        merged["results"] = {**current.get("results", {}), **updates["results"]}
    workflow.data[CASE_DATA] = merged


def _events_since(workflow: BpmnWorkflow, completed_before: set, kinds: Mapping[str, str]) -> list[EngineEvent]:
    """Record every task completed during this step, however it completed (engine step or event)."""
    done = [t for t in workflow.tasks.values() if t.state == TaskState.COMPLETED and t.id not in completed_before]
    events: list[EngineEvent] = []
    for task in sorted(done, key=lambda t: t.last_state_change):
        _record(workflow, task, events, kinds)
    return events


def _record(workflow: BpmnWorkflow, task: Any, events: list[EngineEvent], kinds: Mapping[str, str]) -> None:
    spec = task.task_spec
    if spec.bpmn_id is None:
        return
    _merge_case_data(workflow, _changed_data(task))  # latest completion wins (scripts, DMN, post-scripts)
    action = _action_of(spec, kinds)
    if action is not None:
        events.append(EngineEvent(action, spec.bpmn_id, spec.bpmn_name or spec.bpmn_id, _detail(action, task)))


def _changed_data(task: Any) -> dict[str, Any]:
    parent = task.parent.data if task.parent is not None else {}
    return {k: v for k, v in task.data.items() if parent.get(k, _MISSING) != v}


_MISSING = object()


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
        return _json_safe(_changed_data(task))
    if action == "end":
        return {"outcome": task.task_spec.bpmn_id[len(OUTCOME_PREFIX):]}
    return {}


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(data)
        return data
    except (TypeError, ValueError):
        return {k: repr(v) for k, v in data.items()}


def _is_timer(definition: Any) -> bool:
    if isinstance(definition, MultipleEventDefinition):
        return any(isinstance(d, TimerEventDefinition) for d in definition.event_definitions)
    return isinstance(definition, TimerEventDefinition)


def _ready_user_tasks(workflow: BpmnWorkflow) -> list[Any]:
    return [t for t in workflow.tasks.values() if t.state == TaskState.READY and t.task_spec.manual]


def _escalations(workflow: BpmnWorkflow, ready_before: set) -> Iterator[EngineEvent]:
    for task in _ready_user_tasks(workflow):
        supervised = supervised_element(task.task_spec.bpmn_id or "")
        if task.id not in ready_before and supervised:
            yield EngineEvent("escalation", task.task_spec.bpmn_id, task.task_spec.bpmn_name or "",
                              {"overdue": supervised})


def _outcome(workflow: BpmnWorkflow) -> str | None:
    ends = [t for t in workflow.tasks.values() if t.state == TaskState.COMPLETED
            and isinstance(t.task_spec, EndEvent) and (t.task_spec.bpmn_id or "").startswith(OUTCOME_PREFIX)]
    if not ends:
        return None
    latest = max(ends, key=lambda t: t.last_state_change)
    return latest.task_spec.bpmn_id[len(OUTCOME_PREFIX):]


def _was_cancelled(workflow: BpmnWorkflow) -> bool:
    return any(t.state == TaskState.CANCELLED for t in workflow.tasks.values())


def _open_task(workflow: BpmnWorkflow, task: Any) -> OpenTask:
    spec = task.task_spec
    return OpenTask(
        id=str(task.id), element_id=spec.bpmn_id, name=spec.bpmn_name or spec.bpmn_id,
        role=spec.lane, assignee=_assignee(workflow, task), due_at=_due_at(task),
        supervises=supervised_element(spec.bpmn_id),
    )


def _assignee(workflow: BpmnWorkflow, task: Any) -> str | None:
    expression = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {}).get("assignee")
    if not expression:
        return None
    value = workflow.script_engine.evaluate(task, expression)
    return str(value) if value else None


def _due_at(task: Any) -> str | None:
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return None
    dues = [_timer_value(sibling) for sibling in parent.children
            if isinstance(sibling.task_spec, BoundaryEvent) and sibling.state == TaskState.WAITING]
    dues = [d for d in dues if d]
    return min(dues) if dues else None


def _timer_value(task: Any) -> str | None:
    if not _is_timer(getattr(task.task_spec, "event_definition", None)):
        return None
    value = task.internal_data.get("event_value")
    return value if isinstance(value, str) else None


def _next_timer_due(frontier: list[Any]) -> str | None:
    dues = [_timer_value(t) for t in frontier if t.state == TaskState.WAITING]
    dues = [d for d in dues if d]
    return min(dues) if dues else None


def _incident(exc: Exception, task: Any) -> Incident:
    failing = getattr(exc, "task", None) or task
    element_id = getattr(getattr(failing, "task_spec", None), "bpmn_id", None)
    line = getattr(exc, "line_number", None) or None
    return Incident(f"{type(exc).__name__}: {exc}", element_id=element_id, line=line)
