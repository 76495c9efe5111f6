"""Read an uploaded BPMN or DMN document without building a spec: what it means, and how it is drawn.

Two uploads mean the same process when their canonical forms are equal: the documents with their
diagram interchange (DI: positions and sizes) left out, comments and insignificant whitespace dropped,
attributes compared as a set, attributes that only restate the BPMN default dropped, the redundant
`incoming`/`outgoing` references dropped (sequence flows say the same), a form schema compared as JSON
and decision tables compared by content whatever their file names. Element order is kept: the order of
sequence flows decides which condition a gateway tries first. The layout is compared separately, as
each drawn element's bounds, waypoints and label position, whatever order the DI lists them in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from lxml import etree

from .compiler import BPMN_NS, SPIFF_NS, parse_xml
from .compiler import _load_schema as load_schema  # deploy's own reading of a form, shared not copied
from .errors import Problem
from .schemas import time_limit

Canonical = tuple[Any, ...]
# Attributes equal to their default in the BPMN 2.0 schema: modelers drop or add them freely.
_DEFAULTS = {"cancelActivity": "true", "isInterrupting": "true", "parallelMultiple": "false",
             "isForCompensation": "false", "startQuantity": "1", "completionQuantity": "1",
             "triggeredByEvent": "false", "isSequential": "false", "gatewayDirection": "Unspecified",
             "instantiate": "false", "isClosed": "false", "isImmediate": "true", "implementation": "##unspecified"}
_REDUNDANT = {f"{{{BPMN_NS}}}incoming", f"{{{BPMN_NS}}}outgoing"}
_JSON_TEXT = {f"{{{SPIFF_NS}}}formSchema"}
_UNORDERED = {f"{{{BPMN_NS}}}flowNodeRef"}  # a lane's members are a set


def is_di(element: etree._Element) -> bool:
    """Whether an element belongs to the diagram interchange (how the process is drawn, not what it does)."""
    namespace = etree.QName(element).namespace or ""
    return namespace.rstrip("/").endswith(("/DI", "/DMNDI"))


def canonical(element: etree._Element, skip: frozenset[str] = frozenset()) -> Canonical:
    """An element's meaning as nested tuples; child elements whose id is in `skip` are left out."""
    attributes = tuple(sorted((name, value) for name, value in element.attrib.items()
                              if _DEFAULTS.get(etree.QName(name).localname, "") != value))
    children = [canonical(child, skip) for child in _meaningful_children(element)
                if child.get("id") not in skip]
    if any(child[0] in _UNORDERED for child in children):
        children.sort()
    return (element.tag, attributes, _text(element), tuple(children))


def _meaningful_children(element: etree._Element) -> Iterator[etree._Element]:
    for child in element:
        if isinstance(child.tag, str) and not is_di(child) and child.tag not in _REDUNDANT:
            yield child


def _text(element: etree._Element) -> str:
    text = (element.text or "").replace("\r\n", "\n").strip()
    if element.tag in _JSON_TEXT and text:
        try:
            return json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read: compared as text
            return text
    return text


def meaning_digest(bpmn: bytes, dmns: Mapping[str, bytes]) -> str:
    """A hash of what a process means: equal for uploads that differ only in layout or formatting."""
    digest = hashlib.sha256(repr(_document_meaning(parse_xml(bpmn, "bpmn"))).encode())
    for table in sorted(repr(_document_meaning(parse_xml(content, name))) for name, content in dmns.items()):
        digest.update(b"\0" + table.encode())
    return digest.hexdigest()


def _document_meaning(root: etree._Element) -> Canonical:
    """The root's attributes (ids, exporter, namespaces) carry no meaning: only its children count."""
    return tuple(canonical(child) for child in _meaningful_children(root))


def layout_digest(bpmn: bytes) -> str:
    """A hash of how a process is drawn: each element's bounds, waypoints and label, in any order."""
    return hashlib.sha256(repr(sorted(layout(parse_xml(bpmn, "bpmn")).items())).encode()).hexdigest()


def layout(root: etree._Element) -> dict[str, Canonical]:
    """Drawn element id → its shape (rounded bounds, waypoints, label bounds, expanded or not)."""
    drawn = {}
    for shape in root.iter():
        if isinstance(shape.tag, str) and is_di(shape) and shape.get("bpmnElement") and len(shape):
            points = tuple(_numbers(child) for child in shape if etree.QName(child).localname in ("Bounds",
                                                                                                "waypoint"))
            labels = tuple(_numbers(bounds) for label in shape if etree.QName(label).localname == "BPMNLabel"
                           for bounds in label if etree.QName(bounds).localname == "Bounds")
            drawn[shape.get("bpmnElement")] = (points, labels, shape.get("isExpanded"))
    return drawn


def _numbers(element: etree._Element) -> tuple[float, ...]:
    values = []
    for name in ("x", "y", "width", "height"):
        try:
            values.append(round(float(element.get(name, "0"))))
        except (ValueError, OverflowError):  # not a number, NaN or infinite: drawn nowhere
            values.append(0)
    return tuple(values)


def element_names(bpmn: bytes) -> dict[str, str]:
    """Element id → its name (the id when it has none), for problems and diffs told by name."""
    root = parse_xml(bpmn, "bpmn")
    return {el.get("id"): (el.get("name") or "").strip() or el.get("id") for el in root.iter()
            if isinstance(el.tag, str) and el.get("id") and not is_di(el)}


def read_form_schema(text: str, seconds: float) -> tuple[dict[str, Any] | None, list[Problem]]:
    """A form schema read exactly as deploy reads it, with the problems deploy would report (for previews), its
    check stopped as deploy's is past `seconds` (DEPLOY_LIMITS.max_form_check_seconds)."""
    problems: list[Problem] = []
    with time_limit(seconds):
        return load_schema(text, None, None, problems), problems


def event_choices(bpmn: bytes) -> dict[str, list[str]]:
    """Where a case can stand waiting for an event → the catch events it waits on there: an event-based
    gateway waits on the events its flows lead to, an intermediate catch event or receive task on itself."""
    root = parse_xml(bpmn, "bpmn")
    choices: dict[str, list[str]] = {el.get("id"): [] for el in root.iter(f"{{{BPMN_NS}}}eventBasedGateway")}
    for flow in root.iter(f"{{{BPMN_NS}}}sequenceFlow"):
        if flow.get("sourceRef") in choices:
            choices[flow.get("sourceRef")].append(flow.get("targetRef"))
    for tag in ("intermediateCatchEvent", "receiveTask"):
        choices.update({el.get("id"): [el.get("id")] for el in root.iter(f"{{{BPMN_NS}}}{tag}")})
    return choices


# The kinds of flow node a list of a case's steps shows (gateways decide, they are not steps; an event-based
# gateway is where a case waits, so it is one).
STEP_KINDS = ("startEvent", "userTask", "serviceTask", "businessRuleTask", "scriptTask", "manualTask", "task",
              "sendTask", "receiveTask", "callActivity", "subProcess", "intermediateCatchEvent",
              "intermediateThrowEvent", "eventBasedGateway", "endEvent")


def step_nodes(bpmn: bytes) -> list[tuple[str, str, str]]:
    """The process's steps in document order: (id, kind, name), the name the id when it has none."""
    root = parse_xml(bpmn, "bpmn")
    return [(el.get("id"), etree.QName(el).localname, (el.get("name") or "").strip() or el.get("id"))
            for el in root.iter() if isinstance(el.tag, str) and etree.QName(el).namespace == BPMN_NS
            and etree.QName(el).localname in STEP_KINDS and el.get("id")]
