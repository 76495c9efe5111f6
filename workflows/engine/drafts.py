"""A new process's first diagram, before anything is deployed: a generated template, or a file drawn elsewhere
taken over under the chosen key.

Both are built with lxml, never by pasting text: the key and the name the designer typed become attribute
values that lxml escapes, and the key must pass the BPMN schema's own rule for an id (deploy's XSD check).
"""

from __future__ import annotations

import json
from itertools import pairwise

from lxml import etree

from .compiler import BPMN_NS, NS, SPIFF_NS, _xsd_problems, parse_xml
from .errors import DeploymentError, Problem

BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
NSMAP = {"bpmn": BPMN_NS, "bpmndi": BPMNDI_NS, "dc": DC_NS, "di": DI_NS, "spiffworkflow": SPIFF_NS}
TASK_ID, TASK_NAME, END_ID = "review", "审核", "end_done"
FORM = {"type": "object", "title": "审核", "additionalProperties": False, "required": ["approve"],
        "properties": {"approve": {"type": "boolean", "title": "同意"}}}
# Where each node is drawn: (id, kind, x, y, width, height); the lane holds them all.
_NODES = (("start", "startEvent", 232, 142, 36, 36), (TASK_ID, "userTask", 330, 120, 100, 80),
          (END_ID, "endEvent", 502, 142, 36, 36))
_LANE = (190, 80, 420, 160)  # x, y, width, height; the pool adds 30 px for its title on the left


def new_diagram(key: str, name: str, lane: str) -> bytes:
    """Start -> one user task (a yes/no form) -> `end_done`, in one lane named `lane`, with its diagram."""
    check_process_id(key)
    definitions = _element(None, "definitions", id="Definitions_new", targetNamespace="http://cadreflow.local/bpmn",
                           exporter="CadreFlow", exporterVersion="1.0")
    participant = _element(_element(definitions, "collaboration", id="Collaboration_new"), "participant",
                           id="Participant_new")
    process = _element(definitions, "process", isExecutable="true")
    lane_element = _element(_element(process, "laneSet", id="LaneSet_new"), "lane", id="Lane_new", name=lane)
    for node_id, kind, *_ in _NODES:
        etree.SubElement(lane_element, f"{{{BPMN_NS}}}flowNodeRef").text = node_id
        node = _element(process, kind, id=node_id)
        if kind == "userTask":
            node.set("name", TASK_NAME)
            _form_of(node)
    _flows(process)
    _drawing(definitions)
    _name(process, participant, key, name)
    return _bytes(definitions)


def renamed_diagram(bpmn: bytes, key: str, name: str) -> bytes:
    """An uploaded diagram holding exactly one process, that process now `key` named `name`.

    The file is read as deploy reads hostile files (parse_xml); one with several processes (a collaboration of
    pools) is refused: which one to take is the designer's choice, made in their modeler. What else the file
    gets wrong, deploy reports when the designer validates it in the browser.
    """
    check_process_id(key)
    root = parse_xml(bpmn, "upload.bpmn")
    processes = root.findall("bpmn:process", NS) if etree.QName(root).localname == "definitions" else []
    if len(processes) != 1:
        raise DeploymentError([Problem.of(f"the file must hold exactly one process; it holds {len(processes)}",
                                          f"文件须恰好包含一个流程，此文件包含 {len(processes)} 个")])
    old = processes[0].get("id")
    participant = next((el for el in root.iterfind("bpmn:collaboration/bpmn:participant", NS)
                        if el.get("processRef") == old), None)
    plane = next((el for el in root.iterfind(f"{{{BPMNDI_NS}}}BPMNDiagram/{{{BPMNDI_NS}}}BPMNPlane")
                  if el.get("bpmnElement") == old), None)
    _name(processes[0], participant, key, name)
    processes[0].set("isExecutable", "true")  # the designer brought it here to run it (Camunda may save "false")
    if plane is not None and old:  # a diagram without a pool is drawn on the process itself
        plane.set("bpmnElement", key)
    return _bytes(root)


def check_process_id(key: str) -> None:
    """Refuse a key the BPMN schema does not take as a process's id (deploy's own XSD check, on the key alone)."""
    definitions = _element(None, "definitions", id="Definitions_key", targetNamespace="http://cadreflow.local/bpmn")
    try:
        _element(definitions, "process", id=key, isExecutable="true")
    except ValueError:  # lxml refuses what XML cannot hold (NUL, control characters)
        pass
    else:
        if not list(_xsd_problems(definitions)):
            return
    raise DeploymentError([Problem.of(
        "a process key starts with a letter or _ and holds only letters, digits, _ - . and no spaces, slashes or "
        "other signs", "流程标识须以字母或下划线开头，只能包含字母、数字及 _ - .，不能有空格、斜杠等符号")])


def _name(process: etree._Element, participant: etree._Element | None, key: str, name: str) -> None:
    """Set the key and the name the designer typed, as attribute values lxml escapes."""
    try:
        for element in (process, participant):
            if element is not None:
                element.set("name", name)
    except ValueError as exc:  # NUL and control characters: XML cannot hold them
        raise DeploymentError([Problem.of("the name holds characters XML cannot hold",
                                          "名称含有无法保存的字符")]) from exc
    process.set("id", key)
    if participant is not None:
        participant.set("processRef", key)


def _bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _element(parent: etree._Element | None, tag: str, namespace: str = BPMN_NS, **attributes: str) -> etree._Element:
    if parent is None:
        return etree.Element(f"{{{namespace}}}{tag}", attributes, nsmap=NSMAP)
    return etree.SubElement(parent, f"{{{namespace}}}{tag}", attributes)


def _form_of(task: etree._Element) -> None:
    extensions = _element(task, "extensionElements")
    etree.SubElement(extensions, f"{{{SPIFF_NS}}}formSchema").text = json.dumps(FORM, ensure_ascii=False)


def _flows(process: etree._Element) -> None:
    for (source, *_), (target, *_) in pairwise(_NODES):
        _element(process, "sequenceFlow", id=f"flow_{source}_{target}", sourceRef=source, targetRef=target)


def _drawing(definitions: etree._Element) -> None:
    plane = _element(_element(definitions, "BPMNDiagram", BPMNDI_NS, id="Diagram_new"), "BPMNPlane", BPMNDI_NS,
                     id="Plane_new", bpmnElement="Collaboration_new")
    x, y, width, height = _LANE
    _shape(plane, "Participant_new", x - 30, y, width + 30, height, isHorizontal="true")
    _shape(plane, "Lane_new", x, y, width, height, isHorizontal="true")
    for node_id, _kind, *box in _NODES:
        _shape(plane, node_id, *box)
    for (source, _, sx, sy, sw, sh), (target, _, tx, ty, _tw, th) in pairwise(_NODES):
        edge = _element(plane, "BPMNEdge", BPMNDI_NS, id=f"flow_{source}_{target}_di",
                        bpmnElement=f"flow_{source}_{target}")
        _element(edge, "waypoint", DI_NS, x=str(sx + sw), y=str(sy + sh // 2))
        _element(edge, "waypoint", DI_NS, x=str(tx), y=str(ty + th // 2))


def _shape(plane: etree._Element, element_id: str, x: int, y: int, width: int, height: int,
           **attributes: str) -> None:
    shape = _element(plane, "BPMNShape", BPMNDI_NS, id=f"{element_id}_di", bpmnElement=element_id, **attributes)
    _element(shape, "Bounds", DC_NS, x=str(x), y=str(y), width=str(width), height=str(height))
