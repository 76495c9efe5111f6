"""Form schemas at deploy: `$ref`s must lead to a schema of the form and never loop, keywords that move a `$ref`
or swap the validator are refused, and the form's size with every `$ref` expanded is bounded
(DEPLOY_LIMITS.max_form_nodes), counted in linear time; what is accepted validates without error."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from lxml import etree

from service.config import PROJECT_ROOT
from tests.engine.bpmn_builder import FORM, chain_process, form_schema
from workflows.engine import DeployLimits, DeploymentError, compile_process, form_validator, schemas

LIMITS = DeployLimits()


def doubling(levels: int) -> dict:
    """`$defs` d0..dn where each d_i refers twice to d_i+1: about 1 KB at 14 levels, 2**levels nodes expanded."""
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(levels)}
    defs[f"d{levels}"] = {"type": "string"}
    return {"type": "object", "$defs": defs, "properties": {"a": {"$ref": "#/$defs/d0"}}}


def with_start_form(schema: dict, key: str = "forms_case") -> bytes:
    bpmn = chain_process([("review", form_schema(FORM))], {"org_dept": ["review"]}, key).decode()
    return bpmn.replace('<bpmn:startEvent id="start"/>', '<bpmn:startEvent id="start"><bpmn:extensionElements>'
                        f"{form_schema(schema)}</bpmn:extensionElements></bpmn:startEvent>").encode()


def refused(schema: dict, limits: DeployLimits | None = LIMITS) -> list[str]:
    """The English messages of the problems deploy finds with `schema` as the start form, all on `start`."""
    with pytest.raises(DeploymentError) as caught:
        compile_process("forms_case", with_start_form(schema), {}, None, limits=limits)
    assert {problem.element_id for problem in caught.value.problems} == {"start"}, caught.value.problems
    return [problem.message_en for problem in caught.value.problems]


def test_doubling_refs_are_refused_naming_the_limit():
    messages = refused(doubling(12))
    assert any("DEPLOY_LIMITS.max_form_nodes" in m and "1000" in m for m in messages), messages


def test_the_count_is_linear_in_the_document_however_large_the_expansion():
    started = time.monotonic()
    assert schemas.expanded_size(doubling(2_000), LIMITS.max_form_nodes) > LIMITS.max_form_nodes
    assert time.monotonic() - started < 5  # 2**2000 nodes walked would never end


def test_the_limit_is_a_setting_and_counts_each_reuse_of_a_definition():
    shared = {"type": "object", "$defs": {"s": {"type": "string", "enum": ["a", "b"]}},
              "properties": {f"f{i}": {"$ref": "#/$defs/s"} for i in range(10)}}
    # root, $defs with s and its enum, properties, then each field with its expansion of s (s and its enum)
    assert schemas.expanded_size(shared, 1000) == 1 + 3 + 1 + 10 * 3
    compile_process("forms_case", with_start_form(shared), {}, None, limits=DeployLimits(max_form_nodes=40))
    assert any("max_form_nodes" in m for m in refused(shared, DeployLimits(max_form_nodes=30)))


def test_shipped_forms_are_far_below_the_limit():
    for path in sorted(Path(PROJECT_ROOT, "bpmn").glob("*.bpmn")):
        for element in etree.parse(str(path)).getroot().iter("{*}formSchema"):
            size = schemas.expanded_size(json.loads(element.text), LIMITS.max_form_nodes)
            assert size < LIMITS.max_form_nodes / 10, path


@pytest.mark.parametrize("schema, found", [
    ({"type": "object", "$ref": "#"}, "loops back"),
    ({"type": "object", "properties": {"child": {"$ref": "#"}}}, "loops back"),
    ({"type": "object", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
      "properties": {"x": {"$ref": "#/$defs/a"}}}, "loops back"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/nope"}}}, "points to no schema"),
    ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"$ref": "#/properties/a/type"}}},
     "points to no schema"),
    ({"type": "object", "properties": {"a": {"$ref": "#somewhere"}}}, "points to no schema"),
    ({"type": "object", "properties": {"a": {"$ref": "#/allOf/3"}}}, "points to no schema"),
    ({"type": "object", "properties": {"a": {"$id": "http://example.org/a", "$ref": "#/foo"}}}, "$id is not allowed"),
    ({"type": "object", "properties": {"a": {"$anchor": "here"}, "b": {"$ref": "#here"}}}, "$anchor is not allowed"),
    ({"type": "object", "properties": {"a": {"$dynamicRef": "#/properties/b"}, "b": {}}}, "$dynamicRef is not"),
    # Below the top, $schema makes jsonschema validate with its own validator: Python's backtracking `re`.
    ({"type": "object", "properties": {"a": {"$schema": "http://json-schema.org/draft-07/schema#",
                                             "pattern": "^(a+)+$"}}}, "$schema is not allowed"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "^a", "x-pattern-message": 5}}},
     "x-pattern-message must be a string"),
])
def test_unsafe_references_and_keywords_are_refused_on_their_element(schema, found):
    messages = refused(schema)
    assert any(found in m for m in messages), messages


@pytest.mark.parametrize("schema, good, bad", [
    ({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
      "$defs": {"a/b": {"type": "integer"}, "c d": {"type": "string"}, "t~": {"enum": ["x"]}},
      "properties": {"n": {"$ref": "#/$defs/a~1b"}, "s": {"$ref": "#/$defs/c%20d"}, "t": {"$ref": "#/$defs/t~0"}}},
     {"n": 1, "s": "x", "t": "x"}, {"n": "1"}),
    ({"type": "object", "properties": {"a": True, "b": False, "c": {"allOf": [{"$ref": "#/properties/a"}]}}},
     {"a": [1], "c": 2}, {"b": 1}),
    ({"type": "object", "$defs": {"x": {"type": "integer"}}, "properties": {"p": {"$ref": "#/$defs/x"},
                                                                            "q": {"$ref": "#/properties/p"}}},
     {"p": 1, "q": 2}, {"q": "2"}),
])
def test_what_deploy_accepts_validates_as_referencing_resolves_it(schema, good, bad):
    assert schemas.schema_problems(schema) == [] and schemas.expanded_size(schema, 1000) < 20
    compile_process("forms_case", with_start_form(schema), {}, None, limits=LIMITS)
    assert list(form_validator(schema).iter_errors(good)) == []
    assert list(form_validator(schema).iter_errors(bad)) != []


def test_a_stored_version_with_a_form_deploy_now_refuses_still_loads():
    """The rules on references and field keywords came after versions were stored: deploy (with limits) refuses
    such a form, parsing a stored version again (no limits) still gives its definition, whose cases the forms'
    and pages' own guards keep from failing."""
    short_names = {"type": "object", "properties": {"kind": {"type": "string", "enum": ["a", "b"],
                                                             "x-enumNames": ["甲"]}}}
    looping = {"type": "object", "properties": {"a": {"$ref": "#"}}}
    for schema in (short_names, looping):
        assert refused(schema)
        definition = compile_process("forms_case", with_start_form(schema), {}, None)
        assert definition.start_form == schema


def test_a_form_check_counts_the_time_it_works_not_the_time_it_waits_for_a_core():
    """The limit stops a check that explodes; a check of an ordinary form that waited (a loaded host: other
    processes, other threads) is not refused for it: a CI run on a loaded host refused a two-field form so."""
    small = {"type": "object", "properties": {"a": {"type": "string"}}}
    with schemas.time_limit(0.2):
        time.sleep(0.4)  # waiting, as a thread does for a core on a busy machine
        assert list(form_validator(small).iter_errors({"a": "x"})) == []
    with schemas.time_limit(0.2), pytest.raises(schemas.FormCheckTimeout):
        while True:  # working: the same limit stops it
            list(form_validator(small).iter_errors({"a": "x"}))


NAMED = {"type": "object", "properties": {"a": {"type": "integer"}}, "patternProperties": {"^x_": {"type": "string"}}}
EXTRA_NAME_FORMS = [
    {**NAMED, "additionalProperties": False},
    {**NAMED, "additionalProperties": {"type": "boolean"}},
    {**NAMED, "unevaluatedProperties": False},
    {"allOf": [NAMED], "unevaluatedProperties": False},
    {"anyOf": [NAMED, {"properties": {"b": True}}], "unevaluatedProperties": {"type": "null"}},
    {"$defs": {"named": NAMED}, "$ref": "#/$defs/named", "unevaluatedProperties": False},
    {"if": {"required": ["a"]}, "then": NAMED, "else": {"properties": {"b": True}}, "unevaluatedProperties": False},
    {"dependentSchemas": {"a": NAMED}, "unevaluatedProperties": False},
]
EXTRA_NAME_DATA = [{}, {"a": 1}, {"a": "x"}, {"x_1": "s"}, {"x_1": 1}, {"b": True}, {"b": None}, {"c": True},
                   {"a": 1, "x_y": "s", "b": None}, {"y_x": "s"}]


@pytest.mark.parametrize("schema", EXTRA_NAME_FORMS)
def test_extra_names_are_judged_as_jsonschema_judges_them(schema) -> None:
    """The form's `additionalProperties` and `unevaluatedProperties` (patterns on RE2) find what jsonschema's own
    find, name for name, wherever `patternProperties` sits."""
    for data in EXTRA_NAME_DATA:
        ours = sorted(e.message.split("(")[-1] for e in form_validator(schema).iter_errors(data)
                      if e.validator in ("additionalProperties", "unevaluatedProperties"))
        theirs = sorted(e.message.split("(")[-1] for e in Draft202012Validator(schema).iter_errors(data)
                        if e.validator in ("additionalProperties", "unevaluatedProperties"))
        assert (bool(ours), form_validator(schema).is_valid(data)) == (bool(theirs),
                                                                       Draft202012Validator(schema).is_valid(data)), \
            (data, ours, theirs)
