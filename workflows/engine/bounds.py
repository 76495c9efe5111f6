"""Size bounds on an uploaded diagram, checked on the XML before SpiffWorkflow builds anything.

A diagram that is too wide, too deep or too large would hold a step (and, on SQLite, every
writer) for minutes however well its code is confined; such a diagram is refused at deploy,
each problem naming the limit it passes.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from lxml import etree

from .errors import Problem
from .schemas import expanded_size

_FLOW_NODES = frozenset({
    "task", "userTask", "serviceTask", "scriptTask", "businessRuleTask", "manualTask", "sendTask", "receiveTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway",
    "inclusiveGateway", "eventBasedGateway", "complexGateway"})
_CONTAINERS = frozenset({"subProcess", "transaction", "adHocSubProcess"})
_CODE = frozenset({"script", "conditionExpression", "preScript", "postScript", "loopCardinality",
                   "completionCondition", "timeDuration", "timeDate", "timeCycle",
                   # events' payloads and correlations (spiffworkflow:expression: a processVariableCorrelation's)
                   "messagePayload", "payloadExpression", "messagePath", "expression"})


@dataclass(frozen=True)
class DeployLimits:
    """How large a deployed process may be (settings: DEPLOY_LIMITS)."""

    max_flow_nodes: int = 500
    max_sequence_flows: int = 1000
    max_fan_out: int = 50  # outgoing flows of one element: the widest parallel split
    max_nesting: int = 5  # subprocesses inside subprocesses
    max_code_chars: int = 20_000  # one script, condition or DMN entry
    max_instances: int = 200  # a multi-instance task's literal cardinality
    max_dmn_rules: int = 500
    max_form_nodes: int = 1000  # objects and arrays of one form schema with every $ref expanded in place
    max_form_check_seconds: float = 5.0  # checking every form schema of a process against the metaschema


def bound_problems(root: etree._Element, dmn_roots: Mapping[str, etree._Element],
                   limits: DeployLimits) -> list[Problem]:
    """Every limit the diagram and its decision tables pass."""
    elements = [el for el in root.iter() if isinstance(el.tag, str)]
    names = Counter(etree.QName(el).localname for el in elements)
    problems = []
    nodes = sum(count for name, count in names.items() if name in _FLOW_NODES)
    if nodes > limits.max_flow_nodes:
        problems.append(_too_many(f"{nodes} flow elements", limits.max_flow_nodes, "max_flow_nodes", "流程元素过多"))
    if names["sequenceFlow"] > limits.max_sequence_flows:
        problems.append(_too_many(f"{names['sequenceFlow']} sequence flows", limits.max_sequence_flows,
                                  "max_sequence_flows", "连线过多"))
    problems += _fan_out(elements, limits) + _nesting(elements, limits) + _code_sizes(elements, limits)
    problems += _cardinalities(elements, limits) + _event_names(elements) + _stored_lengths(elements)
    problems += _form_sizes(elements, limits)
    for name, dmn in dmn_roots.items():
        problems += _dmn_bounds(name, dmn, limits)
    return problems


def _dmn_bounds(name: str, dmn: etree._Element, limits: DeployLimits) -> list[Problem]:
    elements = [el for el in dmn.iter() if isinstance(el.tag, str)]
    rules = sum(1 for el in elements if etree.QName(el).localname == "rule")
    problems = [_too_many(f"{name}: {rules} rules", limits.max_dmn_rules, "max_dmn_rules", "决策规则过多")
                ] if rules > limits.max_dmn_rules else []
    return problems + [_too_many(f"{name}: an entry of {len(el.text)} characters", limits.max_code_chars,
                                 "max_code_chars", "决策表条目过长", _owner_id(el), el.sourceline)
                       for el in elements if etree.QName(el).localname == "text" and el.text
                       and len(el.text) > limits.max_code_chars]


def _too_many(what: str, limit: int, setting: str, chinese: str, element_id: str | None = None,
              line: int | None = None) -> Problem:
    return Problem.of(f"{what}; the limit is {limit} (DEPLOY_LIMITS.{setting})", f"{chinese}，上限 {limit}",
                      element_id, line)


def _fan_out(elements: Iterable[etree._Element], limits: DeployLimits) -> list[Problem]:
    outgoing = Counter(el.get("sourceRef") for el in elements if etree.QName(el).localname == "sequenceFlow")
    return [_too_many(f"{source} has {count} outgoing flows", limits.max_fan_out, "max_fan_out", "分支过多",
                      source) for source, count in outgoing.items() if count > limits.max_fan_out]


def _nesting(elements: Iterable[etree._Element], limits: DeployLimits) -> list[Problem]:
    problems = []
    for el in elements:
        if etree.QName(el).localname in _CONTAINERS:
            depth = sum(1 for ancestor in el.iterancestors() if etree.QName(ancestor).localname in _CONTAINERS) + 1
            if depth > limits.max_nesting:
                problems.append(_too_many(f"subprocess nested {depth} deep", limits.max_nesting, "max_nesting",
                                          "子流程嵌套过深", el.get("id"), el.sourceline))
    return problems


def _code_sizes(elements: Iterable[etree._Element], limits: DeployLimits) -> list[Problem]:
    return [_too_many(f"code of {len(el.text)} characters", limits.max_code_chars, "max_code_chars", "代码过长",
                      _owner_id(el), el.sourceline)
            for el in elements if etree.QName(el).localname in _CODE and el.text
            and len(el.text) > limits.max_code_chars]


def _cardinalities(elements: Iterable[etree._Element], limits: DeployLimits) -> list[Problem]:
    problems = []
    for el in elements:
        text = (el.text or "").strip()
        # str.isdigit holds for "²" and for thousands of digits too, which int refuses: ASCII, and a count's length.
        many = text.isascii() and text.isdigit() and (len(text) > 9 or int(text) > limits.max_instances)
        if etree.QName(el).localname == "loopCardinality" and many:
            shown = text if len(text) <= 12 else f"{text[:12]}…"
            problems.append(_too_many(f"{shown} instances", limits.max_instances, "max_instances", "多实例数量过多",
                                      _owner_id(el), el.sourceline))
    return problems


def _form_sizes(elements: Iterable[etree._Element], limits: DeployLimits) -> list[Problem]:
    """Forms whose `$ref`s expand past the limit: validating a start or a completion walks the expansion,
    inside the step's write transaction. A form that does not parse is left to the compiler to report."""
    problems = []
    for el in elements:
        if etree.QName(el).localname != "formSchema" or not el.text:
            continue
        try:
            schema = json.loads(el.text)
        except (ValueError, RecursionError):
            continue
        if expanded_size(schema, limits.max_form_nodes) > limits.max_form_nodes:
            problems.append(_too_many(f"a form schema of more than {limits.max_form_nodes} nodes once its $refs "
                                      "are expanded", limits.max_form_nodes, "max_form_nodes", "表单结构展开后过大",
                                      _owner_id(el), el.sourceline))
    return problems


MAX_EVENT_NAME = 200  # characters of a message's or signal's name, as the waits and the outbox store it
# An error's or escalation's code: what a called case's end carries to its caller (workflows/engine/called.py).
CODES = {"error": "errorCode", "escalation": "escalationCode"}


def _event_names(elements: Iterable[etree._Element]) -> list[Problem]:
    return [Problem.of(f"{etree.QName(el).localname} name of {len(el.get('name', ''))} characters; the limit is "
                       f"{MAX_EVENT_NAME}", f"消息或信号名称过长，上限 {MAX_EVENT_NAME}", el.get("id"), el.sourceline)
            for el in elements if etree.QName(el).localname in ("message", "signal")
            and len(el.get("name", "")) > MAX_EVENT_NAME] + _event_codes(elements)


def _event_codes(elements: Iterable[etree._Element]) -> list[Problem]:
    problems = []
    for el in elements:
        attribute = CODES.get(etree.QName(el).localname)
        code = el.get(attribute, "") if attribute else ""
        if len(code) > MAX_EVENT_NAME:
            problems.append(Problem.of(f"{attribute} of {len(code)} characters; the limit is {MAX_EVENT_NAME}",
                                       f"错误或升级代码过长，上限 {MAX_EVENT_NAME}", el.get("id"), el.sourceline))
    return problems


# What a case stores of its diagram, and the widths of the columns it is stored in (service/db/models.py
# declares them with these): a longer value would be refused by PostgreSQL at the first step that stores it
# (SQLite does not check), so it is refused at deploy instead, or as the diagram's incident at run time.
MAX_ELEMENT_ID = 100  # a flow element's or process's id: a task's element_id, a history entry's task, process keys
MAX_ELEMENT_NAME = 200  # a flow element's name (a task's name), and the process's name
MAX_OUTCOME = 40  # what follows `end_` in an end event's id: the case's outcome
MAX_ROLE = 40  # a lane's name: the role of its tasks
MAX_ASSIGNEE = 100  # what a task's assignee expression gives (usernames take at most 32)
OUTCOME_PREFIX = "end_"  # an end event whose id starts so ends the case with the rest of its id as outcome


def _stored_lengths(elements: Iterable[etree._Element]) -> list[Problem]:
    problems = []
    for el in elements:
        kind, element_id, name = etree.QName(el).localname, el.get("id") or "", el.get("name") or ""
        if kind not in _FLOW_NODES and kind != "process":
            continue
        if len(element_id) > MAX_ELEMENT_ID:
            problems.append(Problem.of(f"an id of {len(element_id)} characters; the limit is {MAX_ELEMENT_ID}",
                                       f"元素标识过长，上限 {MAX_ELEMENT_ID}", element_id[:MAX_ELEMENT_ID],
                                       el.sourceline))
        if len(name) > MAX_ELEMENT_NAME:
            problems.append(Problem.of(f"{kind} name of {len(name)} characters; the limit is {MAX_ELEMENT_NAME}",
                                       f"名称过长，上限 {MAX_ELEMENT_NAME}", element_id or None, el.sourceline))
        outcome = element_id[len(OUTCOME_PREFIX):] if element_id.startswith(OUTCOME_PREFIX) else ""
        if kind == "endEvent" and len(outcome) > MAX_OUTCOME:
            problems.append(Problem.of(f"the outcome '{outcome[:50]}' has {len(outcome)} characters; the limit "
                                       f"is {MAX_OUTCOME}", f"结局名称过长，上限 {MAX_OUTCOME}", element_id,
                                       el.sourceline))
    return problems


def _owner_id(element: etree._Element) -> str | None:
    while element is not None and not element.get("id"):
        element = element.getparent()
    return element.get("id") if element is not None else None
