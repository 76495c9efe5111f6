"""What a process means and how it is drawn: the canonical comparison behind "no change", and the diff.

Decided: uploads that differ only in formatting (attribute order, whitespace, comments, defaults a modeler
drops, redundant incoming/outgoing, a form's JSON layout, DMN file names) mean the same process and are
drawn the same; a change of positions only (DI) is a layout change; everything else changes the process,
including the order of sequence flows (it decides which gateway condition is tried first).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from tests.engine.bpmn_builder import KEY, chain_process
from tests.engine.helpers import BPMN_DIR, ROLES
from workflows.engine import (
    DeploymentError,
    compile_process,
    describe_changes,
    element_names,
    layout_digest,
    meaning_digest,
)
from workflows.engine.compiler import NS

ADMONISHMENT = (BPMN_DIR / "admonishment.bpmn").read_bytes()
SANCTION_DMN = (BPMN_DIR / "sanction_ladder.dmn").read_bytes()
EXPORTS = Path(__file__).parent / "fixtures" / "bpmn-js-export"  # shipped diagrams saved untouched by the modeler


def rewrite(content: bytes, edit) -> bytes:
    """Parse, let `edit` change the tree, serialise again (lxml's own formatting)."""
    root = etree.fromstring(content)
    edit(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def same_process(a: bytes, b: bytes, dmns_a=None, dmns_b=None) -> bool:
    return meaning_digest(a, dmns_a or {}) == meaning_digest(b, dmns_b or {})


def reverse_attributes(root):
    for element in root.iter():
        if isinstance(element.tag, str):
            attributes = list(element.attrib.items())
            element.attrib.clear()
            for name, value in reversed(attributes):
                element.set(name, value)


def reindent(root):
    etree.indent(root, space="\t")


def add_comments_and_defaults(root):
    root.insert(0, etree.Comment(" exported by another modeler "))
    for task in root.iterfind(".//bpmn:userTask", NS):
        task.set("startQuantity", "1")
        task.set("completionQuantity", "1")
    for boundary in root.iterfind(".//bpmn:boundaryEvent", NS):
        if boundary.get("cancelActivity") == "true":
            del boundary.attrib["cancelActivity"]


def add_incoming_outgoing(root):
    for flow in root.iterfind(".//bpmn:sequenceFlow", NS):
        source = root.find(f".//*[@id='{flow.get('sourceRef')}']")
        outgoing = etree.SubElement(source, f"{{{NS['bpmn']}}}outgoing")
        outgoing.text = flow.get("id")


def pretty_forms(root):
    for form in root.iterfind(".//spiffworkflow:formSchema", NS):
        form.text = json.dumps(json.loads(form.text), indent=2, sort_keys=True, ensure_ascii=True)


def reorder_di(root):
    plane = root.find(".//{http://www.omg.org/spec/BPMN/20100524/DI}BPMNPlane")
    plane[:] = list(reversed(list(plane)))


@pytest.mark.parametrize("edit", [reverse_attributes, reindent, add_comments_and_defaults, add_incoming_outgoing,
                                  pretty_forms, reorder_di])
def test_a_reformatted_export_is_the_same_process_drawn_the_same(edit):
    """Attribute order, whitespace, comments, dropped defaults, incoming/outgoing, form JSON layout and DI
    order change neither the meaning nor the layout."""
    exported = rewrite(ADMONISHMENT, edit)
    assert exported != ADMONISHMENT
    assert same_process(ADMONISHMENT, exported)
    assert layout_digest(ADMONISHMENT) == layout_digest(exported)


def test_moving_a_shape_changes_the_layout_only():
    """A shape moved by 40 px: the same process, another layout."""
    def move(root):
        bounds = root.find(".//*[@bpmnElement='intake_review']/{http://www.omg.org/spec/DD/20100524/DC}Bounds")
        bounds.set("x", str(float(bounds.get("x")) + 40))
    moved = rewrite(ADMONISHMENT, move)
    assert same_process(ADMONISHMENT, moved)
    assert layout_digest(ADMONISHMENT) != layout_digest(moved)
    diff = describe_changes(ADMONISHMENT, {}, moved, {})
    assert (diff.process_changed, diff.layout_changed, diff.elements, diff.forms) == (False, True, (), ())


@pytest.mark.parametrize(("old", "new"), [
    ('name="受理审核"', 'name="受理审核（新）"'),
    ('"title": "理由"', '"title": "诫勉理由"'),
    ("<bpmn:documentation>", "<bpmn:documentation>修订："),
])
def test_a_changed_name_form_or_text_is_another_process(old, new):
    """A name, a form title or a documentation text changed: another process (whatever the layout)."""
    text = ADMONISHMENT.decode()
    assert old in text
    assert not same_process(ADMONISHMENT, text.replace(old, new, 1).encode())


def test_the_order_of_sequence_flows_matters():
    """Swapping two sequence flows is a change: a gateway tries its conditions in document order."""
    def swap(root):
        process = root.find("bpmn:process", NS)
        flows = process.findall("bpmn:sequenceFlow", NS)
        first, second = flows[0], flows[1]
        index = list(process).index(first)
        process.remove(second)
        process.insert(index, second)
    assert not same_process(ADMONISHMENT, rewrite(ADMONISHMENT, swap))


def test_decision_tables_count_by_content_not_file_name():
    """The same table under another file name is no change; a comment neither; an edited rule is."""
    assert same_process(ADMONISHMENT, ADMONISHMENT, {"a.dmn": SANCTION_DMN}, {"renamed.dmn": SANCTION_DMN})
    commented = SANCTION_DMN.replace(b"</decision>", b"<!-- note --></decision>", 1)
    assert same_process(ADMONISHMENT, ADMONISHMENT, {"a.dmn": SANCTION_DMN}, {"a.dmn": commented})
    edited = SANCTION_DMN.replace(b'"public_apology"', b'"suspension"', 1)
    assert not same_process(ADMONISHMENT, ADMONISHMENT, {"a.dmn": SANCTION_DMN}, {"a.dmn": edited})
    diff = describe_changes(ADMONISHMENT, {"a.dmn": SANCTION_DMN}, ADMONISHMENT, {"b.dmn": edited})
    assert [(d.id, d.status, d.aspects) for d in diff.decisions] == [("sanction_ladder", "changed", ("table",))]


def test_unreadable_xml_is_a_deployment_error_not_a_crash():
    """Comparing refuses what deploy refuses: malformed XML and DOCTYPEs raise DeploymentError."""
    for content in (b"<bpmn", b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "x">]><x>&e;</x>'):
        with pytest.raises(DeploymentError):
            meaning_digest(content, {})


def chain(*ids, lanes=None):
    tasks = [(i, f'<spiffworkflow:formSchema>{{"type": "object", "title": "{i}"}}</spiffworkflow:formSchema>')
             for i in ids]
    return chain_process(tasks, lanes or {"org_dept": list(ids)})


def test_describe_changes_names_elements_and_aspects():
    """Added, removed and changed elements come with their names; a task moved to another lane says so."""
    old = chain("a", "b")
    new = chain("a", "c", lanes={"discipline": ["a"], "org_dept": ["c"]})
    diff = describe_changes(old, {}, new, {})
    by_id = {(e.id, e.status): e for e in diff.elements}
    assert ("c", "added") in by_id and ("b", "removed") in by_id
    assert by_id[("a", "changed")].aspects == ("lane",)
    assert by_id[("c", "added")].kind == "userTask"
    assert diff.process_changed


def test_describe_changes_lists_form_fields():
    """A form gaining a field, losing one and changing one is told field by field, with titles."""
    old = ADMONISHMENT.decode()
    new = old.replace('"reason": {"type": "string", "title": "理由", "minLength": 1}',
                      '"reason": {"type": "string", "title": "理由", "minLength": 5}, '
                      '"urgency": {"type": "string", "title": "紧急程度"}', 1)
    assert new != old
    diff = describe_changes(ADMONISHMENT, {}, new.encode(), {})
    assert [(e.id, e.aspects) for e in diff.elements] == [("intake_review", ("form",))]
    (form,) = diff.forms
    assert (form.element_id, form.added, form.removed, form.changed) == (
        "intake_review", (("urgency", "紧急程度"),), (), (("reason", "理由"),))


def test_element_names_fall_back_to_ids():
    """Problems and diffs name elements: by their name, or their id when they have none."""
    names = element_names(ADMONISHMENT)
    assert names["intake_review"] == "受理审核"
    assert names["Flow_start__intake_review"] == "Flow_start__intake_review"


def test_problems_carry_each_language_alone():
    """Every deploy problem has a Chinese text without English words and an English text without Chinese,
    besides the bilingual `message` existing clients read (ids and names aside)."""
    good = chain("a", "b").decode()
    bad = good.replace('name="org_dept"', 'name="nobody_role"').replace('{"type": "object", "title": "b"}',
                                                                       '{"type": "array"}')
    assert bad != good
    with pytest.raises(DeploymentError) as caught:
        compile_process(KEY, bad.encode(), {}, ROLES)
    problems = caught.value.problems
    english = " | ".join(p.message_en for p in problems)
    assert "lane 'nobody_role' is not a known role" in english and "form schema must be an object schema" in english
    for problem in problems:
        assert problem.message_zh and problem.message_en, problem
        assert problem.message.startswith(problem.message_en), problem
        assert not any("\u4e00" <= ch <= "\u9fff" for ch in problem.message_en), problem
        assert any("\u4e00" <= ch <= "\u9fff" for ch in problem.message_zh), problem


@pytest.mark.parametrize("name", sorted(p.name for p in EXPORTS.glob("*.bpmn")))
def test_the_modelers_own_export_of_a_shipped_diagram_is_no_change(name):
    """Each shipped diagram opened in the modeler (bpmn-js 18) and saved untouched: same process, same layout."""
    exported = (EXPORTS / name).read_bytes()
    shipped = (BPMN_DIR / name).read_bytes()
    assert exported != shipped
    assert same_process(shipped, exported) and layout_digest(shipped) == layout_digest(exported)
