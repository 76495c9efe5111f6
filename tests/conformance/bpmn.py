"""Small BPMN documents for the conformance suite: one construct each, written out in XML so a
reader sees exactly what a designer would draw (no diagram interchange: the engine needs none)."""

from __future__ import annotations

import json
from itertools import count, pairwise
from xml.sax.saxutils import escape

_IDS = count(1)  # event definitions need document-unique ids

OK_FORM = {
    "type": "object",
    "title": "办理",
    "properties": {"ok": {"type": "boolean", "title": "同意"}},
    "required": ["ok"],
    "additionalProperties": False,
}
VOTE_FORM = {
    "type": "object",
    "title": "表决",
    "properties": {"vote": {"type": "boolean", "title": "赞成"}},
    "required": ["vote"],
}
LANE = "org_dept"


def definitions(key: str, body: str, lanes: dict[str, list[str]] | None = None, top: str = "") -> bytes:
    """A document with one executable process `key` (and `top`: messages, signals, errors, other processes)."""
    lane_xml = "".join(
        f'<bpmn:lane id="lane_{name}" name="{name}">'
        + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs)
        + "</bpmn:lane>"
        for name, refs in (lanes or {}).items()
    )
    lane_set = f'<bpmn:laneSet id="lanes_{key}">{lane_xml}</bpmn:laneSet>' if lanes else ""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" '
        f'id="defs_{key}" targetNamespace="http://cadreflow.example/conformance">\n{top}'
        f'<bpmn:process id="{key}" name="一致性测试" isExecutable="true">{lane_set}\n{body}\n</bpmn:process>\n'
        "</bpmn:definitions>\n"
    ).encode()


def form(schema: dict) -> str:
    return f"<spiffworkflow:formSchema>{escape(json.dumps(schema, ensure_ascii=False))}</spiffworkflow:formSchema>"


def user(element_id: str, schema: dict | None = None, inner: str = "", extensions: str = "") -> str:
    """A user task with a form (by default one boolean `ok`)."""
    return (
        f'<bpmn:userTask id="{element_id}" name="任务 {element_id}"><bpmn:extensionElements>'
        f"{form(schema or OK_FORM)}{extensions}</bpmn:extensionElements>{inner}</bpmn:userTask>\n"
    )


def start(element_id: str = "start", definition: str = "", attributes: str = "") -> str:
    return f'<bpmn:startEvent id="{element_id}"{attributes}>{definition}</bpmn:startEvent>\n'


def end(element_id: str = "end", definition: str = "") -> str:
    return f'<bpmn:endEvent id="{element_id}">{definition}</bpmn:endEvent>\n'


def terminate(outcome: str) -> str:
    return end(f"end_{outcome}", f'<bpmn:terminateEventDefinition id="term_{outcome}"/>')


def script(element_id: str, code: str) -> str:
    return f'<bpmn:scriptTask id="{element_id}"><bpmn:script>{escape(code)}</bpmn:script></bpmn:scriptTask>\n'


def flow(source: str, target: str, condition: str | None = None, flow_id: str | None = None) -> str:
    flow_id = flow_id or f"f_{source}_{target}"
    if condition is None:
        return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}"/>\n'
    return (
        f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
        f"<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression></bpmn:sequenceFlow>\n"
    )


def chain(*ids: str) -> str:
    return "".join(flow(a, b) for a, b in pairwise(ids))


def timer(duration_key: str = "conformance") -> str:
    return (
        f'<bpmn:timerEventDefinition id="timer_{next(_IDS)}"><bpmn:timeDuration>deadline("{duration_key}")'
        "</bpmn:timeDuration></bpmn:timerEventDefinition>"
    )


def message_ref(name: str, payload: str | None = None, variable: str | None = None) -> str:
    extensions = ""
    if payload:
        extensions += f"<spiffworkflow:messagePayload>{escape(payload)}</spiffworkflow:messagePayload>"
    if variable:
        extensions += f"<spiffworkflow:messageVariable>{variable}</spiffworkflow:messageVariable>"
    inner = f"<bpmn:extensionElements>{extensions}</bpmn:extensionElements>" if extensions else ""
    return (
        f'<bpmn:messageEventDefinition id="md_{next(_IDS)}" messageRef="msg_{name}">{inner}'
        "</bpmn:messageEventDefinition>"
    )


def message(name: str) -> str:
    return f'<bpmn:message id="msg_{name}" name="{name}"/>\n'


def signal_ref(name: str) -> str:
    return f'<bpmn:signalEventDefinition id="sd_{next(_IDS)}" signalRef="sig_{name}"/>'


def signal(name: str) -> str:
    return f'<bpmn:signal id="sig_{name}" name="{name}"/>\n'


def error_ref(code: str) -> str:
    return f'<bpmn:errorEventDefinition id="ed_{next(_IDS)}" errorRef="err_{code}"/>'


def error(code: str) -> str:
    return f'<bpmn:error id="err_{code}" name="{code}" errorCode="{code}"/>\n'


def escalation_ref(code: str) -> str:
    return f'<bpmn:escalationEventDefinition id="xd_{next(_IDS)}" escalationRef="esc_{code}"/>'


def escalation(code: str) -> str:
    return f'<bpmn:escalation id="esc_{code}" name="{code}" escalationCode="{code}"/>\n'
