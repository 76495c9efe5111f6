"""Turn uploaded BPMN/DMN bytes into a checked, runnable process definition.

Everything a diagram carries that will later run (scripts, conditions, timers, DMN entries,
service parameters, assignee expressions) is compiled here, so a designer learns about every
problem at deploy time with its element id and line, not from a broken case weeks later.
"""

from __future__ import annotations

import ast
import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema.exceptions import SchemaError
from lxml import etree
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    DurationTimerEventDefinition,
    TimeDateEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import LoopTask, MultiInstanceTask
from SpiffWorkflow.spiff.parser.process import VALIDATOR
from SpiffWorkflow.spiff.specs.defaults import BusinessRuleTask, ManualTask, ServiceTask, UserTask

from .bounds import OUTCOME_PREFIX, DeployLimits, bound_problems
from .constructs import resolve_links, unsupported
from .decisions import AGGREGATIONS, LIST_POLICIES, SINGLE_POLICIES
from .dmn_checks import constraint, overlapping_rules, uncovered_example
from .errors import DeploymentError, FormCheckTimeout, Problem, ScriptRefused
from .returns import return_problems, returnable_tasks
from .sandbox import RESERVED_KEY, compile_expression, compile_script
from .schemas import check_form_schema, schema_problems, time_limit
from .specs import CaseParser, LinkedCallActivity
from .timing import TIMER_START_DATA, reads_as_duration

SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CADREFLOW_NS = "http://cadreflow.example/schema/1.0"
Lines = dict[str, int]  # element id -> its line in the XML
NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS, "cadreflow": CADREFLOW_NS}
START_FOR = f"{{{CADREFLOW_NS}}}startFor"
_FORBIDDEN_MARKUP = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_DECLARED_ENCODING = re.compile(rb"""\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"'>]*)["']""")
_SUPERVISE_PREFIX = "supervise_"
PERSON_TASKS = (UserTask, ManualTask)  # tasks a person completes: they need a lane (a user task, a form)
# Case data keys a form field may not take: `results` holds every task's answers (a field of that name would replace
# the map, and every later completion fails on it), RESERVED_KEY the serializer reads (the form could never be sent).
RESERVED_FIELDS = ("results", RESERVED_KEY)


@dataclass(frozen=True)
class ProcessSources:
    """The files a definition was compiled from (an executor compiles its own copy from them)."""

    bpmn: bytes
    dmns: Mapping[str, bytes]


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
    sources: ProcessSources = field(repr=False, compare=False, default=ProcessSources(b"", {}))
    interrupting_starts: frozenset[str] = frozenset()  # start events of event subprocesses that interrupt
    event_subprocesses: frozenset[str] = frozenset()  # ids of the event subprocesses
    start_messages: frozenset[str] = frozenset()  # messages whose arrival opens a case of this process
    start_timer: tuple[str, str] | None = None  # ("date" | "duration" | "cycle", expression) of a timer start
    start_for: str | None = None  # which cadres a timer start opens cases for (cadreflow:startFor)
    returnable: frozenset[str] = frozenset()  # person tasks that may go back to the previous step (returns.py)


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
        raise DeploymentError([Problem.of("files must be UTF-8", "文件必须为 UTF-8 编码",
                                          prefix=f"{filename}: ")]) from exc
    if _FORBIDDEN_MARKUP.search(content):
        raise DeploymentError([Problem.of("DOCTYPE and entity declarations are not allowed",
                                          "不允许 DOCTYPE 与实体声明", line=_line_of(content, b"<!"),
                                          prefix=f"{filename}: ")])
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                             huge_tree=False, dtd_validation=False)
    try:
        root = etree.fromstring(content, parser)
    except (etree.XMLSyntaxError, ValueError) as exc:
        message, line = getattr(exc, "msg", str(exc)), getattr(exc, "lineno", None)
        raise DeploymentError([Problem.of("XML syntax error", "XML 语法错误", line=line, prefix=f"{filename}: ",
                                          detail=message)]) from exc
    if root.getroottree().docinfo.doctype:
        raise DeploymentError([Problem.of("DOCTYPE is not allowed", "不允许 DOCTYPE", prefix=f"{filename}: ")])
    return root


def declared_encoding_problems(content: bytes, filename: str) -> list[Problem]:
    """An XML declaration naming another encoding than UTF-8 (checked at deploy; a stored version still loads): the
    parser would follow it while the browser's modeler reads UTF-8, so what runs would differ from what was
    reviewed (declared ISO-8859-1, a task named 审核 ran as 'å®¡æ\xa0¸')."""
    declared = _DECLARED_ENCODING.match(content.removeprefix(b"\xef\xbb\xbf"))
    if declared is None or declared.group(1).decode("latin-1").strip().lower() in ("utf-8", "utf8"):
        return []
    name = declared.group(1).decode("latin-1")[:40]
    return [Problem.of(f"files must be UTF-8; the XML declaration names {name}",
                       f"文件必须为 UTF-8 编码，XML 声明却为 {name}", line=1, prefix=f"{filename}: ")]


def _line_of(content: bytes, needle: bytes) -> int | None:
    index = content.upper().find(needle.upper())
    return content.count(b"\n", 0, index) + 1 if index >= 0 else None


def compile_process(key: str, bpmn: bytes, dmns: Mapping[str, bytes], roles: Iterable[str] | None, *,
                    limits: DeployLimits | None = None, operations: Mapping[str, Any] | None = None,
                    processes: Collection[str] | None = None) -> ProcessDefinition:
    """Check and parse one process; raise DeploymentError listing every problem.

    `roles` (the roles a lane may name), `limits`, `operations` (the service-task operations that exist)
    and `processes` (the deployed process keys a call activity may call) are checked when given: at
    deploy, not when an accepted version is parsed again (roles are data the service owns and changes).
    """
    if limits is not None and (declared := declared_encoding_problems(bpmn, f"{key}.bpmn") + [
            problem for name, content in dmns.items() for problem in declared_encoding_problems(content, name)]):
        raise DeploymentError(declared)
    root = parse_xml(bpmn, f"{key}.bpmn")
    dmn_roots = {name: parse_xml(content, name) for name, content in dmns.items()}
    problems = bound_problems(root, dmn_roots, limits) if limits is not None else []
    problems = problems or unsupported(root) or list(_xsd_problems(root)) or resolve_links(root) or _id_clashes(root) \
        or _quoted_property_ids(root)
    if problems:
        raise DeploymentError(problems)
    missing = _missing_decisions(root, dmn_roots)
    dmn_roots |= {f"missing-{name}.dmn": _placeholder_dmn(name) for name, _ in missing}
    spec, subprocess_specs = _parse_spec(key, root, dmn_roots)
    task_specs = [ts for each in (spec, *subprocess_specs.values()) for ts in each.task_specs.values()]
    lines = {el.get("id"): el.sourceline for el in root.iter() if el.get("id")}
    # Form rules added since a version was accepted apply at deploy only: a stored version still loads.
    forms, start_form, form_problems = _collect_forms(root, limits)
    problems = [problem for _, problem in missing] + form_problems
    problems += _lane_problems(root, key, set(roles)) if roles is not None else []
    problems += list(_spec_problems(task_specs, forms, lines))
    problems += _operation_problems(task_specs, operations, forms, start_form, lines) if operations is not None else []
    problems += _call_problems(task_specs, {*processes, key}, lines) if processes is not None else []
    problems += _policy_problems(task_specs, lines) + _decision_problems(task_specs, lines)
    problems += _start_for_problems(root, key) + _start_form_problems(root, key, start_form)
    problems += _outcome_problems(task_specs) + _flow_warnings(task_specs, lines) + _unreachable(root)
    problems += _undecided_loops(root) if limits is not None else []  # cases of a stored version must still load
    problems += return_problems(task_specs, PERSON_TASKS, lines)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise DeploymentError(errors)
    names = {ts.bpmn_id: ts.bpmn_name or ts.bpmn_id for ts in task_specs if isinstance(ts, PERSON_TASKS)}
    return ProcessDefinition(
        key=key, name=_process_name(root, key), content_hash=content_hash(bpmn, dmns),
        start_form=start_form, forms=forms, task_names=names, event_kinds=_event_kinds(root),
        warnings=tuple(p for p in problems if p.severity == "warning"),
        spec=spec, subprocess_specs=subprocess_specs, sources=ProcessSources(bpmn, dict(dmns)),
        interrupting_starts=_interrupting_starts(root),
        event_subprocesses=frozenset(el.get("id") for el in root.iterfind(
            ".//bpmn:subProcess[@triggeredByEvent='true']", NS)),
        start_messages=frozenset(d.name for d in _start_definitions(spec) if isinstance(d, MessageEventDefinition)),
        start_timer=next((_timer_kind(d) for d in _start_definitions(spec) if isinstance(d, TimerEventDefinition)),
                         None),
        start_for=_start_for(root, key), returnable=returnable_tasks(task_specs),
    )


def _timer_kind(definition: TimerEventDefinition) -> tuple[str, str]:
    kinds = {TimeDateEventDefinition: "date", DurationTimerEventDefinition: "duration",
             CycleTimerEventDefinition: "cycle"}
    return kinds.get(type(definition), "date"), definition.expression


def _start_for(root: etree._Element, key: str) -> str | None:
    process = next((p for p in root.iterfind("bpmn:process", NS) if p.get("id") == key), None)
    return process.get(START_FOR) if process is not None else None


def _start_definitions(spec: Any) -> list[Any]:
    """The event definitions of the process's own start events (not its event subprocesses')."""
    return [ts.event_definition for ts in spec.task_specs.values()
            if isinstance(ts, StartEvent) and getattr(ts, "event_definition", None) is not None]


def _interrupting_starts(root: etree._Element) -> frozenset[str]:
    """Start events of event subprocesses that interrupt (BPMN's default; SpiffWorkflow ignores the flag)."""
    return frozenset(start.get("id") for start in root.iterfind(
        ".//bpmn:subProcess[@triggeredByEvent='true']/bpmn:startEvent", NS)
        if (start.get("isInterrupting") or "true").lower() != "false")


def _event_kinds(root: etree._Element) -> dict[str, str]:
    kinds = {}
    for tag in ("intermediateCatchEvent", "boundaryEvent", "startEvent"):
        for event in root.iterfind(f".//bpmn:{tag}", NS):
            if event.find("bpmn:timerEventDefinition", NS) is not None:
                kinds[event.get("id")] = "timer"
            elif event.find("bpmn:messageEventDefinition", NS) is not None:
                kinds[event.get("id")] = "message"
    return kinds


MAX_XSD_PROBLEMS = 50  # a designer mends the first ones first; thousands more would only cost the service and the page


def _xsd_problems(root: etree._Element) -> Iterator[Problem]:
    schema = VALIDATOR.validator
    if schema.validate(root):
        return
    errors = schema.error_log
    # Where each line starts, read once: looked up per error, the document was walked once per error, and a 2 MB
    # upload of some 50,000 errors held the web process for minutes.
    first_on_line: dict[int, etree._Element] = {}
    for element in root.iter():
        first_on_line.setdefault(element.sourceline, element)
    for error in errors[:MAX_XSD_PROBLEMS]:
        yield Problem(f"不符合 BPMN 规范 (XSD): {error.message}", _element_at(first_on_line, error.line), error.line,
                      message_zh=f"不符合 BPMN 规范 (XSD)：{error.message}",
                      message_en=f"not valid BPMN (XSD): {error.message}")
    if len(errors) > MAX_XSD_PROBLEMS:
        more = len(errors) - MAX_XSD_PROBLEMS
        yield Problem.of(f"not valid BPMN (XSD): {more} more errors", f"不符合 BPMN 规范 (XSD)：另有 {more} 处错误")


def _element_at(first_on_line: Mapping[int, etree._Element], line: int) -> str | None:
    """The id of the element a line belongs to (the nearest ancestor with an id)."""
    element = first_on_line.get(line)
    while element is not None and not element.get("id"):
        element = element.getparent()
    return element.get("id") if element is not None else None


def _id_clashes(root: etree._Element) -> list[Problem]:
    """Extension elements (a service task's operator, its parameters) whose id is also a BPMN element's:
    the engine looks elements up by id and would take the one for the other."""
    bpmn_ids = {el.get("id") for el in root.iter() if isinstance(el.tag, str) and el.get("id")
                and etree.QName(el).namespace == BPMN_NS}
    return [Problem.of(f"'{el.get('id')}' is the id of a diagram element and of its {etree.QName(el).localname}: "
                       "give the element another id",
                       f"“{el.get('id')}”既是流程元素的编号又是其扩展项的编号，请为流程元素另取编号",
                       element_id=el.get("id"), line=el.sourceline)
            for el in root.iter() if isinstance(el.tag, str) and el.get("id") in bpmn_ids
            and etree.QName(el).namespace == SPIFF_NS]


def _quoted_property_ids(root: etree._Element) -> list[Problem]:
    """A `spiffworkflow:processVariableCorrelation` whose propertyId holds a quote. SpiffWorkflow finds the
    property's correlation keys with an XPath that puts the propertyId inside '...': a quote would close the
    literal and run the rest as XPath of the designer's (nested counts over the document hold the parse, in the
    web process at deploy and in every executor loading the version, for hours). Checked on every parse: a
    stored version with one would hang as well. A property's id is a name, which never holds a quote."""
    problems = []
    for property_id in root.iterfind(".//spiffworkflow:processVariableCorrelation/spiffworkflow:propertyId", NS):
        if "'" not in (property_id.text or ""):
            continue
        event = next((el for el in property_id.iterancestors()
                      if el.get("id") and not etree.QName(el).localname.endswith("EventDefinition")), None)
        problems.append(Problem.of("a correlation's propertyId must be the id of a correlation property (no quotes)",
                                   "关联属性编号 (propertyId) 必须是关联属性的编号，不能含引号",
                                   event.get("id") if event is not None else None, property_id.sourceline,
                                   detail=(property_id.text or "")[:80]))
    return problems


def _parse_spec(key: str, root: etree._Element, dmn_roots: Mapping[str, etree._Element]) -> tuple[Any, Any]:
    parser = CaseParser()
    try:
        for name, dmn in dmn_roots.items():
            parser.add_dmn_xml(dmn, filename=name)
        parser.add_bpmn_xml(root, filename=f"{key}.bpmn")
        if key not in parser.get_process_ids():
            found = ", ".join(parser.get_process_ids()) or "none"
            raise DeploymentError([Problem.of(f"no executable process with id '{key}' (found: {found})",
                                              f"未找到流程 {key}", zh_text=f"未找到流程 {key}（找到：{found}）")])
        return parser.get_spec(key), parser.get_subprocess_specs(key)
    except ValidationException as exc:
        line = getattr(exc, "line_number", None)
        raise DeploymentError([Problem(f"{exc} (流程定义校验失败)", element_id=getattr(exc, "id", None) or None,
                                       line=line if isinstance(line, int) and line > 0 else None,
                                       message_zh=f"流程定义校验失败：{exc}", message_en=str(exc))]) from exc
    except (KeyError, ValueError, AttributeError, TypeError, IndexError, etree.LxmlError) as exc:
        raise DeploymentError([Problem.of("cannot parse the diagram", "无法解析流程图", detail=repr(exc))]) from exc


def _missing_decisions(root: etree._Element, dmn_roots: Mapping[str, etree._Element]) -> list[tuple[str, Problem]]:
    defined = {decision for dmn in dmn_roots.values() for decision in _decisions_in(dmn)}
    missing = []
    for called in root.iterfind(".//spiffworkflow:calledDecisionId", NS):
        name = (called.text or "").strip()
        if name not in defined:
            task = called.getparent().getparent()
            missing.append((name, Problem.of(f"DMN decision '{name}' is missing; upload its .dmn file",
                                             f"缺少 DMN 决策表 {name}", task.get("id"), task.sourceline)))
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


def _collect_forms(root: etree._Element, limits: DeployLimits | None) -> tuple[dict[str, dict[str, Any]],
                                                                              dict[str, Any], list[Problem]]:
    """The forms by owner, the start form and their problems. At deploy (`limits`), checking every form against
    JSON Schema's metaschema shares one time limit (max_form_check_seconds): node counts do not bound it."""
    forms: dict[str, dict[str, Any]] = {}
    start_form: dict[str, Any] = {"type": "object"}
    problems: list[Problem] = []
    with time_limit(limits.max_form_check_seconds if limits is not None else None):
        for element in root.iterfind(".//bpmn:extensionElements/spiffworkflow:formSchema", NS):
            owner = element.getparent().getparent()
            owner_id = owner.get("id")
            schema = _load_schema(element.text or "", owner_id, element.sourceline, problems, limits is not None)
            if schema is None:
                continue
            if etree.QName(owner).localname == "startEvent":
                start_form = schema
            else:
                forms[owner_id] = schema
    return forms, start_form, problems


def _load_schema(text: str, element_id: str | None, line: int | None, problems: list[Problem],
                 deploying: bool = True) -> dict[str, Any] | None:
    """The form schema, or None with its problems added. `deploying`: also the rules on reference shapes and
    field keywords added after versions were stored (forms.py and the pages guard against what they refuse)."""
    try:
        schema = json.loads(text)
        check_form_schema(schema)
    except FormCheckTimeout:
        problems.append(Problem.of("the process's form schemas take too long to check (DEPLOY_LIMITS."
                                   "max_form_check_seconds); make them smaller",
                                   "流程表单结构过于复杂，校验超时，请精简", element_id, line))
        return None
    except (ValueError, SchemaError, RecursionError) as exc:
        message = getattr(exc, "message", None) or getattr(exc, "msg", None) or type(exc).__name__
        problems.append(Problem.of("invalid form schema", "表单结构无效", element_id, line, detail=message))
        return None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        problems.append(Problem.of("form schema must be an object schema", "表单必须是对象结构", element_id, line))
        return None
    unsafe = schema_problems(schema, strict=deploying)
    if unsafe:
        problems.extend(Problem(f"form schema (表单结构): {en} ({zh})", element_id, line, message_zh=f"表单结构：{zh}",
                                message_en=f"form schema: {en}") for en, zh in unsafe)
        return None
    rules = schema.get("x-validate", [])
    if not isinstance(rules, list):
        problems.append(Problem.of("x-validate must be a list of rules {expr, field, message}",
                                   "x-validate 必须是规则列表 {expr, field, message}", element_id, line))
        rules = []
    for rule in rules:
        problems.extend(_rule_problems(rule, element_id, line))
    problems.extend(_min_sum_problems(schema.get("x-min-sum"), element_id, line))
    for name, prop in schema.get("properties", {}).items() if deploying else ():
        problems.extend(_field_problems(name, prop, element_id, line))
    return schema


def _field_problems(name: str, prop: Any, element_id: str | None, line: int | None) -> list[Problem]:
    """A field's CadreFlow keywords have the shapes the forms and pages read: `x-user-role` a role's code,
    `x-cadre` true or false, `x-enumNames` (when a list: the pages ignore any other value and show the values)
    one text per `enum` value. A boolean field schema (valid JSON Schema) is accepted: the pages skip it, as
    they skip every field that is not an object."""
    if name in RESERVED_FIELDS:
        return [Problem.of(f"field {name!r}: the name is reserved for the engine's own case data; rename the field",
                           f"字段 {name}：该名称为系统保留的案件数据，请改名", element_id, line)]
    if not isinstance(prop, dict):
        return []
    role, cadre, names = prop.get("x-user-role"), prop.get("x-cadre"), prop.get("x-enumNames")
    if "x-user-role" in prop and not (isinstance(role, str) and role):
        reason = ("x-user-role must be a role's code (a string)", "x-user-role 必须是角色代码（文字）")
    elif "x-cadre" in prop and not isinstance(cadre, bool):
        reason = ("x-cadre must be true or false", "x-cadre 必须是 true 或 false")
    elif isinstance(names, list) and not all(isinstance(each, str) for each in names):
        reason = ("x-enumNames must be a list of strings", "x-enumNames 必须是文字列表")
    elif isinstance(names, list) and not (isinstance(prop.get("enum"), list) and len(prop["enum"]) == len(names)):
        reason = ("x-enumNames must name each value of enum, in order", "x-enumNames 必须与 enum 的取值一一对应")
    else:
        return []
    return [Problem.of(f"field {name!r}: {reason[0]}", f"字段 {name}：{reason[1]}", element_id, line)]


def _rule_problems(rule: Any, element_id: str | None, line: int | None) -> list[Problem]:
    """An `x-validate` rule is {"expr", "field", "message"}; its expression must compile."""
    if not isinstance(rule, dict) or not {"expr", "field", "message"} <= set(rule):
        return [Problem.of("x-validate rules need expr, field and message", "表单规则缺少字段", element_id, line)]
    if not isinstance(rule["expr"], str) or not rule["expr"].strip():
        return [Problem.of("x-validate rule has no expression", "表单规则缺少表达式", element_id, line)]
    if not isinstance(rule["field"], str) or not isinstance(rule["message"], str):  # the error is keyed by field
        return [Problem.of("x-validate rule's field and message must be strings",
                           "表单规则的 field 与 message 必须是文字", element_id, line,
                           detail=json.dumps(rule, ensure_ascii=False)[:200])]
    try:
        compile_expression(rule["expr"])
    except ScriptRefused as exc:
        return [Problem.of("x-validate rule does not compile", "表单规则无法编译", element_id, line, detail=exc)]
    return []


def _min_sum_problems(spec: Any, element_id: str | None, line: int | None) -> list[Problem]:
    """`x-min-sum` is {"fields": [names], "min": number, "message": text} ("min" and "message" optional)."""
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [Problem.of("x-min-sum must be an object {fields, min, message}",
                           "x-min-sum 必须是对象 {fields, min, message}", element_id, line, detail=repr(spec)[:200])]
    fields, minimum = spec.get("fields"), spec.get("min", 1)
    if not (isinstance(fields, list) and fields and all(isinstance(name, str) for name in fields)):
        reason = ("x-min-sum needs fields, a non-empty list of field names", "x-min-sum 需要 fields（字段名列表）")
    elif isinstance(minimum, bool) or not isinstance(minimum, int | float):
        reason = ("x-min-sum min must be a number", "x-min-sum 的 min 必须是数字")
    elif not isinstance(spec.get("message", ""), str):
        reason = ("x-min-sum message must be a string", "x-min-sum 的 message 必须是文字")
    else:
        return []
    return [Problem.of(*reason, element_id, line, detail=json.dumps(spec, ensure_ascii=False)[:200])]


def _spec_problems(task_specs: list[Any], forms: dict[str, Any], lines: Lines) -> Iterator[Problem]:
    for ts in task_specs:
        if ts.bpmn_id is None:
            continue
        line = lines.get(ts.bpmn_id)
        if isinstance(ts, PERSON_TASKS):
            yield from _user_task_problems(ts, forms, line)
        for label, source, compile_ in _code_of(ts):
            if not isinstance(source, str) or not source.strip():
                yield Problem.of(f"{label} is empty", "代码为空", ts.bpmn_id, line, zh_text=f"{_zh(label)}代码为空")
                continue
            try:
                compile_(source)
            except (ScriptRefused, SyntaxError) as exc:
                yield Problem.of(f"{label} does not compile", "代码无法编译", ts.bpmn_id, line, detail=exc,
                                 zh_text=f"{_zh(label)}代码无法编译：{exc}")
        yield from _timer_literal_problems(getattr(ts, "event_definition", None), ts.bpmn_id, line)


# What a timer's value must read as, by kind, where the diagram gives it as a literal: a date that is a duration
# ("P1D") deployed fine and then failed every case reaching it, and every migration of a case onto it; so did a
# duration no day can be moved by (P999999999Y, seconds past the calendar, P1.5Y).
_TIMER_READERS = ((TimeDateEventDefinition, "a date and time such as \"2031-01-01T09:00:00+08:00\"",
                   "日期时间，如 \"2031-01-01T09:00:00+08:00\"", TimerEventDefinition.get_datetime),
                  (DurationTimerEventDefinition, "an ISO 8601 duration such as \"P5D\" that a case could wait",
                   "案件可以等待的 ISO 8601 时长，如 \"P5D\"", reads_as_duration))


def _timer_literal_problems(definition: Any, element_id: str, line: int | None) -> Iterator[Problem]:
    inner = definition.event_definitions if isinstance(definition, MultipleEventDefinition) else [definition]
    for timer in (d for d in inner if isinstance(d, TimerEventDefinition)):
        try:
            value = ast.literal_eval(timer.expression) if isinstance(timer.expression, str) else None
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue  # an expression, read in the case: a wrong value there fails the step as an incident
        for kind, english, chinese, read in _TIMER_READERS:
            if isinstance(timer, kind) and isinstance(value, str) and not _reads(read, value):
                yield Problem.of(f"the timer's value {value[:40]!r} is not {english}", f"计时器的值不是{chinese}",
                                 element_id, line, zh_text=f"计时器的值 {value[:40]!r} 不是{chinese}")


def _reads(read: Callable[[str], Any], value: str) -> bool:
    try:
        read(value)
    except Exception:  # SpiffWorkflow's duration reader raises a bare Exception on a bad value
        return False
    return True


_ZH_LABELS = {"condition": "条件", "prescript": "前置脚本", "postscript": "后置脚本", "script": "脚本",
              "timer": "计时器", "assignee": "指派人", "service parameter": "服务参数", "DMN input": "DMN 输入",
              "DMN rule": "DMN 规则", "input": "输入", "output": "输出", "loop cardinality": "多实例数量",
              "completion condition": "完成条件", "loop condition": "循环条件", "payload": "事件数据",
              "correlation": "关联属性"}
_ZH_LABEL = re.compile("|".join(sorted(map(re.escape, _ZH_LABELS), key=len, reverse=True)))


def _zh(label: str) -> str:
    """The Chinese of a code label such as "DMN rule 3 input" (names and ids kept)."""
    return _ZH_LABEL.sub(lambda match: _ZH_LABELS[match.group()], label) + " "


def _operation_problems(task_specs: list[Any], operations: Mapping[str, Any], forms: dict[str, Any],
                        start_form: dict[str, Any], lines: Lines) -> list[Problem]:
    """Service tasks must call an operation the service has, with the parameters it takes (an error), on
    case data some form asks for (a warning). `operations` maps a name to its signature (`params`:
    name -> required, `reads`: data fields), as the glue registry declares them."""
    known, problems = ", ".join(sorted(operations)) or "none", []
    fields = {name for form in (start_form, *forms.values()) for name in form.get("properties", {})}
    for ts in (ts for ts in task_specs if isinstance(ts, ServiceTask)):
        where = (ts.bpmn_id, lines.get(ts.bpmn_id))
        signature = operations.get(ts.operation_name)
        if signature is None:
            problems.append(Problem.of(f"service task calls unknown operation '{ts.operation_name}'; available: "
                                       f"{known}", f"服务任务调用了不存在的操作 {ts.operation_name}", *where,
                                       zh_text=f"服务任务调用了不存在的操作 {ts.operation_name}；可用：{known}"))
            continue
        problems += _parameter_problems(ts, signature.params, where)
        problems += [Problem.of(f"operation '{ts.operation_name}' reads '{name}', which no form of this process "
                                f"asks for", f"操作 {ts.operation_name} 读取的字段 {name} 未见于任何表单", *where,
                                "warning")
                     for name in signature.reads if name not in fields and name != "cadre_id"]
    return problems


def _parameter_problems(ts: Any, params: Mapping[str, bool], where: tuple[str, int | None]) -> list[Problem]:
    given = set(ts.operation_params)
    missing = sorted(name for name, required in params.items() if required and name not in given)
    unknown = sorted(given - set(params))
    problems = [Problem.of(f"operation '{ts.operation_name}' needs the parameter '{name}'", f"缺少参数 {name}",
                           *where) for name in missing]
    takes = ", ".join(sorted(params)) or "none"
    return problems + [Problem.of(f"operation '{ts.operation_name}' takes no parameter '{name}'; it takes: {takes}",
                                  f"不接受参数 {name}", *where,
                                  zh_text=f"操作 {ts.operation_name} 不接受参数 {name}；可用参数：{takes}")
                       for name in unknown]


def _policy_problems(task_specs: list[Any], lines: Lines) -> list[Problem]:
    """Hit policies and aggregations DMN 1.3 does not know: the engine would silently decide as FIRST, or
    collect lists where the designer asked for one value."""
    problems = []
    for ts in (ts for ts in task_specs if isinstance(ts, BusinessRuleTask)):
        found = _policy_problem(ts.dmnEngine)
        if found is not None:
            en, zh, zh_text = found
            problems.append(Problem.of(en, zh, ts.bpmn_id, lines.get(ts.bpmn_id), zh_text=zh_text))
    return problems


def _policy_problem(engine: Any) -> tuple[str, str, str] | None:
    """(English, short Chinese, full Chinese) of what is wrong with a table's hit policy or aggregation."""
    policy, aggregation = str(engine.decision_table.hit_policy).upper(), getattr(engine, "aggregation", None)
    decision = getattr(engine, "decision_id", "?")
    if policy not in (*SINGLE_POLICIES, *LIST_POLICIES):
        known = ", ".join((*SINGLE_POLICIES, *LIST_POLICIES))
        zh = f"决策表 {decision} 的命中策略 {policy} 无效"
        return f"decision '{decision}': unknown hit policy '{policy}'; use one of {known}", zh, f"{zh}，可用：{known}"
    if aggregation is not None and (policy != "COLLECT" or aggregation not in AGGREGATIONS):
        known = ", ".join(AGGREGATIONS)
        zh = f"决策表 {decision} 的聚合方式 {aggregation} 无效"
        return (f"decision '{decision}': aggregation '{aggregation}' needs the hit policy COLLECT and one of {known}",
                zh, f"{zh}（仅用于 COLLECT，可用：{known}）")
    return None


def _decision_problems(task_specs: list[Any], lines: Lines) -> list[Problem]:
    """UNIQUE tables whose rules certainly match together (an error), and tables with gaps (a warning)."""
    problems = []
    for ts in task_specs:
        if not isinstance(ts, BusinessRuleTask):
            continue
        table, decision = ts.dmnEngine.decision_table, getattr(ts.dmnEngine, "decision_id", ts.bpmn_id)
        rows = [[constraint(entry.lhs[0] if entry.lhs else None) for entry in rule.inputEntries]
                for rule in table.rules]
        if str(table.hit_policy).upper() == "UNIQUE":
            problems += [Problem.of(f"decision '{decision}': rules {a} and {b} can both match, but the hit policy "
                                    f"is UNIQUE; make them exclusive, or use FIRST or PRIORITY",
                                    f"决策表 {decision} 的规则 {a} 与 {b} 重叠", ts.bpmn_id, lines.get(ts.bpmn_id))
                         for a, b in overlapping_rules(rows)]
        gap = uncovered_example(rows)
        if gap is not None:
            inputs = ", ".join(f"{column.label or column.expression}={value!r}"
                               for column, value in zip(table.inputs, gap, strict=True))
            problems.append(Problem.of(f"decision '{decision}': no rule matches {inputs}; its outputs are then null",
                                       f"决策表 {decision} 存在未覆盖的输入", ts.bpmn_id, lines.get(ts.bpmn_id),
                                       "warning", zh_text=f"决策表 {decision} 存在未覆盖的输入：{inputs}"))
    return problems


def _start_for_problems(root: etree._Element, key: str) -> list[Problem]:
    expression = _start_for(root, key)
    if expression is None:
        return []
    try:
        compile_expression(expression)
    except ScriptRefused as exc:
        return [Problem.of("cadreflow:startFor does not compile", "startFor 表达式无法编译", key, detail=exc)]
    return []


def _start_form_problems(root: etree._Element, key: str, start_form: dict[str, Any]) -> list[Problem]:
    """A start form that would refuse every start, named on the process's start event: one closed to fields it does
    not declare (`additionalProperties: false`) without `cadre_id`, which every start's data carries; under a timer
    start, one requiring a field no firing gives (TIMER_START_DATA)."""
    process = next((p for p in root.iterfind("bpmn:process", NS) if p.get("id") == key), None)
    start = None if process is None else process.find("bpmn:startEvent", NS)
    if start is None:
        return []
    problems = []
    if start_form.get("additionalProperties") is False and "cadre_id" not in (start_form.get("properties") or {}) \
            and not start_form.get("patternProperties"):
        problems.append(Problem.of(
            "the start form admits no cadre_id (additionalProperties is false), which every start's data carries: "
            "no case would open; declare cadre_id among its properties",
            "启动表单不接受 cadre_id（additionalProperties 为 false），而发起数据总带有 cadre_id，将无法发起任何案件；"
            "请在 properties 中声明 cadre_id", start.get("id"), start.sourceline))
    required = start_form.get("required")
    missing = sorted(str(name) for name in required if name not in TIMER_START_DATA) \
        if isinstance(required, list) and start.find("bpmn:timerEventDefinition", NS) is not None else []
    if missing:
        given = ", ".join(sorted(TIMER_START_DATA))
        problems.append(Problem.of(
            f"the start form requires {', '.join(missing)}, which no timer firing gives (it gives {given}): no case "
            "would open; make them optional",
            f"启动表单要求填写 {'、'.join(missing)}，但定时启动只提供 {given}，将无法发起任何案件；请改为选填",
            start.get("id"), start.sourceline))
    return problems


def _call_problems(task_specs: list[Any], processes: Collection[str], lines: Lines) -> list[Problem]:
    """A call activity opens a deployed process as a linked child case: it must exist."""
    known = ", ".join(sorted(processes))
    return [Problem.of(f"call activity calls '{ts.called_element}', which is not a deployed process; deployed: {known}",
                       f"调用活动引用的流程 {ts.called_element} 尚未部署", ts.bpmn_id, lines.get(ts.bpmn_id))
            for ts in task_specs if isinstance(ts, LinkedCallActivity) and ts.called_element not in processes]


def _lane_problems(root: etree._Element, key: str, roles: set[str]) -> list[Problem]:
    """Every lane of the process (nested, and in embedded subprocesses) names a role of `roles` (those that may
    hold tasks): its name is the role."""
    known = ", ".join(sorted(roles))
    return [Problem.of(f"lane '{name}' is not a known role that may hold tasks; the roles are: {known}",
                       f"泳道 {name} 不是可办理任务的已知角色，可用角色：{known}", lane.get("id"), lane.sourceline)
            for lane in _lanes_of(root, key) if (name := lane.get("name")) and name not in roles]


def _lanes_of(root: etree._Element, key: str) -> list[etree._Element]:
    process = next((p for p in root.iterfind("bpmn:process", NS) if p.get("id") == key), None)
    return [] if process is None else list(process.iterfind(".//bpmn:lane", NS))


def _user_task_problems(ts: Any, forms: dict[str, Any], line: int | None) -> Iterator[Problem]:
    if not ts.lane:
        yield Problem.of("user task is in no lane", "用户任务不在任何泳道中", ts.bpmn_id, line)
    if isinstance(ts, UserTask) and ts.bpmn_id not in forms:  # a manual task is done with one click
        yield Problem.of("user task has no form schema", "用户任务缺少表单", ts.bpmn_id, line)


def _code_of(ts: Any) -> Iterator[tuple[str, str, Any]]:
    """Yield (label, source, compiler) for every piece of code an element runs."""
    for condition, _target in getattr(ts, "cond_task_specs", None) or []:
        if condition is not None:
            yield "condition", condition.args[0], compile_expression
    for label in ("script", "prescript", "postscript"):
        source = getattr(ts, label, None)
        if source:
            yield label, source, compile_script
    yield from _event_code(getattr(ts, "event_definition", None))
    if isinstance(ts, ServiceTask):
        for name, param in ts.operation_params.items():
            yield f"service parameter '{name}'", param["value"], compile_expression
    assignee = (ts.extensions or {}).get("properties", {}).get("assignee") if hasattr(ts, "extensions") else None
    if assignee:
        yield "assignee", assignee, compile_expression
    if isinstance(ts, BusinessRuleTask):
        yield from _dmn_code(ts)
    yield from _loop_code(ts)


def _loop_code(ts: Any) -> Iterator[tuple[str, str, Any]]:
    """A multi-instance task's cardinality and completion condition, a standard loop's condition."""
    if isinstance(ts, MultiInstanceTask):
        yield from (("loop cardinality", ts.cardinality, compile_expression),) if ts.cardinality else ()
        yield from (("completion condition", ts.condition, compile_expression),) if ts.condition else ()
    elif isinstance(ts, LoopTask) and getattr(ts, "condition", None):
        yield "loop condition", ts.condition, compile_expression


def _event_code(definition: Any) -> Iterator[tuple[str, str, Any]]:
    """A timer's expression; a thrown message's, signal's, error's or escalation's payload expression; a message's
    correlation expressions (on the payload, and the catching case's own): each runs in cases like a script."""
    if isinstance(definition, TimerEventDefinition):
        yield "timer", definition.expression, compile_expression
    elif isinstance(definition, MultipleEventDefinition):
        for inner in definition.event_definitions:
            yield from _event_code(inner)
    elif definition is not None:
        if getattr(definition, "expression", None) is not None:
            yield "payload", definition.expression, compile_expression
        for prop in [*getattr(definition, "correlation_properties", ()),
                     *getattr(definition, "process_correlations", ())]:
            yield f"correlation '{prop.name}'", prop.retrieval_expression, compile_expression


def _dmn_code(ts: Any) -> Iterator[tuple[str, str, Any]]:
    table = ts.dmnEngine.decision_table
    for column in table.inputs:
        if column.expression:
            yield f"DMN input '{column.label or column.id}'", column.expression, compile_expression
    for rule in table.rules:
        for entry in rule.inputEntries:
            for lhs in entry.lhs:
                if lhs and lhs.strip() not in ("-", ""):
                    yield f"DMN rule {rule.row_number} input", lhs, _compile_dmn_test
        for entry in rule.outputEntries:
            if entry.text:
                yield f"DMN rule {rule.row_number} output", entry.text, compile_expression


def _compile_dmn_test(lhs: str) -> Any:
    return compile_expression(_dmn_test(lhs))


def _dmn_test(lhs: str) -> str:
    """Mirror how the DMN engine turns an input entry into an expression."""
    lhs = lhs.replace("?", "dmninputexpr")
    try:
        compile(lhs, "<dmn>", "eval")
        return lhs
    except SyntaxError:
        return f"dmninputexpr {lhs}"
    except (RecursionError, MemoryError, ValueError) as exc:  # as compile_expression refuses code too deep to parse
        raise ScriptRefused(f"expression too deeply nested or too large ({type(exc).__name__})") from None


def _outcome_problems(task_specs: list[Any]) -> list[Problem]:
    ends = [ts for ts in task_specs if isinstance(ts, EndEvent) and ts.bpmn_id]
    if any(ts.bpmn_id.startswith(OUTCOME_PREFIX) for ts in ends):
        return []
    return [Problem.of("no end event named end_<outcome>; cases will finish without an outcome",
                       "没有 end_<结果> 结束事件", severity="warning")]


_FLOW_NODES = {"task", "userTask", "serviceTask", "scriptTask", "businessRuleTask", "manualTask", "sendTask",
               "receiveTask", "callActivity", "subProcess", "startEvent", "endEvent", "intermediateCatchEvent",
               "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway",
               "inclusiveGateway", "eventBasedGateway", "complexGateway"}


def _unreachable(root: etree._Element) -> list[Problem]:
    """Flow nodes no path from a start event reaches, in the process and in each subprocess (read from
    the XML: the parser skips them). Event subprocesses start on their event; boundary events with
    the element they are attached to."""
    problems = []
    for container in [*root.iterfind("bpmn:process", NS), *root.iterfind(".//bpmn:subProcess", NS),
                      *root.iterfind(".//bpmn:transaction", NS)]:
        nodes = {el.get("id"): el for el in container if isinstance(el.tag, str)
                 and etree.QName(el).localname in _FLOW_NODES}
        edges: dict[str, list[str]] = {}
        for flow in container.iterfind("bpmn:sequenceFlow", NS):
            edges.setdefault(flow.get("sourceRef"), []).append(flow.get("targetRef"))
        for node_id, node in nodes.items():
            if node.get("attachedToRef"):
                edges.setdefault(node.get("attachedToRef"), []).append(node_id)
        pending = [i for i, n in nodes.items() if etree.QName(n).localname == "startEvent"
                   or n.get("triggeredByEvent") == "true"]
        reached = _walk(pending, edges)
        problems += [Problem.of("element is unreachable", "元素不可达", node_id, node.sourceline, "warning")
                     for node_id, node in nodes.items() if node_id not in reached]
    return problems


_DECIDING = frozenset({"exclusiveGateway", "inclusiveGateway", "eventBasedGateway"})


def _undecided_loops(root: etree._Element) -> list[Problem]:
    """Loops of sequence flows through no exclusive, inclusive or event-based gateway, one problem per container.
    SpiffWorkflow predicts a case's coming tasks along every flow, and along such a loop it predicts without end:
    every start of the process was a RecursionError (a 500), every step reaching the loop a refusal. Nothing on it
    decides to leave it either (a boundary event's flows are not the loop's, so a loop drawn through one deploys)."""
    problems = []
    for container in [*root.iterfind("bpmn:process", NS), *root.iterfind(".//bpmn:subProcess", NS),
                      *root.iterfind(".//bpmn:transaction", NS)]:
        nodes = [el.get("id") for el in container if isinstance(el.tag, str)
                 and etree.QName(el).localname in _FLOW_NODES - _DECIDING]
        edges = [(flow.get("sourceRef"), flow.get("targetRef")) for flow in container.iterfind("bpmn:sequenceFlow", NS)]
        looping = _on_loops(nodes, edges)
        if looping:
            first = next(el for el in container if isinstance(el.tag, str) and el.get("id") == looping[0])
            shown = ", ".join(looping[:5]) + (", …" if len(looping) > 5 else "")
            problems.append(Problem.of(
                f"a loop through no gateway ({shown}) would run for ever and no case of it could start; draw the way "
                "back through an exclusive gateway",
                f"流程中的循环未经过网关（{shown}），将无休止地运行，案件无法启动；请经排他网关返回",
                first.get("id"), first.sourceline))
    return problems


def _on_loops(nodes: list[str], edges: list[tuple[str, str]]) -> list[str]:
    """The nodes (in the order given) left once every node without an incoming or an outgoing edge among those
    left is taken away, again and again: those on a loop, and those between loops; none when there is no loop."""
    left = set(nodes)
    while True:
        kept = [(a, b) for a, b in edges if a in left and b in left]
        linked = {a for a, _ in kept} & {b for _, b in kept}
        if linked == left:
            return [node for node in nodes if node in left]
        left = linked


def _walk(pending: list[str], edges: dict[str, list[str]]) -> set[str]:
    reached: set[str] = set()
    while pending:
        current = pending.pop()
        if current not in reached:
            reached.add(current)
            pending.extend(edges.get(current, []))
    return reached


def _flow_warnings(task_specs: list[Any], lines: Lines) -> list[Problem]:
    """Branching gateways with no default flow."""
    warnings = []
    for ts in task_specs:
        conditions = getattr(ts, "cond_task_specs", None)
        if ts.bpmn_id and conditions and getattr(ts, "default_task_spec", None) is None:
            warnings.append(Problem.of("gateway has conditions but no default flow", "网关缺少默认分支",
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


def called_processes(bpmn: bytes) -> set[str]:
    """Keys of the processes a BPMN file's call activities call."""
    root = parse_xml(bpmn, "bpmn")
    return {called for el in root.iterfind(".//bpmn:callActivity", NS) if (called := el.get("calledElement"))}


def lane_roles(bpmn: bytes, key: str) -> frozenset[str]:
    """The lane names (roles) of process `key`: nested lanes and lanes of its embedded subprocesses too."""
    root = parse_xml(bpmn, f"{key}.bpmn")
    return frozenset(name.strip() for lane in _lanes_of(root, key) if (name := lane.get("name")))
