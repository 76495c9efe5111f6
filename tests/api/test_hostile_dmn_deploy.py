"""A designer's decision tables, conditions and diagrams over the real API: what deploy accepts runs (a value a
case cannot store is an incident at its element, shown and retryable), what deploy's readers cannot read is a
422 naming the element, and nothing is a 500 or a case that no longer loads."""

from __future__ import annotations

import io
import json

import pytest

from tests.api.support import assert_error, key_maker, shared_api
from tests.engine.bpmn_builder import decision_table, script_process

FORM_DATA = {"ok": True}


@pytest.fixture(scope="module")
def hostile_api(template, tmp_path_factory):
    yield from shared_api(template, tmp_path_factory, "hostile-dmn", SCRIPT_TIMEOUT_SECONDS=1.0)


unique_key = key_maker("hostile_dmn")


def deploy(api, key, bpmn, dmn=None):
    files = {"file0": (io.BytesIO(bpmn), f"{key}.bpmn")}
    if dmn is not None:
        files["file1"] = (io.BytesIO(dmn), "t.dmn")
    return api.post(f"/api/processes/{key}/versions", as_="designer", data=files, content_type="multipart/form-data")


def validate(api, key, bpmn):
    return api.post(f"/api/processes/{key}/validate", as_="designer", data=bpmn, content_type="application/xml")


def start(api, key):
    return api.post("/api/cases", json={"process": key, "cadre_id": "c1", "data": {}})


def strict_json(response) -> dict:
    """The body parsed as strict JSON: NaN or Infinity in an answer would fail here."""
    def refuse(name):
        raise AssertionError(f"{name} in a JSON answer")
    return json.loads(response.get_data(as_text=True), parse_constant=refuse)


def table_key(api, output_entry, input_entry="-"):
    key = unique_key()
    response = deploy(api, key, script_process("x = 1", key=key, decision="t"),
                      decision_table("t", "x", input_entry, output_entry))
    assert response.status_code == 201, response.json
    return key


def assert_case_readable(api, case_id) -> dict:
    for path in (f"/api/cases/{case_id}", f"/api/cases/{case_id}/history", f"/api/cases/{case_id}/diagram"):
        response = api.get(path)
        assert response.status_code == 200, (path, response.status_code, response.get_data()[:300])
        strict_json(response)
    return api.case(case_id)


# F5, F6 at run time.

@pytest.mark.parametrize("output", ['{"typename": "BpmnWorkflow"}', "10**5000", "float('nan')", "float('inf')"])
def test_an_unstorable_decision_output_is_an_incident_the_case_survives(hostile_api, output):
    """Before: typename stored (201), then every completion and the case page a 500 for good; 10**5000 made
    every start a 500; NaN and Infinity were stored and answered as invalid JSON. Now: the case stands in
    incident at the table, readable, and goes on once a fixed table is deployed, migrated and retried."""
    key = table_key(hostile_api, output)
    started = start(hostile_api, key)
    assert started.status_code == 201, started.get_data()[:300]
    case = strict_json(started)
    assert case["status"] == "incident" and case["incident"]["element_id"] == "decide", case
    assert "decision 't'" in case["incident"]["message"] and "result" not in case["data"]
    assert_case_readable(hostile_api, case["id"])
    again = hostile_api.post(f"/api/cases/{case['id']}/retry", as_="admin")  # same table: the same incident
    assert again.status_code in (200, 409), again.get_data()[:300]
    assert assert_case_readable(hostile_api, case["id"])["status"] == "incident"

    fixed = deploy(hostile_api, key, script_process("x = 1", key=key, decision="t"),
                   decision_table("t", "x", "-", '"fine"'))
    assert fixed.status_code == 201, fixed.json
    assert hostile_api.post(f"/api/cases/{case['id']}/migrate", as_="admin").status_code == 200
    assert hostile_api.post(f"/api/cases/{case['id']}/retry", as_="admin").status_code == 200
    case = assert_case_readable(hostile_api, case["id"])
    assert case["status"] == "open" and case["data"]["result"] == "fine", case
    task = case["open_tasks"][0]
    completed = hostile_api.complete_raw(task["id"], "org_dept", FORM_DATA)
    assert completed.status_code == 200, completed.get_data()[:300]
    assert hostile_api.case(case["id"])["status"] == "completed"


def test_a_condition_cannot_put_the_reserved_key_into_case_data(hostile_api):
    """Before: `d.update({"typename": ...}) is None` as a gateway condition stored the key in place; the start
    answered 201, then every completion was a 500 (saved case state cannot be loaded)."""
    key = unique_key()
    bpmn = script_process("d = {}", key=key, condition='d.update({"typename": "BpmnWorkflow"}) is None')
    assert deploy(hostile_api, key, bpmn).status_code == 201
    started = start(hostile_api, key)
    assert started.status_code == 201, started.json
    case = started.json
    assert case["data"]["d"] == {} and [t["element_id"] for t in case["open_tasks"]] == ["review"]
    completed = hostile_api.complete_raw(case["open_tasks"][0]["id"], "org_dept", FORM_DATA)
    assert completed.status_code == 200, completed.get_data()[:300]
    assert assert_case_readable(hostile_api, case["id"])["status"] == "completed"


@pytest.mark.parametrize("script", [
    "x = len(str.center('a', 700000000))", "x = len(str.zfill('1', 500000000))",
    'x = len("%(a)0700000000d" % {"a": 1})', "x = float('nan')",
])
def test_unbounded_padding_and_unstorable_script_values_are_incidents(hostile_api, script):
    """Before: the padding built hundreds of megabytes through the type or behind a mapping key, and NaN was
    stored and answered as invalid JSON."""
    key = unique_key()
    assert deploy(hostile_api, key, script_process(script, key=key)).status_code == 201
    started = start(hostile_api, key)
    assert started.status_code == 201, started.get_data()[:300]
    case = strict_json(started)
    assert case["status"] == "incident" and case["incident"]["element_id"] == "run_script", case
    assert "x" not in case["data"]


# F7 at deploy.

@pytest.mark.parametrize("entry", ["?" + "+1" * 9000, "? == " + "-" * 15000 + "1"])
def test_a_table_entry_too_deep_to_read_is_a_422_naming_the_rule(hostile_api, entry):
    """Before: RecursionError / MemoryError in deploy's table checks, a 500."""
    key = unique_key()
    response = deploy(hostile_api, key, script_process("x = 1", key=key, decision="t"),
                      decision_table("t", "x", entry, '"b"'))
    error = assert_error(response, 422)
    assert any(e.get("element_id") == "decide" and "DMN rule 1 input" in e["message"] for e in error["errors"]), error
    assert hostile_api.get(f"/api/processes/{key}").status_code == 404


def test_a_comparison_with_a_number_past_float_deploys_and_decides(hostile_api):
    """Before: OverflowError in deploy's table checks, a 500. A valid entry: it deploys and decides."""
    key = table_key(hostile_api, '"big"', "> 1" + "0" * 400)
    case = start(hostile_api, key).json
    assert case["status"] == "open" and case["data"]["result"] is None  # x = 1 matches no rule


# F8 at validate and deploy.

def test_a_deep_form_schema_in_documentation_and_a_shape_at_infinity_never_500(hostile_api):
    """Before: RecursionError (json.loads in the canonical form) and OverflowError (round(inf) in the layout),
    a 500 at validate and at deploy; both are only documentation and drawing, so they validate and deploy."""
    key = unique_key()
    deep = "[" * 5000 + "]" * 5000
    bpmn = script_process("x = 1", key=key).decode().replace(
        '<bpmn:startEvent id="start" name="开始"/>',
        '<bpmn:startEvent id="start" name="开始"><bpmn:documentation><spiffworkflow:formSchema>'
        f"{deep}</spiffworkflow:formSchema></bpmn:documentation></bpmn:startEvent>").replace(
        "</bpmn:definitions>",
        '<bpmndi:BPMNDiagram xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" '
        'xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" id="d1">'
        f'<bpmndi:BPMNPlane id="p1" bpmnElement="{key}"><bpmndi:BPMNShape id="s1" bpmnElement="start">'
        '<dc:Bounds x="INF" y="0" width="36" height="36"/></bpmndi:BPMNShape></bpmndi:BPMNPlane>'
        "</bpmndi:BPMNDiagram></bpmn:definitions>").encode()
    checked = validate(hostile_api, key, bpmn)
    assert checked.status_code == 200 and checked.json["valid"], checked.get_data()[:300]
    deployed = deploy(hostile_api, key, bpmn)
    assert deployed.status_code == 201, deployed.get_data()[:300]
    assert start(hostile_api, key).json["status"] == "open"
