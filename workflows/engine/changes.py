"""What changed between two versions of a process, told the way a designer drew it.

Read from the documents (see documents.py), element by element: which were added, removed or changed,
and for a changed one which aspects (its name, lane, form, condition, script, timer, ...); which fields
of each form changed; which decision tables changed; and whether anything but the layout changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from .compiler import NS, parse_xml
from .documents import Canonical, canonical, is_di, layout, meaning_digest

_DESCRIBED = frozenset({
    "task", "userTask", "serviceTask", "scriptTask", "businessRuleTask", "manualTask", "sendTask", "receiveTask",
    "callActivity", "subProcess", "transaction", "adHocSubProcess", "startEvent", "endEvent",
    "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent", "exclusiveGateway", "parallelGateway",
    "inclusiveGateway", "eventBasedGateway", "complexGateway", "sequenceFlow", "lane"})
_ATTRIBUTE_ASPECTS = {"name": "name", "default": "default_flow", "sourceRef": "connection",
                      "targetRef": "connection", "attachedToRef": "attached_to", "calledElement": "called_process",
                      "cancelActivity": "interrupting"}
_CHILD_ASPECTS = {
    "conditionExpression": "condition", "script": "script", "documentation": "documentation",
    "timerEventDefinition": "timer", "messageEventDefinition": "event", "signalEventDefinition": "event",
    "errorEventDefinition": "event", "escalationEventDefinition": "event", "terminateEventDefinition": "event",
    "conditionalEventDefinition": "event", "multiInstanceLoopCharacteristics": "loop",
    "standardLoopCharacteristics": "loop", "flowNodeRef": "members", "formSchema": "form",
    "calledDecisionId": "decision", "properties": "assignee", "preScript": "script", "postScript": "script",
    "instructionsForEndUser": "instructions", "serviceTaskOperator": "service"}


@dataclass(frozen=True)
class ElementChange:
    """One element added, removed or changed, and for a change, which of its aspects."""

    id: str
    kind: str  # the BPMN element type: userTask, sequenceFlow, lane, ...
    name: str
    status: str  # "added" | "removed" | "changed"
    aspects: tuple[str, ...] = ()


@dataclass(frozen=True)
class FormChange:
    """The fields of one element's form added, removed or changed (as (name, title) pairs)."""

    element_id: str
    name: str
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    changed: tuple[tuple[str, str], ...]
    other: bool  # something besides the fields changed (title, required, rules)


@dataclass(frozen=True)
class DocumentDiff:
    """Everything that differs between two versions' documents."""

    elements: tuple[ElementChange, ...]
    forms: tuple[FormChange, ...]
    decisions: tuple[ElementChange, ...]
    process_changed: bool
    layout_changed: bool


def describe_changes(old_bpmn: bytes, old_dmns: Mapping[str, bytes], new_bpmn: bytes,
                     new_dmns: Mapping[str, bytes]) -> DocumentDiff:
    """What changed from the old version's files to the new one's."""
    old_root, new_root = parse_xml(old_bpmn, "old.bpmn"), parse_xml(new_bpmn, "new.bpmn")
    old_elements, new_elements = _elements(old_root), _elements(new_root)
    return DocumentDiff(
        elements=_element_changes(old_elements, new_elements, _lanes(old_root), _lanes(new_root)),
        forms=_form_changes(old_elements, new_elements),
        decisions=_decision_changes(_decisions(old_dmns), _decisions(new_dmns)),
        process_changed=meaning_digest(old_bpmn, old_dmns) != meaning_digest(new_bpmn, new_dmns),
        layout_changed=layout(old_root) != layout(new_root))


def _elements(root: etree._Element) -> dict[str, etree._Element]:
    return {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and not is_di(el)
            and el.get("id") and etree.QName(el).localname in _DESCRIBED}


def _lanes(root: etree._Element) -> dict[str, str]:
    """Flow node id → the name of its innermost lane."""
    members = {}
    for lane in root.iterfind(".//bpmn:lane", NS):
        for ref in lane.iterfind("bpmn:flowNodeRef", NS):
            members[(ref.text or "").strip()] = lane.get("name") or lane.get("id")
    return members


def _element_changes(old: dict[str, etree._Element], new: dict[str, etree._Element], old_lanes: dict[str, str],
                     new_lanes: dict[str, str]) -> tuple[ElementChange, ...]:
    skip = frozenset(old) | frozenset(new)
    changes = [_change(new[i], "added") for i in new if i not in old]
    changes += [_change(old[i], "removed") for i in old if i not in new]
    for element_id in (i for i in new if i in old):
        aspects = set(_aspects(canonical(old[element_id], skip), canonical(new[element_id], skip)))
        if old_lanes.get(element_id) != new_lanes.get(element_id):
            aspects.add("lane")
        if aspects:
            changes.append(_change(new[element_id], "changed", tuple(sorted(aspects))))
    order = {"changed": 0, "added": 1, "removed": 2}
    return tuple(sorted(changes, key=lambda c: (order[c.status], c.kind == "sequenceFlow", c.name, c.id)))


def _change(element: etree._Element, status: str, aspects: tuple[str, ...] = ()) -> ElementChange:
    return ElementChange(element.get("id"), etree.QName(element).localname,
                         (element.get("name") or "").strip() or element.get("id"), status, aspects)


def _aspects(old: Canonical, new: Canonical) -> set[str]:
    """Which aspects differ between two canonical forms of one element."""
    aspects = {_ATTRIBUTE_ASPECTS.get(etree.QName(name).localname, "attributes")
               for name, _ in set(old[1]) ^ set(new[1])}
    if old[2] != new[2]:
        aspects.add("text")
    old_children, new_children = _by_tag(old), _by_tag(new)
    for tag in set(old_children) | set(new_children):
        if old_children.get(tag) != new_children.get(tag):
            local = etree.QName(tag).localname
            if local == "extensionElements":
                aspects |= _aspects_of_children(old_children.get(tag, ()), new_children.get(tag, ()))
            else:
                aspects.add(_CHILD_ASPECTS.get(local, "other"))
    return aspects


def _aspects_of_children(old: tuple[Canonical, ...], new: tuple[Canonical, ...]) -> set[str]:
    old_inner = {child[0]: child for node in old for child in node[3]}
    new_inner = {child[0]: child for node in new for child in node[3]}
    return {_CHILD_ASPECTS.get(etree.QName(tag).localname, "extensions")
            for tag in set(old_inner) | set(new_inner) if old_inner.get(tag) != new_inner.get(tag)}


def _by_tag(node: Canonical) -> dict[str, tuple[Canonical, ...]]:
    grouped: dict[str, list[Canonical]] = {}
    for child in node[3]:
        grouped.setdefault(child[0], []).append(child)
    return {tag: tuple(children) for tag, children in grouped.items()}


def _form_changes(old: dict[str, etree._Element], new: dict[str, etree._Element]) -> tuple[FormChange, ...]:
    changes = []
    for element_id in (i for i in new if i in old):
        before, after = _form(old[element_id]), _form(new[element_id])
        if before is not None and after is not None and before != after:
            changes.append(_fields_changed(element_id, (new[element_id].get("name") or element_id), before, after))
    return tuple(changes)


def _form(element: etree._Element) -> dict[str, Any] | None:
    found = element.find("bpmn:extensionElements/spiffworkflow:formSchema", NS)
    if found is None:
        return None
    try:
        schema = json.loads(found.text or "")
    except ValueError:
        return {"x-unreadable": found.text}
    return schema if isinstance(schema, dict) else {"x-unreadable": found.text}


def _fields_changed(element_id: str, name: str, before: dict[str, Any], after: dict[str, Any]) -> FormChange:
    old_fields, new_fields = _properties(before), _properties(after)
    titled = {**old_fields, **new_fields}

    def pairs(names: set[str]) -> tuple[tuple[str, str], ...]:
        return tuple((n, str(titled[n].get("title") or n)) for n in sorted(names))

    changed = {n for n in set(old_fields) & set(new_fields) if old_fields[n] != new_fields[n]}
    changed |= {n for n in set(old_fields) & set(new_fields) if _required(before, n) != _required(after, n)}
    rest_before = {k: v for k, v in before.items() if k not in ("properties", "required")}
    rest_after = {k: v for k, v in after.items() if k not in ("properties", "required")}
    return FormChange(element_id, name, pairs(set(new_fields) - set(old_fields)),
                      pairs(set(old_fields) - set(new_fields)), pairs(changed), rest_before != rest_after)


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    properties = schema.get("properties")
    return {k: v for k, v in properties.items() if isinstance(v, dict)} if isinstance(properties, dict) else {}


def _required(schema: dict[str, Any], name: str) -> bool:
    required = schema.get("required")
    return isinstance(required, list) and name in required


def _decisions(dmns: Mapping[str, bytes]) -> dict[str, tuple[str, Canonical]]:
    """Decision id → (its name, its canonical table), over every DMN file."""
    found = {}
    for name, content in dmns.items():
        for decision in parse_xml(content, name).iter():
            if isinstance(decision.tag, str) and etree.QName(decision).localname == "decision" and decision.get("id"):
                found[decision.get("id")] = (decision.get("name") or decision.get("id"), canonical(decision))
    return found


def _decision_changes(old: dict[str, tuple[str, Canonical]],
                      new: dict[str, tuple[str, Canonical]]) -> tuple[ElementChange, ...]:
    changes = [ElementChange(i, "decision", new[i][0], "added") for i in sorted(set(new) - set(old))]
    changes += [ElementChange(i, "decision", old[i][0], "removed") for i in sorted(set(old) - set(new))]
    changes += [ElementChange(i, "decision", new[i][0], "changed", ("table",))
                for i in sorted(set(old) & set(new)) if old[i][1] != new[i][1]]
    return tuple(changes)

