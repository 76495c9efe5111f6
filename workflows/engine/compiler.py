"""Turn uploaded BPMN/DMN bytes into a checked, runnable process definition.

Everything a diagram carries that will later run (scripts, conditions, timers, DMN entries,
service parameters, assignee expressions) is compiled here, so a designer learns about every
problem at deploy time with its element id and line, not from a broken case weeks later.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask, ServiceTask, UserTask

from .errors import DeploymentError, Problem, ScriptRefused
from .sandbox import compile_expression, compile_script

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
_FORBIDDEN_MARKUP = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_SUPERVISE_PREFIX = "supervise_"
OUTCOME_PREFIX = "end_"


@dataclass(frozen=True)
class ProcessDefinition:
    """A deployed, checked process: its forms and metadata, plus the parsed spec (opaque)."""

    key: str
    name: str
    content_hash: str
    start_form: dict[str, Any]
    forms: dict[str, dict[str, Any]]
    task_names: dict[str, str]
    warnings: tuple[Problem, ...]
    event_kinds: dict[str, str]  # catch event id -> "timer" | "message"
    spec: Any = field(repr=False, compare=False)
    subprocess_specs: Any = field(repr=False, compare=False)


def content_hash(bpmn: bytes, dmns: Mapping[str, bytes]) -> str:
    """Hash a process's files so identical uploads are recognised."""
    digest = hashlib.sha256(bpmn)
    for name in sorted(dmns):
        digest.update(name.encode() + b"\0" + dmns[name])
    return digest.hexdigest()


def parse_xml(content: bytes, filename: str) -> etree._Element:
    """Parse untrusted XML: UTF-8 only, no DOCTYPE, no entities, no network, no huge trees."""
    try:
        content.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DeploymentError([Problem(f"{filename}: files must be UTF-8 (文件必须为 UTF-8 编码)")]) from exc
    if _FORBIDDEN_MARKUP.search(content):
        raise DeploymentError([Problem(f"{filename}: DOCTYPE and entity declarations are not allowed "
                                       "(不允许 DOCTYPE 与实体声明)", line=_line_of(content, b"<!"))])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, dtd_validation=False)
    try:
        root = etree.fromstring(content, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        message, line = getattr(exc, "msg", str(exc)), getattr(exc, "lineno", None)
        raise DeploymentError([Problem(f"{filename}: XML syntax error (XML 语法错误): {message}", line=line)]) from exc
    if root.getroottree().docinfo.doctype:
        raise DeploymentError([Problem(f"{filename}: DOCTYPE is not allowed (不允许 DOCTYPE)")])
    return root


def _line_of(content: bytes, needle: bytes) -> int | None:
    index = content.upper().find(needle.upper())
    return content.count(b"\n", 0, index) + 1 if index >= 0 else None


def compile_process(key: str, bpmn: bytes, dmns: Mapping[str, bytes], roles: Iterable[str]) -> ProcessDefinition:
    """Check and parse one process; raise DeploymentError listing every problem."""
    root = parse_xml(bpmn, f"{key}.bpmn")
    dmn_roots = {name: parse_xml(content, name) for name, content in dmns.items()}
    problems = list(_xsd_problems(root))
    if problems:
        raise DeploymentError(problems)
    missing = _missing_decisions(root, dmn_roots)
    dmn_roots |= {f"missing-{name}.dmn": _placeholder_dmn(name) for name, _ in missing}
    spec, subprocess_specs = _parse_spec(key, root, dmn_roots)
    lines = {el.get("id"): el.sourceline for el in root.iter() if el.get("id")}
    forms, start_form, form_problems = _collect_forms(root)
    problems = [problem for _, problem in missing] + form_problems
    problems += list(_spec_problems(spec, set(roles), forms, lines))
    problems += _outcome_problems(spec, lines) + _flow_warnings(spec, lines) + _unreachable(root, key)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DeploymentError(errors)
    names = {ts.bpmn_id: ts.bpmn_name or ts.bpmn_id for ts in _user_tasks(spec)}
    return ProcessDefinition(
        key=key, name=_process_name(root, key), content_hash=content_hash(bpmn, dmns),
        start_form=start_form, forms=forms, task_names=names, event_kinds=_event_kinds(root),
        warnings=tuple(p for p in problems if p.severity == "warning"),
        spec=spec, subprocess_specs=subprocess_specs,
    )


def _event_kinds(root: etree._Element) -> dict[str, str]:
    kinds = {}
    for tag in ("intermediateCatchEvent", "boundaryEvent", "startEvent"):
        for event in root.iterfind(f".//bpmn:{tag}", NS):
            if event.find("bpmn:timerEventDefinition", NS) is not None:
                kinds[event.get("id")] = "timer"
            elif event.find("bpmn:messageEventDefinition", NS) is not None:
                kinds[event.get("id")] = "message"
    return kinds


def _xsd_problems(root: etree._Element) -> Iterator[Problem]:
    schema = VALIDATOR.validator
    if schema.validate(root):
        return
    for error in schema.error_log:
        yield Problem(f"不符合 BPMN 规范 (XSD): {error.message}", _element_at(root, error.line), error.line)


def _element_at(root: etree._Element, line: int) -> str | None:
    """The id of the element a line belongs to (the nearest ancestor with an id)."""
    element = next((el for el in root.iter() if el.sourceline == line), None)
    while element is not None and not element.get("id"):
        element = element.getparent()
    return element.get("id") if element is not None else None


def _parse_spec(key: str, root: etree._Element, dmn_roots: Mapping[str, etree._Element]) -> tuple[Any, Any]:
    parser = SpiffBpmnParser()
    try:
        for name, dmn in dmn_roots.items():
            parser.add_dmn_xml(dmn, filename=name)
        parser.add_bpmn_xml(root, filename=f"{key}.bpmn")
        if key not in parser.get_process_ids():
            found = ", ".join(parser.get_process_ids()) or "none"
            raise DeploymentError([Problem(f"no executable process with id '{key}' (found: {found}) "
                                           f"(未找到流程 {key})")])
        return parser.get_spec(key), parser.get_subprocess_specs(key)
    except ValidationException as exc:
        line = getattr(exc, "line_number", None)
        raise DeploymentError([Problem(f"{exc} (流程定义校验失败)", element_id=getattr(exc, "id", None) or None,
                                       line=line if isinstance(line, int) and line > 0 else None)]) from exc
    except (KeyError, ValueError, AttributeError, TypeError, IndexError, etree.LxmlError) as exc:
        raise DeploymentError([Problem(f"cannot parse the diagram (无法解析流程图): {exc!r}")]) from exc


def _missing_decisions(root: etree._Element, dmn_roots: Mapping[str, etree._Element]) -> list[tuple[str, Problem]]:
    defined = {decision for dmn in dmn_roots.values() for decision in _decisions_in(dmn)}
    missing = []
    for called in root.iterfind(".//spiffworkflow:calledDecisionId", NS):
        name = (called.text or "").strip()
        if name not in defined:
            task = called.getparent().getparent()
            missing.append((name, Problem(f"DMN decision '{name}' is missing; upload its .dmn file "
                                          f"(缺少 DMN 决策表 {name})", task.get("id"), task.sourceline)))
    return missing


def _placeholder_dmn(decision_id: str) -> etree._Element:
    """An empty decision table, so a diagram missing one still gets all its other checks."""
    dmn_ns = "https://www.omg.org/spec/DMN/20191111/MODEL/"
    dmn = etree.Element(f"{{{dmn_ns}}}definitions", nsmap={None: dmn_ns}, id="placeholder",
                        name="placeholder", namespace="cadreflow")
    decision = etree.SubElement(dmn, f"{{{dmn_ns}}}decision", id=decision_id, name=decision_id)
    table = etree.SubElement(decision, f"{{{dmn_ns}}}decisionTable", id=f"{decision_id}_table")
    etree.SubElement(table, f"{{{dmn_ns}}}output", id=f"{decision_id}_output", name="placeholder", typeRef="string")
    return dmn


def _process_name(root: etree._Element, key: str) -> str:
    for process in root.iterfind("bpmn:process", NS):
        if process.get("id") == key:
            return process.get("name") or key
    return key


def _collect_forms(root: etree._Element) -> tuple[dict[str, dict], dict, list[Problem]]:
    forms: dict[str, dict] = {}
    start_form: dict = {"type": "object"}
    problems: list[Problem] = []
    for element in root.iterfind(".//bpmn:extensionElements/spiffworkflow:formSchema", NS):
        owner = element.getparent().getparent()
        owner_id = owner.get("id")
        schema = _load_schema(element.text or "", owner_id, element.sourceline, problems)
        if schema is None:
            continue
        if etree.QName(owner).localname == "startEvent":
            start_form = schema
        else:
            forms[owner_id] = schema
    return forms, start_form, problems


def _load_schema(text: str, element_id: str, line: int, problems: list[Problem]) -> dict | None:
    try:
        schema = json.loads(text)
        Draft202012Validator.check_schema(schema)
    except (ValueError, SchemaError, RecursionError) as exc:
        message = getattr(exc, "message", None) or type(exc).__name__
        problems.append(Problem(f"invalid form schema (表单结构无效): {message}", element_id, line))
        return None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        problems.append(Problem("form schema must be an object schema (表单必须是对象结构)", element_id, line))
        return None
    for rule in schema.get("x-validate", []):
        problems.extend(_rule_problems(rule, element_id, line))
    return schema


def _rule_problems(rule: Any, element_id: str, line: int) -> list[Problem]:
    """An `x-validate` rule is {"expr", "field", "message"}; its expression must compile."""
    if not isinstance(rule, dict) or not {"expr", "field", "message"} <= set(rule):
        return [Problem("x-validate rules need expr, field and message (表单规则缺少字段)", element_id, line)]
    if not isinstance(rule["expr"], str) or not rule["expr"].strip():
        return [Problem("x-validate rule has no expression (表单规则缺少表达式)", element_id, line)]
    try:
        compile_expression(rule["expr"])
    except ScriptRefused as exc:
        return [Problem(f"x-validate rule does not compile (表单规则无法编译): {exc}", element_id, line)]
    return []


def _user_tasks(spec: Any) -> list[Any]:
    return [ts for ts in spec.task_specs.values() if isinstance(ts, UserTask)]


def _spec_problems(spec: Any, roles: set[str], forms: dict, lines: dict) -> Iterator[Problem]:
    for ts in spec.task_specs.values():
        if ts.bpmn_id is None:
            continue
        line = lines.get(ts.bpmn_id)
        if isinstance(ts, UserTask):
            yield from _user_task_problems(ts, roles, forms, line)
        for label, source, compile_ in _code_of(ts):
            if not isinstance(source, str) or not source.strip():
                yield Problem(f"{label} is empty (代码为空)", ts.bpmn_id, line)
                continue
            try:
                compile_(source)
            except (ScriptRefused, SyntaxError) as exc:
                yield Problem(f"{label} does not compile (代码无法编译): {exc}", ts.bpmn_id, line)


def _user_task_problems(ts: Any, roles: set[str], forms: dict, line: int | None) -> Iterator[Problem]:
    if not ts.lane:
        yield Problem("user task is in no lane (用户任务不在任何泳道中)", ts.bpmn_id, line)
    elif ts.lane not in roles:
        yield Problem(f"lane '{ts.lane}' is not a known role (泳道不是已知角色)", ts.bpmn_id, line)
    if ts.bpmn_id not in forms:
        yield Problem("user task has no form schema (用户任务缺少表单)", ts.bpmn_id, line)


def _code_of(ts: Any) -> Iterator[tuple[str, str, Any]]:
    """Yield (label, source, compiler) for every piece of code an element runs."""
    for condition, _target in getattr(ts, "cond_task_specs", None) or []:
        if condition is not None:
            yield "condition", condition.args[0], compile_expression
    for label in ("script", "prescript", "postscript"):
        source = getattr(ts, label, None)
        if source:
            yield label, source, compile_script
    yield from _timer_code(getattr(ts, "event_definition", None))
    if isinstance(ts, ServiceTask):
        for name, param in ts.operation_params.items():
            yield f"service parameter '{name}'", param["value"], compile_expression
    assignee = (ts.extensions or {}).get("properties", {}).get("assignee") if hasattr(ts, "extensions") else None
    if assignee:
        yield "assignee", assignee, compile_expression
    if isinstance(ts, BusinessRuleTask):
        yield from _dmn_code(ts)


def _timer_code(definition: Any) -> Iterator[tuple[str, str, Any]]:
    if isinstance(definition, TimerEventDefinition):
        yield "timer", definition.expression, compile_expression
    elif isinstance(definition, MultipleEventDefinition):
        for inner in definition.event_definitions:
            yield from _timer_code(inner)


def _dmn_code(ts: Any) -> Iterator[tuple[str, str, Any]]:
    table = ts.dmnEngine.decision_table
    for column in table.inputs:
        if column.expression:
            yield f"DMN input '{column.label or column.id}'", column.expression, compile_expression
    for rule in table.rules:
        for entry in rule.inputEntries:
            for lhs in entry.lhs:
                if lhs and lhs.strip() not in ("-", ""):
                    yield f"DMN rule {rule.row_number} input", _dmn_test(lhs), compile_expression
        for entry in rule.outputEntries:
            if entry.text:
                yield f"DMN rule {rule.row_number} output", entry.text, compile_expression


def _dmn_test(lhs: str) -> str:
    """Mirror how the DMN engine turns an input entry into an expression."""
    lhs = lhs.replace("?", "dmninputexpr")
    try:
        compile(lhs, "<dmn>", "eval")
        return lhs
    except SyntaxError:
        return f"dmninputexpr {lhs}"


def _outcome_problems(spec: Any, lines: dict) -> list[Problem]:
    ends = [ts for ts in spec.task_specs.values() if isinstance(ts, EndEvent) and ts.bpmn_id]
    if any(ts.bpmn_id.startswith(OUTCOME_PREFIX) for ts in ends):
        return []
    return [Problem("no end event named end_<outcome>; cases will finish without an outcome "
                    "(没有 end_<结果> 结束事件)", severity="warning")]


_FLOW_NODES = {"task", "userTask", "serviceTask", "scriptTask", "businessRuleTask", "manualTask", "sendTask",
               "receiveTask", "callActivity", "subProcess", "startEvent", "endEvent", "intermediateCatchEvent",
               "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway",
               "inclusiveGateway", "eventBasedGateway", "complexGateway"}


def _unreachable(root: etree._Element, key: str) -> list[Problem]:
    """Flow nodes no path from a start event reaches (read from the XML: the parser skips them)."""
    process = next((p for p in root.iterfind("bpmn:process", NS) if p.get("id") == key), None)
    if process is None:
        return []
    nodes = {el.get("id"): el for el in process if isinstance(el.tag, str) and etree.QName(el).localname in _FLOW_NODES}
    edges: dict[str, list[str]] = {}
    for flow in process.iterfind("bpmn:sequenceFlow", NS):
        edges.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
    for node_id, node in nodes.items():
        if node.get("attachedToRef"):
            edges.setdefault(node.get("attachedToRef"), []).append(node_id)
    reached = set()
    pending = [i for i, n in nodes.items() if etree.QName(n).localname == "startEvent"]
    while pending:
        current = pending.pop()
        if current not in reached:
            reached.add(current)
            pending.extend(edges.get(current, []))
    return [Problem("element is unreachable (元素不可达)", node_id, node.sourceline, "warning")
            for node_id, node in nodes.items() if node_id not in reached]


def _flow_warnings(spec: Any, lines: dict) -> list[Problem]:
    """Branching gateways with no default flow."""
    warnings = []
    for ts in spec.task_specs.values():
        conditions = getattr(ts, "cond_task_specs", None)
        if ts.bpmn_id and conditions and getattr(ts, "default_task_spec", None) is None:
            warnings.append(Problem("gateway has conditions but no default flow (网关缺少默认分支)",
                                    ts.bpmn_id, lines.get(ts.bpmn_id), "warning"))
    return warnings


def supervised_element(element_id: str) -> str | None:
    """For a `supervise_<x>` task, the element x it supervises."""
    if element_id.startswith(_SUPERVISE_PREFIX):
        return element_id[len(_SUPERVISE_PREFIX):]
    return None


def referenced_decisions(bpmn: bytes) -> set[str]:
    """Decision ids a BPMN file's business rule tasks call."""
    root = parse_xml(bpmn, "bpmn")
    return {el.text.strip() for el in root.iterfind(".//spiffworkflow:calledDecisionId", NS) if el.text}


def decision_ids(dmn: bytes) -> set[str]:
    """Decision ids a DMN file defines."""
    return _decisions_in(parse_xml(dmn, "dmn"))


def _decisions_in(root: etree._Element) -> set[str]:
    return {el.get("id") for el in root.iter()
            if isinstance(el.tag, str) and etree.QName(el).localname == "decision" and el.get("id")}


def process_ids(bpmn: bytes) -> list[str]:
    """Ids of the executable processes in a BPMN file."""
    root = parse_xml(bpmn, "bpmn")
    return [p.get("id") for p in root.iterfind("bpmn:process", NS) if p.get("isExecutable") == "true"]
