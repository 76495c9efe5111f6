"""DMN decision tables with the hit policies and aggregations of DMN 1.3.

SpiffWorkflow 3.2 knows UNIQUE (silently taking the first of several matches) and COLLECT (always a
list, ignoring the aggregation); every other policy acted as FIRST, and no match left the outputs
unset. Here:

- UNIQUE: exactly one rule may match; several is an incident naming the decision and the rules.
- ANY: several rules may match if they agree; disagreeing outputs are an incident.
- FIRST: the first matching rule in table order. PRIORITY: the matching rule whose outputs rank
  highest in the outputs' `outputValues` lists.
- RULE ORDER / OUTPUT ORDER: every match, as lists, in rule order / by output priority.
- COLLECT: every match as lists, or one value with the aggregation SUM, MIN, MAX or COUNT (the
  list functions sum, min, max, count of DMN 1.3's FEEL over the matched outputs, nulls left out: a sum
  of anything but numbers, or a min or max of numbers and texts together, is null, as FEEL answers).
- No match: every output is set, to null (to an empty list for list policies, 0 for COUNT), so a
  gateway after the table can test it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.dmn.engine.DMNEngine import DMNEngine

from .errors import ScriptRefused

LIST_POLICIES = ("COLLECT", "RULE ORDER", "OUTPUT ORDER")
SINGLE_POLICIES = ("UNIQUE", "ANY", "FIRST", "PRIORITY")


def _kind(values: list[Any]) -> str | None:
    """What FEEL's list functions see in `values`: all "number", all "string", or None (empty, or mixed)."""
    kinds = {"string" if isinstance(v, str) else
             "number" if isinstance(v, int | float) and not isinstance(v, bool) else None for v in values}
    return kinds.pop() if len(kinds) == 1 else None


def _feel(function: Callable[[list[Any]], Any], kinds: tuple[str, ...]) -> Callable[[list[Any]], Any]:
    """FEEL's sum, min or max over the matched outputs, nulls left out: null for none left, or for values it cannot
    take (sum: numbers only; min, max: numbers or texts, not both), where Python would raise into an incident."""
    def aggregate(values: list[Any]) -> Any:
        present = [v for v in values if v is not None]
        return function(present) if _kind(present) in kinds else None
    return aggregate


AGGREGATIONS: dict[str, Callable[[list[Any]], Any]] = {
    "SUM": _feel(sum, ("number",)),
    "MIN": _feel(min, ("number", "string")),
    "MAX": _feel(max, ("number", "string")),
    "COUNT": len,
}


class CaseDecisionEngine(DMNEngine):
    """A decision table evaluated as DMN 1.3 says, by hit policy and aggregation."""

    def __init__(self, decision_table: Any, decision_id: str, aggregation: str | None,
                 priorities: dict[str, list[Any]]) -> None:
        super().__init__(decision_table)
        self.decision_id = decision_id
        self.aggregation = aggregation
        self.priorities = priorities  # output name -> its outputValues, highest priority first

    @property
    def policy(self) -> str:
        return str(self.decision_table.hit_policy).upper()

    def decide(self, task: Any) -> list[Any]:
        """Every matching rule, in table order (DMNEngine stops at the first for UNIQUE)."""
        check = self._DMNEngine__check_rule  # the library's own rule test (name-mangled)
        return [rule for rule in self.decision_table.rules if check(rule, task)]

    def result(self, task: Any) -> dict[str, Any]:
        """The outputs, refused (an incident at the task) when a script's data would be: they go into case data."""
        from .sandbox import require_json  # here: sandbox imports specs, which imports this module

        outputs = self._outputs(task)
        try:
            require_json(outputs)
        except ScriptRefused as exc:
            raise WorkflowTaskException(f"decision '{self.decision_id}' gave a result that cannot be stored: {exc} "
                                        "(决策表结果无法保存)", task=task) from None
        return outputs

    def _outputs(self, task: Any) -> dict[str, Any]:
        matched = self.decide(task)
        outputs = [rule.output_as_dict(task) for rule in matched]
        if self.policy in LIST_POLICIES:
            return self._lists(matched, outputs)
        if not matched:
            return dict.fromkeys(self._names())
        if self.policy == "UNIQUE" and len(matched) > 1:
            self._fail(task, f"hit policy UNIQUE, but rules {_rows(matched)} all match")
        if self.policy == "ANY" and any(output != outputs[0] for output in outputs):
            self._fail(task, f"hit policy ANY, but matching rules {_rows(matched)} disagree")
        return dict(outputs[self._best(outputs)] if self.policy == "PRIORITY" else outputs[0])

    def _lists(self, matched: list[Any], outputs: list[dict[str, Any]]) -> dict[str, Any]:
        if self.policy == "OUTPUT ORDER":
            outputs = sorted(outputs, key=self._rank)
        gathered = {name: [output.get(name) for output in outputs] for name in self._names()}
        if self.policy == "COLLECT" and self.aggregation in AGGREGATIONS:
            return {name: AGGREGATIONS[self.aggregation](values) for name, values in gathered.items()}
        return gathered

    def _best(self, outputs: list[dict[str, Any]]) -> int:
        return min(range(len(outputs)), key=lambda i: self._rank(outputs[i]))

    def _rank(self, output: dict[str, Any]) -> tuple[int, ...]:
        """Lower is higher priority: each output's position in its outputValues list."""
        rank = []
        for name, values in self.priorities.items():
            value = output.get(name)
            rank.append(values.index(value) if value in values else len(values))
        return tuple(rank)

    def _names(self) -> list[str]:
        return [output.name or output.label for output in self.decision_table.outputs]

    def _fail(self, task: Any, reason: str) -> None:
        raise WorkflowTaskException(f"decision '{self.decision_id}': {reason} (决策表命中规则冲突)", task=task)


def _rows(rules: list[Any]) -> str:
    return ", ".join(str(rule.row_number) for rule in rules)


def engine_for(decision_table: Any, decision_id: str, table_element: etree._Element | None,
               nsmap: dict[str, str]) -> CaseDecisionEngine:
    """Build the engine of a parsed table, reading what SpiffWorkflow's parser leaves out."""
    aggregation, priorities = None, {}
    if table_element is not None:
        aggregation = (table_element.get("aggregation") or "").upper() or None
        for output in table_element.iterfind("dmn:output", nsmap):
            text = output.findtext("dmn:outputValues/dmn:text", namespaces=nsmap)
            if text:
                priorities[output.get("name") or output.get("label") or ""] = _literal_list(text)
    return CaseDecisionEngine(decision_table, decision_id, aggregation, priorities)


def _literal_list(text: str) -> list[Any]:
    try:
        value = ast.literal_eval(f"[{text}]")
    except (ValueError, SyntaxError):
        return []
    return list(value)
