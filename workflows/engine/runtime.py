"""Drive case workflows: start, complete a user task, fire timers, deliver a message.

Each operation loads the saved state, runs the engine until it needs a person or a clock,
and returns a `Step` of plain values. Nothing here is persisted: the caller stores the step in
the same transaction as everything else it does, or drops it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnEvent, BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.timer import CycleTimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util.diff import diff_workflow, migrate_workflow
from SpiffWorkflow.exceptions import TaskNotFoundException, WorkflowException
from SpiffWorkflow.spiff.specs.defaults import ServiceTask
from SpiffWorkflow.spiff.specs.event_definitions import MessageEventDefinition, SignalEventDefinition
from SpiffWorkflow.util.task import TaskState

from . import serialization
from .bounds import MAX_ASSIGNEE
from .called import catch_raised, raised, raised_data
from .compiler import ProcessDefinition, supervised_element
from .errors import (
    DataRefused,
    EngineError,
    Incident,
    LoopLimitExceeded,
    MigrationRefused,
    NotReturnable,
    NotWaiting,
    TaskNotReady,
    shortened,
)
from .extending import kept_timers, postpone_timers, postpone_waiting, restore_timers
from .pruning import prune
from .reading import (
    CASE_DATA,
    OPEN_STATES,
    changed_data,
    correlations_of,
    deepest,
    diagram,
    due_at,
    errored,
    events_since,
    finished,
    merge_case_data,
    next_timer_due,
    outcome,
    ready_user_tasks,
    tasks_in,
    thrown,
    waiting_calls,
    waits,
)
from .returns import previous_person_task, reset_to
from .sandbox import CaseScriptEngine, SandboxEnvironment, ServiceHandler, require_storable
from .specs import CHILD_OUTCOME, LinkedCallActivity
from .subprocesses import EventSubprocesses
from .timing import schedule_of
from .types import Diagram, EngineEvent, IncidentInfo, Migration, OpenTask, Step, Thrown, TimerSchedule
from .versions import lost_elements


class CaseRunner:
    """Runs cases of deployed processes inside the sandbox."""

    def __init__(self, deadlines: Mapping[str, str], script_timeout: float = 1.0, max_depth: int = 800,
                 today: date | None = None) -> None:
        """`today`: the day scripts' today() names (the service's county date); None: this machine's date."""
        self.environment = SandboxEnvironment(deadlines, script_timeout, today)
        self.max_depth = max_depth

    def start(self, process: ProcessDefinition, data: dict[str, Any], services: ServiceHandler | None) -> Step:
        """Create a case from start data and run it to its first wait. A start event that waits for a
        timer, message or signal counts as fired: the case is being opened by that very trigger."""
        require_storable(data)
        workflow = BpmnWorkflow(process.spec, process.subprocess_specs, script_engine=self._engine(None))
        workflow.data[CASE_DATA] = dict(data)
        workflow.task_tree.data.update(data)
        _cycles_fire_once(workflow)
        return self._advance(process, workflow, services, lambda: None, opening=True)

    def start_many(self, process: ProcessDefinition, starts: list[dict[str, Any]],
                   services: Callable[[int], ServiceHandler]) -> list[Step | EngineError]:
        """Start one case per start data (a bulk start), `services(i)` handling the i-th case's service tasks
        (asked for as the i-th case begins, so an executor starts its time budget there): each its step, or the
        error that refused it."""
        results: list[Step | EngineError] = []
        for index, data in enumerate(starts):
            try:
                results.append(self.start(process, data, services(index)))
            except EngineError as exc:
                results.append(exc)
        return results

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
            merge_case_data(workflow, {**fields, "results": results})
            task.run()
            _end_supervision(workflow, task.task_spec.bpmn_id)
        return self._advance(process, workflow, services, run)

    def fire_timers(self, process: ProcessDefinition, state: str, services: ServiceHandler | None) -> Step:
        """Fire every timer of the case that is due now."""
        workflow = self._load(process, state)
        return self._advance(process, workflow, services, workflow.refresh_timers)

    def deliver_message(self, process: ProcessDefinition, state: str, name: str, payload: dict[str, Any],
                        services: ServiceHandler | None, correlations: tuple[str, ...] | None = None) -> Step:
        """Hand a message to the case; NotWaiting when nothing in it waits for that name. A message
        addressed to this case (no correlations given) matches whatever the case correlates on."""
        require_storable(payload)
        workflow = self._load(process, state)
        keys = correlations_of(correlations) if correlations is not None else dict(workflow.correlations)
        return self._advance(process, workflow, services, self._sender(
            workflow, BpmnEvent(MessageEventDefinition(name), payload=dict(payload), correlations=keys),
            f"message '{name}'"))

    def deliver_signal(self, process: ProcessDefinition, state: str, name: str, payload: Any,
                       services: ServiceHandler | None) -> Step:
        """Hand a signal to the case; NotWaiting when nothing in it waits for that name."""
        require_storable(payload)
        workflow = self._load(process, state)
        return self._advance(process, workflow, services, self._sender(
            workflow, BpmnEvent(SignalEventDefinition(name), payload=payload), f"signal '{name}'"))

    @staticmethod
    def _sender(workflow: BpmnWorkflow, event: BpmnEvent, what: str) -> Callable[[], None]:
        def deliver() -> None:
            workflow.refresh_timers()  # a deadline that passed before the event wins the race
            workflow.do_engine_steps()
            try:
                workflow.send_event(event)
            except WorkflowException as exc:
                raise NotWaiting(f"the case is not waiting for {what}") from exc
        return deliver

    def resume_call(self, process: ProcessDefinition, state: str, task_id: str, outcome: str | None,
                    services: ServiceHandler | None, raised_events: tuple[Thrown, ...] = ()) -> Step:
        """A call activity's child case has ended: the waiting call activity goes on with its outcome, or leaves by
        the boundary event catching the error or escalation the child ended with (called.py)."""
        workflow = self._load(process, state)
        task = _task_by_id(workflow, task_id)
        if task is None or task.state != TaskState.STARTED or not isinstance(task.task_spec, LinkedCallActivity):
            raise NotWaiting(f"the case is not waiting at call activity task {task_id}")

        def resume() -> None:
            if catch_raised(task, raised_events, outcome):
                return  # an interrupting boundary caught it: SpiffWorkflow's boundary join cancels the call
            task.internal_data[CHILD_OUTCOME] = outcome
            task.data.update(raised_data(task, raised_events, outcome))
            task._set_state(TaskState.READY)
        # The resumed call leaves its wait because its child ended: no child is left behind by it.
        return self._advance(process, workflow, services, resume, waiting_before=waiting_calls(workflow) - {task_id})

    def return_task(self, process: ProcessDefinition, state: str, task_id: str,
                    services: ServiceHandler | None) -> Step:
        """Send an open task marked allowReturn back to the person step before it (returns.py)."""
        workflow = self._load(process, state)
        task = self._ready_user_task(workflow, task_id)
        if task.task_spec.bpmn_id not in process.returnable:
            raise NotReturnable(f"task {task.task_spec.bpmn_id} may not be returned (此步骤不允许退回)")
        previous = previous_person_task(task)
        if previous is None:
            raise NotReturnable(f"task {task.task_spec.bpmn_id} has no earlier step to return to (没有可退回的上一步)")
        return self._advance(process, workflow, services, lambda: reset_to(workflow, previous))

    def extend(self, process: ProcessDefinition, state: str, task_id: str, until: str) -> Step:
        """Move the deadline timers on an open task's boundary (date and duration timers) to `until`, an ISO
        8601 date-time, where that is later; nothing runs."""
        workflow = self._load(process, state)
        postpone_timers(self._ready_user_task(workflow, task_id), until)
        return self._step(process, workflow, [])

    def postpone(self, process: ProcessDefinition, state: str, element_id: str, seconds: float) -> Step:
        """Move the waiting timers of `element_id` (date and duration) `seconds` later; nothing runs."""
        workflow = self._load(process, state)
        postpone_waiting(workflow, element_id, seconds)
        return self._step(process, workflow, [])

    def timer_schedule(self, process: ProcessDefinition, now: datetime | None = None) -> TimerSchedule | None:
        """When the process's timer start event fires (its expression evaluated in the sandbox)."""
        if process.start_timer is None:
            return None
        kind, expression = process.start_timer
        try:
            value = str(self.environment.evaluate(expression, {}))
            return schedule_of(kind, value, now or datetime.now(UTC))
        except Exception as exc:  # a timer the designer wrote that does not evaluate or parse
            raise Incident(f"timer start event cannot be scheduled (定时启动无法计算): {exc}") from exc

    def select(self, expression: str, scopes: list[dict[str, Any]]) -> list[bool]:
        """Evaluate a filter (e.g. cadreflow:startFor) over many records at once, in the sandbox."""
        try:
            return [bool(self.environment.evaluate(expression, dict(scope))) for scope in scopes]
        except Exception as exc:
            raise Incident(f"filter expression failed (筛选表达式执行失败): {exc}") from exc

    def check_rule(self, expression: str, scope: dict[str, Any]) -> bool:
        """Evaluate a form rule (`x-validate`) over case data and submitted fields, in the sandbox."""
        return self.check_rules([expression], scope)[0]

    def check_rules(self, expressions: list[str], scope: dict[str, Any]) -> list[bool]:
        """Evaluate a form's rules over case data and submitted fields at once, in the sandbox."""
        try:
            return [bool(self.environment.evaluate(expression, dict(scope))) for expression in expressions]
        except Exception as exc:  # a rule that cannot be evaluated is a failed rule
            raise Incident(f"form rule cannot be evaluated: {exc}") from exc

    def cancel(self, process: ProcessDefinition, state: str) -> Step:
        """Cancel every open path of the case."""
        workflow = self._load(process, state)
        waiting_before = waiting_calls(workflow)
        workflow.cancel()
        return self._step(process, workflow, [], waiting_before=waiting_before)

    def inspect(self, process: ProcessDefinition, state: str) -> Step:
        """Read a case's current step without running anything."""
        return self._step(process, self._load(process, state), [])

    def diagram(self, process: ProcessDefinition, state: str) -> Diagram:
        """The elements a case has completed and those it is at now."""
        return diagram(self._load(process, state))

    def _engine(self, services: ServiceHandler | None) -> CaseScriptEngine:
        return CaseScriptEngine(self.environment, services)

    def _load(self, process: ProcessDefinition, state: str) -> BpmnWorkflow:
        """Restore a case with the sandbox attached: no path ever sees Spiff's default script engine."""
        try:
            workflow = serialization.load(state, process.spec, process.subprocess_specs)
        except (ValueError, KeyError, TypeError) as exc:
            raise EngineError(f"saved case state cannot be loaded: {exc}") from exc
        workflow.script_engine = self._engine(None)
        return workflow

    def _ready_user_task(self, workflow: BpmnWorkflow, task_id: str) -> Any:
        task = _task_by_id(workflow, task_id)
        if task is None or task.state != TaskState.READY or not task.task_spec.manual:
            raise TaskNotReady(f"task {task_id} is not open in this case")
        return task

    def _advance(self, process: ProcessDefinition, workflow: BpmnWorkflow, services: ServiceHandler | None,
                 action: Callable[[], None], opening: bool = False,
                 waiting_before: frozenset[str] | None = None) -> Step:
        """Run `action` and the engine after it; `waiting_before`: the calls waiting before the operation began
        (default: now), so the step names the calls it left."""
        waiting_before = waiting_calls(workflow) if waiting_before is None else waiting_before
        workflow.script_engine = self._engine(services)
        ready_before = {t.id for t in ready_user_tasks(workflow)}
        completed_before = {t.id for t in tasks_in(workflow, TaskState.COMPLETED)}
        event_subprocesses = EventSubprocesses(process)
        current: list[Any] = [None]
        incident = None
        try:
            action()
            self._run_engine(workflow, event_subprocesses, current, opening)
        except (NotWaiting, TaskNotReady, NotReturnable):
            raise
        except Exception as exc:  # any failure inside BPMN code is an incident
            failure = _incident(exc, current[0])
            if not errored(workflow):
                raise failure from exc  # nothing coherent to save: the caller keeps the old state
            service_failed = any(isinstance(task.task_spec, ServiceTask) for task in errored(workflow))
            incident = IncidentInfo(failure.message, failure.element_id, failure.line, service_failed)
        pending = workflow.get_events()
        outgoing = thrown(pending)  # for other cases: the service routes them
        events = events_since(workflow, completed_before, process.event_kinds)
        for task in ready_user_tasks(workflow):  # what their pre-scripts set
            merge_case_data(workflow, changed_data(task))
        events.extend(_escalations(workflow, ready_before))
        _require_loadable(workflow)
        if incident is None and not errored(workflow):
            self._guard_depth(workflow)  # before pruning, which would hide a loop that spun inside this step
            prune(workflow, bool(process.event_subprocesses))
        return self._step(process, workflow, events, incident, outgoing, waiting_before, raised(pending))

    def _run_engine(self, workflow: BpmnWorkflow, event_subprocesses: EventSubprocesses, current: list[Any],
                    opening: bool) -> None:
        """Run until a person or a clock is needed, acting on interrupting event subprocesses and ending
        those that never started once the process itself is done. When `opening` a case, a start event
        waiting for a timer, message or signal counts as fired: that trigger is what opens the case."""
        def will_complete(task: Any) -> None:
            current[0] = task

        while True:
            workflow.do_engine_steps(will_complete_task=will_complete,
                                     did_complete_task=event_subprocesses.interrupt_if_started)
            fired = _fire_start_events(workflow) if opening else False
            if not (event_subprocesses.close_idle(workflow) or fired):
                return

    def retry(self, process: ProcessDefinition, state: str, services: ServiceHandler | None) -> Step:
        """Run the failed elements of a case in an incident again (after a fix was deployed and migrated);
        a case held without a failed element (its step was stopped whole) takes its due timers again."""
        workflow = self._load(process, state)
        failed = errored(workflow)

        def reset() -> None:
            for task in failed:
                task._set_state(TaskState.READY)
            if not failed:
                workflow.refresh_timers()
        return self._advance(process, workflow, services, reset)

    def migrate(self, process: ProcessDefinition, state: str, target: ProcessDefinition,
                dry_run: bool) -> Migration:
        """Move a case to another version; refused when an open task would disappear."""
        workflow = self._load(process, state)
        waiting_before = waiting_calls(workflow)
        diff, sub_diffs = diff_workflow(serialization.registry(), workflow, target.spec, target.subprocess_specs)
        parts = [(workflow, diff, target.spec), *((sub, sub_diffs[sub_id], target.subprocess_specs.get(sub.spec.name))
                                                  for sub_id, sub in workflow.subprocesses.items())]
        diffs = [part_diff for _, part_diff, _ in parts if part_diff is not None]
        removed = tuple(sorted({t.task_spec.bpmn_id for d in diffs for t in d.removed if t.task_spec.bpmn_id}))
        changed = tuple(sorted({t.task_spec.bpmn_id for d in diffs for t in d.changed if t.task_spec.bpmn_id}))
        open_removed = sorted({name for part in parts for name in _open_removed(*part)})
        if open_removed:
            raise MigrationRefused(f"open elements would disappear: {', '.join(open_removed)} "
                                   "(迁移后进行中的任务将消失)")
        timers = kept_timers(workflow)
        for part, part_diff, spec in parts:  # an embedded subprocess's tasks move with their process
            if part_diff is not None:
                migrate_workflow(part_diff, part, spec)
        restore_timers(workflow, timers)  # the reset re-counted every deadline from now
        workflow.subprocess_specs = target.subprocess_specs
        lost = lost_elements(workflow, target)
        if lost:  # stored, the case would fail to load at every later step: refused whole, dry run included
            raise MigrationRefused(f"the case still holds elements the target version removed: {', '.join(lost)} "
                                   "(目标版本删除了本案仍保留的已办环节，迁移后案件将无法继续办理)")
        if dry_run:
            return Migration(removed, changed, None)
        return Migration(removed, changed, self._advance(target, workflow, None, lambda: None,
                                                         waiting_before=waiting_before))

    def _step(self, process: ProcessDefinition, workflow: BpmnWorkflow, events: list[EngineEvent],
              incident: IncidentInfo | None = None, outgoing: tuple[Thrown, ...] = (),
              waiting_before: frozenset[str] = frozenset(), raised_events: tuple[Thrown, ...] = ()) -> Step:
        self._guard_depth(workflow)
        completed = finished(workflow)
        calls = waiting_calls(workflow)
        try:
            state = serialization.dump(workflow)
        except (TypeError, ValueError) as exc:
            raise Incident(f"case data is not JSON: {exc}") from exc
        return Step(
            diagram=diagram(workflow),
            state=state, completed=completed,
            outcome=outcome(workflow, process.event_subprocesses) if completed else None,
            data=dict(workflow.data.get(CASE_DATA, {})),
            open_tasks=tuple(_open_task(workflow, t) for t in ready_user_tasks(workflow)),
            next_timer_due=next_timer_due(workflow), events=tuple(events),
            overdue_elements=tuple(e.detail["overdue"] for e in events if e.action == "escalation"),
            incident=incident,
            failed_elements=tuple(t.task_spec.bpmn_id or t.task_spec.name for t in errored(workflow)),
            waits=() if completed else waits(workflow), thrown=outgoing, raised=raised_events,
            calls=tuple(sorted(calls)), left_calls=tuple(sorted(waiting_before - calls)),
        )

    def _guard_depth(self, workflow: BpmnWorkflow) -> None:
        """SpiffWorkflow's task iterator stops at depth 1000 and would lose open tasks: stop well before."""
        depth = deepest(workflow)
        if depth > self.max_depth:
            raise LoopLimitExceeded(
                f"the case has looped too often (task depth {depth} > {self.max_depth}); "
                "step refused so the case is not corrupted (流程循环次数过多)")


def _open_removed(part: Any, diff: Any, spec: Any) -> set[str]:
    """The open elements of one (sub)process a migration to `spec` would drop (an open task's id is the contract)."""
    ids = {ts.bpmn_id for ts in spec.task_specs.values() if ts.bpmn_id} if spec is not None else set()
    return {t.task_spec.bpmn_id or t.task_spec.name for t in part.tasks.values()
            if t.state in OPEN_STATES and t.task_spec.bpmn_id not in ids
            and (t.task_spec.bpmn_id or diff is None or t in diff.removed)}


def _require_loadable(workflow: BpmnWorkflow) -> None:
    """The last check before a step is saved: case data a saved case could not be loaded with (or the API not
    answer) refuses the step, whatever path brought it in; scripts, tables and services are refused earlier."""
    try:
        require_storable(workflow.data.get(CASE_DATA, {}))
    except DataRefused as exc:
        raise Incident(f"the step left case data that cannot be stored (步骤产生的案件数据无法保存): {exc}") from exc


def _end_supervision(workflow: BpmnWorkflow, bpmn_id: str | None) -> None:
    """A supervision task (督办, `supervise_<task>`, opened by a non-interrupting deadline timer on <task>) ends
    with the task it urges: once <task> is completed nobody is left to urge (docs/processes.md)."""
    for waiting in tasks_in(workflow, TaskState.READY):
        if waiting.task_spec.manual and bpmn_id and supervised_element(waiting.task_spec.bpmn_id or "") == bpmn_id:
            waiting.cancel()


ONE_FIRING = {"cycles": 1, "duration": 0, "next": "2000-01-01T00:00:00+00:00"}  # a cycle's state: one firing, due


def _cycles_fire_once(workflow: BpmnWorkflow) -> None:
    """A cycle timer's start event fires once in the case that one firing opens. Left to SpiffWorkflow, the first
    engine step reads the cycle and fires it for every repetition already past (twice for a cycle begun before
    the case, which the scheduler's cases all are) and again at each later one: the flow ran as many times.
    Set before the first engine step reads it."""
    for task in workflow.tasks.values():
        if isinstance(task.task_spec, StartEvent) and \
                isinstance(task.task_spec.event_definition, CycleTimerEventDefinition):
            task._set_internal_data(opened=True, event_value=dict(ONE_FIRING))


def _fire_start_events(workflow: BpmnWorkflow) -> bool:
    """Fire the process's waiting start events once (a cycle's: its one firing, `_cycles_fire_once`)."""
    waiting = [t for t in workflow.tasks.values()
               if t.state == TaskState.WAITING and isinstance(t.task_spec, StartEvent)]
    for task in waiting:
        definition = task.task_spec.event_definition
        cycle = isinstance(definition, CycleTimerEventDefinition)
        if cycle and "opened" not in task.internal_data:
            task._set_internal_data(opened=True, event_value=dict(ONE_FIRING))
        else:
            task._set_internal_data(event_fired=True)
        if isinstance(definition, MessageEventDefinition) and definition.message_var:
            # its messageVariable gets the message's data, as at a catch event (SpiffWorkflow reads it from here:
            # without it a KeyError stopped the case at its start)
            task.internal_data[definition.name] = dict(workflow.data.get(CASE_DATA, {}))
        task.task_spec._update(task)
    return bool(waiting)


def _task_by_id(workflow: BpmnWorkflow, task_id: str) -> Any:
    try:
        return workflow.get_task_from_id(UUID(task_id))
    except (ValueError, TaskNotFoundException):
        return None


def _escalations(workflow: BpmnWorkflow, ready_before: set[UUID]) -> Iterator[EngineEvent]:
    for task in ready_user_tasks(workflow):
        supervised = supervised_element(task.task_spec.bpmn_id or "")
        if task.id not in ready_before and supervised:
            yield EngineEvent("escalation", task.task_spec.bpmn_id, task.task_spec.bpmn_name or "",
                              {"overdue": supervised})


def _open_task(workflow: BpmnWorkflow, task: Any) -> OpenTask:
    spec = task.task_spec
    return OpenTask(
        id=str(task.id), element_id=spec.bpmn_id, name=spec.bpmn_name or spec.bpmn_id,
        role=spec.lane, assignee=_assignee(workflow, task), due_at=due_at(task),
        supervises=supervised_element(spec.bpmn_id),
    )


def _assignee(workflow: BpmnWorkflow, task: Any) -> str | None:
    expression = (getattr(task.task_spec, "extensions", None) or {}).get("properties", {}).get("assignee")
    if not expression:
        return None
    try:
        value = workflow.script_engine.evaluate(task, expression)
    except Exception as exc:  # a failing assignee expression is the designer's incident, not a crash
        raise Incident(f"assignee expression failed (指派表达式执行失败): {exc}", task.task_spec.bpmn_id) from exc
    assignee = str(value) if value else None
    if assignee is not None and len(assignee) > MAX_ASSIGNEE:  # no username is this long: the diagram's fault
        raise Incident(f"assignee expression gave {len(assignee)} characters, more than a username's "
                       f"{MAX_ASSIGNEE} (指派表达式的结果过长，不是用户名)", task.task_spec.bpmn_id)
    return assignee


def _incident(exc: Exception, task: Any) -> Incident:
    failing = getattr(exc, "task", None) or task
    element_id = getattr(getattr(failing, "task_spec", None), "bpmn_id", None)
    line = getattr(exc, "line_number", None) or None
    return Incident(shortened(f"{type(exc).__name__}: {exc}"), element_id=element_id, line=line)
