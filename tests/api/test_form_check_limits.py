"""A designer's form is checked within the script time limit, in the service process where the check runs: a form
whose check explodes is refused (422 to a person, an incident at a call activity), never a web thread or a step
held for minutes; and `uniqueItems` compares in linear time, so a large but ordinary answer is not refused.

jsonschema re-walks the subschemas of nested `unevaluatedProperties` at every level (2**n in a form of a few
dozen nodes: 18 levels took minutes) and compared every pair of an array's objects for `uniqueItems` (2,000 of
them, 25 KB of data, took 14 s); node counts at deploy bound neither.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from service.usecases.forms import SLOW_FORM
from tests.api.support import CaseApi, Template, app_from_template, assert_error, make_api
from tests.conformance.bpmn import LANE, chain, definitions, end, form, script, start, user
from tests.web.test_web_shell import csrf_token, login

SCRIPT_TIMEOUT = 0.3
DEPLOY_CHECK = 1.0  # the shipped forms of a process take 0.06 s


def exploding(levels: int = 18) -> dict:
    """A field whose check costs about 2**levels walks of its subschemas: minutes at 18 levels."""
    schema: dict = {"type": "object"}
    for _ in range(levels):
        schema = {"anyOf": [schema, {"properties": {"b": True}}], "unevaluatedProperties": False}
    return schema


@pytest.fixture(scope="module")
def limited_app(template: Template, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = app_from_template(template, tmp_path_factory.mktemp("form-limits"), SCRIPT_TIMEOUT_SECONDS=SCRIPT_TIMEOUT,
                            DEPLOY_LIMITS={"max_form_check_seconds": DEPLOY_CHECK})
    yield app
    app.extensions["cadreflow"].db.dispose()


@pytest.fixture(scope="module")
def limited_api(limited_app: Flask, template: Template) -> CaseApi:
    api = make_api(limited_app, template)
    api.create_cadre("c1")
    return api


def deploy(api: CaseApi, key: str, body: str) -> None:
    response = api.post(f"/api/processes/{key}/versions", as_="designer", data=definitions(key, body, {LANE: ["task"]}),
                        content_type="application/xml")
    assert response.status_code == 201, response.json
    assert api.put(f"/api/processes/{key}/starters", json={"roles": [LANE]}).status_code == 200


def with_task(field: dict) -> str:
    """A one-task process whose form asks for `x` as `field` says."""
    schema = {"type": "object", "properties": {"x": field}}
    return start() + user("task", schema) + end() + chain("start", "task", "end")


def test_a_form_whose_check_explodes_is_refused_at_the_time_limit_and_nothing_is_stored(limited_api):
    api = limited_api
    deploy(api, "exploding_form", with_task(exploding()))
    case = api.start("exploding_form", "c1", as_=LANE)
    task = api.open_task(case["id"], "task")
    refused = api.complete_raw(task["id"], LANE, {"x": {"a": 1}})
    assert assert_error(refused, 422)["fields"]["_form"] == SLOW_FORM
    assert api.open_elements(case["id"]) == ["task"] and api.case(case["id"])["status"] == "open"


def test_a_called_processs_form_whose_check_explodes_is_the_callers_incident(limited_api):
    """The child's start form is checked while the caller's step waits in its executor: stopped at the script time
    limit, before the step's own, and held at the call activity for a person to retry."""
    api = limited_api
    child_form = form({"type": "object", "properties": {"x": exploding()}})
    deploy(api, "exploding_child", start(definition=f"<bpmn:extensionElements>{child_form}</bpmn:extensionElements>")
           + user("task") + end() + chain("start", "task", "end"))
    deploy(api, "exploding_caller", start() + script("make", 'x = {"a": 1}')
           + '<bpmn:callActivity id="call" calledElement="exploding_child"/>' + end()
           + chain("start", "make", "call", "end"))
    case = api.start("exploding_caller", "c1", as_=LANE)
    held = api.case(case["id"])
    assert held["status"] == "incident" and "表单校验超时" in held["incident"]["message"], held
    assert held["child_case_ids"] == []


def test_unique_items_are_compared_in_linear_time_as_json_schema_compares_them(limited_api):
    api = limited_api
    deploy(api, "unique_form", with_task({"type": "array", "uniqueItems": True}))

    def answer(items: list) -> object:
        case = api.start("unique_form", "c1", as_=LANE)
        return api.complete_raw(api.open_task(case["id"], "task")["id"], LANE, {"x": items})

    began = time.monotonic()
    accepted = answer([{"n": n} for n in range(8000)])  # jsonschema's pairwise comparison: minutes
    assert accepted.status_code == 200, accepted.json
    assert time.monotonic() - began < 60  # catches the pairwise comparison, not slowness
    for repeated in ([{"a": 1, "b": [1, True]}, {"b": [1.0, True], "a": 1}], [2, 2.0], [[None], [None]]):
        assert_error(answer(repeated), 422, fields={"x"})  # equal as JSON: key order, 1 and 1.0
    distinct = answer([1, True, [1], [True], {"a": 0}, {"a": False}, "1"])  # true is not 1, nor "1" 1
    assert distinct.status_code == 200, distinct.json


COSTLY = {"type": "object", "properties": {f"p{n}": True for n in range(20000)}}


def test_forms_too_costly_to_check_at_deploy_are_refused_at_the_deploy_limit(limited_api):
    """Each `true` subschema costs JSON Schema's metaschema (its `$dynamicRef`s) about a millisecond: 20,000 of them
    (300 KB, two nodes to max_form_nodes) held the deploying web thread for half a minute, and were accepted."""
    api = limited_api
    body = with_task(COSTLY)
    began = time.monotonic()
    refused = api.post("/api/processes/costly_form/versions", as_="designer",
                       data=definitions("costly_form", body, {LANE: ["task"]}), content_type="application/xml")
    problems = assert_error(refused, 422, "invalid_process")["errors"]
    assert any(p.get("element_id") == "task" and "max_form_check_seconds" in p["message"] for p in problems), problems
    assert time.monotonic() - began < 15  # catches a check run to its end, not slowness


def test_the_form_editors_preview_stops_at_the_deploy_limit_too(limited_app):
    """The preview reads a form as deploy does, in a web thread: a costly one is answered with deploy's problem."""
    client = limited_app.test_client()
    login(client, "designer")
    began = time.monotonic()
    preview = client.post("/designer/form-preview", data={"schema": json.dumps(COSTLY)},
                          headers={"X-CSRFToken": csrf_token(client, "/designer")})
    assert preview.status_code == 200 and preview.json["ok"] is False, preview.json
    assert "校验超时" in preview.json["errors"][0]["message"], preview.json  # in the page's language: Chinese
    assert time.monotonic() - began < 15  # catches a check run to its end, not slowness


@pytest.mark.parametrize("keyword", ["additionalProperties", "unevaluatedProperties"])
def test_a_pattern_deciding_which_names_are_extra_runs_on_re2_too(limited_api, keyword):
    """jsonschema matches `patternProperties` with Python's backtracking `re` when `additionalProperties` or
    `unevaluatedProperties` asks which names are extra: a pattern RE2 runs in linear time (deploy accepts it) held
    the web thread, and with it the process's every thread, for 2**n steps of a name of n letters, inside one
    keyword check the time limit never saw. Now the name is matched as `pattern` is: on RE2, at once."""
    api = limited_api
    key = f"extra_names_{keyword.lower()}"
    field = {"type": "object", "patternProperties": {"^(a+)+$": {"type": "integer"}}, keyword: False}
    deploy(api, key, with_task(field))
    case = api.start(key, "c1", as_=LANE)
    task = api.open_task(case["id"], "task")
    began = time.monotonic()
    refused = api.complete_raw(task["id"], LANE, {"x": {"a" * 28 + "!": 1}})  # about 10 s of Python's `re`
    took = time.monotonic() - began
    assert_error(refused, 422)
    assert took < 5, took
    assert api.open_elements(case["id"]) == ["task"]
    done = api.complete_raw(task["id"], LANE, {"x": {"a" * 28: 1}})
    assert done.status_code == 200, done.json


@pytest.mark.parametrize("value", [10**400, -(10**400), 10**309])
def test_an_integer_too_large_for_a_float_against_a_fractional_multiple_of_is_a_422(limited_api, value):
    """`multipleOf: 0.5` divides the answer as a float: jsonschema catches the quotient's overflow, not the
    division's, and a 400-digit integer (JSON has no bound) was a 500. Now it is refused as any answer is."""
    api = limited_api
    key = "multiple_of_half"
    if api.get(f"/api/processes/{key}").status_code == 404:
        deploy(api, key, with_task({"type": "number", "multipleOf": 0.5}))
    case = api.start(key, "c1", as_=LANE)
    task = api.open_task(case["id"], "task")
    assert_error(api.complete_raw(task["id"], LANE, {"x": value}), 422)
    assert api.open_elements(case["id"]) == ["task"]
    assert api.complete_raw(task["id"], LANE, {"x": 2.5}).status_code == 200


@pytest.mark.parametrize("keyword", [None, "additionalProperties", "unevaluatedProperties"])
def test_many_names_against_many_patterns_stop_at_the_time_limit(limited_api, keyword):
    """Every name of an answer is matched against every pattern of `patternProperties` inside one keyword check,
    which the time limit, read between keyword checks, did not see: 1,500 patterns and 10,000 names took a web
    thread minutes. Now each name matched counts toward the limit: a 422 at the limit, nothing stored."""
    api = limited_api
    key = f"many_patterns_{str(keyword).lower()}"
    field = {"type": "object", "patternProperties": {f"^p{i}$": True for i in range(1500)}}
    deploy(api, key, with_task({**field, **({keyword: False} if keyword else {})}))
    case = api.start(key, "c1", as_=LANE)
    task = api.open_task(case["id"], "task")
    began = time.monotonic()
    refused = api.complete_raw(task["id"], LANE, {"x": {f"p{i}": 0 for i in range(10_000)}})
    took = time.monotonic() - began
    assert assert_error(refused, 422)["fields"]["_form"] == SLOW_FORM
    assert took < 10, took
    assert api.open_elements(case["id"]) == ["task"]
