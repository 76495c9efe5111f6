"""Hostile form schemas from designers (start and task forms): whatever would 500 at a start, a completion or a
page is refused at deploy with a 422 naming the element; what deploy accepts starts, and its pages render."""

from __future__ import annotations

import uuid

import pytest

from service.errors import Invalid
from service.usecases import casefile
from service.usecases.forms import validate_form
from tests.api.support import app_from_template, assert_error, make_api
from tests.engine.bpmn_builder import FORM, chain_process, form_schema
from tests.web.test_web_shell import login


@pytest.fixture(scope="module")
def forms_app(template, tmp_path_factory):
    app = app_from_template(template, tmp_path_factory.mktemp("hostile-forms"))
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture(scope="module")
def forms_api(forms_app, template):
    api = make_api(forms_app, template)
    api.create_cadre("c1")
    return api


def process(key: str, start: dict | None = None, task: dict | None = None) -> bytes:
    """start (with `start` as its form) → user task `review` (form `task`, lane org_dept) → end."""
    bpmn = chain_process([("review", form_schema(task or FORM))], {"org_dept": ["review"]}, key).decode()
    if start is not None:
        bpmn = bpmn.replace('<bpmn:startEvent id="start"/>', '<bpmn:startEvent id="start"><bpmn:extensionElements>'
                            f"{form_schema(start)}</bpmn:extensionElements></bpmn:startEvent>")
    return bpmn.encode()


def deploy(api, key: str, bpmn: bytes):
    return api.post(f"/api/processes/{key}/versions", as_="designer", data=bpmn, content_type="application/xml")


def doubling(levels: int) -> dict:
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(levels)}
    defs[f"d{levels}"] = {"type": "string"}
    return {"type": "object", "$defs": defs, "properties": {"a": {"$ref": "#/$defs/d0"}}}


def task_form(**props: dict) -> dict:
    return {"type": "object", "properties": {"ok": {"type": "boolean"}, **props}, "required": ["ok"]}


HOSTILE = {  # name: (start form, task form, what the problem says)
    "ref-loop": ({"type": "object", "$ref": "#"}, None, "loops back"),
    "ref-nowhere": ({"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}}, None, "points to no schema"),
    "ref-id-remote": ({"type": "object", "properties": {"a": {"$id": "http://example.org/x", "$ref": "#/foo"}}}, None,
                      "$id is not allowed"),
    "task-ref-nowhere": (None, task_form(a={"$ref": "#/$defs/none"}), "points to no schema"),
    # str.isdigit holds for "²" and for thousands of digits, which int refuses: no list index either way
    "ref-superscript-index": ({"type": "object", "allOf": [{"type": "object"}],
                               "properties": {"a": {"$ref": "#/allOf/²"}}}, None, "points to no schema"),
    "ref-huge-index": ({"type": "object", "allOf": [{"type": "object"}],
                        "properties": {"a": {"$ref": "#/allOf/" + "9" * 5000}}}, None, "points to no schema"),
    "task-ref-loop": (None, task_form(a={"type": "object", "properties": {"b": {"$ref": "#/properties/a"}}}),
                      "loops back"),
    "doubling-14": (doubling(14), None, "DEPLOY_LIMITS.max_form_nodes"),
    "task-doubling-20": (None, doubling(20), "DEPLOY_LIMITS.max_form_nodes"),
    "subschema-dialect": ({"type": "object", "properties": {"a": {
        "$schema": "http://json-schema.org/draft-07/schema#", "pattern": "^(a+)+$"}}}, None, "$schema is not allowed"),
    "user-role-list": ({"type": "object", "properties": {"a": {"type": "string", "x-user-role": ["org_dept"]}}},
                       None, "x-user-role must be"),
    "task-user-role-list": (None, task_form(who={"type": "string", "x-user-role": ["org_dept"]}),
                            "x-user-role must be"),
    "user-role-empty": ({"type": "object", "properties": {"a": {"type": "string", "x-user-role": ""}}}, None,
                        "x-user-role must be"),
    "cadre-text": ({"type": "object", "properties": {"a": {"type": "string", "x-cadre": "yes"}}}, None,
                   "x-cadre must be"),
    "enum-names-short": ({"type": "object", "properties": {"a": {"type": "string", "enum": ["x", "y"],
                                                                 "x-enumNames": ["X"]}}},
                         None, "x-enumNames must name"),
    "task-enum-names-short": (None, task_form(a={"enum": ["x", "y"], "x-enumNames": ["X"]}), "x-enumNames must name"),
    "enum-names-without-enum": ({"type": "object", "properties": {"a": {"type": "string", "x-enumNames": ["X"]}}},
                                None, "x-enumNames must name"),
    "enum-names-not-text": ({"type": "object", "properties": {"a": {"enum": ["x"], "x-enumNames": [{"zh": "X"}]}}},
                            None, "x-enumNames must be a list of strings"),
    "pattern-message-not-text": ({"type": "object", "properties": {"a": {"type": "string", "pattern": "^a",
                                                                         "x-pattern-message": ["?"]}}}, None,
                                 "x-pattern-message must be a string"),
    # Before: deployed; a start answering `results` with text made every completion of the case fail, and a form
    # asking for `typename` could never be sent (the serializer's key is refused in case data).
    "results-field": ({"type": "object", "properties": {"results": {"type": "string"}}}, None, "reserved"),
    "task-results-field": (None, task_form(results={"type": "string"}), "reserved"),
    "task-typename-field": (None, task_form(typename={"type": "string"}), "reserved"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_forms_are_refused_at_deploy_naming_the_element(forms_api, name):
    start, task, says = HOSTILE[name]
    key = f"hostile_form_{uuid.uuid4().hex[:8]}"
    problems = assert_error(deploy(forms_api, key, process(key, start, task)), 422, "invalid_process")["errors"]
    element = "start" if start is not None else "review"
    assert any(p.get("element_id") == element and says in p["message"] for p in problems), problems
    assert forms_api.get(f"/api/processes/{key}").status_code == 404


BOOLEAN_START = {"type": "object", "properties": {
    "note": True, "kind": {"type": "string", "title": "种类", "enum": ["x", "y"], "x-enumNames": ["甲", "乙"]}}}
BOOLEAN_TASK = task_form(extra=True)


def test_boolean_field_schemas_deploy_start_complete_and_their_pages_render(forms_app, forms_api):
    key = f"bool_form_{uuid.uuid4().hex[:8]}"
    assert deploy(forms_api, key, process(key, BOOLEAN_START, BOOLEAN_TASK)).status_code == 201
    assert forms_api.put(f"/api/processes/{key}/starters", json={"roles": ["org_dept"]}).status_code == 200
    case_id = forms_api.start(key, "c1", as_="org_dept", note={"any": "value"}, kind="y")["id"]
    task_id = forms_api.open_task(case_id, "review")["id"]
    client = forms_app.test_client()
    login(client, "org_dept")
    case_page = client.get(f"/cases/{case_id}")
    assert case_page.status_code == 200 and "乙" in case_page.get_data(as_text=True)
    assert client.get(f"/tasks/{task_id}").status_code == 200
    done = forms_api.post(f"/api/tasks/{task_id}/complete", as_="org_dept",
                          json={"data": {"ok": True, "extra": [1, 2]}})
    assert done.status_code == 200, done.json
    assert client.get(f"/cases/{case_id}").status_code == 200


def test_labels_of_a_form_deployed_before_deploy_checked_them_fall_back_to_the_values():
    schema = {"type": "object", "properties": {"a": True, "b": {"enum": ["x", "y"], "x-enumNames": ["X"]},
                                               "c": {"enum": ["x"], "x-enumNames": "X", "title": ["?"]}}}
    shown = {f["name"]: (f["label"], f["display"]) for f in casefile.describe(schema, {"a": 1, "b": "y", "c": "x"})}
    assert shown == {"a": ("a", 1), "b": ("b", "y"), "c": ("c", "x")}


@pytest.mark.parametrize("schema", [
    {"type": "object", "$ref": "#"},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}},
    {"type": "object", "properties": {"a": {"$id": "http://example.org/x", "$ref": "#/foo"}}},
])
def test_a_broken_form_deployed_before_deploy_refused_it_refuses_the_data_not_500(schema):
    with pytest.raises(Invalid) as caught:
        validate_form(schema, {"a": "x"}, lambda user, role: True)
    assert "_form" in caught.value.fields


def test_a_user_role_that_is_not_text_is_not_looked_up():
    schema = {"type": "object", "properties": {"a": {"type": "string", "x-user-role": ["org_dept"]}}}
    looked_up = []
    data = {"a": "someone"}
    assert validate_form(schema, data, lambda user, role: looked_up.append(role) or True) == data
    assert looked_up == []


def test_a_form_s_rules_are_checked_in_one_round_trip_within_one_step_budget(forms_app, forms_api, monkeypatch):
    """`x-validate` rules run while the case is locked (on SQLite: every writer waits). One executor round trip per
    rule, each with a step budget of its own, let a form of a few hundred slow rules hold that lock for minutes, and
    send the whole case data across the executor's pipe once per rule."""
    rules = [{"expr": f"ok or {i} < 0", "field": "ok", "message": "须同意"} for i in range(50)]
    key = f"rules_{uuid.uuid4().hex[:8]}"
    assert deploy(forms_api, key, process(key, task={**FORM, "x-validate": rules})).status_code == 201
    assert forms_api.put(f"/api/processes/{key}/starters", json={"roles": ["org_dept"]}).status_code == 200
    case = forms_api.start(key, "c1", as_="org_dept")
    runner, calls = forms_app.extensions["cadreflow"].runner, []
    real = runner._call
    monkeypatch.setattr(runner, "_call", lambda request, *args: calls.append(request["op"]) or real(request, *args))
    task = case["open_tasks"][0]
    refused = forms_api.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": {"ok": False}})
    assert assert_error(refused, 422)["fields"] == {"ok": "须同意"}
    done = forms_api.post(f"/api/tasks/{task['id']}/complete", as_="org_dept", json={"data": {"ok": True}})
    assert done.status_code == 200, done.json
    assert len(calls) <= 4, calls
