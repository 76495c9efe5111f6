"""CadreFlow's own element behaviours on top of SpiffWorkflow, and the parser that builds them.

- A call activity does not embed its called process: the process (a deployed one, by key) runs
  as a linked child case of its own, for the same cadre, with its own tasks, history and
  version. The calling task waits until the service reports the child's end, then goes on with
  the child's outcome in `<call activity id>_outcome`.
- A signal end event throws its signal, and an event subprocess can start on an error or an
  escalation (SpiffWorkflow's parsers silently read those as plain events: the end threw nothing,
  the event subprocess started at once).
- A task without a type (`bpmn:task`) passes through at once, as a placeholder or milestone in
  the diagram; SpiffWorkflow would make it a form-less task for a person no lane names.
- A multi-instance completion condition sees what BPMN promises it: the output collection
  gathered so far and `nr_of_instances`, `nr_of_completed_instances`, `nr_of_active_instances`
  (SpiffWorkflow evaluates it on the finishing instance's own data only).
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.parser.event_parsers import (
    CANCEL_EVENT_XPATH,
    CONDITIONAL_EVENT_XPATH,
    ERROR_EVENT_XPATH,
    ESCALATION_EVENT_XPATH,
    MESSAGE_EVENT_XPATH,
    SIGNAL_EVENT_XPATH,
    TERMINATION_EVENT_XPATH,
    TIMER_EVENT_XPATH,
)
from SpiffWorkflow.bpmn.parser.util import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.defaults import EndEvent, StartEvent
from SpiffWorkflow.spiff.parser.event_parsers import SpiffEndEventParser, SpiffStartEventParser
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.serializer.config import SPIFF_CONFIG
from SpiffWorkflow.spiff.serializer.task_spec import SpiffBpmnTaskConverter, SpiffMultiInstanceConverter
from SpiffWorkflow.spiff.specs.defaults import (
    NoneTask,
    ParallelMultiInstanceTask,
    SequentialMultiInstanceTask,
)
from SpiffWorkflow.spiff.specs.spiff_task import SpiffBpmnTask
from SpiffWorkflow.util.task import TaskState

from .decisions import CaseDecisionEngine, engine_for

CALL_OPERATION = "cadreflow.call_activity"  # the service-handler call that opens a linked child case
CHILD_OUTCOME = "child_outcome"  # internal data a resumed call activity reads its child's outcome from


class LinkedCallActivity(SpiffBpmnTask):
    """A call activity whose called process runs as a linked child case."""

    def __init__(self, wf_spec: Any, bpmn_id: str, called_element: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.called_element = called_element

    def _run_hook(self, my_task: Any) -> bool | None:
        if CHILD_OUTCOME in my_task.internal_data:  # the child case has ended: go on
            my_task.data[f"{self.bpmn_id}_outcome"] = my_task.internal_data.pop(CHILD_OUTCOME)
            return True
        my_task.workflow.script_engine.start_call(my_task, self.called_element)
        return None  # STARTED: waits for the child case


class PassThroughTask(NoneTask):
    """A task without a type: the engine completes it at once."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class CaseEndEventParser(SpiffEndEventParser):
    """End events of every kind SpiffWorkflow knows, signal end events included."""

    def create_task(self) -> Any:
        event_definition = self.get_event_definition([
            MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, CANCEL_EVENT_XPATH, ERROR_EVENT_XPATH, ESCALATION_EVENT_XPATH,
            TERMINATION_EVENT_XPATH])
        task = self._create_task(event_definition)
        task.connect(self.spec.end)
        return task


class CaseStartEventParser(SpiffStartEventParser):
    """Start events of every kind, error and escalation starts (of event subprocesses) included."""

    def create_task(self) -> Any:
        event_definition = self.get_event_definition([
            MESSAGE_EVENT_XPATH, SIGNAL_EVENT_XPATH, TIMER_EVENT_XPATH, CONDITIONAL_EVENT_XPATH, ERROR_EVENT_XPATH,
            ESCALATION_EVENT_XPATH])
        task = self._create_task(event_definition)
        self.spec.start.connect(task)
        return task


class LinkedCallActivityParser(SpiffTaskParser):
    def create_task(self) -> LinkedCallActivity:
        extensions = self.parse_extensions()
        called = self.node.get("calledElement")
        if not called:
            raise ValidationException('a call activity needs a "calledElement" (调用活动缺少 calledElement)',
                                      node=self.node, file_name=self.filename)
        return LinkedCallActivity(self.spec, self.bpmn_id, called, prescript=extensions.get("preScript"),
                                  postscript=extensions.get("postScript"), **self.bpmn_attributes)


class LinkedCallActivityConverter(SpiffBpmnTaskConverter):
    def to_dict(self, spec: LinkedCallActivity) -> dict[str, Any]:
        return {**super().to_dict(spec), "called_element": spec.called_element}


class _CountingCompletion:
    """Evaluate a multi-instance completion condition over the gathered output and the counters."""

    def check_completion_condition(self, my_task: Any) -> Any:
        merged = my_task.internal_data.get("merged", [])
        condition = self.condition  # type: ignore[attr-defined]
        if not merged or condition is None:
            return None
        instances = list(self._instances(my_task))  # type: ignore[attr-defined]
        last = next(child for child in instances if str(child.id) == merged[-1])
        counters = {"nr_of_instances": self._expected(my_task, instances), "nr_of_completed_instances": len(merged),
                    "nr_of_active_instances": sum(not c.has_state(TaskState.FINISHED_MASK) for c in instances)}
        scope = {**last.data, **my_task.data, **counters}  # the task's data holds the output gathered so far
        return my_task.workflow.script_engine.environment.evaluate(condition, scope)

    def _expected(self, my_task: Any, instances: list[Any]) -> int:
        """All instances there will be: a sequential one creates them one at a time."""
        if not isinstance(self, SequentialMultiInstanceTask):
            return len(instances)
        internal = my_task.internal_data
        if "cardinality" in internal:
            return int(internal["cardinality"])
        return len(internal.get("merged", [])) + len(internal.get("remaining", [])) + \
            sum(not c.has_state(TaskState.FINISHED_MASK) for c in instances)


MAX_PARALLEL_INSTANCES = 200  # DeployLimits.max_instances' default, which bounds only a literal cardinality


class CaseParallelMultiInstance(_CountingCompletion, ParallelMultiInstanceTask):
    """A parallel multi-instance task whose instances, counted at run time (a cardinality computed from case data,
    a collection in it), stay within MAX_PARALLEL_INSTANCES: one step opened 5,000 person tasks otherwise, each
    announced to every user of the lane's role. Past it, an incident at the task."""

    def create_child(self, my_task: Any, item: Any, key_or_index: Any = None) -> None:
        if sum(1 for _ in self._instances(my_task)) >= MAX_PARALLEL_INSTANCES:
            raise WorkflowTaskException(f"more than {MAX_PARALLEL_INSTANCES} parallel instances "
                                        f"(多实例并行数量超过 {MAX_PARALLEL_INSTANCES})", task=my_task)
        super().create_child(my_task, item, key_or_index)


class CaseSequentialMultiInstance(_CountingCompletion, SequentialMultiInstanceTask):
    pass


def _with_our_multi_instance(parser_class: type) -> type:
    return type(f"Case{parser_class.__name__}", (parser_class,), {
        "PARALLEL_MI_CLASS": CaseParallelMultiInstance, "SEQUENTIAL_MI_CLASS": CaseSequentialMultiInstance})


class CaseParser(SpiffBpmnParser):
    """SpiffWorkflow's parser with CadreFlow's element behaviours."""

    def get_engine(self, decision_ref: str, node: Any) -> CaseDecisionEngine:
        """Decision tables evaluated by DMN 1.3's hit policies (decisions.py)."""
        table = super().get_engine(decision_ref, node).decision_table
        dmn = self.dmn_parsers[decision_ref]
        # Compared, never put into the XPath: an id is the designer's text, and one closing the literal would add
        # an expression of its own (nested counts over the document hold the parse for hours).
        decision = next((el for el in dmn.node.xpath(".//dmn:decision", namespaces=dmn.nsmap)
                         if el.get("id") == decision_ref), None)
        element = decision.find("dmn:decisionTable", dmn.nsmap) if decision is not None else None
        return engine_for(table, decision_ref, element, dmn.nsmap)

    OVERRIDE_PARSER_CLASSES = {  # noqa: RUF012 - extends the library's class attribute
        tag: (_with_our_multi_instance(parser), spec) for tag, (parser, spec) in {
            **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
            full_tag("callActivity"): (LinkedCallActivityParser, LinkedCallActivity),
            full_tag("task"): (SpiffTaskParser, PassThroughTask),
            full_tag("endEvent"): (CaseEndEventParser, EndEvent),
            full_tag("startEvent"): (CaseStartEventParser, StartEvent),
        }.items()}


def spec_config() -> dict[Any, Any]:
    """The serializer configuration for SpiffWorkflow's specs and ours."""
    return {**SPIFF_CONFIG, LinkedCallActivity: LinkedCallActivityConverter, PassThroughTask: SpiffBpmnTaskConverter,
            CaseParallelMultiInstance: SpiffMultiInstanceConverter,
            CaseSequentialMultiInstance: SpiffMultiInstanceConverter}
