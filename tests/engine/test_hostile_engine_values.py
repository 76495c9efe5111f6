"""Values designer code hands the engine that a saved case could not hold, and entries that crashed deploy's
readers: each is an incident at its element (the old state kept, the case still loading) or a deploy problem
naming its element, never a raw error, a case that no longer loads, or data the API cannot answer as JSON."""

from __future__ import annotations

import json
import time

import pytest

from tests.engine.bpmn_builder import KEY, decision_table, script_process
from tests.engine.helpers import ROLES, Driver, incident_of
from workflows.engine import DataRefused, DeploymentError, Incident, ProcessDefinition, compile_process, sandbox
from workflows.engine.documents import layout_digest, meaning_digest


def compile_bpmn(bpmn: bytes, dmns: dict[str, bytes] | None = None) -> ProcessDefinition:
    return compile_process(KEY, bpmn, dmns or {}, ROLES)


def table_process(output_entry: str, input_entry: str = "-") -> ProcessDefinition:
    """script `x = 1` → rule task `decide` (one-rule table `t` on x) → user task `review`."""
    return compile_bpmn(script_process("x = 1", decision="t"), {"t.dmn": decision_table("t", "x", input_entry,
                                                                                          output_entry)})


def assert_loads_as_json(driver: Driver, state: str, data: dict) -> None:
    """The saved state loads back, and its data is strict JSON (no NaN, no Infinity) an API can answer with."""
    assert driver.runner.inspect(driver.definition, state).data == data
    json.dumps(data, allow_nan=False).encode("utf-8")


# F5, F6: a decision's outputs are checked as a script's results ---------------------------------------------

UNSTORABLE_OUTPUTS = {
    "reserved-key": '{"typename": "BpmnWorkflow"}',
    "reserved-key-nested": '[{"a": {"typename": "BpmnWorkflow"}}]',
    "huge-integer": "10**5000",
    "integer-past-64-bits": "2**70",
    "nan": "float('nan')",
    "infinity": "float('inf')",
    "nul": '"a\\x00b"',
    "lone-surrogate": '"\\ud800"',
    "a-set": "{1, 2}",
}


@pytest.mark.parametrize("name", list(UNSTORABLE_OUTPUTS))
def test_unstorable_decision_output_is_an_incident_at_the_table(name):
    """Before: typename stored (the case never loaded again), 10**5000 a raw ValueError, NaN stored as data."""
    driver = Driver(table_process(UNSTORABLE_OUTPUTS[name]))
    incident, step = incident_of(lambda: driver.runner.start(driver.definition, {}, driver.services))
    assert incident.element_id == "decide" and "decision 't'" in incident.message, incident
    assert step is not None and step.open_tasks == () and "result" not in step.data
    assert_loads_as_json(driver, step.state, step.data)


def test_only_what_cannot_be_stored_is_refused():
    """Lists, objects and numbers in range still come out of a table; one integer past 64 bits does not."""
    driver = Driver(table_process('{"grade": [1, 2.5, -(2**62)], "ok": True}'))
    step = driver.start()
    assert step.incident is None and step.data["result"] == {"grade": [1, 2.5, -(2**62)], "ok": True}
    driver = Driver(table_process('{"grade": [1, 2.5, -(2**64)], "ok": True}'))
    assert driver.start().incident is not None


# F5: expressions cannot change case data in place -----------------------------------------------------------

MUTATING = {
    "condition": {"condition": 'd.update({"typename": "BpmnWorkflow"}) is None'},
    "condition-through-type": {"condition": 'dict.update(d, {"typename": "BpmnWorkflow"}) is None'},
}


@pytest.mark.parametrize("name", list(MUTATING))
def test_expressions_cannot_change_case_data(name):
    """Before: a condition's d.update(...) stored typename in case data; every later step was a 500."""
    driver = Driver(compile_bpmn(script_process("d = {}", **MUTATING[name])))
    step = driver.start()
    assert step.incident is None and step.data["d"] == {}
    assert [t.element_id for t in step.open_tasks] == ["review"]
    step = driver.complete("review", ok=True)
    assert step.completed and step.data["d"] == {}


def test_a_decision_input_entry_cannot_change_case_data():
    """A table cell is an expression too: `?.append(1)` on the input list leaves the list alone."""
    bpmn = script_process("x = [0]", decision="t")
    driver = Driver(compile_bpmn(bpmn, {"t.dmn": decision_table("t", "x", "?.append(1) is None", '"hit"')}))
    step = driver.start()
    assert step.data["x"] == [0] and step.data["result"] == "hit"


def test_data_that_reaches_the_case_by_another_path_is_refused_before_it_is_saved(monkeypatch):
    """The last check: were an expression to change data in place after all, the step is refused (Incident,
    nothing saved) rather than saving a case that cannot load."""
    monkeypatch.setattr(sandbox, "_reads_attributes", lambda source: False)  # the copy taken away
    driver = Driver(compile_bpmn(script_process("d = {}", condition='d.update({"typename": "x"}) is None')))
    with pytest.raises(Incident, match="typename"):
        driver.runner.start(driver.definition, {}, driver.services)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


# F6: scripts and submitted data ----------------------------------------------------------------------------

@pytest.mark.parametrize("script", [
    "x = float('nan')", "x = float('-inf')", "x = 10 ** 4000", "x = {'a': [2 ** 64]}", "x = 'a\\x00'",
    "x = '\\udfff'", "x = []\nfor i in range(100):\n    x = [x]",
])
def test_unstorable_script_results_are_incidents(script):
    """Before: NaN, NUL and lone surrogates were stored; a 4000-digit integer too; a list nested 100 deep
    failed only as a RecursionError of the encoder."""
    driver = Driver(compile_bpmn(script_process(script)))
    incident, step = incident_of(lambda: driver.runner.start(driver.definition, {}, driver.services))
    assert incident.element_id == "run_script", incident
    assert step is not None and "x" not in step.data
    assert_loads_as_json(driver, step.state, step.data)


@pytest.mark.parametrize("data", [{"n": float("nan")}, {"n": 10**30}, {"t": "\x00"}, {"a": nested(70)}])
def test_unstorable_start_data_is_refused(data):
    """Start data is held to the same check (422 at the service), before anything runs."""
    driver = Driver(compile_bpmn(script_process()))
    with pytest.raises(DataRefused):
        driver.runner.start(driver.definition, data, driver.services)


# F9: size guards through the type and behind a mapping key ---------------------------------------------------

@pytest.mark.parametrize("script", [
    'x = len("%(a)0700000000d" % {"a": 1})',
    'x = len("%((a))0700000000d" % {"(a)": 1})',
    'x = len("%(a).700000000f" % {"a": 1.0})',
    "x = len(str.center('a', 700000000))",
    "x = len(str.zfill('1', 500000000))",
    "x = list(map(str.ljust, ['a'], [500000000]))",
])
def test_padding_through_the_type_or_a_mapping_key_is_refused(script):
    """Before: each built a string of hundreds of megabytes (the guards saw only 'a'.center and '%0Nd')."""
    driver = Driver(compile_bpmn(script_process(script)), script_timeout=5.0)
    began = time.monotonic()
    incident, _step = incident_of(lambda: driver.runner.start(driver.definition, {}, driver.services))
    assert time.monotonic() - began < 5
    assert incident.element_id == "run_script" and "not allowed" in incident.message, incident


def test_ordinary_formatting_runs_and_the_same_width_behind_a_key_is_refused():
    """Mapping keys, flags, small widths and `%%` format as before; a key no longer hides a width."""
    script = 'x = "%(n)05d|%%|%(s)-4s|%(f).2f" % {"n": 7, "s": "a", "f": 1.5} + "%3d" % 1'
    assert Driver(compile_bpmn(script_process(script))).start().data["x"] == "00007|%|a   |1.50  1"
    incident, _step = start_incident('x = "%(n)010000d" % {"n": 7}')
    assert "not allowed" in incident.message


def start_incident(script: str):
    driver = Driver(compile_bpmn(script_process(script)))
    return incident_of(lambda: driver.runner.start(driver.definition, {}, driver.services))


# F7: decision table entries deploy's table checks could not read ---------------------------------------------

@pytest.mark.parametrize("entry", ["?" + "+1" * 9000, "? == " + "-" * 15000 + "1"])
def test_entries_too_deep_for_the_table_checks_are_refused_naming_the_rule(entry):
    """Before: RecursionError / MemoryError out of dmn_checks (a 500 at deploy)."""
    with pytest.raises(DeploymentError) as caught:
        table_process('"b"', entry)
    found = [p for p in caught.value.problems if p.element_id == "decide"]
    assert found and "DMN rule 1 input" in found[0].message, caught.value.problems


def test_a_comparison_with_a_number_past_float_deploys_and_runs():
    """Before: OverflowError (float() of a 401-digit integer). The entry is valid and runs correctly, so deploy
    accepts it (the table checks leave it unanalysed) and it decides as Python compares."""
    big = "1" + "0" * 400
    definition = compile_bpmn(script_process("x = 1", decision="t"),
                              {"t.dmn": decision_table("t", "x * 10 ** 401", f"> {big}", '"above"')})
    assert Driver(definition).start().data["result"] == "above"


def test_overlaps_are_still_found_beside_a_number_past_float():
    """The table checks still read ordinary entries: `> 5` and `> 3` overlap under UNIQUE, and the rule beside
    them comparing with a 401-digit number no longer crashes them."""
    rule = '<rule id="rule_{n}"><inputEntry id="r{n}i"><text>{entry}</text></inputEntry>' \
           '<outputEntry id="r{n}o"><text>"b"</text></outputEntry></rule>'
    extra = rule.format(n=2, entry="&gt; 3") + rule.format(n=3, entry="&lt; -1" + "0" * 400)
    dmn = decision_table("t", "x", "> 5", '"a"').replace(b"</rule>", b"</rule>" + extra.encode(), 1)
    with pytest.raises(DeploymentError) as caught:
        compile_bpmn(script_process("x = 1", decision="t"), {"t.dmn": dmn})
    assert [p.message for p in caught.value.problems if "overlap" in p.message_en or "both match" in p.message_en]
    assert all("rules 1 and 2" in p.message for p in caught.value.problems), caught.value.problems


# F8: what deploy's readers of a document met ------------------------------------------------------------------

def test_a_deep_form_schema_in_documentation_is_compared_as_text():
    """Before: RecursionError from json.loads in the canonical form (a 500 at validate and deploy)."""
    deep = "[" * 5000 + "]" * 5000
    bpmn = script_process().replace(b'<bpmn:startEvent id="start" name="\xe5\xbc\x80\xe5\xa7\x8b"/>', (
        '<bpmn:startEvent id="start" name="开始"><bpmn:documentation><spiffworkflow:formSchema>'
        f"{deep}</spiffworkflow:formSchema></bpmn:documentation></bpmn:startEvent>").encode())
    assert deep.encode() in bpmn
    assert meaning_digest(bpmn, {}) != meaning_digest(bpmn.replace(deep.encode(), b"[]"), {})


@pytest.mark.parametrize("value", ["INF", "-inf", "1e999"])
def test_shapes_drawn_at_infinity_are_drawn_nowhere(value):
    """Before: OverflowError from round(inf) in the layout (a 500 at validate and deploy)."""
    bpmn = script_process().replace(b"</bpmn:definitions>", (
        '<bpmndi:BPMNDiagram xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
        'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" id="d1"><bpmndi:BPMNPlane id="p1" bpmnElement="x">'
        f'<bpmndi:BPMNShape id="s1" bpmnElement="start"><dc:Bounds x="{value}" y="0" width="36" height="36"/>'
        "</bpmndi:BPMNShape></bpmndi:BPMNPlane></bpmndi:BPMNDiagram></bpmn:definitions>").encode())
    assert layout_digest(bpmn) == layout_digest(bpmn.replace(f'x="{value}"'.encode(), b'x="0"'))
